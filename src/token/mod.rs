//! Where the token comes from: [`TokenSource`].
//!
//! By default only `Authorization: Bearer <token>` (RFC 6750 §2.1) is read. Other sources are
//! opt-in and tried in the configured order:
//!
//! - the `Authorization` header with another scheme, e.g. `JWT <token>` (the prefix the original
//!   Flask-JWT used, so its clients can migrate): [`TokenSource::authorization_scheme`];
//! - any named header, with or without a prefix: [`TokenSource::header`],
//!   [`TokenSource::header_with_prefix`];
//! - a cookie (feature `cookie`): [`TokenSource::cookie`];
//! - a query parameter: [`TokenSource::query`]. **Tokens in URLs leak** into access logs,
//!   proxies and browser history (RFC 6750 §2.3); use this only where nothing else works
//!   (e.g. WebSocket or `EventSource` clients that cannot set headers).
//!
//! A request that carries two *different* credentials (in two sources, or twice in one source)
//! is malformed: 400 `invalid_request`. A cookie is the exception: the browser sends it by
//! itself, so a stale cookie next to a fresh header never fails a request; the source listed
//! first wins. Tokens from cookies get cross-site request forgery checks (see [`crate::csrf`]). A source that is present but empty, or a header with
//! another scheme, counts as "no token".
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, TokenSource, Validation, Verifier, VerifyingKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     .token_sources([TokenSource::bearer(), TokenSource::authorization_scheme("JWT")?]);
//! let svc = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(()))
//! }));
//! let req = Request::builder().header("authorization", "JWT not-a-valid-token").body(())?;
//! let res = svc.oneshot(req).await?;
//! // The token was found (and rejected as invalid), not reported missing.
//! assert!(res.headers()["www-authenticate"].to_str()?.contains("invalid_token"));
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, Uri};

use crate::auth::check::Mounted;
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};

#[cfg(feature = "cookie")]
pub(crate) mod cookie;

/// One place a token may be found. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct TokenSource {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Header {
        name: HeaderName,
        prefix: Option<Box<str>>,
    },
    /// The query, or a source defined by a feature's module (the cookie).
    Other(Arc<dyn Find>),
}

/// A token source defined outside this module.
pub(crate) trait Find: Send + Sync + fmt::Debug {
    /// The token this source finds in the request, if any.
    fn find<'a>(&self, headers: &'a HeaderMap, uri: &'a Uri) -> Found<'a>;

    /// Whether the browser sends this credential by itself (a cookie): it never conflicts
    /// with another source, and CSRF checks apply. Default: no.
    fn sent_by_browser(&self) -> bool {
        false
    }

    /// A check a layer reading this source needs, unless the application mounted its own in
    /// the same slot (CSRF protection for a cookie). Default: none.
    fn companion(&self) -> Option<Arc<dyn Mounted>> {
        None
    }
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, the scheme matched case-insensitively. The default.
    #[must_use]
    pub fn bearer() -> Self {
        Self {
            kind: Kind::Header {
                name: AUTHORIZATION,
                prefix: Some("Bearer".into()),
            },
        }
    }

    /// `Authorization: <scheme> <token>`, e.g. `JWT` (Flask-JWT), matched case-insensitively.
    ///
    /// # Errors
    ///
    /// When `scheme` is empty or not an HTTP token (letters, digits and `!#$%&'*+-.^_|~`).
    pub fn authorization_scheme(scheme: &str) -> Result<Self, ConfigError> {
        Self::header_with_prefix(AUTHORIZATION.as_str(), scheme)
    }

