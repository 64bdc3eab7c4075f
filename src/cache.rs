//! [`TokenCache`]: the verified-token cache of [`JwtAuthLayer`](crate::JwtAuthLayer).
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
//! A hit clones the cached `Claims<C>` (an `Arc`): no allocation.
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, TokenCache, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let verifier = Verifier::new(keys, Validation::new())?;
//! let layer = JwtAuthLayer::<serde_json::Value>::new(verifier)
//!     .token_cache(TokenCache::new().max_entries(50_000).max_age(Duration::from_secs(60)));
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use quick_cache::Weighter;

use crate::claims::Claims;
use crate::keys::KeySet;
use crate::validation::unix_now as now;

/// Verified-token cache settings; see the [module docs](self).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct TokenCache {
    max_entries: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
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

#[derive(Clone)]
struct Weigh {
    floor: u64,
    overhead: u64,
}

impl<C> Weighter<Box<str>, Arc<Entry<C>>> for Weigh {
    fn weight(&self, key: &Box<str>, _val: &Arc<Entry<C>>) -> u64 {
        // The claims are about as large as the token's payload.
        (2 * key.len() as u64 + self.overhead).max(self.floor)
    }
}

struct Entry<C> {
    claims: Claims<C>,
    /// The key set the token was verified with: a different set (rotation) means re-verify.
    keys: Arc<KeySet>,
    /// Unix seconds after which the entry is not used.
    valid_until: u64,
}

pub(crate) struct Cache<C> {
    map: quick_cache::sync::Cache<Box<str>, Arc<Entry<C>>, Weigh>,
    max_age: u64,
    leeway: u64,
}

impl<C> Cache<C> {
    /// The cached claims, if `token` verified with this same key set and is still in date.
    pub(crate) fn get(&self, token: &str, keys: &Arc<KeySet>) -> Option<Claims<C>> {
        let entry = self.map.get(token)?;
        if Arc::ptr_eq(keys, &entry.keys) && now() < entry.valid_until {
            Some(entry.claims.clone())
        } else {
            self.map.remove(token);
            None
        }
    }

    /// Remember a token that has just verified.
    pub(crate) fn insert(&self, token: &str, claims: &Claims<C>, keys: Arc<KeySet>) {
        let Some(exp) = claims.registered().exp else {
            return;
        };
        let valid_until = exp
            .saturating_add(self.leeway)
            .min(now().saturating_add(self.max_age));
        self.map.insert(
            token.into(),
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
    use crate::{Algorithm, RegisteredClaims, VerifyingKey};

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
        let cache = TokenCache::new().build::<u32>(0).unwrap();
        let keys = keys();
        let c = claims(now() + 60);
        cache.insert("a.b.c", &c, Arc::clone(&keys));
        let hit = cache.get("a.b.c", &keys).unwrap();
        assert!(hit.same_as(&c));
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = TokenCache::new().build::<u32>(0).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() + 60), Arc::clone(&keys));
        assert!(cache.get("a.b.d", &keys).is_none());
        assert!(cache.get("a.b.c ", &keys).is_none());
        assert!(cache.get("a.b", &keys).is_none());
    }

    #[test]
    fn an_expired_entry_is_not_used() {
        let cache = TokenCache::new().build::<u32>(0).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() - 1), Arc::clone(&keys));
        assert!(cache.get("a.b.c", &keys).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn leeway_extends_an_entry_as_verification_would() {
        let cache = TokenCache::new().build::<u32>(60).unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() - 1), Arc::clone(&keys));
        assert!(cache.get("a.b.c", &keys).is_some());
    }

    #[test]
    fn max_age_caps_an_entry() {
        let cache = TokenCache::new()
            .max_age(Duration::ZERO)
            .build::<u32>(0)
            .unwrap();
        let keys = keys();
        cache.insert("a.b.c", &claims(now() + 600), Arc::clone(&keys));
        assert!(cache.get("a.b.c", &keys).is_none());
    }

    #[test]
    fn another_key_set_means_no_hit() {
        let cache = TokenCache::new().build::<u32>(0).unwrap();
        cache.insert("a.b.c", &claims(now() + 60), keys());
        assert!(cache.get("a.b.c", &keys()).is_none());
    }

    #[test]
    fn entries_are_bounded() {
        let cache = TokenCache::new().max_entries(100).build::<u32>(0).unwrap();
        let keys = keys();
        for i in 0..1000 {
            cache.insert(
                &format!("token-{i}"),
                &claims(now() + 60),
                Arc::clone(&keys),
            );
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }

    #[test]
    fn memory_is_bounded() {
        let cache = TokenCache::new()
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
            );
        }
        assert!(cache.len() <= 8, "{}", cache.len());
    }

    #[test]
    fn disabled_cache_is_none() {
        assert!(TokenCache::disabled().build::<u32>(0).is_none());
    }
}
