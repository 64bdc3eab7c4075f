//! [`RefreshService`], [`LogoutService`] and [`LogoutAllService`]: the session endpoints
//! beside [`LoginService`](super::LoginService).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;
use tower_service::Service;

use super::claims::{SessionClaims, UserClaims};
use super::proof::{Dpop, Proof};
use super::service::{
    Answer, DEFAULT_BODY_LIMIT, EndpointFuture, issue_response, post_only, read_json,
    store_unavailable, unavailable,
};
use super::{Reissue, TokenIssuer};
use crate::body::{JsonBody, json_error};
use crate::claims::Claims;
use crate::session::{RefreshError, Sessions};

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// A tower service that trades a refresh token for a new access token and a new refresh token
/// in the same session (`Error = Infallible`). Mount it at any path (`/refresh` in the demos).
///
/// `POST` with `Content-Type: application/json` and `{"refresh_token": "…"}` →
/// `200 {"access_token", "token_type": "Bearer", "expires_in", "refresh_token"}`. The claims
/// of the new access token come from [`Reissue::claims_for`] (the user as they are now),
/// with the session's `sid` and `gen`.
///
/// Errors, in the OAuth 2.0 shapes (RFC 6749 §5.2): 400 `invalid_grant` for any refresh token
/// that is unknown, malformed, expired, revoked or reused (the answer does not say which), or
/// whose user is gone; 400 `invalid_request` for a malformed body; 405, 413 and 415 as for the
/// login; 503 with `Retry-After` when the store cannot be reached.
pub struct RefreshService<A> {
    inner: Arc<RefreshInner<A>>,
    body_limit: usize,
    dpop: Option<Dpop>,
    /// Cookie mode: the refresh token from its cookie, the answer in cookies.
    pub(super) answer: Option<Arc<dyn Answer>>,
}

struct RefreshInner<A> {
    authenticator: A,
    issuer: TokenIssuer,
    sessions: Sessions,
}

impl<A> RefreshService<A> {
    /// Refresh sessions of `sessions`, with user claims from `authenticator`, signing with
    /// `issuer` (the login's).
    #[must_use]
    pub fn new(authenticator: A, issuer: TokenIssuer, sessions: Sessions) -> Self {
        Self {
            inner: Arc::new(RefreshInner {
                authenticator,
                issuer,
                sessions,
            }),
            body_limit: DEFAULT_BODY_LIMIT,
            dpop: None,
            answer: None,
        }
    }

    /// DPoP (RFC 9449, feature `dpop`): a session bound to a key at login refreshes only with
    /// a valid proof from that key for this service's URL (else 400 `invalid_dpop_proof`), and
    /// its new access token is bound to it too (`"token_type": "DPoP"`). An unbound session
    /// refreshed with a proof gets an access token bound to the proof's key.
    #[cfg(feature = "dpop")]
    #[must_use]
    pub fn dpop(mut self, dpop: crate::dpop::Dpop) -> Self {
        self.dpop = Some(dpop);
        self
    }

    /// Set the largest request body accepted (default 16 KiB); larger bodies get 413.
    #[must_use]
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

impl<A> RefreshService<A> {
    /// Set (or clear) the DPoP binding: what [`dpop`](Self::dpop) does, for the composition root.
    pub(super) fn set_dpop(&mut self, dpop: Option<Dpop>) {
        self.dpop = dpop;
    }
}

impl<A: Reissue> RefreshService<A> {
    /// The rotation of this service for a refresh token read elsewhere (the OAuth token
    /// endpoint's form): the same checks, the same answers.
    pub(super) async fn rotate(
        &self,
        parts: &http::request::Parts,
        refresh_token: &str,
    ) -> Response<JsonBody> {
        self.inner
            .rotate(parts, refresh_token, self.dpop.as_ref(), None)
            .await
    }

