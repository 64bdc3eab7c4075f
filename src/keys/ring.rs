use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;

use super::source::{KeyFuture, KeySource};
use super::{KeySet, SigningKey};

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

    /// When the oldest replaced key retires: its successor's start plus the retention.
    fn retirement(&self, index: usize) -> Option<SystemTime> {
        let next = self.entries.get(index + 1)?;
        next.signs_from.checked_add(self.retention)
    }

    /// Drop the oldest keys whose retention has passed. A key retires when its successor
    /// starts signing.
    fn prune(&mut self, now: SystemTime) {
        let signer = self.signer_index(now);
        let expired = (0..signer)
            .take_while(|i| self.retirement(*i).is_some_and(|until| until <= now))
            .count();
        self.entries.drain(..expired);
    }

    /// The published keys and their JWK Set, and when they next change by themselves (the
    /// oldest replaced key retires).
    fn snapshot(&self) -> Snapshot {
        let keys: KeySet = self
            .entries
            .iter()
            .filter_map(|e| e.key.verifying_key().ok())
            .collect();
        let jwks = keys.jwks_document().ok().flatten();
        let changes_at = self.retirement(0).map_or(u64::MAX, unix_millis);
        Snapshot {
            keys: Arc::new(keys),
            jwks,
            changes_at,
        }
    }
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every reader sees: rebuilt only on a rotation or when a replaced key retires.
struct Snapshot {
    keys: Arc<KeySet>,
    jwks: Option<Bytes>,
    /// Unix milliseconds at which a replaced key retires (the snapshot is then rebuilt).
    changes_at: u64,
}

struct Shared {
    ring: Mutex<Ring>,
    snapshot: ArcSwap<Snapshot>,
    /// A copy of `snapshot.changes_at`, read without loading the snapshot.
    changes_at: AtomicU64,
}

/// The issuer's signing keys, with rotation. Cheap to clone; clones share the ring.
///
/// A rotation publishes the new key at once and lets it sign only after a delay (default
/// 10 minutes), so every verifier that refreshes its JWKS in that time already knows the key when
/// the first token signed with it arrives. The key it replaces stops signing then, and stays
/// published until every token it signed has expired (the retention, default 16 minutes: the
/// default 15-minute token lifetime plus the 60 s leeway).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, JwksService, KeyRing, SigningKey, Validation, Verifier};
///
/// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
/// let first = SigningKey::from_secret(Algorithm::HS256, [1u8; 32])?.with_kid("2026-11");
/// let ring = KeyRing::new(first)
///     .rotation_delay(Duration::from_secs(600))
///     .retention(Duration::from_secs(960));
/// // The login service signs through the ring (`TokenIssuer::from_key_ring`), the key-set
/// // endpoint publishes it, and the issuer verifies its own tokens with it.
/// let jwks = JwksService::from_key_ring(ring.clone());
/// let verifier = Verifier::from_source(ring.clone(), Validation::new())?;
///
/// // Later (say monthly): publish the next key; it signs ten minutes from now.
/// ring.rotate(SigningKey::from_secret(Algorithm::HS256, [2u8; 32])?.with_kid("2026-12"));
/// assert_eq!(ring.signing_key().kid(), Some("2026-11"));
/// assert_eq!(ring.published().len(), 2);
/// # let _ = (verifier, jwks);
/// # Ok(())
/// # }
/// ```
///
/// The published keys (and their JWK Set document) are kept as a precomputed snapshot, rebuilt
/// only when the set changes; reading it takes no lock. A `KeyRing` is also a [`KeySource`], so
/// the issuer can verify its own tokens across rotations:
/// `Verifier::from_source(ring.clone(), validation)`.
#[derive(Clone)]
pub struct KeyRing {
    shared: Arc<Shared>,
}

