//! Authorization after authentication: scopes, roles and predicates over the verified claims.
//!
//! These layers run **inside** a [`JwtAuthLayer`](crate::auth::JwtAuthLayer) with the same claims type
//! `C`, and read the [`Claims<C>`] it inserted. A request whose claims fail the check gets **403**
//! with an RFC 6750 `insufficient_scope` challenge (and `scope="…"` for scope checks); a gRPC
//! request gets status 7 (`PERMISSION_DENIED`). A request without claims (no token in optional
//! mode) gets 401.
//!
//! Use them on a whole stack, a sub-router or a single route:
//!
//! - [`require_scope`]: every listed scope must be in `scope` (space-separated) or `scp`;
//! - [`require_any_role`] / [`require_all_roles`]: over the `roles` claim (an array of roles; a
//!   single string is one role, never split at spaces);
//! - [`authorize`]: any predicate over [`Claims<C>`];
//! - [`require_recent_auth`] / [`require_acr`]: step-up authentication (RFC 9470): the user
//!   must have logged in recently (`auth_time`) or in a given way (`acr`); otherwise **401**
//!   `insufficient_user_authentication` with `max_age="…"` or `acr_values="…"` in the
//!   challenge, which tells the client to have the user log in again. (Flask-JWT-Extended's
//!   "fresh token", the standard way.)
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode, header::AUTHORIZATION};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::authorize::require_scope;
//! use tower_jwt_auth::login::TokenIssuer;
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, SigningKey, Validation, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! type MyClaims = serde_json::Value;
//! let signing = SigningKey::from_secret(Algorithm::HS256, [1u8; 32])?;
//! let verifier = Verifier::new(KeySet::from(signing.verifying_key()?), Validation::new())?;
//! let svc = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::<MyClaims>::new(verifier))
//!     .layer(require_scope::<MyClaims>("orders:write"))
//!     .service(service_fn(|_req: Request<()>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(()))
//!     }));
//!
//! let token = TokenIssuer::new(signing).issue(&serde_json::json!({"sub": "1", "scope": "orders:read"}))?;
//! let req = Request::builder()
//!     .header(AUTHORIZATION, format!("Bearer {}", token.access_token()))
//!     .body(())?;
//! let res = svc.oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::FORBIDDEN);
//! assert!(res.headers()["www-authenticate"].to_str()?.contains(r#"scope="orders:write""#));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::claims::Claims;
use crate::error::{AuthError, AuthErrorKind};
use crate::rejection::{DefaultOnRejection, OnRejection, trace_rejection};

/// A check over verified claims, run by [`Authorize`].
pub trait ClaimsCheck<C> {
    /// `Ok(())` to let the request through; `Err` (usually a 403) to reject it.
    ///
    /// # Errors
    ///
    /// The rejection to send.
    fn check(&self, claims: &Claims<C>) -> Result<(), AuthError>;
}

/// Every listed scope is required. Built by [`require_scope`].
#[derive(Clone, Debug)]
pub struct RequireScope {
    scopes: Arc<[String]>,
    joined: Arc<str>,
}

impl<C> ClaimsCheck<C> for RequireScope {
    fn check(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        let registered = claims.registered();
        if self.scopes.iter().all(|s| registered.has_scope(s)) {
            Ok(())
        } else {
            Err(AuthError::forbidden(Some(Arc::clone(&self.joined))))
        }
    }
}

/// Any or all of the listed roles are required. Built by [`require_any_role`] and
/// [`require_all_roles`].
#[derive(Clone, Debug)]
pub struct RequireRoles {
    roles: Arc<[String]>,
    all: bool,
}

impl<C> ClaimsCheck<C> for RequireRoles {
    fn check(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        let registered = claims.registered();
        let ok = if self.all {
            self.roles.iter().all(|r| registered.has_role(r))
        } else {
            self.roles.iter().any(|r| registered.has_role(r))
        };
        if ok {
            Ok(())
        } else {
            Err(AuthError::forbidden(None))
        }
    }
}

