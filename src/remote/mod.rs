//! [`RemoteJwks`]: verifying keys fetched from a JWKS URL (feature `remote-jwks`).
//!
//! The set lives in memory as an atomically swapped snapshot: every request reads it without a
//! lock. The network is used
//!
//! - by a background task that refreshes the set, honouring `Cache-Control: max-age` within
//!   configured bounds, keeping the last good set when a fetch fails (stale-if-error) and
//!   retrying with exponential backoff; and
//! - when a token names a key (`kid`) that is not in memory: at most one refresh per cooldown
//!   (default 5 s), shared by every request that misses meanwhile (single-flight). A `kid` still
//!   unknown after a refresh is remembered for a while, so a flood of tokens with random `kid`s
//!   costs the key endpoint at most one fetch per cooldown and costs the flood no waiting.
//!
//! Nothing from a token ever goes into a request to the key endpoint. Responses are bounded in
//! size (default 256 KiB) and time (default 5 s); keys whose `use` is not `sig`, or whose type
//! or algorithm is not supported, are skipped.
//!
//! Before the first set arrives, requests get 503 (gRPC 14);
//! [`RemoteJwksBuilder::build_and_wait`] waits for it at start-up instead.
//!
//! The HTTP client is pluggable: any tower service that fits [`HttpClient`] (see
//! [`RemoteJwksBuilder::client`]). The default client (feature `hyper-client`) is
//! [`KeyClient`]: hyper-util with rustls and the webpki roots, which can also trust the
//! operating system's certificate store (feature `os-certs`) or your own CA, and go through an
//! HTTP proxy named by `HTTPS_PROXY`/`NO_PROXY` (feature `https-proxy`). A reqwest client fits
//! too ([`ReqwestClient`], feature `reqwest`). Without `hyper-client`, `remote-jwks` pulls in
//! neither hyper nor rustls, and a client must be given.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_jwt_auth::remote::RemoteJwks;
//! use tower_jwt_auth::{JwtAuthLayer, Validation, Verifier};
//!
//! # async fn run() -> Result<(), tower_jwt_auth::ConfigError> {
//! let jwks = RemoteJwks::builder("https://auth.example.com/.well-known/jwks.json")?
//!     .refresh_cooldown(Duration::from_secs(5))
//!     .build_and_wait(Duration::from_secs(10))
//!     .await?;
//! let verifier = Verifier::from_source(jwks, Validation::new().issuer("https://auth.example.com"))?;
//! let layer = JwtAuthLayer::<serde_json::Value>::new(verifier);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use crate::error::{ConfigError, ConfigErrorKind};
use crate::keys::{KeyFuture, KeySet, KeySource};

pub(crate) mod client;
mod discovery;
#[cfg(feature = "hyper-client")]
mod key_client;
mod refresh;
#[cfg(feature = "reqwest")]
mod reqwest_client;

use client::Fetcher;
pub use client::HttpClient;
// The default client's types: `KeyClient`, `KeyClientBuilder`, and `Proxy` with `https-proxy`.
#[cfg(feature = "hyper-client")]
pub use key_client::*;
use refresh::{Limits, Refresher};
#[cfg(feature = "reqwest")]
pub use reqwest_client::ReqwestClient;

/// Defaults.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(3600);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_MAX_SIZE: usize = 256 * 1024;
const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 3600);

/// Builds a [`RemoteJwks`]. See the [module docs](self).
#[must_use]
pub struct RemoteJwksBuilder {
    url: Uri,
    fetcher: Option<Fetcher>,
    limits: Limits,
    insecure_http: bool,
    /// The issuer found by OpenID Connect discovery, bound into the verifier.
    issuer: Option<Arc<str>>,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("url", &self.url)
            .field("limits", &self.limits)
            .field(
                "client",
                &self.fetcher.as_ref().map_or("default", |_| "custom"),
            )
            .finish()
    }
}

pub(crate) fn parse_url(url: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| ConfigError::with_source(ConfigErrorKind::InvalidUrl, "not a valid URL", e))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            "the key set and issuer URLs must be absolute http:// or https:// URLs",
        )),
    }
}

