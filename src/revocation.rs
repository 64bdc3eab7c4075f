//! [`Revocations`]: access tokens revoked before their `exp`, checked on every request at the
//! cost of a hash lookup.
//!
//! Access tokens stay stateless to verify; what must be remembered is the short list of what
//! was revoked early, by **session** (`sid`: a logout), by **user generation** (`sub` + `gen`:
//! "log out everywhere" revokes every token of the user with a lower generation, immune to the
//! one-second resolution of `iat`) or by **token** (`jti`). Every entry carries the time until
//! which it can still match a token (the longest access-token lifetime plus the leeway), and is
//! dropped after it.
//!
//! Readers see an immutable snapshot (an atomic pointer swap, no lock): with nothing revoked
//! the check is one pointer load and one length test; otherwise up to three hash lookups.
//! Writers copy the snapshot (one copy per [`Revocations::batch`]); revocations are rare next
//! to requests. The check runs after the
//! verified-token cache, so a cached token is refused as soon as it is revoked.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_jwt_auth::revocation::Revocations;
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let revocations = Revocations::new();
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     .revocations(revocations.clone());
//!
//! // A logout: every token of session "s-42" is refused from now on, until it would have expired.
//! let until = SystemTime::now() + Duration::from_secs(900 + 60);
//! revocations.revoke_session("s-42", until);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::claims::RegisteredClaims;
use crate::time::unix_secs as unix;

/// What is revoked now. Times are Unix seconds until which an entry can match a token.
#[derive(Clone, Default)]
struct Snapshot {
    sessions: HashMap<Box<str>, u64>,
    tokens: HashMap<Box<str>, u64>,
    /// Per user: tokens with a `gen` below this are revoked; and until when that matters.
    users: HashMap<Box<str>, (u64, u64)>,
}

impl Snapshot {
    fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.tokens.is_empty() && self.users.is_empty()
    }

    fn len(&self) -> usize {
        self.sessions.len() + self.tokens.len() + self.users.len()
    }

    fn matches(&self, claims: &RegisteredClaims) -> bool {
        let in_map = |map: &HashMap<Box<str>, u64>, key: Option<&String>| {
            key.is_some_and(|k| map.contains_key(k.as_str()))
        };
        in_map(&self.sessions, claims.sid.as_ref())
            || in_map(&self.tokens, claims.jti.as_ref())
            || claims.sub.as_ref().is_some_and(|sub| {
                self.users
                    .get(sub.as_str())
                    // A token without `gen` predates generations: the oldest there is.
                    .is_some_and(|(min_gen, _)| claims.generation.unwrap_or(0) < *min_gen)
            })
    }

    fn purge(&mut self, now: u64) {
        self.sessions.retain(|_, until| *until > now);
        self.tokens.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
    }
}

struct Shared {
    snapshot: ArcSwap<Snapshot>,
    /// Serialises writers (each copies the snapshot, changes it and swaps it in).
    write: Mutex<()>,
    /// Unix seconds after which the list may be missing revocations made elsewhere (a feed
    /// from a shared store that could not be refreshed): requests are then refused with 503.
    /// 0: the list is complete by construction (one node, or no feed).
    trusted_until: AtomicU64,
}

/// One revocation, as a shared store keeps it (and as [`Revocations::entries`] lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationEntry {
    /// Every access token with this `sid`.
    Session(String),
    /// Every access token of `sub` with a `gen` below `generation`.
    User {
        /// The user.
        sub: String,
        /// The first generation still valid.
        generation: u64,
    },
    /// The access token with this `jti`.
    Token(String),
}

impl RevocationEntry {
    /// Add the entry to a list, until `until`.
    pub fn apply(&self, revocations: &Revocations, until: SystemTime) {
        revocations.batch(|b| self.apply_to(b, until));
    }

    /// Add the entry to a batch of changes, until `until`.
    pub fn apply_to(&self, b: &mut RevocationBatch<'_>, until: SystemTime) {
        match self {
            Self::Session(sid) => b.revoke_session(sid, until),
            Self::User { sub, generation } => b.revoke_user_before(sub, *generation, until),
            Self::Token(jti) => b.revoke_token(jti, until),
        }
    }

