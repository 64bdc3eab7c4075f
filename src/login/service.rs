use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use serde::Deserialize;
use tower_service::Service;

use super::claims::{SessionClaims, UserClaims};

use super::proof::{Dpop, Proof};
pub(super) use super::request::{post_only, read_json};
use super::{Authenticate, BoxError, Overloaded, Reissue, TokenIssuer};
use crate::body::{JsonBody, json_error};
use crate::session::{LoginThrottle, Session, Sessions, StoreError, Throttle};

/// Default limit on the login request body: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// A tower service that checks credentials and issues access tokens (`Error = Infallible`).
///
/// Mount it at any path (`/login` in the demos). Cloning is cheap (one `Arc`). See the
/// [module docs](crate::login) for the protocol and an example.
pub struct LoginService<A> {
    inner: Arc<Inner<A>>,
    body_limit: usize,
    pub(super) options: Options,
}

struct Inner<A> {
    authenticator: A,
    issuer: TokenIssuer,
}

/// The optional parts of a login, cloned into each request's future (each is an `Arc` or two).
/// The cookie mode and DPoP are set by their features' modules.
#[derive(Clone, Default)]
pub(super) struct Options {
    sessions: Option<Sessions>,
    throttle: Option<LoginThrottle>,
    /// How a successful login is answered, when not with the tokens in the body.
    pub(super) answer: Option<Arc<dyn Answer>>,
    pub(super) dpop: Option<Dpop>,
}

/// How a successful login or refresh is answered, instead of the tokens in a JSON body, and
/// what else that mode changes at the session endpoints (cookie mode: the browser's side).
pub(super) trait Answer: Send + Sync + 'static {
    /// Sign `claims` with the `added` session claims and answer, with the session's refresh
    /// token if there is one.
    fn issue(
        &self,
        issuer: &TokenIssuer,
        claims: UserClaims,
        added: SessionClaims<'_>,
        session: Option<&Session>,
    ) -> Response<JsonBody>;

    /// Refuse a login from another origin (403) before its body is read.
    #[allow(clippy::result_large_err)]
    fn check_login(
        &self,
        _headers: &http::HeaderMap,
        _uri: &http::Uri,
    ) -> Result<(), Response<JsonBody>> {
        Ok(())
    }

    /// The refresh token of a refresh that carries it in a cookie, checked against forgery
    /// (403 when the check fails); `None` when there is none (the body has it).
    #[allow(clippy::result_large_err)]
    fn refresh_cookie(
        &self,
        _method: &http::Method,
        _headers: &http::HeaderMap,
        _uri: &http::Uri,
    ) -> Result<Option<String>, Response<JsonBody>> {
        Ok(None)
    }

    /// What ends the session on the client too, added to a logout's answer.
    fn end(&self, _res: &mut Response<JsonBody>) {}

    /// This mode with the composition root's settings: its public URL (the origin a browser
    /// names) and the sessions' lifetime.
    fn finish(
        &self,
        public_url: Option<&str>,
        session_lifetime: Duration,
    ) -> Option<Arc<dyn Answer>> {
        let _ = (public_url, session_lifetime);
        None
    }

    /// The check the composition root's layers mount for this mode.
    fn layer_check(&self) -> Option<Arc<dyn crate::auth::check::Mounted>> {
        None
    }
}

impl<A> LoginService<A> {
    /// A login service that checks credentials with `authenticator` and signs with `issuer`.
    #[must_use]
    pub fn new(authenticator: A, issuer: TokenIssuer) -> Self {
        Self {
            inner: Arc::new(Inner {
                authenticator,
                issuer,
            }),
            body_limit: DEFAULT_BODY_LIMIT,
            options: Options::default(),
        }
    }

    /// Limit login attempts per client address and failures per username (429 with
    /// `Retry-After`; a throttled attempt never runs the password check).
    #[must_use]
    pub fn throttle(mut self, throttle: LoginThrottle) -> Self {
        self.options.throttle = Some(throttle);
        self
    }