impl KeyRing {
    /// A ring whose only key signs at once.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        let ring = Ring {
            entries: vec![Entry {
                key,
                signs_from: SystemTime::UNIX_EPOCH,
            }],
            rotation_delay: DEFAULT_ROTATION_DELAY,
            retention: DEFAULT_RETENTION,
        };
        let snapshot = ring.snapshot();
        Self {
            shared: Arc::new(Shared {
                changes_at: AtomicU64::new(snapshot.changes_at),
                snapshot: ArcSwap::from_pointee(snapshot),
                ring: Mutex::new(ring),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent (every update is
        // a single push or drain), so a poisoned lock is still usable.
        self.shared
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Prune and rebuild the snapshot (with the lock held).
    fn publish(&self, ring: &mut Ring, now: SystemTime) {
        ring.prune(now);
        let snapshot = ring.snapshot();
        self.shared
            .changes_at
            .store(snapshot.changes_at, Ordering::Release);
        self.shared.snapshot.store(Arc::new(snapshot));
    }

    /// The snapshot, rebuilt first if a replaced key has retired since it was made.
    fn current_snapshot(&self) -> Arc<Snapshot> {
        let now = SystemTime::now();
        if unix_millis(now) >= self.shared.changes_at.load(Ordering::Acquire) {
            let mut ring = self.lock();
            self.publish(&mut ring, now);
        }
        self.shared.snapshot.load_full()
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
        {
            let mut ring = self.lock();
            ring.retention = retention;
            self.publish(&mut ring, SystemTime::now());
        }
        self
    }

    /// Publish `key` now; it signs after the rotation delay, and the key it replaces then
    /// stays published for the retention time.
    pub fn rotate(&self, key: SigningKey) {
        let mut ring = self.lock();
        let now = SystemTime::now();
        let signs_from = now.checked_add(ring.rotation_delay).unwrap_or(now);
        ring.entries.push(Entry { key, signs_from });
        self.publish(&mut ring, now);
    }

    /// The key that signs now.
    #[must_use]
    pub fn signing_key(&self) -> SigningKey {
        let ring = self.lock();
        let index = ring.signer_index(SystemTime::now());
        ring.entries[index].key.clone()
    }

    /// The verifying keys to publish now: the signer, keys waiting to sign, and replaced keys
    /// within their retention. The same `Arc` until the set changes.
    #[must_use]
    pub fn published(&self) -> Arc<KeySet> {
        Arc::clone(&self.current_snapshot().keys)
    }

    /// The JWK Set document of the published keys, or `None` when none of them is public (HMAC
    /// only). Serialized once per change of the set, not per call.
    #[must_use]
    pub fn jwks_document(&self) -> Option<Bytes> {
        self.current_snapshot().jwks.clone()
    }
}

impl KeySource for KeyRing {
    fn current(&self) -> Option<Arc<KeySet>> {
        Some(self.published())
    }

    fn refresh(&self, _alg: jsonwebtoken::Algorithm, _kid: Option<&str>) -> Option<KeyFuture> {
        // Every key the ring knows is already published: there is nothing to fetch.
        None
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
    use crate::keys::KeySource;
    use jsonwebtoken::Algorithm;

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
    fn the_snapshot_is_shared_until_the_set_changes() {
        let ring = KeyRing::new(key("a", 1)).rotation_delay(Duration::ZERO);
        let first = ring.current().unwrap();
        assert!(Arc::ptr_eq(&first, &ring.current().unwrap()));
        ring.rotate(key("b", 2));
        let second = ring.current().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(kids(&second), ["a", "b"]);
    }

    #[cfg(feature = "login")]
    #[test]
    fn the_ring_verifies_tokens_of_a_rotated_key() {
        use crate::validation::Validation;
        use crate::verifier::Verifier;
        let ring = KeyRing::new(key("a", 1)).rotation_delay(Duration::ZERO);
        let verifier = Verifier::from_source(ring.clone(), Validation::new()).unwrap();
        let issuer = crate::login::TokenIssuer::from_key_ring(ring.clone());
        let old = issuer.issue(&serde_json::json!({"sub": "1"})).unwrap();
        ring.rotate(key("b", 2));
        let new = issuer.issue(&serde_json::json!({"sub": "2"})).unwrap();
        assert_ne!(old.access_token(), new.access_token());
        for token in [old.access_token(), new.access_token()] {
            assert!(verifier.verify::<serde_json::Value>(token).is_ok());
        }
    }

    #[test]
    fn zero_delay_rotation_signs_at_once() {
        let ring = KeyRing::new(key("a", 1)).rotation_delay(Duration::ZERO);
        ring.rotate(key("b", 2));
        assert_eq!(ring.signing_key().kid(), Some("b"));
    }
}