    /// A one-line encoding for a shared store: `s:<sid>`, `j:<jti>`, `g:<gen>:<sub>`.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::Session(sid) => format!("s:{sid}"),
            Self::Token(jti) => format!("j:{jti}"),
            Self::User { sub, generation } => format!("g:{generation}:{sub}"),
        }
    }

    /// The inverse of [`encode`](Self::encode); `None` for anything else.
    #[must_use]
    pub fn decode(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "s" => Some(Self::Session(rest.to_owned())),
            "j" => Some(Self::Token(rest.to_owned())),
            "g" => {
                let (generation, sub) = rest.split_once(':')?;
                Some(Self::User {
                    sub: sub.to_owned(),
                    generation: generation.parse().ok()?,
                })
            }
            _ => None,
        }
    }
}

/// Access tokens revoked before their `exp`: by session, by user generation, by token. Cheap to
/// clone; clones share the list. See the [module docs](self).
#[derive(Clone)]
pub struct Revocations {
    shared: Arc<Shared>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new()
    }
}

impl Revocations {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                write: Mutex::new(()),
                trusted_until: AtomicU64::new(0),
            }),
        }
    }

    /// Change a copy of the snapshot (dropping expired entries) and swap it in.
    fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let _writer = self
            .shared
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::clone(&self.shared.snapshot.load());
        next.purge(unix(SystemTime::now()));
        change(&mut next);
        self.shared.snapshot.store(Arc::new(next));
    }

    /// Refuse every token of session `sid` (its `sid` claim) until `until`: a logout.
    pub fn revoke_session(&self, sid: &str, until: SystemTime) {
        self.batch(|b| b.revoke_session(sid, until));
    }

    /// Refuse the token whose `jti` is `jti` until `until`.
    pub fn revoke_token(&self, jti: &str, until: SystemTime) {
        self.batch(|b| b.revoke_token(jti, until));
    }

    /// Refuse every token of user `sub` whose `gen` claim is below `generation` (a token
    /// without `gen` counts as generation 0) until `until`: "log out everywhere". Tokens
    /// issued with `gen = generation` or higher keep working, so a login right after works,
    /// even within the same second.
    pub fn revoke_user_before(&self, sub: &str, generation: u64, until: SystemTime) {
        self.batch(|b| b.revoke_user_before(sub, generation, until));
    }

    /// Make many changes at once, published together: one copy of the list for the whole batch
    /// (loading a full list from a shared store, say), where each single `revoke_*` call copies
    /// it once.
    pub fn batch(&self, changes: impl FnOnce(&mut RevocationBatch<'_>)) {
        self.update(|snapshot| changes(&mut RevocationBatch { snapshot }));
    }

    /// Replace the whole list with what `entries` adds (a full reload from a shared store),
    /// published at once.
    pub fn replace(&self, entries: impl FnOnce(&mut RevocationBatch<'_>)) {
        let _writer = self
            .shared
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = Snapshot::default();
        entries(&mut RevocationBatch {
            snapshot: &mut next,
        });
        next.purge(unix(SystemTime::now()));
        self.shared.snapshot.store(Arc::new(next));
    }

    /// Whether a token with these claims is revoked. Called on every request: one atomic load,
    /// and nothing more while the list is empty.
    #[must_use]
    pub fn is_revoked(&self, claims: &RegisteredClaims) -> bool {
        let snapshot = self.shared.snapshot.load();
        !snapshot.is_empty() && snapshot.matches(claims)
    }

    /// Declare the list complete only until `until`: a feed from a shared store calls this
    /// after each successful sync with "now + the staleness bound". Past that time, without
    /// a newer call, the layer refuses every request with 503
    /// ([`AuthErrorKind::RevocationsUnavailable`](crate::error::AuthErrorKind::RevocationsUnavailable))
    /// rather than admit a token that may have been revoked on another node. `None` lifts
    /// the bound (the default: a list fed on this node alone is always complete).
    pub fn trust_until(&self, until: Option<SystemTime>) {
        let secs = until.map_or(0, |t| unix(t).max(1));
        self.shared.trusted_until.store(secs, Ordering::Release);
    }

    /// Whether the list can be relied on now (see [`trust_until`](Self::trust_until)).
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.is_current_at(SystemTime::now())
    }

    #[inline]
    fn is_current_at(&self, now: SystemTime) -> bool {
        let until = self.shared.trusted_until.load(Ordering::Acquire);
        until == 0 || unix(now) <= until
    }

    /// The per-request check at `now`: revoked, or the list cannot be relied on.
    #[inline]
    pub(crate) fn check(
        &self,
        claims: &RegisteredClaims,
        now: SystemTime,
    ) -> Result<(), crate::error::AuthErrorKind> {
        if !self.is_current_at(now) {
            return Err(crate::error::AuthErrorKind::RevocationsUnavailable);
        }
        if self.is_revoked(claims) {
            return Err(crate::error::AuthErrorKind::Revoked);
        }
        Ok(())
    }

    /// Every live entry with the time until which it can match a token: what a node holds,
    /// to be written back to a shared store that lost its data.
    #[must_use]
    pub fn entries(&self) -> Vec<(RevocationEntry, SystemTime)> {
        let snapshot = self.shared.snapshot.load();
        let now = unix(SystemTime::now());
        let at = |secs: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let sessions = snapshot
            .sessions
            .iter()
            .map(|(sid, until)| (RevocationEntry::Session(sid.to_string()), *until));
        let tokens = snapshot
            .tokens
            .iter()
            .map(|(jti, until)| (RevocationEntry::Token(jti.to_string()), *until));
        let users = snapshot.users.iter().map(|(sub, (generation, until))| {
            (
                RevocationEntry::User {
                    sub: sub.to_string(),
                    generation: *generation,
                },
                *until,
            )
        });
        sessions
            .chain(tokens)
            .chain(users)
            .filter(|(_, until)| *until > now)
            .map(|(entry, until)| (entry, at(until)))
            .collect()
    }

    /// The lowest generation of `sub` not revoked ("log out everywhere" raises it; 0 when
    /// nothing of the user is revoked): a store that lost the user's generation must not
    /// hand out a lower one.
    #[must_use]
    pub fn min_generation(&self, sub: &str) -> u64 {
        let now = unix(SystemTime::now());
        self.shared
            .snapshot
            .load()
            .users
            .get(sub)
            .filter(|(_, until)| *until > now)
            .map_or(0, |(generation, _)| *generation)
    }

    /// How many entries the list holds (expired ones go at the next change).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.snapshot.load().len()
    }

    /// Whether nothing is revoked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shared.snapshot.load().is_empty()
    }
}