    /// Set the largest request body accepted (default 16 KiB); larger bodies get 413.
    #[must_use]
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

impl<A: Reissue> LoginService<A> {
    /// Open a session at each login: the access token carries its `sid` and the user's `gen`,
    /// and the response a `refresh_token` (see [`RefreshService`](super::RefreshService)). Only for users who can be
    /// [reissued](Reissue) a token on a refresh.
    /// The claims must have a string `sub`. When the store is unavailable the login gets 503.
    #[must_use]
    pub fn sessions(mut self, sessions: Sessions) -> Self {
        self.options.sessions = Some(sessions);
        self
    }
}

impl<A> Clone for LoginService<A> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            body_limit: self.body_limit,
            options: self.options.clone(),
        }
    }
}

impl<A> fmt::Debug for LoginService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginService")
            .field("authenticator", &std::any::type_name::<A>())
            .field("issuer", &self.inner.issuer)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// The response future of [`LoginService`] and the session services.
pub struct EndpointFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<JsonBody>, Infallible>> + Send>>,
}

impl EndpointFuture {
    pub(super) fn new(
        future: impl Future<Output = Result<Response<JsonBody>, Infallible>> + Send + 'static,
    ) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }

    pub(super) fn ready(response: Response<JsonBody>) -> Self {
        Self::new(std::future::ready(Ok(response)))
    }
}

impl Future for EndpointFuture {
    type Output = Result<Response<JsonBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for EndpointFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointFuture").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

impl<A, B> Service<Request<B>> for LoginService<A>
where
    A: Authenticate,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> EndpointFuture {
        let inner = Arc::clone(&self.inner);
        let limit = self.body_limit;
        let options = self.options.clone();
        EndpointFuture {
            inner: Box::pin(async move { Ok(inner.handle(req, limit, &options).await) }),
        }
    }
}

impl<A: Authenticate> Inner<A> {
    async fn handle<B>(
        &self,
        req: Request<B>,
        body_limit: usize,
        options: &Options,
    ) -> Response<JsonBody>
    where
        B: http_body::Body,
    {
        // Cookie mode: no login from another origin (login CSRF), whatever its body, before
        // anything is read or counted (a wrong method is still 405 first).
        if let Some(answer) = &options.answer
            && req.method() == http::Method::POST
            && let Err(res) = answer.check_login(req.headers(), req.uri())
        {
            crate::metrics::login(crate::metrics::LoginOutcome::Forbidden);
            return res;
        }
        let (parts, credentials) = match read_json::<Credentials, B>(
            req,
            body_limit,
            "expected a JSON object with string fields \"username\" and \"password\"",
        )
        .await
        {
            Ok(read) => read,
            Err(res) => {
                crate::metrics::login(crate::metrics::LoginOutcome::InvalidRequest);
                return res;
            }
        };
        if let Some(throttle) = &options.throttle {
            match throttle.attempt(&parts.headers, &parts.extensions).await {
                Ok(Throttle::Allowed) => {}
                Ok(Throttle::Limited { retry_after }) => {
                    return too_many(retry_after, crate::metrics::Limit::Address);
                }
                Err(e) => return login_unavailable(&e),
            }
        }
        // The proof is checked before the password (a bad one costs the user nothing) and
        // recorded only after it (a request with a wrong password writes no proof).
        let dpop = options.dpop.as_ref().filter(|_| options.answer.is_none());
        let proof = match Proof::check(dpop, &parts) {
            Ok(proof) => proof,
            Err(res) => {
                crate::metrics::login(crate::metrics::LoginOutcome::InvalidRequest);
                return res;
            }
        };
        let user_unit = match &options.throttle {
            // A unit per attempt, taken before the hash runs; only a wrong password keeps it.
            Some(throttle) => match throttle.take_user(&credentials.username).await {
                Ok(Throttle::Allowed) => Some(UserUnit {
                    throttle,
                    username: &credentials.username,
                }),
                Ok(Throttle::Limited { retry_after }) => {
                    return too_many(retry_after, crate::metrics::Limit::Username);
                }
                Err(e) => return login_unavailable(&e),
            },
            None => None,
        };
        let outcome = self
            .authenticator
            .authenticate(&credentials.username, &credentials.password)
            .await;
        if !matches!(outcome, Ok(None))
            && let Some(unit) = user_unit
        {
            unit.give_back().await;
        }
        match outcome {
            Ok(Some(claims)) => {
                if let Some(proof) = &proof
                    && let Err(res) = proof.record().await
                {
                    crate::metrics::login(crate::metrics::LoginOutcome::InvalidRequest);
                    return res;
                }
                let jkt = proof.as_ref().map(Proof::jkt);
                let Some(claims) = UserClaims::new(&claims) else {
                    return not_issued();
                };
                let session = match &options.sessions {
                    None => None,
                    Some(sessions) => {
                        let Some(sub) = claims.sub() else {
                            return not_issued();
                        };
                        match sessions.open_bound(sub, jkt).await {
                            Ok(session) => Some(session),
                            Err(e) => return login_unavailable(&e),
                        }
                    }
                };
                let added = SessionClaims::new(session.as_ref(), jkt, crate::time::unix_now());
                crate::metrics::login(crate::metrics::LoginOutcome::Success);
                match &options.answer {
                    None => issue_response(&self.issuer, claims, &added, session.as_ref()),
                    Some(answer) => answer.issue(&self.issuer, claims, added, session.as_ref()),
                }
            }
            Ok(None) => {
                crate::metrics::login(crate::metrics::LoginOutcome::InvalidCredentials);
                json_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "the username or password is wrong",
                )
            }
            Err(error) => {
                crate::metrics::login(crate::metrics::LoginOutcome::Unavailable);
                let (description, retry_after) = match error.downcast_ref::<Overloaded>() {
                    Some(busy) => (
                        "too many logins are being checked at once; try again shortly",
                        busy.retry_after,
                    ),
                    None => (
                        "the credentials could not be checked; try again later",
                        Duration::from_secs(1),
                    ),
                };
                unavailable(description, retry_after)
            }
        }
    }
}

