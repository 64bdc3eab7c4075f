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

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use tokio::sync::watch;

use crate::error::{ConfigError, ConfigErrorKind};
use crate::keys::KeySet;
use crate::keys::{KeyFuture, KeySource};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type FetchFuture = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

/// An HTTP client [`RemoteJwks`] can fetch with: any cloneable tower service from
/// `http::Request<B>` to `http::Response` with any body, whose errors convert into a boxed error
/// (hyper-util's legacy client, a `tower::ServiceBuilder` stack around it, a test double…).
/// Implemented for every such service; there is nothing to implement by hand.
pub trait HttpClient<B>:
    tower_service::Service<
        Request<B>,
        Response = Response<Self::ResBody>,
        Future: Send,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body type.
    type ResBody: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B, RB> HttpClient<B> for S
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResBody = RB;
}
type Fetcher = Arc<dyn Fn(Uri, usize) -> FetchFuture + Send + Sync>;

/// Defaults.
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(3600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_SIZE: usize = 256 * 1024;
const NEGATIVE_CACHE_LIMIT: usize = 4096;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Builds a [`RemoteJwks`]. See the [module docs](self).
#[must_use]
pub struct RemoteJwksBuilder {
    url: Uri,
    fetcher: Option<Fetcher>,
    cooldown: Duration,
    min_refresh: Duration,
    max_refresh: Duration,
    timeout: Duration,
    max_size: usize,
}

impl fmt::Debug for RemoteJwksBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwksBuilder")
            .field("url", &self.url)
            .field("cooldown", &self.cooldown)
            .field("refresh_bounds", &(self.min_refresh, self.max_refresh))
            .field("timeout", &self.timeout)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

fn parse_url(url: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = url.parse().map_err(|e| {
        ConfigError::with_source(
            ConfigErrorKind::InvalidUrl,
            "the JWKS URL is not a valid URL",
            e,
        )
    })?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            "the JWKS URL must be an absolute http:// or https:// URL",
        )),
    }
}

impl RemoteJwksBuilder {
    /// Use `client` to fetch instead of the default hyper-util client (with rustls for https):
    /// any [`HttpClient`] taking `http::Request<B>` for a `B: Default` (the request body is
    /// empty).
    pub fn client<S, B>(mut self, client: S) -> Self
    where
        S: HttpClient<B>,
        B: Default + Send + 'static,
    {
        self.fetcher = Some(fetcher(client));
        self
    }

    /// The least time between two refreshes caused by unknown `kid`s (default 5 s).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Bounds for the background refresh interval, which follows the response's
    /// `Cache-Control: max-age` (defaults 60 s and 1 h; without `max-age`, the lower bound ×5).
    pub fn refresh_interval_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_refresh = min;
        self.max_refresh = max.max(min);
        self
    }

    /// The longest a fetch may take (default 5 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest JWKS document accepted (default 256 KiB).
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Start the source: the first fetch and the background refresh run on the current tokio
    /// runtime. Until the first set arrives, requests get 503.
    ///
    /// # Errors
    ///
    /// When called outside a tokio runtime (the background task needs one), the default https
    /// client cannot be set up, or no crypto backend is available.
    pub fn build(self) -> Result<RemoteJwks, ConfigError> {
        crate::crypto::install_crypto_provider()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::KeysUnavailable,
                "RemoteJwks needs a tokio runtime: build it inside one (e.g. in #[tokio::main])",
                e,
            )
        })?;
        let fetcher = match self.fetcher {
            Some(f) => f,
            None => default_fetcher()?,
        };
        let (generation, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            url: self.url,
            fetcher,
            cooldown: self.cooldown,
            min_refresh: self.min_refresh,
            max_refresh: self.max_refresh,
            timeout: self.timeout,
            max_size: self.max_size,
            keys: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
            generation,
        });
        runtime.spawn(background(Arc::downgrade(&shared)));
        Ok(RemoteJwks { shared })
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
            return Err(ConfigError::new(
                ConfigErrorKind::KeysUnavailable,
                "no key set arrived from the JWKS URL in time: check the URL and that the key \
                 endpoint is up",
            ));
        }
        Ok(jwks)
    }
}

