//! [`ReplayCache`]: every proof's `jti` is accepted once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// The future of a [`ReplayCache`] that asks a shared store.
pub type ReplayFuture =
    Pin<Box<dyn Future<Output = Result<bool, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

/// What a [`ReplayCache`] answers.
#[non_exhaustive]
pub enum ReplayCheck {
    /// First use: the proof may pass.
    Fresh,
    /// Seen before: the proof is a replay.
    Replayed,
    /// The cache could not take the entry (it is full): answered with 503, retry later.
    Full,
    /// Asking a shared store: `Ok(true)` for a first use, `Ok(false)` for a replay, `Err` when
    /// the store is unreachable (503).
    Pending(ReplayFuture),
}

impl fmt::Debug for ReplayCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fresh => "Fresh",
            Self::Replayed => "Replayed",
            Self::Full => "Full",
            Self::Pending(_) => "Pending",
        })
    }
}

/// One use of a proof, for [`ReplayCache::first_use`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayEntry {
    /// A digest of the proof's key and `jti`: what must be seen only once.
    pub id: [u8; 16],
    /// A digest of the proof's key (its thumbprint) alone: lets a cache give each client key
    /// its share of the room.
    pub key: [u8; 16],
    /// Until when the entry must be kept (Unix seconds): after that the proof's `iat` is too
    /// old for it to be accepted anyway.
    pub expires_at: u64,
}

impl ReplayEntry {
    /// An entry for `id` (a digest of the proof's key and `jti`) of the client key digested as
    /// `key`, kept until `expires_at` (Unix seconds).
    #[must_use]
    pub const fn new(id: [u8; 16], key: [u8; 16], expires_at: u64) -> Self {
        Self {
            id,
            key,
            expires_at,
        }
    }
}

/// Remembers the DPoP proofs already accepted, so that each is accepted once (RFC 9449 §11.1).
///
/// Only proofs of requests that succeeded otherwise reach the cache (a valid bound access
/// token, a right password, a valid refresh token): anonymous traffic cannot fill it.
/// [`MemoryReplayCache`] serves one process; a store shared by every node (the session
/// store through [`StoreReplayCache`], such as the Redis store of `tower-jwt-auth-redis`)
/// stops a proof replayed against another node too.
pub trait ReplayCache: Send + Sync + 'static {
    /// Record `entry` until its `expires_at` and say whether its `id` is new.
    fn first_use(&self, entry: &ReplayEntry) -> ReplayCheck;
}

/// A [`ReplayCache`] in this process's memory: one node, or nodes behind a load balancer that
/// sends each client to the same node.
///
/// Bounded: past `capacity` live entries (default one million, about 40 MB) new proofs are
/// refused with 503 until old ones expire, and one client key may hold at most its share
/// (default an eighth of the capacity: 125,000 proofs a minute, about 2,000 a second), so a
/// client flooding the cache with its own proofs is refused long before the others are. Entries sit in buckets by expiry time (ten seconds
/// each) that are dropped whole once they expire: an insert costs the same whether the cache
/// is empty or full, and the memory of expired entries is given back.
pub struct MemoryReplayCache {
    state: Mutex<Buckets>,
    capacity: usize,
    per_key: u32,
}

/// How many seconds of expiry times one bucket holds.
const BUCKET_SECS: u64 = 10;

#[derive(Default)]
struct Buckets {
    /// Ordered by `end`, the oldest first.
    queue: VecDeque<Bucket>,
    /// Entries in all buckets.
    len: usize,
}

struct Bucket {
    /// Every entry expires before this (Unix seconds): the bucket goes at `end`.
    end: u64,
    ids: HashSet<[u8; 16]>,
    /// How many of `ids` each client key holds.
    per_key: HashMap<[u8; 16], u32>,
}

impl Buckets {
    /// Drop the buckets whose entries have all expired.
    fn expire(&mut self, now: u64) {
        while self.queue.front().is_some_and(|b| b.end <= now) {
            if let Some(bucket) = self.queue.pop_front() {
                self.len -= bucket.ids.len();
            }
        }
    }

    fn seen(&self, id: &[u8; 16]) -> bool {
        self.queue.iter().any(|b| b.ids.contains(id))
    }

