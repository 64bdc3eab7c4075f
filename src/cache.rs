//! [`CacheSettings`]: the verified-token cache of [`JwtAuthLayer`](crate::auth::JwtAuthLayer).
//!
//! A token the layer has verified is remembered with its claims, so the next request with the
//! same token skips the signature check and the JSON parsing (a few µs for HMAC, tens of µs for
//! RSA and ECDSA). It is safe by construction:
//!
//! - the key is the **whole token**: a hash finds the entry and an exact comparison confirms it,
//!   so no collision can authenticate a different token, and a tampered token never hits;
//! - only tokens that verified are stored; invalid ones are never cached;
//! - an entry never outlives the token's `exp` (plus the leeway) nor the configured maximum age
//!   (default 5 minutes), and it is dropped when the key source's key set changes (rotation);
//! - the cache is bounded in entries (default 10 000) and memory (default 32 MiB);
//! - authorization layers after this one still run on every request.
//!
//! The exact bytes are a lookup shortcut, not an identity: an ECDSA token has other valid
//! encodings (signatures are malleable), which simply miss and are verified. Never key
//! revocation or replay state on the token string; use its `jti` or session id.
//!
//! A hit clones the cached `Claims<C>` (an `Arc`): no allocation.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, CacheSettings, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let verifier = Verifier::new(keys, Validation::new())?;
//! let layer = JwtAuthLayer::<serde_json::Value>::new(verifier)
//!     .token_cache(CacheSettings::new().max_entries(50_000).max_age(Duration::from_secs(60)));
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quick_cache::{Equivalent, Weighter};

use crate::claims::Claims;
use crate::keys::KeySet;

/// Verified-token cache settings; see the [module docs](self).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct CacheSettings {
    max_entries: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheSettings {
    /// The defaults: 10 000 entries, 32 MiB, 5 minutes.
    pub fn new() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 32 * 1024 * 1024,
            max_age: Duration::from_secs(300),
        }
    }

    /// At most this many tokens (0 disables the cache).
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// At most about this many bytes of tokens and claims.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// No entry lives longer than this (it also never outlives the token's `exp`).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// No cache: every request verifies its token.
    pub fn disabled() -> Self {
        Self::new().max_entries(0)
    }

    pub(crate) fn build<C>(&self, leeway: u64) -> Option<Cache<C>> {
        if self.max_entries == 0 || self.max_bytes == 0 {
            return None;
        }
        // Every entry weighs at least `floor`, so the weight bound also bounds the entry count.
        let floor = (self.max_bytes / self.max_entries).max(1) as u64;
        let weighter = Weigh {
            floor,
            overhead: std::mem::size_of::<Entry<C>>() as u64 + 64,
        };
        Some(Cache {
            map: quick_cache::sync::Cache::with_weighter(
                self.max_entries,
                self.max_bytes as u64,
                weighter,
            ),
            max_age: self.max_age.as_secs(),
            leeway,
        })
    }
}

/// How many bytes at the end of a token are hashed: they are the end of its signature, as
/// unpredictable as the token itself. Lookups still compare the whole token.
const HASHED_TAIL: usize = 32;

/// Hash a token by its tail, folded into one word so the keyed hasher mixes 8 bytes, not 32.
fn hash_token<H: Hasher>(token: &[u8], state: &mut H) {
    match token.last_chunk::<HASHED_TAIL>() {
        Some(tail) => {
            let (words, _) = tail.as_chunks::<8>();
            let folded = words
                .iter()
                .fold(0u64, |acc, w| acc.rotate_left(17) ^ u64::from_le_bytes(*w));
            state.write_u64(folded);
        }
        // Shorter than any signed token: hash it whole.
        None => state.write(token),
    }
}

/// A cached token: the whole value, hashed by its tail. Only tokens that verified are stored,
/// so nobody can fill one bucket with look-alike tails; a collision would only cost a compare.
struct TokenKey(Box<[u8]>);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(&self.0, state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for TokenKey {}

/// A token being looked up, as bytes straight from the request.
struct TokenRef<'a>(&'a [u8]);

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_token(self.0, state);
    }
}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        // The exact comparison: the whole token, byte for byte.
        *self.0 == *key.0
    }
}

#[derive(Clone)]
struct Weigh {
    floor: u64,
    overhead: u64,
}

impl<C> Weighter<TokenKey, Arc<Entry<C>>> for Weigh {
    fn weight(&self, key: &TokenKey, _val: &Arc<Entry<C>>) -> u64 {
        // The claims are about as large as the token's payload.
        (2 * key.0.len() as u64 + self.overhead).max(self.floor)
    }
}

struct Entry<C> {
    claims: Claims<C>,
    /// The key set the token was verified with: a different set (rotation) means re-verify.
    keys: Arc<KeySet>,
    /// The entry is used strictly before this time (a whole Unix second). Kept as a
    /// `SystemTime` so a hit compares it with the clock directly, with no conversion.
    valid_until: SystemTime,
}

pub(crate) struct Cache<C> {
    map: quick_cache::sync::Cache<TokenKey, Arc<Entry<C>>, Weigh>,
    max_age: u64,
    leeway: u64,
}