/// A [`KeySource`] fed from a JWKS URL. Cheap to clone. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteJwks {
    shared: Arc<Shared>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.shared.url)
            .field("keys", &self.shared.keys.load().as_ref().map(|k| k.len()))
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
            cooldown: DEFAULT_COOLDOWN,
            min_refresh: DEFAULT_MIN_REFRESH,
            max_refresh: DEFAULT_MAX_REFRESH,
            timeout: DEFAULT_TIMEOUT,
            max_size: DEFAULT_MAX_SIZE,
        })
    }

    /// OpenID Connect discovery: fetch `{issuer}/.well-known/openid-configuration`, check its
    /// `issuer`, and return a builder for its `jwks_uri`.
    ///
    /// # Errors
    ///
    /// When the issuer URL is invalid, the document cannot be fetched or parsed, or it names
    /// another issuer.
    pub async fn discover(issuer: &str) -> Result<RemoteJwksBuilder, ConfigError> {
        Self::discover_with(issuer, default_fetcher()?).await
    }

    /// [`discover`](Self::discover) with a custom client (see
    /// [`RemoteJwksBuilder::client`]); the same client is then used for the key set.
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover).
    pub async fn discover_with_client<S, B>(
        issuer: &str,
        client: S,
    ) -> Result<RemoteJwksBuilder, ConfigError>
    where
        S: HttpClient<B>,
        B: Default + Send + 'static,
    {
        Self::discover_with(issuer, fetcher(client)).await
    }

    async fn discover_with(
        issuer: &str,
        fetcher: Fetcher,
    ) -> Result<RemoteJwksBuilder, ConfigError> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let uri = parse_url(&url)?;
        let unavailable = |message| ConfigError::new(ConfigErrorKind::KeysUnavailable, message);
        let response = tokio::time::timeout(DEFAULT_TIMEOUT, fetcher(uri, DEFAULT_MAX_SIZE))
            .await
            .map_err(|_| unavailable("the OpenID configuration request timed out"))?
            .map_err(|_| unavailable("the OpenID configuration could not be fetched"))?;
        if response.status() != StatusCode::OK {
            return Err(unavailable(
                "the OpenID configuration endpoint did not answer 200",
            ));
        }
        let doc: Discovery = serde_json::from_slice(response.body()).map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidJwk,
                "the OpenID configuration is not valid JSON with `issuer` and `jwks_uri`",
                e,
            )
        })?;
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "the OpenID configuration names another issuer",
            ));
        }
        let mut builder = Self::builder(&doc.jwks_uri)?;
        builder.fetcher = Some(fetcher);
        Ok(builder)
    }

    /// Wait up to `timeout` for a key set; `true` once one is in memory. The source keeps
    /// trying in the background either way.
    pub async fn wait_for_keys(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.generation.subscribe();
        let wait = async {
            while self.shared.keys.load().is_none() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.shared.keys.load().is_some()
    }

    /// The keys in memory now (`None` before the first successful fetch).
    #[must_use]
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.shared.keys.load_full()
    }
}

impl KeySource for RemoteJwks {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.shared.keys.load_full()
    }

    fn refresh(&self, kid: Option<&str>) -> Option<KeyFuture> {
        let shared = &self.shared;
        let now = Instant::now();
        let mut rx = {
            let mut state = shared.state.lock().ok()?;
            if let Some(kid) = kid
                && state
                    .unknown_kids
                    .get(kid)
                    .is_some_and(|seen| now.duration_since(*seen) < shared.negative_ttl())
            {
                return None;
            }
            if !state.in_flight {
                if state
                    .last_attempt
                    .is_some_and(|t| now.duration_since(t) < shared.cooldown)
                {
                    return None;
                }
                // Outside a tokio runtime there is nothing to fetch with: reject, never panic.
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                state.in_flight = true;
                state.last_attempt = Some(now);
                runtime.spawn(fetch_now(Arc::clone(shared)));
            }
            shared.generation.subscribe()
        };
        let shared = Arc::clone(shared);
        let kid = kid.map(ToOwned::to_owned);
        Some(Box::pin(async move {
            let _ =
                tokio::time::timeout(shared.timeout + Duration::from_secs(1), rx.changed()).await;
            let keys = shared.keys.load_full();
            if let (Some(kid), Some(set)) = (kid, &keys)
                && !set.iter().any(|k| k.kid() == Some(kid.as_str()))
                && let Ok(mut state) = shared.state.lock()
            {
                if state.unknown_kids.len() >= NEGATIVE_CACHE_LIMIT {
                    state.unknown_kids.clear();
                }
                state.unknown_kids.insert(kid, Instant::now());
            }
            keys
        }))
    }
}

struct Shared {
    url: Uri,
    fetcher: Fetcher,
    cooldown: Duration,
    min_refresh: Duration,
    max_refresh: Duration,
    timeout: Duration,
    max_size: usize,
    keys: ArcSwapOption<KeySet>,
    state: Mutex<State>,
    /// Bumped after every fetch attempt, so waiters wake.
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    in_flight: bool,
    last_attempt: Option<Instant>,
    unknown_kids: HashMap<String, Instant>,
}

