//! What a rejected request gets back: [`OnRejection`], the RFC 6750 default
//! [`DefaultOnRejection`] (empty body) and [`JsonOnRejection`] (JSON body).
//!
//! Both ready-made rejections answer gRPC requests (HTTP/2 with `content-type:
//! application/grpc` or `application/grpc+…`; see [`is_grpc`]) the gRPC way: HTTP 200,
//! `content-type: application/grpc`, `grpc-status` 16 (`UNAUTHENTICATED`), 7
//! (`PERMISSION_DENIED`) or 14 (`UNAVAILABLE`), a short percent-encoded `grpc-message`, and no
//! body. So one layer in front of a router serving both REST and gRPC answers each client in
//! its own protocol; gRPC-Web and HTTP/1.1 clients get HTTP statuses. Every HTTP 401 and 403
//! carries the RFC 6750 `WWW-Authenticate: Bearer` challenge, whatever the body, and every
//! rejection carries `Cache-Control: no-store`.
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
//! use tower_jwt_auth::{Algorithm, AuthError, DefaultOnRejection, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let challenges = DefaultOnRejection::new();
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     .on_rejection(move |err: &AuthError, _req: &http::request::Parts| {
//!         Response::builder()
//!             .status(err.status())
//!             .header("www-authenticate", challenges.challenge(err))
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
use std::sync::{Arc, LazyLock};

use crate::text::quotable;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode, Version};

use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};

const KINDS: usize = AuthErrorKind::ALL.len();

/// Builds the response for a rejected request.
///
/// Implemented by [`DefaultOnRejection`], [`JsonOnRejection`] and by closures
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

/// One `debug` event per rejection (feature `tracing`): its kind and status, never the token.
pub(crate) fn trace_rejection(error: &AuthError) {
    crate::metrics::rejected(error.kind());
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_jwt_auth",
        kind = error.kind().as_str(),
        status = error.status().as_u16(),
        claim = error.claim_problem(),
        "request rejected"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// Whether a request is gRPC and gets a gRPC rejection: HTTP/2 (gRPC runs on nothing else) with
/// `content-type: application/grpc` or `application/grpc+<subtype>` (`+proto`, `+json`, …).
///
/// Anything else gets an HTTP status: gRPC-Web (`application/grpc-web…`, whose clients read
/// HTTP statuses), an HTTP/1.1 request that merely claims a gRPC content type, and look-alikes
/// such as `application/grpcfoo`. So a plain HTTP client can never turn a 401 into a
/// `200 OK` that monitoring, rate limiters and caches would count as a success.
#[must_use]
pub fn is_grpc(request: &http::request::Parts) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    request.version == Version::HTTP_2
        && request.headers.get(CONTENT_TYPE).is_some_and(|v| {
            let v = v.as_bytes();
            v.get(..GRPC.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(GRPC))
                && matches!(v.get(GRPC.len()), None | Some(b'+'))
        })
}

/// The gRPC trailers-only rejection for `error`: HTTP 200, `content-type: application/grpc`,
/// `grpc-status` ([`AuthErrorKind::grpc_code`]: 16, 7 or 14), a short percent-encoded
/// `grpc-message`, `cache-control: no-store`, and an empty body.
///
/// The ready-made rejections answer gRPC requests with it; a custom [`OnRejection`] can too, so
/// it keeps gRPC clients working while it changes the HTTP answer:
///
/// ```
/// use http::{Response, StatusCode};
/// use tower_jwt_auth::AuthError;
/// use tower_jwt_auth::rejection::{grpc_rejection, is_grpc};
///
/// let problem_json = |err: &AuthError, req: &http::request::Parts| -> Response<String> {
///     if is_grpc(req) {
///         return grpc_rejection(err);
///     }
///     let mut res = Response::new(format!(r#"{{"title":"{err}"}}"#));
///     *res.status_mut() = err.status();
///     res
/// };
/// # let _ = problem_json;
/// ```
#[must_use]
pub fn grpc_rejection<B: Default>(error: &AuthError) -> Response<B> {
    static GRPC: LazyLock<GrpcValues> = LazyLock::new(GrpcValues::new);
    let values = &*GRPC;
    let i = error.kind().index();
    let mut res = Response::new(B::default());
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("grpc-status", values.status[i].clone());
    let message = match error.claim_problem() {
        // Which claim: built for this rejection (the claim's name, never its value).
        Some(_) => HeaderValue::from_str(&grpc_percent_encode(&error.description()))
            .unwrap_or_else(|_| values.message[i].clone()),
        None => values.message[i].clone(),
    };
    headers.insert("grpc-message", message);
    res
}

