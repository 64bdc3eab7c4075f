//! The demo servers' configuration, read from the environment and handed to the crate's
//! composition root (`AuthServer`): nothing here wires parts together.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tower_jwt_auth::dpop::{Dpop, StoreReplayCache};
use tower_jwt_auth::login::{AuthServer, InMemoryClients, InMemoryUsers, LoginCookies};
use tower_jwt_auth::session::{DEFAULT_PER_ADDRESS, DEFAULT_PER_USER, Rate, TrustedProxies};
use tower_jwt_auth::{Algorithm, ConfigErrorKind, SigningKey, VerifyingKey};
use tower_jwt_auth_redis::RedisStore;

use super::{BoxError, DemoClaims, install_metrics};

/// Everything a demo server needs, built from the environment.
pub(crate) struct Demo {
    /// Bound at start (`BIND_ADDR`), so the server knows its own address before it serves.
    pub(crate) listener: tokio::net::TcpListener,
    /// The issuing side, wired: the layer and every endpoint come from here.
    pub(crate) auth: AuthServer<InMemoryUsers<DemoClaims>>,
    /// `LOGIN_COOKIES=1`: cookie mode, and the page at `/` that uses it.
    pub(crate) cookies: bool,
    /// Renders `/metrics` (Prometheus text).
    pub(crate) metrics: PrometheusHandle,
}

/// The demo's OAuth 2 client, like its demo users: `OAUTH_CLIENTS` replaces it.
const DEMO_CLIENTS: &str = "client1:secret1:api.read api.write";

pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(crate) fn secs(name: &str, default: u64) -> Result<Duration, BoxError> {
    match var(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{name} must be a whole number of seconds, got {v:?}").into()),
    }
}

fn rate(name: &str, default: Rate) -> Result<Rate, BoxError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| format!("{name}: {e}").into()),
    }
}

/// `DPOP` (RFC 9449): `allowed` (the default), `required` or `off`; proofs name `own_url`
/// (`PUBLIC_URL`, else `http://<listen address>`: never the request's `Host` header), and with a
/// shared `store` every node refuses a proof replayed against any of them (an `AuthServer`
/// with a shared store does that by itself).
/// With `DPOP_NONCE_SECRET` (at least 32 bytes, the same on every node), proofs must carry a
/// server nonce (five-minute steps).
pub(crate) fn dpop_from_env(
    own_url: &str,
    store: Option<RedisStore>,
) -> Result<(String, Option<Dpop>), BoxError> {
    let mode = var("DPOP").unwrap_or_else(|| "allowed".to_owned());
    let dpop = Dpop::new(own_url).map_err(|e| format!("PUBLIC_URL or BIND_ADDR: {e}"));
    let mut dpop = match mode.as_str() {
        "off" => return Ok((mode, None)),
        "allowed" => dpop?,
        "required" => dpop?.required(),
        other => {
            return Err(format!(
                "DPOP is {other:?}: use `allowed` (the default), `required` or `off`"
            )
            .into());
        }
    };
    if let Some(store) = store {
        dpop = dpop.replay_cache(StoreReplayCache::new(store));
    }
    // Server nonces, the same secret on every node (RFC 9449 §8, §9).
    if let Some(secret) = var("DPOP_NONCE_SECRET") {
        dpop = dpop
            .nonces(secret.as_bytes(), Duration::from_secs(300))
            .map_err(|e| format!("DPOP_NONCE_SECRET: {e}"))?;
    }
    Ok((mode, Some(dpop)))
}

/// The signing key: `JWT_SECRET` (HS*, else a random one) or `JWT_PRIVATE_KEY_FILE`. The
/// verifying key is the private key's public half; `JWT_PUBLIC_KEY_FILE`, when set, must be a
/// readable public key for the algorithm.
fn signing_key_from_env(alg: Algorithm, alg_name: &str) -> Result<SigningKey, BoxError> {
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Ok(match var("JWT_SECRET") {
            Some(secret) => match SigningKey::from_secret(alg, secret.as_bytes()) {
                Ok(key) => key,
                Err(e) if e.kind() == ConfigErrorKind::InvalidKey => {
                    tracing::warn!(
                        "JWT_SECRET is shorter than RFC 7518 requires for {alg_name} \
                         (32/48/64 bytes for HS256/384/512): accepted for compatibility, \
                         but it can be brute-forced; use a long random secret"
                    );
                    SigningKey::from_short_secret(alg, secret.as_bytes())
                        .map_err(|e| format!("JWT_SECRET: {e}"))?
                }
                Err(e) => return Err(format!("JWT_SECRET: {e}").into()),
            },
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
                );
                SigningKey::generate_secret(alg)?
            }
        });
    }
    let private = var("JWT_PRIVATE_KEY_FILE").ok_or_else(|| {
        format!("{alg_name} needs JWT_PRIVATE_KEY_FILE (a PKCS#8 PEM private key)")
    })?;
    let signing = SigningKey::from_pem_file(alg, &private)
        .map_err(|e| format!("JWT_PRIVATE_KEY_FILE {private}: {e}"))?;
    if let Some(public) = var("JWT_PUBLIC_KEY_FILE") {
        VerifyingKey::from_pem_file(alg, &public)
            .map_err(|e| format!("JWT_PUBLIC_KEY_FILE {public}: {e}"))?;
    }
    Ok(signing)
}

