use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use super::JwtAuth;
use super::check::{Check, Mounted, User};
use super::pipeline::Pipeline;
use crate::cache::CacheSettings;
use crate::rejection::DefaultOnRejection;
use crate::token::TokenSource;
use crate::verifier::Verifier;

/// The default mode of [`JwtAuth`]: a request may wait, for the key source to refresh when a
/// token names a key that is not in memory (a remote JWK Set after a rotation), or for a shared
/// store to answer a DPoP replay check. The middleware then needs an inner service that is
/// `Clone`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MayWait;

/// The mode set by [`JwtAuthLayer::never_wait`]: verification is always synchronous (a token
/// whose key is not in memory is rejected at once, a remote key set still refreshing in the
/// background; a DPoP replay check that would have to wait for a shared store answers 503), so
/// the middleware needs nothing of the inner service beyond `Service`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverWait;

/// Applies [`JwtAuth`] to a service: verifies bearer tokens and inserts
/// [`Claims<C>`](crate::claims::Claims) into the request extensions.
///
/// `C` is your claims type (`serde::de::DeserializeOwned`); `R` builds rejections (see
/// [`OnRejection`](crate::OnRejection)); `M` is [`MayWait`] or [`NeverWait`]. Cloning is
/// cheap.
///
/// See the [module docs](crate::auth) for an example.
#[must_use]
pub struct JwtAuthLayer<C, R = DefaultOnRejection, M = MayWait> {
    auth: Pipeline<C>,
    on_rejection: R,
    _claims: PhantomData<fn() -> (C, M)>,
}

impl<C> JwtAuthLayer<C> {
    /// A layer that verifies with `verifier`, rejects with [`DefaultOnRejection`] and
    /// remembers verified tokens in a [`CacheSettings`] with the default bounds.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            auth: Pipeline::new(verifier),
            on_rejection: DefaultOnRejection::new(),
            _claims: PhantomData,
        }
    }
}

impl<C, R> JwtAuthLayer<C, R, MayWait> {
    /// Never wait (for a key refresh, or a shared replay store): verification is always
    /// synchronous, and the middleware asks nothing of the inner service beyond `Service` (not
    /// `Clone`: a service holding an `Rc`, say, with `!Send` futures). A token whose key is not
    /// in memory is rejected at once with `unknown_key`; a remote key set still refreshes in
    /// the background. Static keys and a [`KeyRing`](crate::keys::KeyRing) never need a
    /// refresh anyway; a DPoP replay check on a shared store answers 503 (use the in-memory
    /// replay cache with this mode).
    pub fn never_wait(mut self) -> JwtAuthLayer<C, R, NeverWait> {
        self.auth.set_never_wait();
        JwtAuthLayer {
            auth: self.auth,
            on_rejection: self.on_rejection,
            _claims: PhantomData,
        }
    }
}

impl<C, M> JwtAuthLayer<C, DefaultOnRejection, M> {
    /// Name this resource's RFC 9728 metadata in every 401 and 403 challenge
    /// (`resource_metadata="<url>"`); see [`DefaultOnRejection::resource_metadata`].
    ///
    /// # Errors
    ///
    /// When `url` cannot be put in a header parameter.
    pub fn resource_metadata(mut self, url: &str) -> Result<Self, crate::error::ConfigError> {
        self.on_rejection = self.on_rejection.resource_metadata(url)?;
        Ok(self)
    }
}

impl<C, M> JwtAuthLayer<C, crate::rejection::JsonOnRejection, M> {
    /// As the same method with the default rejection.
    ///
    /// # Errors
    ///
    /// When `url` cannot be put in a header parameter.
    pub fn resource_metadata(mut self, url: &str) -> Result<Self, crate::error::ConfigError> {
        self.on_rejection = self.on_rejection.resource_metadata(url)?;
        Ok(self)
    }
}

impl<C, R, M> JwtAuthLayer<C, R, M> {
    /// Replace the rejection hook (a closure or any [`OnRejection`](crate::OnRejection)).
    pub fn on_rejection<R2>(self, on_rejection: R2) -> JwtAuthLayer<C, R2, M> {
        JwtAuthLayer {
            auth: self.auth,
            on_rejection,
            _claims: PhantomData,
        }
    }

    /// Configure the verified-token cache ([`CacheSettings::disabled`] turns it off). See
    /// [`CacheSettings`] for what it does and why it is safe.
    pub fn token_cache(mut self, cache: CacheSettings) -> Self {
        self.auth.set_cache(cache);
        self
    }