impl<C> Cache<C> {
    /// The cached claims, if `token` verified with this same key set and is still in date.
    ///
    /// `token` is the credential's bytes as found in the request, before any other check: only
    /// a token byte-for-byte equal to one that verified can hit.
    #[cfg(test)]
    pub(crate) fn get(&self, token: &[u8], keys: &Arc<KeySet>) -> Option<Claims<C>> {
        self.get_at(token, keys, SystemTime::now())
    }

    /// As `get`, at `now` (read once per request and shared with the other per-request checks).
    #[inline]
    pub(crate) fn get_at(
        &self,
        token: &[u8],
        keys: &Arc<KeySet>,
        now: SystemTime,
    ) -> Option<Claims<C>> {
        let entry = self.map.get(&TokenRef(token))?;
        if Arc::ptr_eq(keys, &entry.keys) && now < entry.valid_until {
            Some(entry.claims.clone())
        } else {
            self.map.remove(&TokenRef(token));
            None
        }
    }

    /// Remember a token that has just verified, at `now` (Unix seconds).
    pub(crate) fn insert(&self, token: &str, claims: &Claims<C>, keys: Arc<KeySet>, now: u64) {
        let Some(exp) = claims.registered().exp else {
            return;
        };
        let until = exp
            .saturating_add(self.leeway)
            .min(now.saturating_add(self.max_age));
        let Some(valid_until) = UNIX_EPOCH.checked_add(Duration::from_secs(until)) else {
            return;
        };
        self.map.insert(
            TokenKey(token.as_bytes().into()),
            Arc::new(Entry {
                claims: claims.clone(),
                keys,
                valid_until,
            }),
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::RegisteredClaims;
    use crate::keys::VerifyingKey;
    use crate::time::unix_now as now;
    use jsonwebtoken::Algorithm;

    fn keys() -> Arc<KeySet> {
        Arc::new(KeySet::from(
            VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32]).unwrap(),
        ))
    }

    fn claims(exp: u64) -> Claims<u32> {
        let registered: RegisteredClaims =
            serde_json::from_value(serde_json::json!({ "exp": exp })).unwrap();
        Claims::new(7, registered)
    }

    #[test]
    fn a_hit_shares_the_claims() {
        let cache = CacheSettings::new().build::<u32>(0).unwrap();
        let keys = keys();
        let c = claims(now() + 60);
        cache.insert("a.b.c", &c, Arc::clone(&keys), now());
        let hit = cache.get(b"a.b.c", &keys).unwrap();
        assert!(hit.same_as(&c));
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = CacheSettings::new().build::<u32>(0).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() + 60), Arc::clone(&keys), now());
        assert!(cache.get(b"a.b.d", &keys).is_none());
        assert!(cache.get(b"a.b.c ", &keys).is_none());
        assert!(cache.get(b"a.b", &keys).is_none());
    }

    #[test]
    fn tokens_with_the_same_tail_are_told_apart() {
        let cache = CacheSettings::new().build::<u32>(0).unwrap();
        let keys = keys();
        let tail = "x".repeat(HASHED_TAIL);
        cache.insert(
            &format!("a.{tail}"),
            &claims(now() + 60),
            Arc::clone(&keys),
            now(),
        );
        assert!(cache.get(format!("b.{tail}").as_bytes(), &keys).is_none());
        assert!(cache.get(tail.as_bytes(), &keys).is_none());
        assert!(cache.get(format!("a.{tail}").as_bytes(), &keys).is_some());
    }

    #[test]
    fn an_expired_entry_is_not_used() {
        let cache = CacheSettings::new().build::<u32>(0).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() - 1), Arc::clone(&keys), now());
        assert!(cache.get(b"a.b.c", &keys).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn leeway_extends_an_entry_as_verification_would() {
        let cache = CacheSettings::new().build::<u32>(60).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() - 1), Arc::clone(&keys), now());
        assert!(cache.get(b"a.b.c", &keys).is_some());
    }

    #[test]
    fn max_age_caps_an_entry() {
        let cache = CacheSettings::new()
            .max_age(Duration::ZERO)
            .build::<u32>(0)
            .unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() + 600), Arc::clone(&keys), now());
        assert!(cache.get(b"a.b.c", &keys).is_none());
    }

    #[test]
    fn another_key_set_means_no_hit() {
        let cache = CacheSettings::new().build::<u32>(0).unwrap();
        cache.insert("a.b.c", &claims(now() + 60), keys(), now());
        assert!(cache.get(b"a.b.c", &keys()).is_none());
    }

    #[test]
    fn entries_are_bounded() {
        let cache = CacheSettings::new()
            .max_entries(100)
            .build::<u32>(0)
            .unwrap();
        let keys = keys();
        for i in 0..1000 {
            cache.insert(
                &format!("token-{i}"),
                &claims(now() + 60),
                Arc::clone(&keys),
                now(),
            );
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }

    #[test]
    fn memory_is_bounded() {
        let cache = CacheSettings::new()
            .max_bytes(64 * 1024)
            .build::<u32>(0)
            .unwrap();
        let keys = keys();
        let long = "x".repeat(4000);
        for i in 0..1000 {
            cache.insert(
                &format!("{long}{i}"),
                &claims(now() + 60),
                Arc::clone(&keys),
                now(),
            );
        }
        assert!(cache.len() <= 8, "{}", cache.len());
    }

    #[test]
    fn disabled_cache_is_none() {
        assert!(CacheSettings::disabled().build::<u32>(0).is_none());
    }
}