    /// The whole value of header `name` is the token (e.g. `X-Auth-Token: <token>`).
    ///
    /// # Errors
    ///
    /// When `name` is not a valid header name.
    pub fn header(name: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            kind: Kind::Header {
                name: header_name(name)?,
                prefix: None,
            },
        })
    }

    /// Header `name` holds `<prefix> <token>`; the prefix is matched case-insensitively, and a
    /// value with another prefix counts as no token.
    ///
    /// # Errors
    ///
    /// When `name` is not a valid header name, or `prefix` is empty or not an HTTP token.
    pub fn header_with_prefix(name: &str, prefix: &str) -> Result<Self, ConfigError> {
        let is_token = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_|~".contains(&b));
        if !is_token {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHeaderValue,
                "the prefix must be an HTTP token such as `Bearer` or `JWT` (no spaces)",
            ));
        }
        Ok(Self {
            kind: Kind::Header {
                name: header_name(name)?,
                prefix: Some(prefix.into()),
            },
        })
    }

    /// Query parameter `name` (percent-decoded). Tokens in URLs leak into logs: see the
    /// [module docs](self).
    #[must_use]
    pub fn query(name: &str) -> Self {
        Self {
            kind: Kind::Other(Arc::new(QuerySource { name: name.into() })),
        }
    }

    /// Whether the browser sends this credential by itself (a cookie).
    fn is_cookie(&self) -> bool {
        match &self.kind {
            Kind::Other(find) => find.sent_by_browser(),
            Kind::Header { .. } => false,
        }
    }

    /// The check a layer reading this source needs (CSRF protection for a cookie).
    pub(crate) fn companion(&self) -> Option<Arc<dyn Mounted>> {
        match &self.kind {
            Kind::Other(find) => find.companion(),
            Kind::Header { .. } => None,
        }
    }

    /// The token this source finds in the request, if any.
    fn find<'a>(&self, headers: &'a HeaderMap, uri: &'a Uri) -> Found<'a> {
        match &self.kind {
            Kind::Header { name, prefix } => from_header(headers, name, prefix.as_deref()),
            Kind::Other(find) => find.find(headers, uri),
        }
    }
}

fn header_name(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
        ConfigError::with_source(
            ConfigErrorKind::InvalidHeaderValue,
            "not a valid HTTP header name",
            e,
        )
    })
}

/// A credential as found in a request. A header value is not checked yet for its shape (no
/// blanks inside, UTF-8): the verified-token cache answers by exact bytes first, and a token
/// equal to one that verified before needs no check. Everything else goes through
/// [`RawToken::check`] before it is decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawToken<'a> {
    /// From a header: trimmed, not yet checked.
    Header(&'a [u8]),
    /// From the query or a cookie: already text. `from_browser`: sent by the browser on its
    /// own, as a cookie is (CSRF checks apply).
    Text {
        text: Cow<'a, str>,
        from_browser: bool,
    },
}

impl<'a> RawToken<'a> {
    /// The credential's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Header(bytes) => bytes,
            Self::Text { text, .. } => text.as_bytes(),
        }
    }

    /// Whether the browser sent it by itself (a cookie).
    pub(crate) fn sent_by_browser(&self) -> bool {
        matches!(
            self,
            Self::Text {
                from_browser: true,
                ..
            }
        )
    }

    /// The token as text: a header credential with a blank inside is an invalid request (two
    /// tokens), one that is not UTF-8 is malformed.
    pub(crate) fn check(&self) -> Result<&str, AuthError> {
        match self {
            Self::Header(bytes) => {
                // One vectorised search instead of a byte loop over a few hundred bytes.
                if memchr::memchr2(b' ', b'\t', bytes).is_some() {
                    return invalid_request();
                }
                std::str::from_utf8(bytes).map_err(|_| AuthErrorKind::Malformed.into())
            }
            Self::Text { text, .. } => Ok(text),
        }
    }
}

pub(crate) type Found<'a> = Result<Option<RawToken<'a>>, AuthError>;

pub(crate) fn invalid_request<T>() -> Result<T, AuthError> {
    Err(AuthErrorKind::InvalidRequest.into())
}

fn from_header<'a>(headers: &'a HeaderMap, name: &HeaderName, prefix: Option<&str>) -> Found<'a> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return invalid_request();
    }
    let bytes = value.as_bytes();
    let rest = match prefix {
        None => bytes,
        // `<scheme> <token>`: the scheme is everything before the first space, compared
        // case-insensitively, so the value must start with the prefix followed by a space (or
        // end there). A constant-length check, not a scan.
        Some(prefix) => match bytes.split_at_checked(prefix.len()) {
            // The exact spelling first (what clients send), the case-insensitive match only
            // when it differs.
            Some((scheme, rest))
                if (scheme == prefix.as_bytes()
                    || scheme.eq_ignore_ascii_case(prefix.as_bytes()))
                    && rest.first().is_none_or(|b| *b == b' ') =>
            {
                rest
            }
            _ => return Ok(None),
        },
    };
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Ok(None);
    }
    Ok(Some(RawToken::Header(token)))
}

/// The credential of the request's one `Authorization: <scheme> <credential>` header (the
/// scheme matched case-insensitively); `None` for another scheme, no header, or several (which
/// [`find_token`] reports as a malformed request).
pub(crate) fn scheme_credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a [u8]> {
    match from_header(headers, &AUTHORIZATION, Some(scheme)) {
        Ok(Some(RawToken::Header(credential))) => Some(credential),
        _ => None,
    }
}