    /// Where to look for the token, in order (default: only `Authorization: Bearer`). See
    /// [`TokenSource`] for the choices and for how conflicting credentials are treated.
    ///
    /// An empty list keeps the default.
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        self.auth.set_sources(sources.into_iter().collect());
        self
    }

    /// Optional authentication: a request **without** a token reaches the inner service without
    /// [`Claims`](crate::claims::Claims) in its extensions; a request with a token that is present but
    /// invalid is still rejected.
    pub fn optional(mut self) -> Self {
        self.auth.set_optional();
        self
    }

    /// Let CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) through
    /// unauthenticated, so a CORS layer inside this one can answer them. Browsers never send
    /// credentials on a preflight.
    pub fn allow_cors_preflight(mut self) -> Self {
        self.auth.set_cors_preflight();
        self
    }

    /// Let requests for `path` through without a token, and without
    /// [`Claims`](crate::claims::Claims) (a token they carry is not looked at): an exact path,
    /// or every path under it when it ends with `/`. `"/grpc.health.v1.Health/"` leaves the
    /// gRPC health service open to probes while every other service of the server needs a
    /// token. Under a prefix, a path with an empty, `.` or `..` segment or a `%` is not exempt
    /// (a router that normalises it might route it elsewhere). May be called several times.
    pub fn exempt(mut self, path: &str) -> Self {
        self.auth.add_exempt(path);
        self
    }

    /// Accept DPoP-bound tokens (RFC 9449, feature `dpop`): `Authorization: DPoP <token>` with
    /// a fresh proof in the `DPoP` header, checked against the request and the token's
    /// `cnf.jkt`. A bound token sent as `Bearer` is refused, as is an unbound token sent as
    /// `DPoP`; with [`Dpop::required`](crate::dpop::Dpop::required), every bearer token is.
    /// Rejections then carry a `WWW-Authenticate: DPoP algs="…"` challenge (beside the
    /// `Bearer` one while bearer tokens are accepted). See the [`dpop`](crate::dpop) module.
    ///
    /// Without this, a token bound to a key (`cnf.jkt`) is refused as well: it is never taken
    /// as a bearer token.
    #[cfg(feature = "dpop")]
    pub fn dpop(self, dpop: crate::dpop::Dpop) -> Self {
        self.mount(Arc::new(dpop))
    }

    /// Configure the CSRF checks that apply to tokens read from a cookie (feature `cookie`;
    /// always on for cookie tokens, with [`CsrfProtection::new`](crate::csrf::CsrfProtection::new)
    /// by default). See the [`csrf`](crate::csrf) module.
    #[cfg(feature = "cookie")]
    pub fn csrf(self, csrf: crate::csrf::CsrfProtection) -> Self {
        self.mount(Arc::new(csrf))
    }

    /// Refuse revoked tokens (by session, user generation or `jti`) on every request, cached
    /// or not, at the cost of a hash lookup. See the [`revocation`](crate::revocation) module.
    pub fn revocations(self, revocations: crate::revocation::Revocations) -> Self {
        self.watch(crate::revocation::Watched {
            list: revocations,
            feed: None,
        })
    }

    /// Check a revocation list, keeping its feed running (the composition roots).
    pub(crate) fn watch(mut self, watched: crate::revocation::Watched) -> Self {
        self.auth.set_revocations(watched);
        self
    }

    /// Run `check` on every request whose token is good, cached or not, after the crate's own
    /// checks (revocation, CSRF, DPoP) and in the order mounted. See [`Check`].
    pub fn check(self, check: impl Check) -> Self {
        self.mount(Arc::new(User(check)))
    }

    /// Mount one of the crate's own checks (the composition root's revocations and DPoP).
    pub(crate) fn mount(mut self, check: Arc<dyn Mounted>) -> Self {
        self.auth.set_check(check);
        self
    }

    /// The verifier this layer uses.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        self.auth.verifier()
    }
}

impl<S, C, R: Clone, M> Layer<S> for JwtAuthLayer<C, R, M> {
    type Service = JwtAuth<S, C, R, M>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::from_parts(inner, self.auth.clone(), self.on_rejection.clone())
    }
}

impl<C, R: Clone, M> Clone for JwtAuthLayer<C, R, M> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R, M> fmt::Debug for JwtAuthLayer<C, R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("pipeline", &self.auth)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .field("mode", &std::any::type_name::<M>())
            .finish()
    }
}