/// Whether `uri`'s host is this machine: `localhost` or a loopback address.
pub(crate) fn is_loopback(uri: &Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Keys and discovery documents come over https: plain http only from this machine, or with an
/// explicit opt-in. Over plain http anyone on the path could hand the verifier their own keys.
pub(crate) fn require_https(uri: &Uri, insecure_http: bool) -> Result<(), ConfigError> {
    if uri.scheme_str() == Some("https") || is_loopback(uri) || insecure_http {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            "key sets and discovery documents must come over https (plain http is accepted only \
             from localhost, or with RemoteJwksBuilder::allow_insecure_http)",
        ))
    }
}

impl RemoteJwksBuilder {
    /// Use `client` to fetch instead of the default hyper-util client: any [`HttpClient`] taking
    /// `http::Request<B>` for a `B: Default` (the request body is empty).
    pub fn client<S, B>(self, client: S) -> Self
    where
        S: HttpClient<B>,
        B: Default + Send + 'static,
    {
        self.fetcher(client::fetcher(client))
    }

    pub(crate) fn fetcher(mut self, fetcher: Fetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The least time between two refreshes caused by unknown `kid`s (default 5 s).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.limits.cooldown = cooldown;
        self
    }

    /// Bounds for the background refresh interval, which follows the response's
    /// `Cache-Control: max-age` (defaults 60 s and 1 h; without `max-age`, the lower bound ×5).
    pub fn refresh_interval_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.limits.min_refresh = min;
        self.limits.max_refresh = max.max(min);
        self
    }

    /// The longest a fetch may take (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.limits.timeout = timeout;
        self
    }

    /// The largest JWKS document accepted (default 256 KiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.limits.max_size = bytes;
        self
    }

    /// How long the last good key set keeps verifying while no refresh succeeds (default
    /// 24 hours). After that, requests get 503 until the key endpoint answers again: a set that
    /// cannot be refreshed is not trusted forever (its keys may have been withdrawn).
    pub fn max_stale(mut self, age: Duration) -> Self {
        self.limits.max_stale = age;
        self
    }

    /// Accept a plain `http://` key-set URL on another machine. By default only `https://`
    /// is accepted, and `http://` only for `localhost` and loopback addresses: over plain
    /// http, anyone on the network path could hand the verifier their own keys.
    pub fn allow_insecure_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    pub(crate) fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Start the source: the first fetch and the background refresh run on the current tokio
    /// runtime. Until the first set arrives, requests get 503.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] for a plain `http://` URL to another machine without
    /// [`allow_insecure_http`](Self::allow_insecure_http);
    /// [`ConfigErrorKind::NoRuntime`] outside a tokio runtime (the background task needs one);
    /// [`ConfigErrorKind::NoHttpClient`] when no client was given and the `hyper-client` feature
    /// is off; [`ConfigErrorKind::Tls`] when the default https client cannot be set up;
    /// [`ConfigErrorKind::NoCryptoBackend`] when no crypto backend is available.
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        crate::crypto::install_crypto_provider()?;
        require_https(&self.url, self.insecure_http)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::NoRuntime,
                "RemoteJwks needs a tokio runtime: build it inside one (e.g. in #[tokio::main])",
                e,
            )
        })?;
        let fetcher = match self.fetcher {
            Some(f) => f,
            None => client::default_fetcher()?,
        };
        let refresher = Arc::new(Refresher::new(self.url, fetcher, self.limits));
        runtime.spawn(refresh::background(Arc::downgrade(&refresher)));
        Ok(RemoteJwks {
            refresher,
            issuer: self.issuer,
        })
    }

    /// Like [`build`](Self::build), then wait up to `timeout` for the first key set.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), and [`ConfigErrorKind::KeysUnavailable`] when no set
    /// arrived in time.
    pub async fn build_and_wait(self, timeout: Duration) -> Result<RemoteJwks, ConfigError> {
        let jwks = self.build()?;
        if !jwks.wait_for_keys(timeout).await {
            let message = "no key set arrived from the JWKS URL in time: check the URL and that \
                           the key endpoint is up (the source says what the last fetch met)";
            return Err(match jwks.refresher.last_error() {
                Some(last) => ConfigError::with_source(
                    ConfigErrorKind::KeysUnavailable,
                    message,
                    LastFetchError(last),
                ),
                None => ConfigError::new(ConfigErrorKind::KeysUnavailable, message),
            });
        }
        Ok(jwks)
    }
}