/// Changes made together through [`Revocations::batch`]; the methods mean what the
/// `Revocations` methods of the same names do.
pub struct RevocationBatch<'a> {
    snapshot: &'a mut Snapshot,
}

impl RevocationBatch<'_> {
    /// As [`Revocations::revoke_session`].
    pub fn revoke_session(&mut self, sid: &str, until: SystemTime) {
        let until = unix(until);
        let entry = self.snapshot.sessions.entry(sid.into()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// As [`Revocations::revoke_token`].
    pub fn revoke_token(&mut self, jti: &str, until: SystemTime) {
        let until = unix(until);
        let entry = self.snapshot.tokens.entry(jti.into()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// As [`Revocations::revoke_user_before`].
    pub fn revoke_user_before(&mut self, sub: &str, generation: u64, until: SystemTime) {
        let until = unix(until);
        let entry = self
            .snapshot
            .users
            .entry(sub.into())
            .or_insert((generation, until));
        *entry = (entry.0.max(generation), entry.1.max(until));
    }
}

impl fmt::Debug for RevocationBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationBatch")
            .field("entries", &self.snapshot.len())
            .finish()
    }
}

/// Keeps a store's revocation feed running ([`RevocationStore::follow_revocations`](crate::session::RevocationStore::follow_revocations), feature `sessions`): dropping
/// it stops the feed.
#[must_use = "dropping the guard stops the revocation feed: the list goes stale, and after the \
              staleness bound every authenticated request gets 503; keep it alive"]
pub struct FeedGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl FeedGuard {
    /// Wrap whatever stops the feed when dropped (a task handle that aborts on drop, say).
    pub fn new(feed: impl Send + Sync + 'static) -> Self {
        Self(Box::new(feed))
    }
}

impl fmt::Debug for FeedGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedGuard").finish_non_exhaustive()
    }
}

/// A revocation list as a layer checks it, first and by a direct call (it is the check most
/// layers have), with what keeps its feed running: a composition root's feed runs for as long as
/// one of its layers lives.
#[derive(Clone)]
pub(crate) struct Watched {
    pub(crate) list: Revocations,
    /// Held, never read: dropping the last clone stops the feed.
    #[allow(dead_code)]
    pub(crate) feed: Option<Arc<FeedGuard>>,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session ids and subjects are not secrets, but they are nobody's business in a log.
        f.debug_struct("Revocations")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn claims(json: serde_json::Value) -> RegisteredClaims {
        serde_json::from_value(json).unwrap()
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(600)
    }

