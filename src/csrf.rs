//! Cross-site request forgery protection for tokens read from a cookie (feature `cookie`).
//!
//! A browser sends cookies by itself, whoever made the page that sends the request, so a token
//! in a cookie proves nothing about where an *unsafe* request (anything but `GET`, `HEAD`,
//! `OPTIONS` and `TRACE`) came from. Whenever [`JwtAuth`](crate::auth::JwtAuth) takes the token from a
//! cookie and the method is unsafe, two checks run, on every request, cached token or not:
//!
//! 1. **Where it came from.** A `Sec-Fetch-Site` header other than `same-origin` or `none`, or an
//!    `Origin` header that is neither this server's origin nor a
//!    [trusted origin](CsrfProtection::trusted_origin), rejects the request. The server's origin
//!    is the one [configured](CsrfProtection::origin) (its public URL), else the request's
//!    scheme (`http` unless the request URI says `https`, as in HTTP/2) and its `Host` (or the
//!    URI's authority): scheme, host and port all count, so `http://host` is not the origin of
//!    an `https://host` site. Browsers send these headers themselves; scripts cannot forge them.
//! 2. **Double submit.** The request must carry the CSRF token in a header (`X-CSRF-Token` by
//!    default) and it must equal the token's `csrf` claim, compared in constant time. The login
//!    service's cookie mode puts that value into the token and into a cookie the page's own
//!    script can read (and another site's cannot), as Flask-JWT-Extended does.
//!
//! A failed check is a **403** (gRPC status 7) with kind
//! [`AuthErrorKind::CsrfRejected`]. Tokens from headers and
//! the query string are not affected: a browser never attaches those by itself.
//!
//! ```
//! use tower_jwt_auth::csrf::CsrfProtection;
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, TokenSource, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     .token_sources([TokenSource::bearer(), TokenSource::cookie("__Host-access_token")])
//!     .csrf(CsrfProtection::new().trusted_origin("https://app.example.com"));
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderName, Method, Uri};
use subtle::ConstantTimeEq;

use crate::auth::check::{Mounted, RequestContext, Slot, Verdict};
use crate::claims::RegisteredClaims;
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};

/// The default header that carries the CSRF token.
pub const DEFAULT_HEADER: &str = "x-csrf-token";

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The CSRF checks for cookie-carried tokens; always on for cookie tokens. See the
/// [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct CsrfProtection {
    header: HeaderName,
    trusted_origins: Vec<String>,
    /// This server's origin, when configured (`scheme://host[:port]`, lowercase).
    own_origin: Option<String>,
}

impl Default for CsrfProtection {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrfProtection {
    /// The token in `X-CSRF-Token`; only this server's own origin.
    pub fn new() -> Self {
        Self {
            header: HeaderName::from_static(DEFAULT_HEADER),
            trusted_origins: Vec::new(),
            own_origin: None,
        }
    }