    /// Cookie mode, for a refresh that names no token (the OAuth token endpoint's): the
    /// rotation of the refresh cookie, after the same forgery checks, answered with cookies;
    /// `None` without a refresh cookie (or outside cookie mode).
    pub(super) async fn rotate_cookie(
        &self,
        parts: &http::request::Parts,
    ) -> Option<Response<JsonBody>> {
        let answer = self.answer.as_deref()?;
        match answer.refresh_cookie(&parts.method, &parts.headers, &parts.uri) {
            Ok(Some(token)) => Some(
                self.inner
                    .rotate_cookie(parts, &token, self.dpop.as_ref(), answer)
                    .await,
            ),
            Ok(None) => None,
            Err(res) => Some(forbidden(res)),
        }
    }
}

impl<A> Clone for RefreshService<A> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            body_limit: self.body_limit,
            dpop: self.dpop.clone(),
            answer: self.answer.clone(),
        }
    }
}

impl<A> fmt::Debug for RefreshService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshService")
            .field("issuer", &self.inner.issuer)
            .field("sessions", &self.inner.sessions)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

fn wrong_key() -> Response<JsonBody> {
    json_error(
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
        "this refresh token is bound to a DPoP key: send a proof made with that key",
    )
}

fn invalid_grant() -> Response<JsonBody> {
    let mut res = json_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the refresh token is invalid, expired or revoked; log in again",
    );
    res.extensions_mut().insert(GrantRefused);
    res
}

/// Marks an `invalid_grant` answer: the refresh token is of no use any more.
#[derive(Clone, Copy, Debug)]
struct GrantRefused;

/// Cookie mode: a refresh the forgery checks refused (403), counted as such.
fn forbidden(res: Response<JsonBody>) -> Response<JsonBody> {
    crate::metrics::refresh(crate::metrics::RefreshOutcome::Forbidden);
    res
}

impl<A, B> Service<Request<B>> for RefreshService<A>
where
    A: Reissue,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
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
        let dpop = self.dpop.clone();
        let answer = self.answer.clone();
        EndpointFuture::new(async move {
            Ok(inner
                .handle(req, limit, dpop.as_ref(), answer.as_deref())
                .await)
        })
    }
}

impl<A: Reissue> RefreshInner<A> {
    async fn handle<B: http_body::Body>(
        &self,
        req: Request<B>,
        limit: usize,
        dpop: Option<&Dpop>,
        answer: Option<&dyn Answer>,
    ) -> Response<JsonBody> {
        // Cookie mode: a browser's refresh token comes in its cookie, checked against forgery
        // (the body, if any, is not read); without the cookie, the body as always.
        if let Some(answer) = answer {
            if req.method() != Method::POST {
                return post_only();
            }
            match answer.refresh_cookie(req.method(), req.headers(), req.uri()) {
                Ok(Some(token)) => {
                    let (parts, _body) = req.into_parts();
                    return self.rotate_cookie(&parts, &token, dpop, answer).await;
                }
                // No cookie and no body: a signed-out browser; nothing to refresh.
                Ok(None) if !req.headers().contains_key(http::header::CONTENT_TYPE) => {
                    return invalid_grant();
                }
                Ok(None) => {}
                Err(res) => return forbidden(res),
            }
        }
        let (parts, body) = match read_json::<RefreshRequest, B>(
            req,
            limit,
            "expected a JSON object with a string field \"refresh_token\"",
        )
        .await
        {
            Ok(read) => read,
            Err(res) => return res,
        };
        self.rotate(&parts, &body.refresh_token, dpop, answer).await
    }

    /// Cookie mode: rotate the refresh token of the refresh cookie. A refused one (the session
    /// ended, expired or was reused) is removed with the other cookies, so the browser stops
    /// sending a dead session.
    async fn rotate_cookie(
        &self,
        parts: &http::request::Parts,
        refresh_token: &str,
        dpop: Option<&Dpop>,
        answer: &dyn Answer,
    ) -> Response<JsonBody> {
        let mut res = self.rotate(parts, refresh_token, dpop, Some(answer)).await;
        if res.extensions().get::<GrantRefused>().is_some() {
            answer.end(&mut res);
        }
        res
    }