impl Demo {
    /// Read `BIND_ADDR`, `JWT_ALGORITHM`, `JWT_SECRET`, `JWT_PRIVATE_KEY_FILE`,
    /// `JWT_PUBLIC_KEY_FILE`, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_TTL_SECS`, `JWT_LEEWAY_SECS`,
    /// and for sessions `REDIS_URL`, `REFRESH_TTL_SECS`, `REFRESH_IDLE_SECS`,
    /// `REFRESH_GRACE_SECS`, `LOGIN_USER_LIMIT`, `LOGIN_IP_LIMIT`, `TRUSTED_PROXIES` and
    /// `REVOCATION_MAX_STALENESS_SECS`, `DPOP` (`allowed`, `required` or `off`),
    /// `OAUTH_CLIENTS` and `LOGIN_COOKIES`.
    /// `default_bind` is used when `BIND_ADDR` is unset.
    pub(crate) async fn from_env(default_bind: &str) -> Result<Self, BoxError> {
        let metrics = install_metrics()?;
        let bind: SocketAddr = var("BIND_ADDR")
            .unwrap_or_else(|| default_bind.to_owned())
            .parse()
            .map_err(|e| format!("BIND_ADDR is not a socket address: {e}"))?;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| format!("cannot listen on {bind} (BIND_ADDR): {e}"))?;
        let bind = listener.local_addr()?;
        let alg_name = var("JWT_ALGORITHM").unwrap_or_else(|| "HS256".to_owned());
        let alg: Algorithm = alg_name.parse().map_err(|_| {
            format!("JWT_ALGORITHM {alg_name:?} is not one of HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA")
        })?;
        // The server's own base URL: the RFC 9728 resource identifier, and the default issuer.
        let public_url = var("PUBLIC_URL");
        // What clients call this server: PUBLIC_URL, else the address it listens on.
        let own_url = public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        let issuer_name = var("JWT_ISSUER").or_else(|| public_url.clone());
        let audience = var("JWT_AUDIENCE");
        let ttl = secs("JWT_TTL_SECS", 900)?;
        let leeway = secs("JWT_LEEWAY_SECS", 60)?;

        let signing = signing_key_from_env(alg, &alg_name)?;

        let users = InMemoryUsers::new()?
            .with_user("user1", "password1", DemoClaims::user("1", "user1"))?
            .with_user("user2", "password2", DemoClaims::user("2", "user2"))?;
        let proxies: TrustedProxies = var("TRUSTED_PROXIES")
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("TRUSTED_PROXIES: {e}"))?;
        let mut auth = AuthServer::builder(users, signing)
            .ttl(ttl)
            .leeway(leeway)
            .session_lifetime(secs("REFRESH_TTL_SECS", 2_592_000)?)
            .session_idle_lifetime(secs("REFRESH_IDLE_SECS", 604_800)?)
            .refresh_grace(secs("REFRESH_GRACE_SECS", 10)?)
            .login_limits(
                Some(rate("LOGIN_USER_LIMIT", DEFAULT_PER_USER)?),
                Some(rate("LOGIN_IP_LIMIT", DEFAULT_PER_ADDRESS)?),
            )
            .trusted_proxies(proxies)
            .revocation_max_staleness(secs("REVOCATION_MAX_STALENESS_SECS", 60)?);
        if let Some(iss) = &issuer_name {
            auth = auth.issuer(iss);
        }
        if let Some(aud) = &audience {
            auth = auth.audience(aud);
        }
        match &public_url {
            Some(url) => auth = auth.public_url(url),
            // The metadata and the issuer identifier then name the address it listens on.
            None => auth = auth.local_url(&own_url),
        }
        // The OAuth 2 clients of `/token`, `/revoke` and `/introspect`.
        let clients_list = var("OAUTH_CLIENTS").unwrap_or_else(|| DEMO_CLIENTS.to_owned());
        let clients = InMemoryClients::new()?
            .with_clients_from_list(&clients_list)
            .map_err(|e| format!("OAUTH_CLIENTS: {e}"))?;
        let client_ids = clients.ids().join(",");
        auth = auth.clients(clients);
        // Sessions: in memory, or shared through Redis by every node naming the same URL.
        // With Redis, DPoP proofs are recorded there too: several nodes on one Redis refuse a
        // proof replayed against any of them.
        let redis_url = var("REDIS_URL");
        if let Some(url) = &redis_url {
            let store = RedisStore::connect(url)
                .await
                .map_err(|e| format!("REDIS_URL: cannot use Redis: {e}"))?;
            auth = auth.store(store);
        }
        let (dpop_mode, dpop) = dpop_from_env(&own_url, None)?;
        if let Some(dpop) = dpop {
            auth = auth.dpop(dpop);
        }
        // A browser front end: the tokens in HttpOnly cookies, the CSRF value readable.
        let cookies = match var("LOGIN_COOKIES").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(format!("LOGIN_COOKIES is {other:?}: use 1 (cookie mode) or 0").into());
            }
        };
        if cookies {
            auth = auth.cookies(LoginCookies::new());
        }
        let auth = auth
            .build()
            .await
            .map_err(|e| format!("cannot start the login server: {e}"))?;

        tracing::info!(
            %bind,
            algorithm = ?alg,
            issuer = issuer_name.as_deref().unwrap_or("-"),
            audience = audience.as_deref().unwrap_or("-"),
            ttl_secs = ttl.as_secs(),
            leeway_secs = leeway.as_secs(),
            sessions = if redis_url.is_some() { "redis" } else { "memory" },
            dpop = %dpop_mode,
            oauth_clients = %client_ids,
            cookies,
            "configuration loaded"
        );
        Ok(Self {
            listener,
            auth,
            cookies,
            metrics,
        })
    }
}