    fn held_by(&self, key: &[u8; 16]) -> u32 {
        self.queue
            .iter()
            .filter_map(|b| b.per_key.get(key))
            .fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// The bucket for entries expiring at `expires_at`, made if need be.
    fn bucket_for(&mut self, expires_at: u64) -> &mut Bucket {
        let end = (expires_at / BUCKET_SECS)
            .saturating_add(1)
            .saturating_mul(BUCKET_SECS);
        // Almost always the newest bucket; a clock step back may need an older one.
        let at = self.queue.partition_point(|b| b.end < end);
        if self.queue.get(at).is_none_or(|b| b.end != end) {
            self.queue.insert(
                at,
                Bucket {
                    end,
                    ids: HashSet::new(),
                    per_key: HashMap::new(),
                },
            );
        }
        &mut self.queue[at]
    }
}

impl MemoryReplayCache {
    /// An empty cache holding up to one million live entries.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(1_000_000)
    }

    /// An empty cache holding up to `capacity` live entries, an eighth of them (at least one)
    /// per client key.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            state: Mutex::new(Buckets::default()),
            capacity,
            per_key: u32::try_from(capacity / 8).unwrap_or(u32::MAX).max(1),
        }
    }

    /// The most live entries one client key may hold (default: an eighth of the capacity).
    /// A client past it gets 503 for its new proofs until its older ones expire; a client
    /// that really sends more than this many requests per proof lifetime needs a larger
    /// share.
    #[must_use]
    pub fn per_key_limit(mut self, limit: u32) -> Self {
        self.per_key = limit.max(1);
        self
    }

    /// The number of entries held now (expired ones included until their bucket goes).
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.len)
    }

    /// Whether the cache holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many time buckets are held (each is dropped whole when its entries expire).
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.state.lock().map_or(0, |s| s.queue.len())
    }

    fn check(&self, entry: &ReplayEntry, now: u64) -> ReplayCheck {
        let Ok(mut state) = self.state.lock() else {
            return ReplayCheck::Full;
        };
        state.expire(now);
        if state.seen(&entry.id) {
            return ReplayCheck::Replayed;
        }
        if state.len >= self.capacity || state.held_by(&entry.key) >= self.per_key {
            return ReplayCheck::Full;
        }
        let bucket = state.bucket_for(entry.expires_at);
        bucket.ids.insert(entry.id);
        *bucket.per_key.entry(entry.key).or_insert(0) += 1;
        state.len += 1;
        ReplayCheck::Fresh
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("per_key_limit", &self.per_key)
            .finish()
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, entry: &ReplayEntry) -> ReplayCheck {
        self.check(entry, crate::time::unix_now())
    }
}

/// A [`ReplayCache`] in a shared store ([`OneTimeStore::first_use`]): with a Redis store
/// shared by every node, a proof accepted by one node is refused by all (feature `sessions`). Each check is one round trip to the store, which the
/// layer waits for (so not with [`JwtAuthLayer::never_wait`](crate::JwtAuthLayer::never_wait)).
///
/// [`OneTimeStore::first_use`]: crate::session::OneTimeStore::first_use
#[cfg(feature = "sessions")]
#[derive(Clone, Debug)]
pub struct StoreReplayCache {
    store: std::sync::Arc<dyn crate::session::OneTimeStore>,
}

#[cfg(feature = "sessions")]
impl StoreReplayCache {
    /// Proofs recorded in `store` (the sessions' store, shared through an `Arc`).
    #[must_use]
    pub fn new(store: impl crate::session::OneTimeStore) -> Self {
        Self::shared(std::sync::Arc::new(store))
    }

    /// Proofs recorded in a store already shared through an `Arc`.
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn shared(store: std::sync::Arc<dyn crate::session::OneTimeStore>) -> Self {
        Self { store }
    }
}

