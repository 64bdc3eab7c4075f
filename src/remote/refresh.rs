//! The refresh state machine of [`RemoteJwks`](super::RemoteJwks): the snapshot, single-flight
//! refreshes on unknown `kid`s with a cooldown and a negative cache, and the background refresh
//! that follows `Cache-Control: max-age` and backs off after failures (keeping the last good
//! set).
//!
//! Time is tokio's, so the tests drive it with a paused clock and a fake fetcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, StatusCode, Uri};
use jsonwebtoken::Algorithm;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{BoxError, Fetcher};
use crate::keys::{KeyFuture, KeySet};

/// Bounds of the negative cache (lookups a refresh did not answer), in entries and in bytes of
/// `kid`s: a flood of long random `kid`s cannot grow it past either.
const NEGATIVE_CACHE_LIMIT: usize = 4096;
const NEGATIVE_CACHE_BYTES: usize = 256 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The limits a [`Refresher`] works within (set by the builder).
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub(crate) cooldown: Duration,
    pub(crate) min_refresh: Duration,
    pub(crate) max_refresh: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_size: usize,
    /// How long the last good set keeps verifying when no refresh succeeds.
    pub(crate) max_stale: Duration,
}

/// The key set in memory and everything needed to refresh it. Shared by the source's clones
/// and the background task (which holds it weakly, so it ends with the last clone).
pub(crate) struct Refresher {
    pub(crate) url: Uri,
    fetcher: Fetcher,
    pub(crate) limits: Limits,
    keys: ArcSwapOption<KeySet>,
    state: Mutex<State>,
    /// Bumped after every fetch attempt, so waiters wake.
    generation: watch::Sender<u64>,
}

/// A lookup a refresh did not answer: the token's `alg` and `kid`.
type Lookup = (Algorithm, Option<Box<str>>);

#[derive(Default)]
struct State {
    in_flight: bool,
    last_attempt: Option<Instant>,
    /// The last successful fetch, and the document it brought.
    last_success: Option<Instant>,
    /// What went wrong with the last fetch, if it failed (no token or key in it: a status, a
    /// timeout, a parse or connection error).
    last_error: Option<String>,
    document: Option<Bytes>,
    unknown: HashMap<Lookup, Instant>,
    unknown_bytes: usize,
}

impl State {
    fn forget_unknown(&mut self) {
        self.unknown.clear();
        self.unknown_bytes = 0;
    }
}

impl Refresher {
    pub(crate) fn new(url: Uri, fetcher: Fetcher, limits: Limits) -> Self {
        Self {
            url,
            fetcher,
            limits,
            keys: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
            generation: watch::channel(0u64).0,
        }
    }

    /// The keys in memory (no lock: an atomic load).
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// How long an unknown `kid` is answered at once without a refresh.
    fn negative_ttl(&self) -> Duration {
        (self.limits.cooldown * 12).max(Duration::from_secs(1))
    }

    /// A token named a key that is not in memory: join the refresh in flight, or start one if
    /// the cooldown allows, and resolve to the keys after it. `None` means "reject now": a
    /// refresh already failed to answer this lookup (`alg` and `kid`; a wrong `alg` or a
    /// missing `kid` counts as much as an unknown `kid`), the cooldown has not passed, or there
    /// is no runtime.
    pub(crate) fn refresh(
        self: &Arc<Self>,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Option<KeyFuture> {
        let now = Instant::now();
        let lookup: Lookup = (alg, kid.map(Into::into));
        let mut rx = {
            let mut state = self.state.lock().ok()?;
            if state
                .unknown
                .get(&lookup)
                .is_some_and(|seen| now.duration_since(*seen) < self.negative_ttl())
            {
                return None;
            }
            if !state.in_flight {
                if state
                    .last_attempt
                    .is_some_and(|t| now.duration_since(t) < self.limits.cooldown)
                {
                    return None;
                }
                // Outside a tokio runtime there is nothing to fetch with: reject, never panic.
                let runtime = tokio::runtime::Handle::try_current().ok()?;
                state.in_flight = true;
                state.last_attempt = Some(now);
                runtime.spawn(fetch_now(Arc::clone(self)));
            }
            self.generation.subscribe()
        };
        let this = Arc::clone(self);
        Some(Box::pin(async move {
            let wait = this.limits.timeout + Duration::from_secs(1);
            let _ = tokio::time::timeout(wait, rx.changed()).await;
            let keys = this.keys.load_full();
            if let Some(set) = &keys
                && set.select(lookup.0, lookup.1.as_deref()).is_none()
            {
                this.remember_unknown(lookup);
            }
            keys
        }))
    }

    fn remember_unknown(&self, lookup: Lookup) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let bytes = lookup.1.as_ref().map_or(0, |kid| kid.len()) + 32;
        if state.unknown.len() >= NEGATIVE_CACHE_LIMIT
            || state.unknown_bytes + bytes > NEGATIVE_CACHE_BYTES
        {
            state.forget_unknown();
        }
        if state.unknown.insert(lookup, Instant::now()).is_none() {
            state.unknown_bytes += bytes;
        }
    }

