//! What a rejected request gets back: [`OnRejection`] and the RFC 6750 default,
//! [`DefaultOnRejection`].
//!
//! # Example: a custom rejection
//!
//! A closure `Fn(&AuthError, &http::request::Parts) -> http::Response<B>` is an [`OnRejection`]:
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::{Algorithm, AuthError, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     .on_rejection(|err: &AuthError, _req: &http::request::Parts| {
//!         Response::builder()
//!             .status(err.status())
//!             .header("content-type", "text/plain")
//!             .body(Full::new(Bytes::from(err.to_string())))
//!             .unwrap_or_default()
//!     });
//! let svc = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("secret"))))
//! }));
//! let res = svc.oneshot(Request::new(())).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

use std::fmt;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Response};

use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};

/// Builds the response for a rejected request.
///
/// Implemented by [`DefaultOnRejection`] and by closures
/// `Fn(&AuthError, &http::request::Parts) -> http::Response<ResBody>`. The request body has been
/// dropped; the parts are there so the response can depend on the request (its `content-type`,
/// say).
pub trait OnRejection<ResBody> {
    /// Build the response for `error`.
    fn on_rejection(&self, error: &AuthError, request: &http::request::Parts) -> Response<ResBody>;
}

impl<F, ResBody> OnRejection<ResBody> for F
where
    F: Fn(&AuthError, &http::request::Parts) -> Response<ResBody>,
{
    fn on_rejection(&self, error: &AuthError, request: &http::request::Parts) -> Response<ResBody> {
        self(error, request)
    }
}

/// The default rejection: an empty body (`ResBody: Default`), status 401 or 400, and an RFC 6750
/// `WWW-Authenticate` challenge.
///
/// - token missing: `Bearer realm="…"` (no error attribute, RFC 6750 §3.1);
/// - token invalid: `Bearer realm="…", error="invalid_token", error_description="…"`;
/// - malformed request: status 400 with `error="invalid_request"`.
///
/// The description is a fixed text per [`AuthErrorKind`]; it never contains the token. The header
/// values are built once, at construction, and marked sensitive.
#[derive(Clone)]
pub struct DefaultOnRejection {
    challenges: std::sync::Arc<[HeaderValue; AuthErrorKind::ALL.len()]>,
}

impl DefaultOnRejection {
    /// The default realm, `"api"`.
    pub const DEFAULT_REALM: &'static str = "api";

    /// Challenges with the default realm.
    #[must_use]
    pub fn new() -> Self {
        Self::build(Self::DEFAULT_REALM)
    }

    /// Challenges naming `realm`.
    ///
    /// ```
    /// use tower_jwt_auth::DefaultOnRejection;
    /// assert!(DefaultOnRejection::with_realm("orders").is_ok());
    /// assert!(DefaultOnRejection::with_realm("bad\"realm").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// When the realm contains `"`, `\` or characters outside visible ASCII and space.
    pub fn with_realm(realm: &str) -> Result<Self, ConfigError> {
        if !realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHeaderValue,
                "the realm must be visible ASCII without quotes or backslashes",
            ));
        }
        Ok(Self::build(realm))
    }

    /// `realm` must already be checked (or be the default).
    fn build(realm: &str) -> Self {
        let challenges = AuthErrorKind::ALL.map(|kind| {
            let text = match kind.error_code() {
                None => format!("Bearer realm=\"{realm}\""),
                Some(code) => format!(
                    "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\"",
                    kind.description()
                ),
            };
            let mut value =
                HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Bearer"));
            value.set_sensitive(true);
            value
        });
        Self {
            challenges: std::sync::Arc::new(challenges),
        }
    }

    /// The `WWW-Authenticate` value this rejection sends for `error`; for custom rejections that
    /// want to keep the RFC 6750 header.
    #[must_use]
    pub fn challenge(&self, error: &AuthError) -> &HeaderValue {
        &self.challenges[error.kind().index()]
    }
}

impl Default for DefaultOnRejection {
    fn default() -> Self {
        Self::new()
    }
}

impl<ResBody: Default> OnRejection<ResBody> for DefaultOnRejection {
    fn on_rejection(
        &self,
        error: &AuthError,
        _request: &http::request::Parts,
    ) -> Response<ResBody> {
        let mut res = Response::new(ResBody::default());
        *res.status_mut() = error.status();
        res.headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge(error).clone());
        res
    }
}

impl fmt::Debug for DefaultOnRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultOnRejection").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(kind: AuthErrorKind) -> Response<()> {
        let (parts, ()) = http::Request::new(()).into_parts();
        DefaultOnRejection::new().on_rejection(&AuthError::new(kind), &parts)
    }

    #[test]
    fn missing_token_gets_bare_challenge() {
        let res = respond(AuthErrorKind::MissingToken);
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer realm=\"api\"");
    }

    #[test]
    fn expired_token_gets_invalid_token_challenge() {
        let res = respond(AuthErrorKind::Expired);
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
        assert!(res.headers()[WWW_AUTHENTICATE].is_sensitive());
    }

    #[test]
    fn invalid_request_gets_400() {
        let res = respond(AuthErrorKind::InvalidRequest);
        assert_eq!(res.status(), 400);
        assert!(
            res.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
    }
}
