//! [`AuthServer`]: the issuing side built once, handing out its parts already wired.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::oauth::{Clients, Endpoints, NoClients};
use super::proof::Dpop;
use super::service::Answer;
use super::{
    DEFAULT_TTL, LoginService, LogoutAllService, LogoutService, RefreshService, Reissue,
    TokenIssuer,
};
use crate::auth::JwtAuthLayer;
use crate::auth::check::Mounted;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::jwks::JwksService;
use crate::keys::{KeyRing, SigningKey};
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::rejection::DefaultOnRejection;
use crate::revocation::Watched;
use crate::session::{
    DEFAULT_PER_ADDRESS, DEFAULT_PER_USER, LoginThrottle, MemoryStore, OneTimeStore, Rate,
    SessionStore, Sessions, ThrottleStore, TrustedProxies,
};
use crate::token::TokenSource;
use crate::validation::Validation;
use crate::verifier::Verifier;

mod oauth;
#[cfg(feature = "axum")]
mod router;

pub use oauth::AUTHORIZATION_SERVER_SUFFIX;

/// The default leeway for clock skew: 60 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The default bound on how long verification goes on from a revocation list that a shared
/// store's feed cannot refresh: 60 s.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(60);

/// The issuing side in one value: users, keys, sessions, throttling and (with their features)
/// DPoP and cookie mode, built once; the verifying layer and every endpoint service handed out
/// already connected. Cheap to clone.
///
/// Built by hand, the parts of a login server can be wired half right and still compile: a
/// layer that never learns about logouts, a revocation feed dropped on the floor, an access
/// window that no longer matches the token lifetime. The `AuthServer` owns those links: the
/// layers it hands out check its revocations (and keep its store's revocation feed running for
/// as long as one of them lives), the session services share its store, and what follows from
/// the settings (the access window: TTL plus leeway) is derived, not repeated.
///
/// ```
/// use tower_jwt_auth::login::{AuthServer, InMemoryUsers};
/// use tower_jwt_auth::{Algorithm, SigningKey};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct User {
///     sub: String,
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let users = InMemoryUsers::new()?.with_user("alice", "correct horse", User { sub: "1".into() })?;
/// let auth = AuthServer::builder(users, SigningKey::generate_secret(Algorithm::HS256)?)
///     .issuer("https://auth.example")
///     .build()
///     .await?;
/// // The verifying layer, wired to the sessions' revocations: a logout is seen at once.
/// let layer = auth.layer();
/// // The endpoints, to mount where you like (or, with the `axum` feature, `auth.router()`).
/// let (login, refresh, logout) = (auth.login(), auth.refresh(), auth.logout());
/// # let _ = (layer, login, refresh, logout);
/// # Ok(())
/// # }
/// ```
pub struct AuthServer<U> {
    inner: Arc<Inner<U>>,
}

struct Inner<U> {
    users: Arc<U>,
    issuer: TokenIssuer,
    sessions: Sessions,
    throttle: Option<LoginThrottle>,
    verifier: Verifier,
    /// The sessions' revocations, with the feed that keeps them current.
    revocations: Watched,
    dpop: Option<Dpop>,
    /// The features' checks for the layers (DPoP).
    checks: Vec<Arc<dyn Mounted>>,
    answer: Option<Arc<dyn Answer>>,
    sources: Vec<TokenSource>,
    on_rejection: DefaultOnRejection,
    public_url: Option<String>,
    /// The public URL, else the local one: where the endpoints are.
    base_url: Option<String>,
    iss: Option<String>,
    /// The OAuth 2 endpoints' shared state.
    endpoints: Arc<Endpoints>,
}

/// Builds an [`AuthServer`]; see [`AuthServer::builder`].
#[must_use = "an AuthServerBuilder does nothing until `build` is awaited"]
pub struct AuthServerBuilder<U> {
    users: U,
    ring: KeyRing,
    iss: Option<String>,
    aud: Option<String>,
    ttl: Duration,
    leeway: Duration,
    sessions: Option<Sessions>,
    throttle_store: Option<Arc<dyn ThrottleStore>>,
    one_time: Option<Arc<dyn OneTimeStore>>,
    lifetime: Option<Duration>,
    idle: Option<Duration>,
    grace: Option<Duration>,
    per_user: Option<Rate>,
    per_address: Option<Rate>,
    proxies: TrustedProxies,
    max_staleness: Duration,
    public_url: Option<String>,
    local_url: Option<String>,
    clients: Option<Arc<dyn Clients>>,
    pub(in crate::login) dpop: Option<Dpop>,
    pub(in crate::login) answer: Option<Arc<dyn Answer>>,
    pub(in crate::login) sources: Vec<TokenSource>,
}

