//! [`KeyRing`]: the issuer's signing keys, with rotation.
//!
//! A rotation publishes the new key at once and lets it sign only after a delay (default
//! 10 minutes), so every verifier that refreshes its JWKS in that time already knows the key when
//! the first token signed with it arrives. The key it replaces stops signing then, and stays
//! published until every token it signed has expired (the retention, default 16 minutes: the
//! default 15-minute token lifetime plus the 60 s leeway).
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::{Algorithm, JwksService, KeyRing, SigningKey};
//! use tower_jwt_auth::login::TokenIssuer;
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let first = SigningKey::from_secret(Algorithm::HS256, [1u8; 32])?.with_kid("2026-11");
//! let ring = KeyRing::new(first)
//!     .rotation_delay(Duration::from_secs(600))
//!     .retention(Duration::from_secs(960));
//! let issuer = TokenIssuer::with_key_ring(ring.clone());
//! let jwks = JwksService::from_key_ring(ring.clone());
//!
//! // Later (say monthly): publish the next key; it signs ten minutes from now.
//! ring.rotate(SigningKey::from_secret(Algorithm::HS256, [2u8; 32])?.with_kid("2026-12"));
//! assert_eq!(ring.signing_key().kid(), Some("2026-11"));
//! assert_eq!(ring.published().len(), 2);
//! # let _ = (issuer, jwks);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::keys::{KeySet, SigningKey};

/// Default delay between publishing a new key and signing with it.
pub const DEFAULT_ROTATION_DELAY: Duration = Duration::from_secs(600);
/// Default time a replaced key stays published: the default 900 s token lifetime plus the
/// default 60 s leeway.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(960);

struct Entry {
    key: SigningKey,
    signs_from: SystemTime,
}

struct Ring {
    /// Oldest first. The signer is the newest entry whose `signs_from` has passed.
    entries: Vec<Entry>,
    rotation_delay: Duration,
    retention: Duration,
}

impl Ring {
    fn signer_index(&self, now: SystemTime) -> usize {
        self.entries
            .iter()
            .rposition(|e| e.signs_from <= now)
            .unwrap_or(0)
    }

    /// Drop the oldest keys whose retention has passed. A key retires when its successor
    /// starts signing.
    fn prune(&mut self, now: SystemTime) {
        let signer = self.signer_index(now);
        let retention = self.retention;
        let expired = (0..signer)
            .take_while(|i| {
                self.entries[i + 1]
                    .signs_from
                    .checked_add(retention)
                    .is_some_and(|until| until <= now)
            })
            .count();
        self.entries.drain(..expired);
    }
}

/// The issuer's signing keys with rotation. Cheap to clone; clones share the ring.
///
/// See the [module docs](self) for the rotation procedure and an example.
#[derive(Clone)]
pub struct KeyRing {
    ring: Arc<Mutex<Ring>>,
}

impl KeyRing {
    /// A ring whose only key signs at once.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        Self {
            ring: Arc::new(Mutex::new(Ring {
                entries: vec![Entry {
                    key,
                    signs_from: SystemTime::UNIX_EPOCH,
                }],
                rotation_delay: DEFAULT_ROTATION_DELAY,
                retention: DEFAULT_RETENTION,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent (every update is
        // a single push or retain), so a poisoned lock is still usable.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a new key is published before it signs (default 10 minutes). Set it longer
    /// than the verifiers' JWKS refresh interval.
    #[must_use]
    pub fn rotation_delay(self, delay: Duration) -> Self {
        self.lock().rotation_delay = delay;
        self
    }

    /// How long a replaced key stays published after it stops signing (default 16 minutes).
    /// Set it to the longest token lifetime plus the verifiers' leeway.
    #[must_use]
    pub fn retention(self, retention: Duration) -> Self {
        self.lock().retention = retention;
        self
    }

    /// Publish `key` now; it signs after the rotation delay, and the key it replaces then
    /// stays published for the retention time.
    pub fn rotate(&self, key: SigningKey) {
        let mut ring = self.lock();
        let now = SystemTime::now();
        let signs_from = now.checked_add(ring.rotation_delay).unwrap_or(now);
        ring.prune(now);
        ring.entries.push(Entry { key, signs_from });
    }

    /// The key that signs now.
    #[must_use]
    pub fn signing_key(&self) -> SigningKey {
        let ring = self.lock();
        let index = ring.signer_index(SystemTime::now());
        ring.entries[index].key.clone()
    }

    /// The verifying keys to publish now: the signer, keys waiting to sign, and replaced keys
    /// within their retention.
    #[must_use]
    pub fn published(&self) -> KeySet {
        let mut ring = self.lock();
        ring.prune(SystemTime::now());
        ring.entries
            .iter()
            .filter_map(|e| e.key.verifying_key().ok())
            .collect()
    }
}

impl From<SigningKey> for KeyRing {
    fn from(key: SigningKey) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.lock();
        let kids: Vec<_> = ring.entries.iter().map(|e| e.key.kid()).collect();
        f.debug_struct("KeyRing")
            .field("kids", &kids)
            .field("rotation_delay", &ring.rotation_delay)
            .field("retention", &ring.retention)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey::from_secret(Algorithm::HS256, [byte; 32])
            .unwrap()
            .with_kid(kid)
    }

    fn kids(set: &KeySet) -> Vec<String> {
        set.iter()
            .filter_map(|k| k.kid().map(ToOwned::to_owned))
            .collect()
    }

    #[test]
    fn new_key_is_published_at_once_and_signs_after_the_delay() {
        let ring = KeyRing::new(key("a", 1)).rotation_delay(Duration::from_millis(100));
        ring.rotate(key("b", 2));
        assert_eq!(ring.signing_key().kid(), Some("a"));
        assert_eq!(kids(&ring.published()), ["a", "b"]);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(ring.signing_key().kid(), Some("b"));
    }

    #[test]
    fn replaced_key_stays_published_for_the_retention_then_goes() {
        let ring = KeyRing::new(key("a", 1))
            .rotation_delay(Duration::ZERO)
            .retention(Duration::from_millis(150));
        ring.rotate(key("b", 2));
        assert_eq!(ring.signing_key().kid(), Some("b"));
        assert_eq!(kids(&ring.published()), ["a", "b"]);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(kids(&ring.published()), ["b"]);
    }

    #[test]
    fn zero_delay_rotation_signs_at_once() {
        let ring = KeyRing::new(key("a", 1)).rotation_delay(Duration::ZERO);
        ring.rotate(key("b", 2));
        assert_eq!(ring.signing_key().kid(), Some("b"));
    }
}