impl Shared {
    /// How long an unknown `kid` is answered at once without a refresh.
    fn negative_ttl(&self) -> Duration {
        (self.cooldown * 12).max(Duration::from_secs(1))
    }

    /// One fetch; on success swap the snapshot in. Returns the `max-age` the response allowed.
    async fn fetch(&self) -> Result<Option<Duration>, BoxError> {
        let response = tokio::time::timeout(
            self.timeout,
            (self.fetcher)(self.url.clone(), self.max_size),
        )
        .await
        .map_err(|_| "the JWKS fetch timed out")??;
        if response.status() != StatusCode::OK {
            return Err(format!("the JWKS endpoint answered {}", response.status()).into());
        }
        let max_age = max_age(response.headers().get(CACHE_CONTROL));
        let keys = KeySet::new().with_jwks(response.body())?;
        self.keys.store(Some(Arc::new(keys)));
        if let Ok(mut state) = self.state.lock() {
            state.unknown_kids.clear();
        }
        Ok(max_age)
    }

    fn finish_attempt(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.in_flight = false;
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }
}

/// A fetch triggered by an unknown `kid` (the caller already marked it in flight).
async fn fetch_now(shared: Arc<Shared>) {
    if let Err(_e) = shared.fetch().await {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "tower_jwt_auth", error = %_e, "JWKS refresh failed; keeping the last good set");
    }
    shared.finish_attempt();
}

/// The background refresh: first fetch at once, then as `max-age` says (within bounds); after
/// a failure, retry with exponential backoff. Ends when the source is dropped.
async fn background(weak: Weak<Shared>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let started = {
            let Ok(mut state) = shared.state.lock() else {
                return;
            };
            if state.in_flight {
                false
            } else {
                state.in_flight = true;
                state.last_attempt = Some(Instant::now());
                true
            }
        };
        let wait = if started {
            let result = shared.fetch().await;
            shared.finish_attempt();
            match result {
                Ok(max_age) => {
                    backoff = Duration::from_secs(1);
                    max_age
                        .unwrap_or(shared.min_refresh * 5)
                        .clamp(shared.min_refresh, shared.max_refresh)
                }
                Err(_e) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(target: "tower_jwt_auth", error = %_e, "JWKS fetch failed; retrying with backoff");
                    let wait = backoff.min(shared.max_refresh);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            }
        } else {
            Duration::from_millis(100)
        };
        drop(shared);
        tokio::time::sleep(wait).await;
    }
}

/// `max-age` from a `Cache-Control` header (`no-store`/`no-cache` count as 0).
fn max_age(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?;
    for directive in text.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, secs)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            return secs
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    None
}

fn fetcher<S, B>(client: S) -> Fetcher
where
    S: HttpClient<B>,
    B: Default + Send + 'static,
{
    Arc::new(move |uri: Uri, limit: usize| {
        let mut client = client.clone();
        Box::pin(async move {
            let mut request = Request::new(B::default());
            *request.uri_mut() = uri;
            request.headers_mut().insert(
                ACCEPT,
                HeaderValue::from_static("application/jwk-set+json, application/json"),
            );
            std::future::poll_fn(|cx| client.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = client.call(request).await.map_err(Into::into)?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, limit).collect().await?.to_bytes();
            Ok(Response::from_parts(parts, bytes))
        }) as FetchFuture
    })
}

fn default_fetcher() -> Result<Fetcher, ConfigError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidUrl,
                "could not set up TLS for the JWKS client",
                e,
            )
        })?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, crate::body::JsonBody>(connector);
    Ok(fetcher(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read() {
        let v = |s: &'static str| Some(HeaderValue::from_static(s));
        assert_eq!(
            max_age(v("public, max-age=120").as_ref()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age(v("no-store").as_ref()), Some(Duration::ZERO));
        assert_eq!(max_age(v("public").as_ref()), None);
        assert_eq!(max_age(None), None);
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let err = RemoteJwks::builder("http://127.0.0.1:9/jwks.json")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::KeysUnavailable);
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        assert!(RemoteJwks::builder("https://a.example/jwks.json").is_ok());
        assert!(RemoteJwks::builder("http://127.0.0.1:8080/jwks").is_ok());
        assert!(RemoteJwks::builder("/jwks.json").is_err());
        assert!(RemoteJwks::builder("ftp://a.example/jwks").is_err());
    }
}