/// `grpc-status` and `grpc-message` per kind, built once per process.
struct GrpcValues {
    status: [HeaderValue; KINDS],
    message: [HeaderValue; KINDS],
}

impl GrpcValues {
    fn new() -> Self {
        Self {
            status: AuthErrorKind::ALL.map(|kind| HeaderValue::from(u16::from(kind.grpc_code()))),
            message: AuthErrorKind::ALL.map(|kind| {
                HeaderValue::from_str(&grpc_percent_encode(kind.description()))
                    .unwrap_or(HeaderValue::from_static("unauthenticated"))
            }),
        }
    }
}

/// The prebuilt `WWW-Authenticate` values of one realm, shared by the ready-made rejections.
struct Challenges {
    realm: Box<str>,
    /// Appended to every challenge: `, resource_metadata="…"` (RFC 9728 §5.1), or empty.
    extra: Box<str>,
    www_authenticate: [HeaderValue; KINDS],
}

fn sensitive(text: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("Bearer"));
    value.set_sensitive(true);
    value
}

/// Percent-encode a gRPC message (gRPC HTTP/2 spec: bytes outside 0x20..=0x7E, and `%`).
fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Challenges {
    /// `realm` and `extra` must already be checked (visible ASCII, no quotes or backslashes).
    fn new(realm: &str, extra: &str) -> Self {
        let www_authenticate = AuthErrorKind::ALL.map(|kind| match kind.error_code() {
            None => sensitive(&format!("Bearer realm=\"{realm}\"{extra}")),
            Some(code) => sensitive(&format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\"{extra}",
                kind.description()
            )),
        });
        Self {
            realm: realm.into(),
            extra: extra.into(),
            www_authenticate,
        }
    }

    fn challenge(&self, error: &AuthError) -> HeaderValue {
        let kind = error.kind();
        if kind == AuthErrorKind::Forbidden
            && let Some(scope) = error.required_scope()
        {
            return sensitive(&format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", error_description=\"{}\", scope=\"{scope}\"{}",
                self.realm,
                kind.description(),
                self.extra
            ));
        }
        if kind == AuthErrorKind::InsufficientUserAuthentication
            && let Some(params) = error.step_up_params()
        {
            return sensitive(&format!(
                "Bearer realm=\"{}\", error=\"insufficient_user_authentication\", error_description=\"{}\", {params}{}",
                self.realm,
                kind.description(),
                self.extra
            ));
        }
        if error.claim_problem().is_some() {
            // Which claim: built for this rejection (its name, never its value).
            return sensitive(&format!(
                "Bearer realm=\"{}\", error=\"{}\", error_description=\"{}\"{}",
                self.realm,
                kind.error_code().unwrap_or("invalid_token"),
                error.description(),
                self.extra
            ));
        }
        self.www_authenticate[kind.index()].clone()
    }

    /// The gRPC trailers-only response, or `None` for a non-gRPC request.
    fn grpc<B: Default>(error: &AuthError, request: &http::request::Parts) -> Option<Response<B>> {
        is_grpc(request).then(|| grpc_rejection(error))
    }

    /// An HTTP response with `body`, the status, `Cache-Control: no-store` and, for 401 and
    /// 403, the challenge (or, when the layer accepts DPoP, the challenges).
    fn http<B>(&self, error: &AuthError, request: &http::request::Parts, body: B) -> Response<B> {
        let mut res = Response::new(body);
        *res.status_mut() = error.status();
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // A failed CSRF check is about where the request came from, not its credentials: no
        // authentication challenge.
        if (matches!(
            error.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) && error.kind() != AuthErrorKind::CsrfRejected)
            || error.kind() == AuthErrorKind::InvalidRequest
        {
            match error.dpop_algs() {
                None => {
                    headers.insert(WWW_AUTHENTICATE, self.challenge(error));
                }
                Some(algs) => self.dpop_challenges(error, request, algs, headers),
            }
        }
        if let Some(nonce) = error
            .dpop_nonce()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(http::HeaderName::from_static("dpop-nonce"), nonce);
        }
        if error.status() == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }

    /// The challenges of a layer that accepts DPoP (RFC 9449 §7.1): the error goes on the
    /// scheme the request used (or on `DPoP` for a DPoP failure); beside it, a bare challenge
    /// for the other accepted scheme. `algs` names the proof algorithms accepted.
    fn dpop_challenges(
        &self,
        error: &AuthError,
        request: &http::request::Parts,
        algs: &str,
        headers: &mut http::HeaderMap,
    ) {
        let full = self.challenge(error);
        let bare = &self.www_authenticate[AuthErrorKind::MissingToken.index()];
        let as_dpop = |bearer: &HeaderValue| {
            let text = bearer.to_str().unwrap_or("Bearer");
            let params = text.strip_prefix("Bearer").unwrap_or_default();
            sensitive(&format!("DPoP{params}, algs=\"{algs}\""))
        };
        let on_dpop = error.is_dpop() || uses_dpop_scheme(&request.headers);
        if error.dpop_required() {
            headers.insert(WWW_AUTHENTICATE, as_dpop(&full));
        } else if on_dpop {
            headers.insert(WWW_AUTHENTICATE, bare.clone());
            headers.append(WWW_AUTHENTICATE, as_dpop(&full));
        } else {
            headers.insert(WWW_AUTHENTICATE, full);
            headers.append(WWW_AUTHENTICATE, as_dpop(bare));
        }
    }
}