    /// Wait up to `timeout` for a key set; `true` once one is in memory.
    pub(crate) async fn wait_for_keys(&self, timeout: Duration) -> bool {
        let mut rx = self.generation.subscribe();
        let wait = async {
            while self.keys.load().is_none() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.keys.load().is_some()
    }

    /// One fetch; on success swap the snapshot in, unless the document is the one in memory
    /// (a new `Arc` would empty the verified-token cache for nothing). Returns the `max-age`
    /// the response allowed.
    async fn fetch(&self) -> Result<Option<Duration>, BoxError> {
        let response = tokio::time::timeout(
            self.limits.timeout,
            (self.fetcher)(self.url.clone(), self.limits.max_size),
        )
        .await
        .map_err(|_| "the JWKS fetch timed out")??;
        if response.status() != StatusCode::OK {
            return Err(format!("the JWKS endpoint answered {}", response.status()).into());
        }
        let max_age = max_age(response.headers().get(CACHE_CONTROL));
        let document = response.into_body();
        let unchanged = self.keys.load().is_some()
            && self
                .state
                .lock()
                .is_ok_and(|s| s.document.as_ref() == Some(&document));
        if !unchanged {
            let keys = KeySet::from_remote_jwks(&document)?;
            self.keys.store(Some(Arc::new(keys)));
        }
        if let Ok(mut state) = self.state.lock() {
            state.last_success = Some(Instant::now());
            state.last_error = None;
            if !unchanged {
                state.document = Some(document);
                state.forget_unknown();
            }
        }
        crate::metrics::key_refresh(if unchanged {
            crate::metrics::KeyRefreshOutcome::Unchanged
        } else {
            crate::metrics::KeyRefreshOutcome::Updated
        });
        crate::metrics::key_set_age(0.0);
        Ok(max_age)
    }

    /// Count a failed fetch, and how old the set in memory now is.
    fn record_failure(&self, error: &BoxError) {
        crate::metrics::key_refresh(crate::metrics::KeyRefreshOutcome::Failed);
        if let Ok(mut state) = self.state.lock() {
            state.last_error = Some(error.to_string());
            if let Some(at) = state.last_success {
                crate::metrics::key_set_age(at.elapsed().as_secs_f64());
            }
        }
    }

    /// Why the last fetch failed, if it did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.state.lock().ok()?.last_error.clone()
    }

    /// After a failed attempt: once no fetch has succeeded for `max_stale`, stop verifying with
    /// the old set (requests get 503 until a fetch succeeds again).
    fn expire_if_stale(&self) {
        let stale = self.state.lock().is_ok_and(|s| {
            s.last_success
                .is_some_and(|t| t.elapsed() >= self.limits.max_stale)
        });
        if stale && self.keys.load().is_some() {
            self.keys.store(None);
            if let Ok(mut state) = self.state.lock() {
                state.document = None;
            }
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "tower_jwt_auth",
                url = %self.url,
                "no JWKS refresh has succeeded for longer than the maximum stale age: \
                 verification answers 503 until the key endpoint is back"
            );
        }
    }

    fn finish_attempt(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.in_flight = false;
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Mark a background attempt in flight, unless a refresh already is.
    fn start_attempt(&self) -> Option<bool> {
        let mut state = self.state.lock().ok()?;
        if state.in_flight {
            return Some(false);
        }
        state.in_flight = true;
        state.last_attempt = Some(Instant::now());
        Some(true)
    }
}

/// A fetch triggered by an unknown `kid` (the caller already marked it in flight).
async fn fetch_now(refresher: Arc<Refresher>) {
    if let Err(_e) = refresher.fetch().await {
        refresher.record_failure(&_e);
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "tower_jwt_auth", url = %refresher.url, error = %_e, "JWKS refresh failed; keeping the last good set");
        refresher.expire_if_stale();
    }
    refresher.finish_attempt();
}

/// The background refresh: first fetch at once, then as `max-age` says (within bounds); after
/// a failure, retry with exponential backoff. Ends when the source is dropped.
pub(crate) async fn background(weak: Weak<Refresher>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(refresher) = weak.upgrade() else {
            return;
        };
        let Some(started) = refresher.start_attempt() else {
            return;
        };
        let limits = refresher.limits.clone();
        let wait = if started {
            let result = refresher.fetch().await;
            refresher.finish_attempt();
            match result {
                Ok(max_age) => {
                    backoff = Duration::from_secs(1);
                    max_age
                        .unwrap_or(limits.min_refresh * 5)
                        .clamp(limits.min_refresh, limits.max_refresh)
                }
                Err(_e) => {
                    refresher.record_failure(&_e);
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "tower_jwt_auth", url = %refresher.url, error = %_e, "JWKS fetch failed; retrying with backoff");
                    refresher.expire_if_stale();
                    let wait = backoff.min(limits.max_refresh);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            }
        } else {
            Duration::from_millis(100)
        };
        drop(refresher);
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

#[cfg(test)]
mod tests;