#[cfg(feature = "sessions")]
impl ReplayCache for StoreReplayCache {
    fn first_use(&self, entry: &ReplayEntry) -> ReplayCheck {
        let store = std::sync::Arc::clone(&self.store);
        let ttl = std::time::Duration::from_secs(
            entry
                .expires_at
                .saturating_sub(crate::time::unix_now())
                .max(1),
        );
        let id = entry.id;
        ReplayCheck::Pending(Box::pin(async move {
            let key = crate::text::hex(&id);
            store.first_use(&key, ttl).await.map_err(Into::into)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, key: u8, expires_at: u64) -> ReplayEntry {
        let mut bytes = [0; 16];
        bytes[..4].copy_from_slice(&id.to_be_bytes());
        ReplayEntry {
            id: bytes,
            key: [key; 16],
            expires_at,
        }
    }

    fn fresh(check: &ReplayCheck) -> bool {
        matches!(check, ReplayCheck::Fresh)
    }

    #[test]
    fn an_id_is_fresh_once_until_it_expires() {
        let cache = MemoryReplayCache::new();
        assert!(fresh(&cache.check(&entry(1, 0, 100), 10)));
        assert!(matches!(
            cache.check(&entry(1, 0, 100), 50),
            ReplayCheck::Replayed
        ));
        assert!(matches!(
            cache.check(&entry(1, 0, 100), 100),
            ReplayCheck::Replayed
        ));
        assert!(fresh(&cache.check(&entry(2, 0, 100), 50)));
        // Past its expiry (and its bucket's end) the entry no longer counts: the proof's iat
        // is too old by then.
        assert!(fresh(&cache.check(&entry(1, 0, 200), 111)));
    }

    #[test]
    fn memory_is_bounded_and_expired_buckets_go_whole() {
        let cache = MemoryReplayCache::with_capacity(2000).per_key_limit(2000);
        for i in 0..2000 {
            assert!(fresh(&cache.check(&entry(i, 0, 10), 0)), "{i}");
        }
        assert!(matches!(
            cache.check(&entry(9999, 0, 10), 0),
            ReplayCheck::Full
        ));
        assert_eq!(cache.buckets(), 1);
        // Once they expire, their bucket goes and makes room.
        assert!(fresh(&cache.check(&entry(9999, 0, 30), 20)));
        assert_eq!((cache.len(), cache.buckets()), (1, 1));
    }

    #[test]
    fn one_key_cannot_fill_the_cache_for_everyone() {
        let cache = MemoryReplayCache::with_capacity(800);
        // A flood from one key: refused at its share (an eighth).
        let mut admitted = 0;
        for i in 0..5000 {
            if fresh(&cache.check(&entry(i, 1, 60), 0)) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100);
        // Every other client still gets in.
        for key in 2..=15 {
            assert!(fresh(
                &cache.check(&entry(100_000 + u32::from(key), key, 60), 0)
            ));
        }
        // The flooding key gets its room back as its proofs expire.
        assert!(fresh(&cache.check(&entry(7, 1, 200), 70)));
    }

    #[test]
    fn a_clock_step_back_files_entries_in_order() {
        let cache = MemoryReplayCache::new();
        assert!(fresh(&cache.check(&entry(1, 0, 500), 400)));
        assert!(fresh(&cache.check(&entry(2, 0, 100), 50)));
        assert!(fresh(&cache.check(&entry(3, 0, 300), 50)));
        assert_eq!(cache.buckets(), 3);
        // The early bucket goes first; the others stay.
        assert!(matches!(
            cache.check(&entry(1, 0, 500), 150),
            ReplayCheck::Replayed
        ));
        assert_eq!((cache.len(), cache.buckets()), (2, 2));
    }

    /// This process's resident memory in MB (Linux; 0 elsewhere).
    fn rss_mb() -> u64 {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096 / (1024 * 1024))
    }

    /// A flood at capacity (one million entries): every insert past the limit is refused
    /// without a sweep, and when the flood's entries expire their buckets are dropped whole and
    /// the memory is given back. Figures are printed for the record (`--nocapture`), not
    /// asserted: timings and resident memory depend on the machine and the other tests.
    #[test]
    fn a_flood_at_capacity_costs_no_sweep_and_is_given_back() {
        let before = rss_mb();
        let cache = MemoryReplayCache::new().per_key_limit(u32::MAX);
        let started = std::time::Instant::now();
        for i in 0..1_000_000 {
            let expires = 60 + u64::from(i % 50);
            assert!(fresh(
                &cache.check(&entry(i, u8::try_from(i % 251).unwrap(), expires), 0)
            ));
        }
        let filled = (started.elapsed(), rss_mb());
        let started = std::time::Instant::now();
        for i in 0..200_000 {
            assert!(matches!(
                cache.check(&entry(2_000_000 + i, 3, 100), 1),
                ReplayCheck::Full
            ));
        }
        let refused = started.elapsed();
        assert_eq!((cache.len(), cache.buckets()), (1_000_000, 5));
        // All expired: the next insert drops every old bucket.
        assert!(fresh(&cache.check(&entry(5, 5, 300), 200)));
        assert_eq!((cache.len(), cache.buckets()), (1, 1));
        println!(
            "replay cache flood: 1,000,000 inserts in {:?} (RSS {before} -> {} MB); 200,000 \
             refused at capacity in {refused:?}; after expiry RSS {} MB",
            filled.0,
            filled.1,
            rss_mb()
        );
    }
}