/// Whether the request sent its token as `Authorization: DPoP …`.
fn uses_dpop_scheme(headers: &http::HeaderMap) -> bool {
    crate::token::scheme_credential(headers, "DPoP").is_some()
}

fn check_realm(realm: &str) -> Result<(), ConfigError> {
    if quotable(realm) {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::InvalidHeaderValue,
            "the realm must be visible ASCII without quotes or backslashes",
        ))
    }
}

/// The default rejection: an empty body (`ResBody: Default`), status 401, 403, 400 or 503, and an
/// RFC 6750 `WWW-Authenticate` challenge; gRPC requests get a gRPC status instead (see the
/// [module docs](self)).
///
/// - token missing: `Bearer realm="…"` (no error attribute, RFC 6750 §3.1);
/// - token invalid: `Bearer realm="…", error="invalid_token", error_description="…"`;
/// - authorization failed: 403 with `error="insufficient_scope"` and `scope="…"`;
/// - malformed request: 400 with `error="invalid_request"`.
///
/// The description is a fixed text per [`AuthErrorKind`]; it never contains the token. The header
/// values are built once, at construction, and marked sensitive.
#[derive(Clone)]
pub struct DefaultOnRejection {
    challenges: Arc<Challenges>,
}

impl DefaultOnRejection {
    /// The default realm, `"api"`.
    pub const DEFAULT_REALM: &'static str = "api";

    /// Challenges with the default realm.
    #[must_use]
    pub fn new() -> Self {
        Self {
            challenges: Arc::new(Challenges::new(Self::DEFAULT_REALM, "")),
        }
    }

    /// Challenges naming `realm`.
    ///
    /// ```
    /// use tower_jwt_auth::DefaultOnRejection;
    /// assert!(DefaultOnRejection::from_realm("orders").is_ok());
    /// assert!(DefaultOnRejection::from_realm("bad\"realm").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// When the realm contains `"`, `\` or characters outside visible ASCII and space.
    pub fn from_realm(realm: &str) -> Result<Self, ConfigError> {
        check_realm(realm)?;
        Ok(Self {
            challenges: Arc::new(Challenges::new(realm, "")),
        })
    }