/// A predicate over the claims. Built by [`authorize`].
#[derive(Clone)]
pub struct Predicate<F> {
    f: F,
}

impl<C, F> ClaimsCheck<C> for Predicate<F>
where
    F: Fn(&Claims<C>) -> bool,
{
    fn check(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        if (self.f)(claims) {
            Ok(())
        } else {
            Err(AuthError::forbidden(None))
        }
    }
}

impl<F> fmt::Debug for Predicate<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Predicate")
            .field("f", &std::any::type_name::<F>())
            .finish()
    }
}

/// A recent enough (`auth_time`) or strong enough (`acr`) authentication. Built by
/// [`require_recent_auth`] and [`require_acr`].
#[derive(Clone, Debug)]
pub struct RequireAuthentication {
    max_age: Option<u64>,
    acr: Arc<[String]>,
    /// The RFC 9470 challenge attributes, built once.
    params: Arc<str>,
}

impl<C> ClaimsCheck<C> for RequireAuthentication {
    fn check(&self, claims: &Claims<C>) -> Result<(), AuthError> {
        let registered = claims.registered();
        let recent = self.max_age.is_none_or(|max_age| {
            registered
                .auth_time
                .is_some_and(|t| crate::time::unix_now().saturating_sub(t) <= max_age)
        });
        let strong = self.acr.is_empty()
            || registered
                .acr
                .as_ref()
                .is_some_and(|acr| self.acr.iter().any(|a| a == acr));
        if recent && strong {
            Ok(())
        } else {
            Err(AuthError::step_up(Arc::clone(&self.params)))
        }
    }
}

/// Require that the user authenticated at most `max_age` ago (the `auth_time` claim, which the
/// login service sets and refreshes keep). A token without `auth_time`, or an older one, gets
/// 401 `insufficient_user_authentication` with `max_age="<seconds>"` (RFC 9470).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::authorize::require_recent_auth;
///
/// // Changing the password needs a login within the last five minutes.
/// let layer = require_recent_auth::<serde_json::Value>(Duration::from_secs(300));
/// # let _ = layer;
/// ```
pub fn require_recent_auth<C>(
    max_age: std::time::Duration,
) -> AuthorizeLayer<C, RequireAuthentication> {
    let secs = max_age.as_secs();
    AuthorizeLayer::new(RequireAuthentication {
        max_age: Some(secs),
        acr: Arc::new([]),
        params: format!("max_age=\"{secs}\"").into(),
    })
}

/// Require that the user authenticated with one of `values` (the `acr` claim). Otherwise 401
/// `insufficient_user_authentication` with `acr_values="<values>"` (RFC 9470). Values that
/// cannot be quoted in a header (a `"`, `\` or non-ASCII) are left out of the challenge, not
/// of the check.
pub fn require_acr<C, I>(values: I) -> AuthorizeLayer<C, RequireAuthentication>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    let acr: Arc<[String]> = values.into_iter().map(Into::into).collect();
    let shown: Vec<&str> = acr
        .iter()
        .map(String::as_str)
        .filter(|v| crate::text::quotable(v))
        .collect();
    AuthorizeLayer::new(RequireAuthentication {
        max_age: None,
        params: format!("acr_values=\"{}\"", shown.join(" ")).into(),
        acr,
    })
}

/// Require every scope in `scopes` (space-separated, e.g. `"orders:read orders:write"`).
///
/// See the [module docs](self) for an example.
pub fn require_scope<C>(scopes: &str) -> AuthorizeLayer<C, RequireScope> {
    let list: Vec<String> = scopes.split_ascii_whitespace().map(str::to_owned).collect();
    let joined: Arc<str> = list.join(" ").into();
    AuthorizeLayer::new(RequireScope {
        scopes: list.into(),
        joined,
    })
}

/// Require at least one of `roles` in the token's `roles` claim.
pub fn require_any_role<C, I>(roles: I) -> AuthorizeLayer<C, RequireRoles>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    AuthorizeLayer::new(RequireRoles {
        roles: roles.into_iter().map(Into::into).collect(),
        all: false,
    })
}