/// A query parameter.
#[derive(Debug)]
struct QuerySource {
    name: Box<str>,
}

impl Find for QuerySource {
    fn find<'a>(&self, _headers: &'a HeaderMap, uri: &'a Uri) -> Found<'a> {
        from_query(uri, &self.name)
    }
}

fn from_query<'a>(uri: &'a Uri, name: &str) -> Found<'a> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found: Option<Cow<'a, str>> = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != name || value.is_empty() {
            continue;
        }
        match &found {
            Some(previous) if *previous != value => return invalid_request(),
            _ => found = Some(value),
        }
    }
    Ok(found.map(|text| RawToken::Text {
        text,
        from_browser: false,
    }))
}

/// Find the token in the request: each source in order. Two different credentials from two
/// non-cookie sources (or twice in one source) are an invalid request. A cookie never conflicts
/// with another source: the browser sends it by itself, so a stale cookie next to a fresh
/// `Authorization` header must not fail the request; the first source in the configured order
/// wins (the header, when it is listed first).
pub(crate) fn find_token<'a>(
    sources: &[TokenSource],
    headers: &'a HeaderMap,
    uri: &'a Uri,
) -> Found<'a> {
    let mut found: Option<RawToken<'a>> = None;
    for source in sources {
        if found.is_some() && source.is_cookie() {
            continue;
        }
        if let Some(token) = source.find(headers, uri)? {
            match &found {
                None => found = Some(token),
                Some(previous) if previous.sent_by_browser() => {}
                Some(previous) if previous.bytes() != token.bytes() => return invalid_request(),
                Some(_) => {}
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn bearer(values: &[&[u8]]) -> Result<Option<String>, AuthErrorKind> {
        let pairs: Vec<(&str, &[u8])> = values.iter().map(|v| ("authorization", *v)).collect();
        let h = headers(&pairs);
        let uri = Uri::from_static("/");
        find_checked(&[TokenSource::bearer()], &h, &uri)
            .map(|t| t.map(Cow::into_owned))
            .map_err(|e| e.kind())
    }

    /// `find_token` and then the shape check, as the authenticator does on a cache miss.
    fn find_checked<'a>(
        sources: &[TokenSource],
        headers: &'a HeaderMap,
        uri: &'a Uri,
    ) -> Result<Option<Cow<'a, str>>, AuthError> {
        match find_token(sources, headers, uri)? {
            None => Ok(None),
            Some(token) => token.check().map(|t| Some(Cow::Owned(t.to_owned()))),
        }
    }

    fn kind(r: Result<Option<Cow<'_, str>>, AuthError>) -> AuthErrorKind {
        r.unwrap_err().kind()
    }

    #[test]
    fn bearer_token_is_found() {
        assert_eq!(
            bearer(&[b"Bearer abc.def.ghi"]).unwrap().as_deref(),
            Some("abc.def.ghi")
        );
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(bearer(&[b"bEaReR t"]).unwrap().as_deref(), Some("t"));
    }

    #[test]
    fn token_case_is_kept() {
        assert_eq!(bearer(&[b"Bearer AbC"]).unwrap().as_deref(), Some("AbC"));
    }

    #[test]
    fn missing_header_is_no_token() {
        assert_eq!(bearer(&[]).unwrap(), None);
    }

    #[test]
    fn other_scheme_is_no_token() {
        assert_eq!(bearer(&[b"Basic dXNlcjpwYXNz"]).unwrap(), None);
        assert_eq!(bearer(&[b"Bearerx t"]).unwrap(), None);
    }

    #[test]
    fn empty_token_is_no_token() {
        assert_eq!(bearer(&[b"Bearer"]).unwrap(), None);
        assert_eq!(bearer(&[b"Bearer   "]).unwrap(), None);
    }

    #[test]
    fn two_tokens_are_an_invalid_request() {
        assert_eq!(
            bearer(&[b"Bearer a b"]).unwrap_err(),
            AuthErrorKind::InvalidRequest
        );
    }

    #[test]
    fn whitespace_inside_a_long_token_is_an_invalid_request() {
        // Long enough for the vectorised search, with the blank at every position class.
        for (at, blank) in [(1, b' '), (40, b'\t'), (200, b' '), (398, b'\t')] {
            let mut value = b"Bearer ".to_vec();
            let mut token = vec![b'x'; 400];
            token[at] = blank;
            value.extend_from_slice(&token);
            assert_eq!(
                bearer(&[&value]).unwrap_err(),
                AuthErrorKind::InvalidRequest,
                "blank at {at}"
            );
        }
        let long = [b"Bearer ".as_slice(), &[b'x'; 400]].concat();
        assert_eq!(bearer(&[&long]).unwrap().map(|t| t.len()), Some(400));
    }

    #[test]
    fn two_headers_are_an_invalid_request() {
        assert_eq!(
            bearer(&[b"Bearer a", b"Bearer b"]).unwrap_err(),
            AuthErrorKind::InvalidRequest
        );
    }

    #[test]
    fn non_utf8_token_is_malformed() {
        assert_eq!(
            bearer(&[b"Bearer \xff\xfe"]).unwrap_err(),
            AuthErrorKind::Malformed
        );
    }

    #[test]
    fn flask_jwt_scheme_is_read() {
        let h = headers(&[("authorization", b"JWT tok")]);
        let uri = Uri::from_static("/");
        let sources = [
            TokenSource::bearer(),
            TokenSource::authorization_scheme("JWT").unwrap(),
        ];
        assert_eq!(
            find_checked(&sources, &h, &uri).unwrap().as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn named_header_without_prefix() {
        let h = headers(&[("x-auth-token", b"tok")]);
        let uri = Uri::from_static("/");
        let sources = [TokenSource::header("X-Auth-Token").unwrap()];
        assert_eq!(
            find_checked(&sources, &h, &uri).unwrap().as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn query_parameter_is_percent_decoded() {
        let uri = Uri::from_static("/ws?x=1&access_token=a%2Eb");
        let sources = [TokenSource::query("access_token")];
        assert_eq!(
            find_checked(&sources, &HeaderMap::new(), &uri)
                .unwrap()
                .as_deref(),
            Some("a.b")
        );
    }

    #[test]
    fn different_tokens_in_two_sources_are_an_invalid_request() {
        let h = headers(&[("authorization", b"Bearer one")]);
        let uri = Uri::from_static("/?access_token=two");
        let sources = [TokenSource::bearer(), TokenSource::query("access_token")];
        assert_eq!(
            kind(find_checked(&sources, &h, &uri)),
            AuthErrorKind::InvalidRequest
        );
    }

    #[test]
    fn the_same_token_in_two_sources_is_fine() {
        let h = headers(&[("authorization", b"Bearer one")]);
        let uri = Uri::from_static("/?access_token=one");
        let sources = [TokenSource::bearer(), TokenSource::query("access_token")];
        assert_eq!(
            find_checked(&sources, &h, &uri).unwrap().as_deref(),
            Some("one")
        );
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(TokenSource::authorization_scheme("two words").is_err());
        assert!(TokenSource::header("bad header").is_err());
    }

    #[cfg(feature = "cookie")]
    #[test]
    fn cookie_is_read_across_cookie_headers() {
        let h = headers(&[
            ("cookie", b"a=1; theme=dark"),
            ("cookie", b"access_token=tok"),
        ]);
        let uri = Uri::from_static("/");
        let sources = [TokenSource::cookie("access_token")];
        assert_eq!(
            find_checked(&sources, &h, &uri).unwrap().as_deref(),
            Some("tok")
        );
        let twice = headers(&[("cookie", b"access_token=a; access_token=b")]);
        assert_eq!(
            kind(find_checked(&sources, &twice, &uri)),
            AuthErrorKind::InvalidRequest
        );
    }

    #[cfg(feature = "cookie")]
    #[test]
    fn a_stale_cookie_next_to_a_header_never_fails_the_request() {
        let h = headers(&[
            ("authorization", b"Bearer fresh"),
            ("cookie", b"access_token=stale"),
        ]);
        let uri = Uri::from_static("/");
        let header_first = [TokenSource::bearer(), TokenSource::cookie("access_token")];
        assert_eq!(
            find_checked(&header_first, &h, &uri).unwrap().as_deref(),
            Some("fresh")
        );
        // The configured order decides.
        let cookie_first = [TokenSource::cookie("access_token"), TokenSource::bearer()];
        assert_eq!(
            find_checked(&cookie_first, &h, &uri).unwrap().as_deref(),
            Some("stale")
        );
        let token = find_token(&cookie_first, &h, &uri).unwrap().unwrap();
        assert!(token.sent_by_browser());
        assert_eq!(token.bytes(), b"stale");
    }
}