    /// Add `resource_metadata="<url>"` to every 401 and 403 challenge (RFC 9728 §5.1): where
    /// a client finds this resource's metadata, and through it the authorization servers to
    /// get a token from (the MCP authorization specification requires it). `url` is the
    /// metadata document's URL, as
    /// [`ProtectedResourceMetadata::metadata_url`](crate::metadata::ProtectedResourceMetadata::metadata_url)
    /// gives it.
    ///
    /// ```
    /// use tower_jwt_auth::DefaultOnRejection;
    /// let rejection = DefaultOnRejection::new()
    ///     .resource_metadata("https://api.example.com/.well-known/oauth-protected-resource")
    ///     .unwrap();
    /// # let _ = rejection;
    /// ```
    ///
    /// # Errors
    ///
    /// When `url` contains `"`, `\` or characters outside visible ASCII.
    pub fn resource_metadata(self, url: &str) -> Result<Self, ConfigError> {
        if !quotable(url) || url.contains(' ') {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHeaderValue,
                "the resource metadata URL must be visible ASCII without spaces, quotes or \
                 backslashes",
            ));
        }
        Ok(Self {
            challenges: Arc::new(Challenges::new(
                &self.challenges.realm,
                &format!(", resource_metadata=\"{url}\""),
            )),
        })
    }

    /// The `WWW-Authenticate` value this rejection sends for `error`; for custom rejections that
    /// keep the RFC 6750 header.
    #[must_use]
    pub fn challenge(&self, error: &AuthError) -> HeaderValue {
        self.challenges.challenge(error)
    }
}

impl Default for DefaultOnRejection {
    fn default() -> Self {
        Self::new()
    }
}

impl<ResBody: Default> OnRejection<ResBody> for DefaultOnRejection {
    fn on_rejection(&self, error: &AuthError, request: &http::request::Parts) -> Response<ResBody> {
        Challenges::grpc(error, request)
            .unwrap_or_else(|| self.challenges.http(error, request, ResBody::default()))
    }
}

impl fmt::Debug for DefaultOnRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultOnRejection")
            .field("realm", &self.challenges.realm)
            .finish_non_exhaustive()
    }
}

/// Like [`DefaultOnRejection`], with a JSON body
/// `{"error": "invalid_token", "error_description": "the token has expired"}` for body types that
/// can be built from [`Bytes`] (axum's `Body`, `Full<Bytes>`, …).
///
/// `error` is the RFC 6750 code (`invalid_token`, `invalid_request`, `insufficient_scope`), or
/// `missing_token` / `temporarily_unavailable` where RFC 6750 has none. gRPC requests still get an
/// empty gRPC response.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use bytes::Bytes;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_jwt_auth::{Algorithm, JsonOnRejection, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
/// let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
///     .on_rejection(JsonOnRejection::new());
/// let svc = ServiceBuilder::new().layer(layer).service(service_fn(|_req: Request<()>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::default()))
/// }));
/// let res = svc.oneshot(Request::new(())).await?;
/// assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
/// let body = res.into_body().collect().await?.to_bytes();
/// assert_eq!(&body[..], br#"{"error":"missing_token","error_description":"no bearer token in the request"}"#);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct JsonOnRejection {
    inner: DefaultOnRejection,
}

impl JsonOnRejection {
    /// JSON rejections with the default realm.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// JSON rejections naming `realm` in the challenge.
    ///
    /// # Errors
    ///
    /// As [`DefaultOnRejection::from_realm`].
    pub fn from_realm(realm: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: DefaultOnRejection::from_realm(realm)?,
        })
    }

    /// As [`DefaultOnRejection::resource_metadata`].
    ///
    /// # Errors
    ///
    /// As [`DefaultOnRejection::resource_metadata`].
    pub fn resource_metadata(self, url: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: self.inner.resource_metadata(url)?,
        })
    }
}

impl<ResBody> OnRejection<ResBody> for JsonOnRejection
where
    ResBody: From<Bytes> + Default,
{
    fn on_rejection(&self, error: &AuthError, request: &http::request::Parts) -> Response<ResBody> {
        let challenges = &self.inner.challenges;
        if let Some(res) = Challenges::grpc(error, request) {
            return res;
        }
        let kind = error.kind();
        let code = match kind {
            AuthErrorKind::MissingToken => "missing_token",
            AuthErrorKind::CsrfRejected => "csrf_rejected",
            AuthErrorKind::KeysUnavailable
            | AuthErrorKind::RevocationsUnavailable
            | AuthErrorKind::DpopReplayUnavailable => "temporarily_unavailable",
            _ => kind.error_code().unwrap_or("invalid_token"),
        };
        let body = serde_json::json!({ "error": code, "error_description": error.description() });
        let mut res = challenges.http(error, request, ResBody::from(Bytes::from(body.to_string())));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

#[cfg(test)]
mod tests;