/// The per-user unit a login attempt took: kept by a wrong password, given back otherwise.
struct UserUnit<'a> {
    throttle: &'a LoginThrottle,
    username: &'a str,
}

impl UserUnit<'_> {
    /// Best effort: a lost give-back only costs the user one unit.
    async fn give_back(self) {
        let _ = self.throttle.give_user(self.username).await;
    }
}

/// Sign `claims` and answer `200 {"access_token", "token_type", "expires_in"
/// [, "refresh_token"]}`, not to be cached; `token_type` is `DPoP` for a token bound to a key.
pub(super) fn issue_response(
    issuer: &TokenIssuer,
    claims: UserClaims,
    added: &SessionClaims<'_>,
    session: Option<&Session>,
) -> Response<JsonBody> {
    let Ok(token) = issuer.issue_claims(claims, Some(added)) else {
        return not_issued();
    };
    let token_type = if added.is_bound() { "DPoP" } else { "Bearer" };
    let mut body = serde_json::json!({
        "access_token": token.access_token(),
        "token_type": token_type,
        "expires_in": token.expires_in(),
    });
    if let Some(session) = session {
        body["refresh_token"] = session.refresh_token().into();
    }
    let mut res = Response::new(JsonBody::new(Bytes::from(body.to_string())));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// 503 with `Retry-After` (whole seconds, at least 1).
pub(super) fn unavailable(description: &'static str, retry_after: Duration) -> Response<JsonBody> {
    let mut res = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        description,
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    res
}

/// 503: the session store could not be reached.
pub(super) fn store_unavailable(error: &StoreError) -> Response<JsonBody> {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, "the session store is unavailable");
    unavailable(
        "the session store is unavailable; try again shortly",
        error.retry_after(),
    )
}

/// A login that could not reach the session store: counted, and 503.
fn login_unavailable(error: &StoreError) -> Response<JsonBody> {
    crate::metrics::login(crate::metrics::LoginOutcome::Unavailable);
    store_unavailable(error)
}

/// 429 with `Retry-After`, rounded up to whole seconds (at least 1); `limit` says which limit
/// (for the metrics).
fn too_many(retry_after: Duration, limit: crate::metrics::Limit) -> Response<JsonBody> {
    crate::metrics::login(crate::metrics::LoginOutcome::Throttled);
    crate::metrics::throttled(limit);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut res = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many login attempts; try again after the time in Retry-After",
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

pub(super) fn not_issued() -> Response<JsonBody> {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the token could not be issued; try again later",
    )
}

#[cfg(test)]
mod tests;