    #[test]
    fn nothing_is_revoked_at_first() {
        let r = Revocations::new();
        assert!(!r.is_revoked(&claims(
            serde_json::json!({"sub": "1", "sid": "a", "jti": "x"})
        )));
        assert!(r.is_empty());
    }

    #[test]
    fn a_session_a_token_and_a_user_generation_are_revoked_separately() {
        let r = Revocations::new();
        r.revoke_session("s1", later());
        r.revoke_token("j1", later());
        r.revoke_user_before("u1", 3, later());
        let c = |v| claims(v);
        assert!(r.is_revoked(&c(serde_json::json!({"sid": "s1"}))));
        assert!(!r.is_revoked(&c(serde_json::json!({"sid": "s2"}))));
        assert!(r.is_revoked(&c(serde_json::json!({"jti": "j1"}))));
        assert!(!r.is_revoked(&c(serde_json::json!({"jti": "j2"}))));
        assert!(r.is_revoked(&c(serde_json::json!({"sub": "u1", "gen": 2}))));
        assert!(
            r.is_revoked(&c(serde_json::json!({"sub": "u1"}))),
            "no gen: oldest"
        );
        assert!(
            !r.is_revoked(&c(serde_json::json!({"sub": "u1", "gen": 3}))),
            "a new login"
        );
        assert!(!r.is_revoked(&c(serde_json::json!({"sub": "u2", "gen": 0}))));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn a_user_generation_only_moves_forward() {
        let r = Revocations::new();
        r.revoke_user_before("u1", 5, later());
        r.revoke_user_before("u1", 2, later());
        assert!(r.is_revoked(&claims(serde_json::json!({"sub": "u1", "gen": 4}))));
    }

    #[test]
    fn entries_expire_with_the_last_token_they_could_match() {
        let r = Revocations::new();
        r.revoke_session("old", SystemTime::now() - Duration::from_secs(1));
        r.revoke_session("current", later());
        assert_eq!(r.len(), 1, "the expired entry went at the next change");
        assert!(r.is_revoked(&claims(serde_json::json!({"sid": "current"}))));
    }

    #[test]
    fn a_batch_is_published_at_once() {
        let r = Revocations::new();
        r.batch(|b| {
            for i in 0..1000 {
                b.revoke_session(&format!("s{i}"), later());
            }
            b.revoke_token("j", later());
        });
        assert_eq!(r.len(), 1001);
        assert!(r.is_revoked(&claims(serde_json::json!({"sid": "s999"}))));
    }

    #[test]
    fn a_replacement_drops_what_it_does_not_name() {
        let r = Revocations::new();
        r.revoke_session("a", later());
        r.replace(|b| b.revoke_session("b", later()));
        assert!(!r.is_revoked(&claims(serde_json::json!({"sid": "a"}))));
        assert!(r.is_revoked(&claims(serde_json::json!({"sid": "b"}))));
    }

    #[test]
    fn a_list_past_its_trust_bound_refuses_everything() {
        let r = Revocations::new();
        let c = claims(serde_json::json!({"sid": "a"}));
        let now = SystemTime::now();
        assert_eq!(r.check(&c, now), Ok(()));
        r.trust_until(Some(SystemTime::now() + Duration::from_secs(60)));
        assert_eq!(r.check(&c, now), Ok(()));
        r.trust_until(Some(SystemTime::now() - Duration::from_secs(2)));
        assert_eq!(
            r.check(&c, now),
            Err(crate::error::AuthErrorKind::RevocationsUnavailable)
        );
        assert!(!r.is_current());
        r.trust_until(None);
        assert_eq!(r.check(&c, now), Ok(()));
    }

    #[test]
    fn clones_share_the_list() {
        let r = Revocations::new();
        let clone = r.clone();
        r.revoke_token("j", later());
        assert!(clone.is_revoked(&claims(serde_json::json!({"jti": "j"}))));
    }

    #[test]
    fn revocation_entries_round_trip() {
        for e in [
            RevocationEntry::Session("abc".into()),
            RevocationEntry::Token("j:1".into()),
            RevocationEntry::User {
                sub: "a:b".into(),
                generation: 7,
            },
        ] {
            assert_eq!(RevocationEntry::decode(&e.encode()), Some(e));
        }
        assert_eq!(RevocationEntry::decode("x:1"), None);
        assert_eq!(RevocationEntry::decode("g:x:1"), None);
    }
}
