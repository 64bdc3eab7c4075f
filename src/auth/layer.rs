use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use super::JwtAuth;
use crate::cache::{Cache, TokenCache};
use crate::rejection::DefaultOnRejection;
use crate::token::TokenSource;
use crate::validation::Verifier;

/// Per-layer settings shared by every service the layer makes.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) sources: Vec<TokenSource>,
    pub(crate) optional: bool,
    pub(crate) cors_preflight: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            sources: vec![TokenSource::bearer()],
            optional: false,
            cors_preflight: false,
        }
    }
}

/// Applies [`JwtAuth`] to a service: verifies bearer tokens and inserts
/// [`Claims<C>`](crate::Claims) into the request extensions.
///
/// `C` is your claims type (`serde::de::DeserializeOwned`); `R` builds rejections (see
/// [`OnRejection`](crate::OnRejection)). Cloning is cheap.
///
/// See the [module docs](crate::auth) for an example.
#[must_use]
pub struct JwtAuthLayer<C, R = DefaultOnRejection> {
    verifier: Verifier,
    settings: Arc<Settings>,
    cache: Option<Arc<Cache<C>>>,
    on_rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<C> JwtAuthLayer<C> {
    /// A layer that verifies with `verifier`, rejects with [`DefaultOnRejection`] and
    /// remembers verified tokens in a [`TokenCache`] with the default bounds.
    pub fn new(verifier: Verifier) -> Self {
        let cache = TokenCache::new().build(verifier.leeway()).map(Arc::new);
        Self {
            verifier,
            settings: Arc::default(),
            cache,
            on_rejection: DefaultOnRejection::new(),
            _claims: PhantomData,
        }
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// Replace the rejection hook (a closure or any [`OnRejection`](crate::OnRejection)).
    pub fn on_rejection<R2>(self, on_rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            verifier: self.verifier,
            settings: self.settings,
            cache: self.cache,
            on_rejection,
            _claims: PhantomData,
        }
    }

    /// Configure the verified-token cache ([`TokenCache::disabled`] turns it off). See
    /// [`TokenCache`] for what it does and why it is safe.
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.cache = cache.build(self.verifier.leeway()).map(Arc::new);
        self
    }

    /// Where to look for the token, in order (default: only `Authorization: Bearer`). See
    /// [`TokenSource`] for the choices and for how conflicting credentials are treated.
    ///
    /// An empty list keeps the default.
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        let sources: Vec<_> = sources.into_iter().collect();
        if !sources.is_empty() {
            Arc::make_mut(&mut self.settings).sources = sources;
        }
        self
    }

    /// Optional authentication: a request **without** a token reaches the inner service without
    /// [`Claims`](crate::Claims) in its extensions; a request with a token that is present but
    /// invalid is still rejected.
    pub fn optional(mut self) -> Self {
        Arc::make_mut(&mut self.settings).optional = true;
        self
    }

    /// Let CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) through
    /// unauthenticated, so a CORS layer inside this one can answer them. Browsers never send
    /// credentials on a preflight.
    pub fn allow_cors_preflight(mut self) -> Self {
        Arc::make_mut(&mut self.settings).cors_preflight = true;
        self
    }

    /// The verifier this layer uses.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::from_parts(
            inner,
            self.verifier.clone(),
            Arc::clone(&self.settings),
            self.cache.clone(),
            self.on_rejection.clone(),
        )
    }
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            settings: Arc::clone(&self.settings),
            cache: self.cache.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &self.verifier)
            .field("settings", &self.settings)
            .field("token_cache", &self.cache.is_some())
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .finish()
    }
}
