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
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::Response;

    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    const JWKS_ROTATED: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k2","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    /// A fetcher that answers from `respond` (called with the fetch number) and counts fetches.
    fn fake(
        respond: impl Fn(usize) -> Result<Response<Bytes>, BoxError> + Send + Sync + 'static,
    ) -> (Fetcher, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&count);
        let respond = Arc::new(respond);
        let fetcher: Fetcher = Arc::new(move |_uri, _limit| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let respond = Arc::clone(&respond);
            Box::pin(async move {
                // A fetch takes a little (virtual) time, so concurrent callers overlap.
                tokio::time::sleep(Duration::from_millis(50)).await;
                respond(n)
            })
        });
        (fetcher, count)
    }

    fn ok(body: &'static str, cache_control: Option<&'static str>) -> Response<Bytes> {
        let mut res = Response::new(Bytes::from_static(body.as_bytes()));
        if let Some(cc) = cache_control {
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(cc));
        }
        res
    }

    fn limits() -> Limits {
        Limits {
            cooldown: Duration::from_secs(5),
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
            max_size: 64 * 1024,
            max_stale: Duration::from_secs(24 * 3600),
        }
    }

    fn refresher(fetcher: Fetcher) -> Arc<Refresher> {
        Arc::new(Refresher::new(
            Uri::from_static("https://issuer.example/jwks"),
            fetcher,
            limits(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_fetch() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
        let r = refresher(fetcher);
        let futures: Vec<_> = (0..20)
            .filter_map(|_| r.refresh(Algorithm::EdDSA, Some("k1")))
            .collect();
        assert_eq!(
            futures.len(),
            20,
            "every caller joins the refresh in flight"
        );
        for future in futures {
            assert_eq!(future.await.unwrap().len(), 1);
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_refresh_waits_for_the_cooldown() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
        let r = refresher(fetcher);
        r.refresh(Algorithm::EdDSA, Some("k1")).unwrap().await;
        assert!(
            r.refresh(Algorithm::EdDSA, Some("k2")).is_none(),
            "within the cooldown"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let after = r
            .refresh(Algorithm::EdDSA, Some("k3"))
            .expect("after the cooldown");
        after.await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_kid_still_unknown_after_a_refresh_is_answered_at_once_for_a_while() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
        let r = refresher(fetcher);
        assert!(
            r.refresh(Algorithm::EdDSA, Some("nope"))
                .unwrap()
                .await
                .is_some()
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(
            r.refresh(Algorithm::EdDSA, Some("nope")).is_none(),
            "negatively cached"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let again = r
            .refresh(Algorithm::EdDSA, Some("nope"))
            .expect("the negative entry expired");
        again.await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_refresh_follows_max_age_within_bounds() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, Some("public, max-age=120"))));
        let r = refresher(fetcher);
        tokio::spawn(background(Arc::downgrade(&r)));
        assert!(r.wait_for_keys(Duration::from_secs(1)).await);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(119)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_the_last_good_set_and_backs_off() {
        let (fetcher, count) = fake(|n| {
            if n == 0 {
                Ok(ok(JWKS, Some("max-age=60")))
            } else {
                Err("connection refused".into())
            }
        });
        let r = refresher(fetcher);
        tokio::spawn(background(Arc::downgrade(&r)));
        assert!(r.wait_for_keys(Duration::from_secs(1)).await);
        let first = r.current().unwrap();
        // Fetches at 60 s (fails), then 1 s, 2 s, 4 s later.
        tokio::time::sleep(Duration::from_secs(60 + 1 + 2 + 4) + Duration::from_millis(500)).await;
        assert_eq!(count.load(Ordering::SeqCst), 5);
        assert!(Arc::ptr_eq(&first, &r.current().unwrap()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_task_ends_with_the_source() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, Some("max-age=60"))));
        let r = refresher(fetcher);
        let task = tokio::spawn(background(Arc::downgrade(&r)));
        assert!(r.wait_for_keys(Duration::from_secs(1)).await);
        drop(r);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(task.is_finished());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrong_alg_or_a_missing_kid_is_remembered_like_an_unknown_kid() {
        let (fetcher, count) = fake(|_| Ok(ok(JWKS, None)));
        let r = refresher(fetcher);
        // k1 exists, but as an EdDSA key: an RS256 lookup for it is not answered.
        assert!(
            r.refresh(Algorithm::RS256, Some("k1"))
                .unwrap()
                .await
                .is_some()
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(r.refresh(Algorithm::RS256, Some("k1")).is_none());
        let none = r.refresh(Algorithm::ES256, None).expect("a new lookup");
        none.await;
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(r.refresh(Algorithm::ES256, None).is_none());
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_document_keeps_the_same_key_set() {
        let (fetcher, _count) = fake(|n| {
            Ok(if n < 2 {
                ok(JWKS, Some("max-age=60"))
            } else {
                ok(JWKS_ROTATED, Some("max-age=60"))
            })
        });
        let r = refresher(fetcher);
        tokio::spawn(background(Arc::downgrade(&r)));
        assert!(r.wait_for_keys(Duration::from_secs(1)).await);
        let first = r.current().unwrap();
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(Arc::ptr_eq(&first, &r.current().unwrap()), "same document");
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(!Arc::ptr_eq(&first, &r.current().unwrap()), "a rotation");
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_good_set_stops_verifying_after_the_maximum_stale_age() {
        let (fetcher, count) = fake(|n| {
            if n == 0 || n > 40 {
                Ok(ok(JWKS, Some("max-age=60")))
            } else {
                Err("the identity provider is down".into())
            }
        });
        let mut limits = limits();
        limits.max_stale = Duration::from_secs(3600);
        let r = Arc::new(Refresher::new(
            Uri::from_static("https://issuer.example/jwks"),
            fetcher,
            limits,
        ));
        tokio::spawn(background(Arc::downgrade(&r)));
        assert!(r.wait_for_keys(Duration::from_secs(1)).await);
        tokio::time::sleep(Duration::from_secs(1800)).await;
        assert!(r.current().is_some(), "stale but within the limit");
        tokio::time::sleep(Duration::from_secs(2400)).await;
        assert!(r.current().is_none(), "too stale: 503");
        // The endpoint comes back: the set is fetched again.
        while count.load(Ordering::SeqCst) <= 41 {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        assert!(r.wait_for_keys(Duration::from_secs(400)).await);
    }

    #[test]
    fn the_negative_cache_is_bounded_in_bytes_as_well_as_entries() {
        let (fetcher, _count) = fake(|_| Ok(ok(JWKS, None)));
        let r = refresher(fetcher);
        let long = "k".repeat(8 * 1024);
        for i in 0..200 {
            r.remember_unknown((Algorithm::EdDSA, Some(format!("{long}{i}").into())));
            let state = r.state.lock().unwrap();
            assert!(
                state.unknown_bytes <= NEGATIVE_CACHE_BYTES,
                "{}",
                state.unknown_bytes
            );
            assert!(
                state.unknown.len() < 200,
                "long kids never pile up to the entry bound"
            );
        }
        for i in 0..(NEGATIVE_CACHE_LIMIT + 10) {
            r.remember_unknown((Algorithm::EdDSA, Some(format!("{i}").into())));
        }
        assert!(r.state.lock().unwrap().unknown.len() <= NEGATIVE_CACHE_LIMIT);
    }

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
}