/// Require every one of `roles` in the token's `roles` claim.
pub fn require_all_roles<C, I>(roles: I) -> AuthorizeLayer<C, RequireRoles>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    AuthorizeLayer::new(RequireRoles {
        roles: roles.into_iter().map(Into::into).collect(),
        all: true,
    })
}

/// Require `predicate(&claims)` to hold.
///
/// ```
/// use tower_jwt_auth::Claims;
/// use tower_jwt_auth::authorize::authorize;
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims { tenant: String }
///
/// let layer = authorize(|claims: &Claims<MyClaims>| claims.tenant == "acme");
/// # let _ = layer;
/// ```
pub fn authorize<C, F>(predicate: F) -> AuthorizeLayer<C, Predicate<F>>
where
    F: Fn(&Claims<C>) -> bool,
{
    AuthorizeLayer::new(Predicate { f: predicate })
}

/// Applies [`Authorize`]: checks the verified claims with `P`.
///
/// See the [module docs](self) for an example.
#[must_use]
pub struct AuthorizeLayer<C, P, R = DefaultOnRejection> {
    check: P,
    on_rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<C, P> AuthorizeLayer<C, P> {
    /// A layer running `check`, rejecting with [`DefaultOnRejection`].
    pub fn new(check: P) -> Self {
        Self {
            check,
            on_rejection: DefaultOnRejection::new(),
            _claims: PhantomData,
        }
    }
}

impl<C, P, R> AuthorizeLayer<C, P, R> {
    /// Replace the rejection hook.
    pub fn on_rejection<R2>(self, on_rejection: R2) -> AuthorizeLayer<C, P, R2> {
        AuthorizeLayer {
            check: self.check,
            on_rejection,
            _claims: PhantomData,
        }
    }
}

impl<S, C, P: Clone, R: Clone> Layer<S> for AuthorizeLayer<C, P, R> {
    type Service = Authorize<S, C, P, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            check: self.check.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, P: Clone, R: Clone> Clone for AuthorizeLayer<C, P, R> {
    fn clone(&self) -> Self {
        Self {
            check: self.check.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, P: fmt::Debug, R> fmt::Debug for AuthorizeLayer<C, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("check", &self.check)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .finish()
    }
}

/// Middleware that checks verified claims; built by [`AuthorizeLayer`].
///
/// The check is synchronous: `poll_ready` forwards to the inner service, and `call` uses that
/// same instance. See the [module docs](self) for an example.
pub struct Authorize<S, C, P, R = DefaultOnRejection> {
    inner: S,
    check: P,
    on_rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C, P, R> Authorize<S, C, P, R> {
    define_inner_service_accessors!();
}

impl<S, C, P, R, ReqBody, ResBody> Service<Request<ReqBody>> for Authorize<S, C, P, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Send + Sync + 'static,
    P: ClaimsCheck<C>,
    R: OnRejection<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let verdict = match req.extensions().get::<Claims<C>>() {
            Some(claims) => self.check.check(claims),
            None => Err(AuthErrorKind::MissingToken.into()),
        };
        match verdict {
            Ok(()) => ResponseFuture {
                kind: Kind::Called {
                    future: self.inner.call(req),
                },
            },
            Err(error) => {
                trace_rejection(&error);
                let (parts, _body) = req.into_parts();
                ResponseFuture {
                    kind: Kind::Rejected {
                        response: Some(self.on_rejection.on_rejection(&error, &parts)),
                    },
                }
            }
        }
    }
}

impl<S: Clone, C, P: Clone, R: Clone> Clone for Authorize<S, C, P, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            check: self.check.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, P: fmt::Debug, R> fmt::Debug for Authorize<S, C, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("inner", &self.inner)
            .field("check", &self.check)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .finish()
    }
}

pin_project! {
    /// Response future of [`Authorize`]: the inner service's future, or the rejection.
    ///
    /// See the [module docs](self) for an example.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Called { #[pin] future: F },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future } => future.poll(cx),
            KindProj::Rejected { response } => {
                Poll::Ready(Ok(response.take().expect("future polled after completion")))
            }
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