    /// Read the CSRF token from header `name` instead of `X-CSRF-Token`.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid header name.
    pub fn header(mut self, name: &str) -> Result<Self, ConfigError> {
        self.header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidHeaderValue,
                "not a valid HTTP header name",
                e,
            )
        })?;
        Ok(self)
    }

    /// This server's own origin, from its public URL (`https://api.example.com/base` →
    /// `https://api.example.com`): behind a TLS terminator or a reverse proxy, the request
    /// alone cannot tell the scheme and host browsers see. Default: the request's scheme and
    /// `Host`.
    pub fn origin(mut self, public_url: &str) -> Self {
        let (origin, _) = crate::text::split_url(public_url);
        self.own_origin = Some(origin.to_ascii_lowercase());
        self
    }

    /// Whether `origin` (an `Origin` header's bytes) is this server's own.
    pub(crate) fn is_own_origin(&self, origin: &[u8], headers: &HeaderMap, uri: &Uri) -> bool {
        match &self.own_origin {
            Some(own) => origin.eq_ignore_ascii_case(own.as_bytes()),
            None => same_origin(origin, headers, uri),
        }
    }

    /// Also accept unsafe requests from this origin (`scheme://host[:port]`, exactly as
    /// browsers send it in `Origin`), for a front end served from another host. The double
    /// submit check still applies.
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted_origins.push(origin.into());
        self
    }

    /// The checks that need no claims: an unsafe request must come from this origin or a
    /// trusted one, and carry the CSRF header. Returns the header's value for
    /// [`CsrfProtection::check_claims`].
    pub(crate) fn check_request<'h>(
        &self,
        method: &Method,
        headers: &'h HeaderMap,
        uri: &Uri,
    ) -> Result<Option<&'h [u8]>, AuthError> {
        if is_safe(method) {
            return Ok(None);
        }
        self.check_origin(headers, uri)?;
        let mut values = headers.get_all(&self.header).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if !value.is_empty() => Ok(Some(value.as_bytes())),
            _ => Err(AuthErrorKind::CsrfRejected.into()),
        }
    }

    /// Where the request came from: refused when `Origin` names another origin than this
    /// server's (or a trusted one), or `Sec-Fetch-Site` is neither `same-origin` nor `none`.
    /// What guards a cookie-mode login, which carries no CSRF token yet.
    pub(crate) fn check_origin(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), AuthError> {
        let rejected = || AuthError::from(AuthErrorKind::CsrfRejected);
        let origin = headers.get(ORIGIN).map(http::HeaderValue::as_bytes);
        let trusted =
            origin.is_some_and(|o| self.trusted_origins.iter().any(|t| t.as_bytes() == o));
        if let Some(origin) = origin
            && !trusted
            && !self.is_own_origin(origin, headers, uri)
        {
            return Err(rejected());
        }
        if let Some(site) = headers.get(SEC_FETCH_SITE)
            && !trusted
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return Err(rejected());
        }
        Ok(())
    }

    /// The double submit check: the header's value equals the token's `csrf` claim.
    pub(crate) fn check_claims(
        submitted: Option<&[u8]>,
        claims: &RegisteredClaims,
    ) -> Result<(), AuthError> {
        let Some(submitted) = submitted else {
            return Ok(());
        };
        let bound = claims.csrf.as_deref().unwrap_or_default().as_bytes();
        // `ct_eq` on slices of different lengths is false without comparing the bytes; the
        // length of a random CSRF token is no secret.
        if !bound.is_empty() && bool::from(bound.ct_eq(submitted)) {
            Ok(())
        } else {
            Err(AuthErrorKind::CsrfRejected.into())
        }
    }
}

/// Applies to tokens the browser sent by itself (a cookie): where the request came from and
/// the CSRF header before the token is verified, the header against the token's `csrf` claim
/// after, on unsafe methods.
impl Mounted for CsrfProtection {
    fn slot(&self) -> Slot {
        Slot::new(1, "csrf")
    }

    fn checks_before(&self) -> bool {
        true
    }

    fn before(&self, req: &RequestContext<'_>) -> Result<(), AuthError> {
        if req.from_browser {
            self.check_request(req.method, req.headers, req.uri)?;
        }
        Ok(())
    }