    /// Rotate `refresh_token`, with the request's DPoP proof when there is one: the new tokens,
    /// or the refusal (the same for this service and the OAuth token endpoint).
    async fn rotate(
        &self,
        parts: &http::request::Parts,
        refresh_token: &str,
        dpop: Option<&Dpop>,
        answer: Option<&dyn Answer>,
    ) -> Response<JsonBody> {
        let proof = match Proof::check(dpop, parts) {
            Ok(proof) => proof,
            Err(res) => return res,
        };
        let proof_jkt = proof.as_ref().map(Proof::jkt);
        // The proof is recorded only for a refresh token that would be honoured now, so a
        // request without one leaves nothing in the replay cache; a replayed proof then
        // changes nothing (the token is not rotated).
        let mut unrecorded = None;
        if let Some(proof) = &proof {
            match self.sessions.can_refresh(refresh_token, proof_jkt).await {
                Ok(true) => {
                    if let Err(res) = proof.record().await {
                        crate::metrics::refresh(crate::metrics::RefreshOutcome::InvalidDpopProof);
                        return res;
                    }
                }
                // Refused below by the rotation itself (which also spots reuse).
                Ok(false) => unrecorded = Some(proof),
                Err(e) => {
                    crate::metrics::refresh(crate::metrics::RefreshOutcome::Unavailable);
                    return store_unavailable(&e);
                }
            }
        }
        let session = match self.sessions.refresh_bound(refresh_token, proof_jkt).await {
            Ok(session) => session,
            Err(RefreshError::Invalid) => {
                crate::metrics::refresh(crate::metrics::RefreshOutcome::InvalidGrant);
                return invalid_grant();
            }
            Err(RefreshError::WrongKey) => {
                crate::metrics::refresh(crate::metrics::RefreshOutcome::InvalidDpopProof);
                return wrong_key();
            }
            Err(RefreshError::Unavailable(e)) => {
                crate::metrics::refresh(crate::metrics::RefreshOutcome::Unavailable);
                return store_unavailable(&e);
            }
        };
        // A store whose look-ahead disagreed with its rotation: the proof is still used once.
        if let Some(proof) = unrecorded
            && let Err(res) = proof.record().await
        {
            crate::metrics::refresh(crate::metrics::RefreshOutcome::InvalidDpopProof);
            return res;
        }
        let claims = match self.authenticator.claims_for(session.sub()).await {
            Ok(Some(claims)) => claims,
            // The user is gone: the session is of no use to anyone.
            Ok(None) => {
                let _ = self.sessions.end(session.sub(), session.sid()).await;
                return invalid_grant();
            }
            Err(_) => {
                return unavailable(
                    "the user could not be looked up; try again later",
                    std::time::Duration::from_secs(1),
                );
            }
        };
        let Some(claims) = UserClaims::new(&claims) else {
            return super::service::not_issued();
        };
        // The store refused a bound session without its key before rotating; this is the
        // same rule once more, so a store that forgot it cannot hand out a bearer token.
        let jkt = match (session.jkt(), proof_jkt) {
            (Some(bound), Some(proof)) if bound == proof => Some(bound),
            (Some(_), _) => {
                crate::metrics::refresh(crate::metrics::RefreshOutcome::InvalidDpopProof);
                return wrong_key();
            }
            (None, proof) => proof,
        };
        let added = SessionClaims::new(Some(&session), jkt, crate::time::unix_now());
        crate::metrics::refresh(crate::metrics::RefreshOutcome::Success);
        match answer {
            None => issue_response(&self.issuer, claims, &added, Some(&session)),
            Some(answer) => answer.issue(&self.issuer, claims, added, Some(&session)),
        }
    }
}

