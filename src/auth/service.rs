use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{JwtAuthLayer, MayWait, NeverWait};
use super::pipeline::{Outcome, Pipeline, Wait};
use super::shared::{Shared, accept};
use crate::error::AuthErrorKind;
use crate::rejection::{DefaultOnRejection, OnRejection};
use crate::verifier::Verifier;

/// Middleware that authenticates requests with a JWT bearer token.
///
/// Built by [`JwtAuthLayer`]. With keys in memory (a static set, a [`KeyRing`](crate::keys::KeyRing),
/// a remote set that knows the token's key), verification is synchronous: `poll_ready` forwards
/// to the inner service and `call` uses that same, ready instance. Only when a key source must
/// refresh first does `call` move the ready instance into the response future and keep a clone
/// in its place: that is why the default mode ([`MayWait`]) needs `S: Clone`, as tower-http's
/// asynchronous authorization does. In the [`NeverWait`] mode
/// ([`JwtAuthLayer::never_wait`]) verification never waits, and nothing beyond `Service` is
/// asked of the inner service.
///
/// Neither mode asks for `Send` or `'static` on the inner service, its futures or the bodies.
///
/// See the [module docs](crate::auth) for an example.
pub struct JwtAuth<S, C, R = DefaultOnRejection, M = MayWait> {
    inner: S,
    /// Everything but the inner service, behind one `Arc`: routers such as axum's clone the
    /// middleware for every request, so a clone is one reference-count increment.
    shared: Arc<Shared<C, R>>,
    _mode: PhantomData<fn() -> M>,
}

impl<S, C> JwtAuth<S, C> {
    /// Wrap `inner`, verifying with `verifier` and rejecting with [`DefaultOnRejection`].
    pub fn new(inner: S, verifier: Verifier) -> Self {
        Self::from_parts(inner, Pipeline::new(verifier), DefaultOnRejection::new())
    }

    /// A [`JwtAuthLayer`] for this middleware.
    pub fn layer(verifier: Verifier) -> JwtAuthLayer<C> {
        JwtAuthLayer::new(verifier)
    }
}

impl<S, C, R, M> JwtAuth<S, C, R, M> {
    pub(super) fn from_parts(inner: S, auth: Pipeline<C>, on_rejection: R) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared { auth, on_rejection }),
            _mode: PhantomData,
        }
    }

    define_inner_service_accessors!();

    /// Authenticate `req` and answer: call the inner service with the claims set (or cleared),
    /// reject without calling it, or hand what the request waits for to `pending` (the mode's
    /// way of waiting).
    #[inline(always)]
    fn answer<ReqBody, ResBody>(
        &mut self,
        req: Request<ReqBody>,
        pending: impl FnOnce(&mut Self, Wait<C>, Request<ReqBody>) -> ResponseFuture<S, ReqBody, C, R>,
    ) -> ResponseFuture<S, ReqBody, C, R>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        C: DeserializeOwned + Send + Sync + 'static,
        R: OnRejection<ResBody>,
    {
        match self
            .shared
            .auth
            .authenticate(req.method(), req.headers(), req.uri())
        {
            Outcome::Pass(claims) => ResponseFuture::called(accept(&mut self.inner, req, claims)),
            // The inner service is not called; whatever its `poll_ready` reserved stays with it
            // until its next call or drop, as the `Service` contract allows.
            Outcome::Reject(error) => ResponseFuture::rejected(self.shared.reject(&error, req)),
            Outcome::Wait(wait) => pending(self, wait, req),
        }
    }
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R, MayWait>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.answer(req, |this, wait, req| {
            // The inner service is called later, from the future: move the instance that
            // `poll_ready` made ready into it and leave a clone in its place. See "Be careful
            // when cloning inner services" in the `tower::Service` docs
            // (https://docs.rs/tower/latest/tower/trait.Service.html).
            let clone = this.inner.clone();
            let ready = std::mem::replace(&mut this.inner, clone);
            ResponseFuture::waiting(wait, ready, req, Arc::clone(&this.shared))
        })
    }
}

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R, NeverWait>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The layer's pipeline never waits in this mode: a token whose key is not in memory
        // is refused at once, and a check that would have to wait (a DPoP replay cache asking a
        // shared store) refuses by itself (use one that answers at once, such as
        // `MemoryReplayCache`, with `never_wait`).
        // (So nothing waits here; should it, it is refused as something unavailable.)
        self.answer(req, |this, _wait, req| {
            let error = AuthErrorKind::KeysUnavailable.into();
            ResponseFuture::rejected(this.shared.reject(&error, req))
        })
    }
}

impl<S: Clone, C, R, M> Clone for JwtAuth<S, C, R, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            _mode: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C, R, M> fmt::Debug for JwtAuth<S, C, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("pipeline", &self.shared.auth)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .field("mode", &std::any::type_name::<M>())
            .finish()
    }
}

#[cfg(test)]
mod tests;