    fn after(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict {
        if !req.from_browser || is_safe(req.method) {
            return Verdict::Pass;
        }
        let submitted = req
            .headers
            .get(&self.header)
            .map_or(&b""[..], http::HeaderValue::as_bytes);
        Self::check_claims(Some(submitted), claims).into()
    }
}

/// `GET`, `HEAD`, `OPTIONS` and `TRACE` change nothing (RFC 9110 §9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether `origin` (`scheme://host[:port]`) is the origin this request was sent to: its
/// scheme (`http` unless the URI names one) and its `Host` (or the URI's authority).
fn same_origin(origin: &[u8], headers: &HeaderMap, uri: &Uri) -> bool {
    let scheme = uri.scheme_str().unwrap_or("http");
    let Some(host) = origin
        .strip_prefix(scheme.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"://"))
    else {
        return false;
    };
    let target = headers
        .get(HOST)
        .map(http::HeaderValue::as_bytes)
        .or_else(|| uri.authority().map(|a| a.as_str().as_bytes()));
    target.is_some_and(|t| t.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, pairs: &[(&'static str, &'static str)]) -> (Method, HeaderMap) {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, http::HeaderValue::from_static(v));
        }
        (method, headers)
    }

    fn check(p: &CsrfProtection, method: Method, pairs: &[(&'static str, &'static str)]) -> bool {
        let (method, headers) = request(method, pairs);
        p.check_request(&method, &headers, &Uri::from_static("/"))
            .is_ok()
    }

    #[test]
    fn safe_methods_need_nothing() {
        let p = CsrfProtection::new();
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(check(&p, m, &[("sec-fetch-site", "cross-site")]));
        }
    }

    #[test]
    fn an_unsafe_request_needs_the_header() {
        let p = CsrfProtection::new();
        assert!(!check(&p, Method::POST, &[]));
        assert!(!check(&p, Method::POST, &[("x-csrf-token", "")]));
        assert!(check(&p, Method::POST, &[("x-csrf-token", "abc")]));
        assert!(!check(
            &p,
            Method::DELETE,
            &[("x-csrf-token", "a"), ("x-csrf-token", "b")]
        ));
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let p = CsrfProtection::new();
        let token = ("x-csrf-token", "abc");
        let host = ("host", "api.example.com");
        for site in ["cross-site", "same-site"] {
            assert!(!check(&p, Method::POST, &[token, ("sec-fetch-site", site)]));
        }
        assert!(check(
            &p,
            Method::POST,
            &[token, ("sec-fetch-site", "same-origin")]
        ));
        assert!(!check(
            &p,
            Method::POST,
            &[token, host, ("origin", "https://evil.example")]
        ));
        assert!(!check(&p, Method::POST, &[token, host, ("origin", "null")]));
        assert!(check(
            &p,
            Method::POST,
            &[token, host, ("origin", "http://api.example.com")]
        ));
        // The scheme counts: a plain-http page is not the origin of an https site.
        assert!(!check(
            &p,
            Method::POST,
            &[token, host, ("origin", "https://api.example.com")]
        ));
        let public = CsrfProtection::new().origin("https://API.example.com/base/");
        assert!(check(
            &public,
            Method::POST,
            &[token, host, ("origin", "https://api.example.com")]
        ));
        for other in ["http://api.example.com", "https://api.example.com:8443"] {
            assert!(
                !check(&public, Method::POST, &[token, host, ("origin", other)]),
                "{other}"
            );
        }
        // Another port of the same host is another origin.
        let local = ("host", "localhost:3000");
        assert!(check(
            &p,
            Method::POST,
            &[token, local, ("origin", "http://localhost:3000")]
        ));
        assert!(!check(
            &p,
            Method::POST,
            &[token, local, ("origin", "http://localhost:4000")]
        ));
        let trusting = CsrfProtection::new().trusted_origin("https://app.example.com");
        assert!(check(
            &trusting,
            Method::PUT,
            &[
                token,
                host,
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "same-site")
            ]
        ));
    }

    #[test]
    fn the_header_must_equal_the_csrf_claim() {
        let claims: RegisteredClaims = serde_json::from_str(r#"{"csrf":"s3cret"}"#).unwrap();
        assert!(CsrfProtection::check_claims(Some(b"s3cret"), &claims).is_ok());
        assert!(CsrfProtection::check_claims(Some(b"s3cres"), &claims).is_err());
        assert!(CsrfProtection::check_claims(Some(b"s3cret2"), &claims).is_err());
        let unbound = RegisteredClaims::default();
        assert!(CsrfProtection::check_claims(Some(b""), &unbound).is_err());
        assert!(CsrfProtection::check_claims(Some(b"x"), &unbound).is_err());
        assert!(CsrfProtection::check_claims(None, &unbound).is_ok());
    }
}