impl<U: Reissue> AuthServer<U> {
    /// A builder for users `users` (who log in, and whose tokens are issued again on a
    /// refresh: [`Reissue`]) and tokens signed with `key`.
    pub fn builder(users: U, key: SigningKey) -> AuthServerBuilder<U> {
        Self::builder_with_key_ring(users, KeyRing::new(key))
    }

    /// As [`builder`](Self::builder), signing with the current key of `ring` (which you rotate)
    /// and verifying with every key it publishes.
    pub fn builder_with_key_ring(users: U, ring: KeyRing) -> AuthServerBuilder<U> {
        AuthServerBuilder {
            users,
            ring,
            iss: None,
            aud: None,
            ttl: DEFAULT_TTL,
            leeway: DEFAULT_LEEWAY,
            sessions: None,
            throttle_store: None,
            lifetime: None,
            idle: None,
            grace: None,
            per_user: Some(DEFAULT_PER_USER),
            per_address: Some(DEFAULT_PER_ADDRESS),
            proxies: TrustedProxies::none(),
            max_staleness: DEFAULT_MAX_STALENESS,
            public_url: None,
            local_url: None,
            clients: None,
            dpop: None,
            one_time: None,
            answer: None,
            sources: Vec::new(),
        }
    }
}

impl<U: Reissue> AuthServerBuilder<U> {
    /// `iss` of the issued tokens, required on verification (default: none).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.iss = Some(issuer.into());
        self
    }

    /// `aud` of the issued tokens, required on verification (default: none).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.aud = Some(audience.into());
        self
    }

    /// Access-token lifetime (default 15 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Clock-skew leeway of verification (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Keep sessions, shared revocations, the login limiters and (with `dpop`) the proofs'
    /// one-time ids in `store` (default: one [`MemoryStore`](crate::session::MemoryStore), this
    /// process's memory). With a store several nodes share (Redis), [`build`](Self::build)
    /// starts its revocation feed, the nodes count login attempts together, and a DPoP proof
    /// accepted by one node is refused by all.
    pub fn store<S: SessionStore + ThrottleStore + OneTimeStore>(mut self, store: S) -> Self {
        let store = Arc::new(store);
        self.one_time = Some(Arc::clone(&store) as Arc<dyn OneTimeStore>);
        self.session_store(Arc::clone(&store)).throttle_store(store)
    }

    /// Keep sessions and shared revocations in `store`, for a store that has no limiters
    /// (the login limits then count in [`throttle_store`](Self::throttle_store), by default in
    /// this process's memory). [`store`](Self::store) sets both.
    pub fn session_store(mut self, store: impl SessionStore) -> Self {
        self.sessions = Some(Sessions::new(store));
        self
    }

    /// Count login attempts in `store` (default: the [`store`](Self::store), else this
    /// process's memory).
    pub fn throttle_store(mut self, store: impl ThrottleStore) -> Self {
        self.throttle_store = Some(Arc::new(store));
        self
    }

    /// Absolute lifetime of a session (default 30 days).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// How long a session may go unused (default 7 days).
    pub fn session_idle_lifetime(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// How long the predecessor of a refresh token still gets the same successor (default
    /// 10 s; zero: none).
    pub fn refresh_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Login limits: failed logins per username and attempts per client address (defaults
    /// [`DEFAULT_PER_USER`] and [`DEFAULT_PER_ADDRESS`]; `None` turns one off). The client
    /// address is the connection's peer: axum's `ConnectInfo` (feature `axum`, with
    /// `into_make_service_with_connect_info`) or a
    /// [`PeerAddr`](crate::session::PeerAddr) extension you insert; a login without either
    /// is not limited per address, and says so once in a `tracing` warning.
    pub fn login_limits(mut self, per_user: Option<Rate>, per_address: Option<Rate>) -> Self {
        self.per_user = per_user;
        self.per_address = per_address;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` names the client (default: none).
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// How long verification goes on from a revocation list a shared store's feed cannot
    /// refresh, before it answers 503 (default 60 s).
    pub fn revocation_max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// The server's own base URL: the RFC 9728 resource identifier (its metadata is served,
    /// and named in every challenge), and where the OpenID configuration says the keys are.
    /// The issuer, unless [`issuer`](Self::issuer) names another.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Build: open the store's revocation feed (a shared store) and wire everything.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::StoreUnavailable`] when a shared store's revocations cannot be
    /// loaded; [`ConfigErrorKind::InvalidHeaderValue`] when the public URL cannot go in a
    /// challenge; [`ConfigErrorKind::NoKeys`] and others when the keys cannot verify.
    pub async fn build(self) -> Result<AuthServer<U>, ConfigError> {
        let iss = self.iss.or_else(|| self.public_url.clone());
        // The issuer identifier: named in clients' tokens (`iss`, and `aud` without an
        // audience) and in the metadata, but required of tokens only when configured.
        let identifier = iss.clone().or_else(|| self.local_url.clone());
        let base_url = self.public_url.clone().or(self.local_url);
        let mut validation = Validation::new().leeway(self.leeway);
        let mut issuer = TokenIssuer::from_key_ring(self.ring.clone()).ttl(self.ttl);
        let mut client_issuer = issuer.clone();
        if let Some(iss) = &iss {
            validation = validation.issuer(iss);
            issuer = issuer.issuer(iss);
        }
        if let Some(identifier) = &identifier {
            client_issuer = client_issuer.issuer(identifier);
        }
        if let Some(aud) = &self.aud {
            validation = validation.audience(aud);
            issuer = issuer.audience(aud);
            client_issuer = client_issuer.audience(aud);
        } else if let Some(identifier) = &identifier {
            // Clients' tokens name the issuer as their audience; user tokens name none.
            validation = validation.audience(identifier).audience_optional();
            client_issuer = client_issuer.audience(identifier);
        }
        let verifier = Verifier::from_source(self.ring, validation)?;

        let memory = Arc::new(MemoryStore::new());
        let mut sessions = self
            .sessions
            .unwrap_or_else(|| Sessions::new(Arc::clone(&memory)));
        let throttle_store = self.throttle_store.unwrap_or(memory);
        if let Some(lifetime) = self.lifetime {
            sessions = sessions.lifetime(lifetime);
        }
        if let Some(idle) = self.idle {
            sessions = sessions.idle_lifetime(idle);
        }
        if let Some(grace) = self.grace {
            sessions = sessions.grace(grace);
        }
        // A revocation must outlive every token it could match: the lifetime and the leeway.
        let sessions = sessions.access_window(self.ttl + self.leeway);
        let feed = sessions
            .store()
            .follow_revocations(sessions.revocations(), self.max_staleness)
            .await
            .map_err(|e| {
                ConfigError::with_source(
                    ConfigErrorKind::StoreUnavailable,
                    "the session store's revocations could not be loaded",
                    e,
                )
            })?;
        let throttle = (self.per_user.is_some() || self.per_address.is_some()).then(|| {
            LoginThrottle::new(throttle_store)
                .per_user(self.per_user)
                .per_address(self.per_address)
                .trusted_proxies(self.proxies)
        });
        // RFC 9728: every challenge names the metadata.
        let (dpop, mut checks) = super::proof::finish(self.dpop, self.one_time);
        // Cookie mode: the browser's origin is the public URL's, and its cookies live as long
        // as the sessions; the layers check forgery the same way the endpoints do.
        let answer = self.answer.map(|answer| {
            answer
                .finish(self.public_url.as_deref(), sessions.current_lifetime())
                .unwrap_or(answer)
        });
        checks.extend(answer.as_ref().and_then(|a| a.layer_check()));
        let metadata = self.public_url.clone().map(ProtectedResourceMetadata::new);
        let on_rejection = ProtectedResourceMetadata::challenge_of(metadata.as_ref())?;
        let revocations = Watched {
            list: sessions.revocations().clone(),
            feed: feed.map(Arc::new),
        };
        let endpoints = Arc::new(Endpoints {
            clients: self.clients.unwrap_or_else(|| Arc::new(NoClients)),
            client_issuer,
            sessions: sessions.clone(),
            revocations: sessions.revocations().clone(),
            verifier: verifier.clone(),
            throttle: throttle.clone(),
            dpop: dpop.clone(),
            identifier,
        });
        Ok(AuthServer {
            inner: Arc::new(Inner {
                users: Arc::new(self.users),
                issuer,
                sessions,
                throttle,
                verifier,
                revocations,
                dpop,
                checks,
                answer,
                sources: self.sources,
                on_rejection,
                public_url: self.public_url,
                base_url,
                iss,
                endpoints,
            }),
        })
    }
}

impl<U: Reissue> AuthServer<U> {
    /// The verifying layer for the issued claims type, wired to this server's revocations
    /// (and DPoP, cookies and resource metadata when set).
    pub fn layer(&self) -> JwtAuthLayer<U::Claims>
    where
        U::Claims: DeserializeOwned,
    {
        self.layer_for()
    }

    /// The verifying layer, decoding the claims as `C` (a view of the issued claims).
    pub fn layer_for<C>(&self) -> JwtAuthLayer<C> {
        let inner = &self.inner;
        let mut layer = JwtAuthLayer::new(inner.verifier.clone())
            .watch(inner.revocations.clone())
            .token_sources(inner.sources.iter().cloned());
        for check in &inner.checks {
            layer = layer.mount(Arc::clone(check));
        }
        layer.on_rejection(inner.on_rejection.clone())
    }

    /// `POST` credentials, get tokens: throttled, opening a session whose refresh token the
    /// [`refresh`](Self::refresh) service honours.
    #[must_use]
    pub fn login(&self) -> LoginService<Arc<U>> {
        let inner = &self.inner;
        let mut login = LoginService::new(Arc::clone(&inner.users), inner.issuer.clone())
            .sessions(inner.sessions.clone());
        if let Some(throttle) = &inner.throttle {
            login = login.throttle(throttle.clone());
        }
        login.options.dpop.clone_from(&inner.dpop);
        login.options.answer.clone_from(&inner.answer);
        login
    }

    /// `POST` a refresh token, get new tokens (rotation, reuse detection, DPoP binding).
    #[must_use]
    pub fn refresh(&self) -> RefreshService<Arc<U>> {
        let inner = &self.inner;
        let mut refresh = RefreshService::new(
            Arc::clone(&inner.users),
            inner.issuer.clone(),
            inner.sessions.clone(),
        );
        refresh.set_dpop(inner.dpop.clone());
        refresh.answer.clone_from(&inner.answer);
        refresh
    }

    /// Ends the caller's session; mount it behind [`layer`](Self::layer).
    #[must_use]
    pub fn logout(&self) -> LogoutService<U::Claims> {
        let mut logout = LogoutService::new(self.inner.sessions.clone());
        logout.answer.clone_from(&self.inner.answer);
        logout
    }

    /// Ends every session of the caller; mount it behind [`layer`](Self::layer).
    #[must_use]
    pub fn logout_all(&self) -> LogoutAllService<U::Claims> {
        let mut logout = LogoutAllService::new(self.inner.sessions.clone());
        logout.inner.answer.clone_from(&self.inner.answer);
        logout
    }

    /// The public keys as a JWK Set (404 for symmetric keys), current across rotations.
    #[must_use]
    pub fn jwks(&self) -> JwksService {
        JwksService::from_key_ring(self.inner.issuer.key_ring().clone())
    }

    /// `/.well-known/openid-configuration`: the issuer, where its keys are and its OAuth 2
    /// endpoints (the members of the [RFC 8414 document](Self::authorization_server_metadata)),
    /// when the keys are public and the server knows its URL
    /// ([`public_url`](AuthServerBuilder::public_url) or
    /// [`local_url`](AuthServerBuilder::local_url)).
    #[must_use]
    pub fn provider_metadata(&self) -> Option<MetadataService> {
        self.inner.issuer.key_ring().jwks_document()?;
        let doc = self.oauth_metadata()?;
        MetadataService::from_json(&serde_json::Value::Object(doc)).ok()
    }

    /// RFC 9728 metadata: its path and service, with a [`public_url`](AuthServerBuilder::public_url).
    #[must_use]
    pub fn resource_metadata(&self) -> Option<(String, MetadataService)> {
        let inner = &self.inner;
        let mut metadata = ProtectedResourceMetadata::new(inner.public_url.clone()?);
        if let Some(iss) = &inner.iss {
            metadata = metadata.authorization_server(iss.clone());
        }
        Some((metadata.well_known_path(), metadata.service().ok()?))
    }

    /// The sessions (to end a user's sessions from an admin action, say).
    #[must_use]
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The token issuer (to issue a token outside a login).
    pub fn issuer(&self) -> &TokenIssuer {
        &self.inner.issuer
    }
}

impl<U> Clone for AuthServer<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<U> fmt::Debug for AuthServer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("users", &std::any::type_name::<U>())
            .field("issuer", &self.inner.issuer)
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

impl<U> fmt::Debug for AuthServerBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServerBuilder")
            .field("users", &std::any::type_name::<U>())
            .field("issuer", &self.iss)
            .field("audience", &self.aud)
            .field("ttl", &self.ttl)
            .field("leeway", &self.leeway)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "cookie"))]
mod cookie_tests;
#[cfg(test)]
mod tests;