/// A [`KeySource`] fed from a JWKS URL. Cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteJwks {
    refresher: Arc<Refresher>,
    issuer: Option<Arc<str>>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.refresher.url)
            .field("keys", &self.refresher.current().map(|k| k.len()))
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// A builder for the JWKS at `url` (`http://` or `https://`).
    ///
    /// # Errors
    ///
    /// When `url` is not an absolute http(s) URL.
    pub fn builder(url: &str) -> Result<RemoteJwksBuilder, ConfigError> {
        Ok(RemoteJwksBuilder {
            url: parse_url(url)?,
            fetcher: None,
            limits: Limits {
                cooldown: DEFAULT_COOLDOWN,
                min_refresh: DEFAULT_MIN_REFRESH,
                max_refresh: DEFAULT_MAX_REFRESH,
                timeout: DEFAULT_TIMEOUT,
                max_size: DEFAULT_MAX_SIZE,
                max_stale: DEFAULT_MAX_STALE,
            },
            insecure_http: false,
            issuer: None,
        })
    }

    /// OpenID Connect discovery with `client` (see [`RemoteJwksBuilder::client`]); the same
    /// client is then used for the key set.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] when the issuer URL is invalid;
    /// [`ConfigErrorKind::Discovery`] when the document cannot be fetched or parsed, or names
    /// another issuer.
    pub async fn discover_with_client<S, B>(
        issuer: &str,
        client: S,
    ) -> Result<RemoteJwksBuilder, ConfigError>
    where
        S: HttpClient<B>,
        B: Default + Send + 'static,
    {
        discovery::discover(issuer, client::fetcher(client)).await
    }

    /// Wait up to `timeout` for a key set; `true` once one is in memory. The source keeps
    /// trying in the background either way.
    pub async fn wait_for_keys(&self, timeout: Duration) -> bool {
        self.refresher.wait_for_keys(timeout).await
    }

    /// The keys in memory now (`None` before the first successful fetch).
    #[must_use]
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.refresher.current()
    }
}

impl KeySource for RemoteJwks {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.refresher.current()
    }

    fn refresh(&self, alg: jsonwebtoken::Algorithm, kid: Option<&str>) -> Option<KeyFuture> {
        self.refresher.refresh(alg, kid)
    }

    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// Why the last key-set fetch failed: the source of a [`ConfigErrorKind::KeysUnavailable`]
/// from [`RemoteJwksBuilder::build_and_wait`].
#[derive(Debug)]
struct LastFetchError(String);

impl fmt::Display for LastFetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the last fetch failed: {}", self.0)
    }
}

impl std::error::Error for LastFetchError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let err = RemoteJwks::builder("http://127.0.0.1:9/jwks.json")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::NoRuntime);
    }

    #[tokio::test]
    async fn plain_http_is_for_this_machine_or_an_explicit_opt_in() {
        let build = |url: &str| {
            RemoteJwks::builder(url).unwrap().client(tower::service_fn(
                |_req: http::Request<crate::body::JsonBody>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        crate::body::JsonBody::default(),
                    ))
                },
            ))
        };
        for url in [
            "https://idp.example/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
        ] {
            assert!(build(url).build().is_ok(), "{url}");
        }
        let err = build("http://idp.example/jwks").build().unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidUrl);
        assert!(err.to_string().contains("https"), "{err}");
        assert!(
            build("http://idp.example/jwks")
                .allow_insecure_http()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(RemoteJwks::builder("https://a.example/jwks.json").is_ok());
        assert!(RemoteJwks::builder("http://127.0.0.1:8080/jwks").is_ok());
        assert!(RemoteJwks::builder("/jwks.json").is_err());
        assert!(RemoteJwks::builder("ftp://a.example/jwks").is_err());
    }

    #[cfg(not(feature = "hyper-client"))]
    #[tokio::test]
    async fn without_the_default_client_a_client_must_be_given() {
        let err = RemoteJwks::builder("https://a.example/jwks.json")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::NoHttpClient);
    }
}