/// Which sessions a logout ends.
#[derive(Clone, Copy, Debug)]
enum Scope {
    /// The session of the presented access token.
    This,
    /// Every session of its user.
    All,
}

/// A tower service that ends the session of the access token that authenticated the request
/// (`Error = Infallible`): `POST` → 204. Its refresh token and every access token with its
/// `sid` are refused from then on, on every node sharing the store.
///
/// Mount it **behind** [`JwtAuthLayer`](crate::auth::JwtAuthLayer) with the same claims type `C`:
/// it reads the verified [`Claims<C>`] from the request extensions (a request without them
/// gets 401). A token without `sid` (not issued with a session) is revoked by its `jti`.
/// Other methods get 405; a store that cannot be reached, 503 with `Retry-After`.
pub struct LogoutService<C> {
    sessions: Sessions,
    scope: Scope,
    /// Cookie mode: the answer clears the browser's cookies too.
    pub(super) answer: Option<Arc<dyn Answer>>,
    _claims: PhantomData<fn() -> C>,
}

/// Like [`LogoutService`], but ends **every** session of the user ("log out everywhere"): the
/// user's generation goes up, so all their refresh tokens and access tokens are refused on
/// every node, while a login right after (even within the same second) works.
pub struct LogoutAllService<C> {
    pub(super) inner: LogoutService<C>,
}

impl<C> LogoutService<C> {
    /// End sessions of `sessions`.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            scope: Scope::This,
            answer: None,
            _claims: PhantomData,
        }
    }
}

impl<C> LogoutAllService<C> {
    /// End sessions of `sessions`.
    #[must_use]
    pub fn new(sessions: Sessions) -> Self {
        Self {
            inner: LogoutService {
                sessions,
                scope: Scope::All,
                answer: None,
                _claims: PhantomData,
            },
        }
    }
}

impl<C> Clone for LogoutService<C> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            scope: self.scope,
            answer: self.answer.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> Clone for LogoutAllService<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C> fmt::Debug for LogoutService<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutService")
            .field("sessions", &self.sessions)
            .field("scope", &self.scope)
            .finish()
    }
}

impl<C> fmt::Debug for LogoutAllService<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<C, B> Service<Request<B>> for LogoutService<C>
where
    C: Send + Sync + 'static,
{
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> EndpointFuture {
        if req.method() != Method::POST {
            return EndpointFuture::ready(post_only());
        }
        let Some(claims) = req.extensions().get::<Claims<C>>() else {
            let mut res = json_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "send the access token of the session to end",
            );
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return EndpointFuture::ready(res);
        };
        let registered = claims.registered();
        let (sub, sid, jti) = (
            registered.sub.clone(),
            registered.sid.clone(),
            registered.jti.clone(),
        );
        let sessions = self.sessions.clone();
        let scope = self.scope;
        let answer = self.answer.clone();
        EndpointFuture::new(async move {
            let done = match (scope, sub, sid, jti) {
                (Scope::This, Some(sub), Some(sid), _) => sessions.end(&sub, &sid).await,
                (Scope::This, _, None, Some(jti)) => sessions.revoke_token(&jti).await,
                (Scope::All, Some(sub), _, _) => sessions.end_all(&sub).await,
                _ => {
                    return Ok(json_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the access token names no session, user or token id to revoke",
                    ));
                }
            };
            Ok(match done {
                Ok(()) => {
                    let mut res = Response::new(JsonBody::default());
                    *res.status_mut() = StatusCode::NO_CONTENT;
                    res.headers_mut()
                        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    if let Some(answer) = &answer {
                        answer.end(&mut res);
                    }
                    res
                }
                Err(e) => store_unavailable(&e),
            })
        })
    }
}

impl<C, B> Service<Request<B>> for LogoutAllService<C>
where
    C: Send + Sync + 'static,
{
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: Request<B>) -> EndpointFuture {
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests;
