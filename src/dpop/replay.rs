//! [`ReplayCache`]: every proof's `jti` is accepted once.

use std::collections::HashMap;
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

/// Remembers the DPoP proofs already accepted, so that each is accepted once (RFC 9449 §11.1).
///
/// An entry only needs to live until `expires_at`: after that the proof's `iat` is too old for
/// it to be accepted anyway. [`MemoryReplayCache`] serves one process; a store shared by
/// every node (the session store's
/// [`RedisStore`](crate::session::RedisStore) with the `redis` feature) stops a proof replayed
/// against another node too.
pub trait ReplayCache: Send + Sync + 'static {
    /// Record `id` (a digest of the proof's key and `jti`) until `expires_at` (Unix seconds)
    /// and say whether it is new.
    fn first_use(&self, id: [u8; 16], expires_at: u64) -> ReplayCheck;
}

/// A [`ReplayCache`] in this process's memory: one node, or nodes behind a load balancer that
/// sends each client to the same node. Bounded: past `capacity` live entries (default one
/// million, about 40 MB) new proofs are refused with 503 until old ones expire.
pub struct MemoryReplayCache {
    state: Mutex<State>,
    capacity: usize,
}

struct State {
    seen: HashMap<[u8; 16], u64>,
    /// Sweep expired entries when the map reaches this size.
    sweep_at: usize,
}

impl MemoryReplayCache {
    /// An empty cache holding up to one million live entries.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(1_000_000)
    }

    /// An empty cache holding up to `capacity` live entries.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                seen: HashMap::new(),
                sweep_at: 1024.min(capacity.max(1)),
            }),
            capacity: capacity.max(1),
        }
    }

    /// The number of entries held now (expired ones included until the next sweep).
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.seen.len())
    }

    /// Whether the cache holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, id: [u8; 16], expires_at: u64, now: u64) -> ReplayCheck {
        let Ok(mut state) = self.state.lock() else {
            return ReplayCheck::Full;
        };
        if let Some(&until) = state.seen.get(&id)
            && until >= now
        {
            return ReplayCheck::Replayed;
        }
        if state.seen.len() >= state.sweep_at {
            state.seen.retain(|_, until| *until >= now);
            // Amortised: the next sweep when the live set has doubled.
            state.sweep_at = (state.seen.len() * 2).clamp(1024.min(self.capacity), self.capacity);
            if state.seen.len() >= self.capacity {
                return ReplayCheck::Full;
            }
        }
        state.seen.insert(id, expires_at);
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
            .finish()
    }
}

impl ReplayCache for MemoryReplayCache {
    fn first_use(&self, id: [u8; 16], expires_at: u64) -> ReplayCheck {
        self.check(id, expires_at, crate::validation::unix_now())
    }
}

/// A [`ReplayCache`] in a session store ([`SessionStore::first_use`]): with a
/// [`RedisStore`](crate::session::RedisStore) shared by every node, a proof accepted by one node
/// is refused by all (feature `sessions`). Each check is one round trip to the store, which the
/// layer waits for (so not with [`JwtAuthLayer::never_refresh`](crate::JwtAuthLayer::never_refresh)).
///
/// [`SessionStore::first_use`]: crate::session::SessionStore::first_use
#[cfg(feature = "sessions")]
#[cfg_attr(docsrs, doc(cfg(feature = "sessions")))]
#[derive(Clone, Debug)]
pub struct StoreReplayCache {
    store: std::sync::Arc<dyn crate::session::SessionStore>,
}

#[cfg(feature = "sessions")]
impl StoreReplayCache {
    /// Proofs recorded in `store`; [`Sessions::store`](crate::session::Sessions::store) gives
    /// the one the sessions use.
    #[must_use]
    pub fn new(store: std::sync::Arc<dyn crate::session::SessionStore>) -> Self {
        Self { store }
    }
}

#[cfg(feature = "sessions")]
impl ReplayCache for StoreReplayCache {
    fn first_use(&self, id: [u8; 16], expires_at: u64) -> ReplayCheck {
        let store = std::sync::Arc::clone(&self.store);
        let ttl = std::time::Duration::from_secs(
            expires_at
                .saturating_sub(crate::validation::unix_now())
                .max(1),
        );
        ReplayCheck::Pending(Box::pin(async move {
            let key = crate::text::hex(&id);
            store.first_use(&key, ttl).await.map_err(Into::into)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(check: &ReplayCheck) -> bool {
        matches!(check, ReplayCheck::Fresh)
    }

    #[test]
    fn an_id_is_fresh_once_until_it_expires() {
        let cache = MemoryReplayCache::new();
        assert!(fresh(&cache.check([1; 16], 100, 10)));
        assert!(matches!(
            cache.check([1; 16], 100, 50),
            ReplayCheck::Replayed
        ));
        assert!(fresh(&cache.check([2; 16], 100, 50)));
        // Past its expiry the entry no longer counts (the proof's iat is too old by then).
        assert!(fresh(&cache.check([1; 16], 200, 101)));
    }

    #[test]
    fn memory_is_bounded_and_expired_entries_are_swept() {
        let cache = MemoryReplayCache::with_capacity(2000);
        for i in 0..2000u32 {
            let mut id = [0; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            assert!(fresh(&cache.check(id, 10, 0)), "{i}");
        }
        assert!(matches!(cache.check([9; 16], 10, 0), ReplayCheck::Full));
        // Once they expire, the sweep makes room.
        assert!(fresh(&cache.check([9; 16], 30, 11)));
        assert!(cache.len() < 10);
    }
}
