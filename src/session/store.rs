//! The store traits ([`SessionStore`], [`RevocationStore`], [`ThrottleStore`],
//! [`OneTimeStore`]) and the values that cross them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::revocation::RevocationEntry;
use crate::revocation::{FeedGuard, Revocations};

/// The future a store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Sessions and their rotation: the refresh families of [`Sessions`](super::Sessions).
///
/// A store is split by what it keeps, so a backend implements what it supports:
/// [`SessionStore`] (with [`RevocationStore`], which every session store is, since ending a
/// session revokes it), [`ThrottleStore`] for the login limits of
/// [`LoginThrottle`](super::LoginThrottle), and [`OneTimeStore`] for refusing replayed DPoP
/// proofs. [`MemoryStore`](super::MemoryStore) and the Redis store (crate
/// `tower-jwt-auth-redis`) implement all four; the contract they must meet is
/// `testkit::store_contract` (feature `test-util`), which runs against any store.
///
/// You implement these traits only for a store of your own. Every method must be one atomic
/// step for the store (a Lua script on one Redis slot, a transaction, a lock in memory), so
/// that several nodes calling at once never see half an operation, and every piece of state it
/// creates must expire on its own. Users are named by an opaque tag
/// ([`user_tag`](super::user_tag), a hash of `sub`); hashes are lowercase hex. Time is the
/// store's own clock (Redis `TIME`), so nodes with skewed clocks agree.
pub trait SessionStore: RevocationStore {
    /// Create a refresh family and return the user's current generation (0 if none, and at
    /// least [`NewFamily::min_generation`], which then becomes the user's generation).
    fn open<'a>(&'a self, family: &'a NewFamily<'a>) -> StoreFuture<'a, u64>;

    /// Rotate a family's refresh token; see [`Rotated`] for the outcomes. A family whose
    /// generation is below the user's current one is [`Rotated::Invalid`].
    fn rotate<'a>(&'a self, rotation: &'a Rotation<'a>) -> StoreFuture<'a, Rotated>;

    /// Whether [`rotate`](Self::rotate) would hand out a token for `check` (the presented
    /// token is the family's current one, or its predecessor within the grace window; the
    /// family is alive and of the user's current generation; a bound family's key is the
    /// request's), **changing nothing**. Asked before a one-time DPoP proof of a refresh is
    /// recorded, so that a request without a valid refresh token writes nothing.
    fn can_rotate<'a>(&'a self, check: &'a RotationCheck<'a>) -> StoreFuture<'a, bool>;

    /// Delete one family (a logout). Deleting a family that is not there is not an error.
    fn end_session<'a>(&'a self, user: &'a str, sid: &'a str) -> StoreFuture<'a, ()>;

    /// Raise the user's generation to the larger of its value plus one and the store's clock in
    /// milliseconds, keep it for at least `keep` (the longest a family or access token of the
    /// old generation could live), and return the new value ("log out everywhere"). A
    /// generation only ever grows, even across a store that lost its data: every token issued
    /// before is below it.
    fn end_all<'a>(&'a self, user: &'a str, keep: Duration) -> StoreFuture<'a, u64>;
}

/// Revocations shared between the nodes of a store, and the feed that brings them to each
/// node's [`Revocations`] list. A verify-only node needs only this
/// ([`ResourceServerBuilder::follow_revocations`](crate::resource::ResourceServerBuilder::follow_revocations)).
pub trait RevocationStore: Send + Sync + fmt::Debug + 'static {
    /// Share a revocation with the other nodes for `keep` from now (the store's now). A store
    /// used by one process only may do nothing: the caller has already put it in its own list.
    fn revoke<'a>(&'a self, entry: &'a RevocationEntry, keep: Duration) -> StoreFuture<'a, ()>;

    /// Keep `revocations` in step with what every node sharing the store revokes, and mark the
    /// list trustworthy for `max_staleness` after each successful check
    /// ([`Revocations::trust_until`]), until the returned guard is dropped. `None`: there is
    /// nothing to follow (a store only this process writes to, as
    /// [`MemoryStore`](super::MemoryStore), whose revocations go straight into the list). The
    /// default.
    ///
    /// The [`AuthServer`](crate::login::AuthServer) calls it once and keeps the guard for as
    /// long as any of its layers lives.
    fn follow_revocations<'a>(
        &'a self,
        revocations: &'a Revocations,
        max_staleness: Duration,
    ) -> StoreFuture<'a, Option<FeedGuard>> {
        let _ = (revocations, max_staleness);
        Box::pin(std::future::ready(Ok(None)))
    }
}

/// GCRA limiters, for the login limits of [`LoginThrottle`](super::LoginThrottle): shared, so
/// several nodes count together.
pub trait ThrottleStore: Send + Sync + fmt::Debug + 'static {
    /// One step of a GCRA limiter named `key` (already hashed): [`Rate::step`] on the stored
    /// arrival time, as one atomic step, the new time kept until it has passed.
    fn throttle<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        op: ThrottleOp,
    ) -> StoreFuture<'a, Throttle>;
}

/// Keys used once: refusing a replayed DPoP proof on every node sharing the store
/// ([`StoreReplayCache`](crate::dpop::StoreReplayCache), feature `dpop`).
pub trait OneTimeStore: Send + Sync + fmt::Debug + 'static {
    /// Record `key` (already hashed: a DPoP proof's key and `jti`) for `ttl` unless it is
    /// there already; `true` the first time.
    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool>;
}

/// A store behind an `Arc` is the store: one value shared by [`Sessions`](super::Sessions),
/// the throttle and the replay cache.
impl<S: SessionStore + ?Sized> SessionStore for Arc<S> {
    fn open<'a>(&'a self, family: &'a NewFamily<'a>) -> StoreFuture<'a, u64> {
        (**self).open(family)
    }
    fn rotate<'a>(&'a self, rotation: &'a Rotation<'a>) -> StoreFuture<'a, Rotated> {
        (**self).rotate(rotation)
    }
    fn can_rotate<'a>(&'a self, check: &'a RotationCheck<'a>) -> StoreFuture<'a, bool> {
        (**self).can_rotate(check)
    }
    fn end_session<'a>(&'a self, user: &'a str, sid: &'a str) -> StoreFuture<'a, ()> {
        (**self).end_session(user, sid)
    }
    fn end_all<'a>(&'a self, user: &'a str, keep: Duration) -> StoreFuture<'a, u64> {
        (**self).end_all(user, keep)
    }
}

impl<S: RevocationStore + ?Sized> RevocationStore for Arc<S> {
    fn revoke<'a>(&'a self, entry: &'a RevocationEntry, keep: Duration) -> StoreFuture<'a, ()> {
        (**self).revoke(entry, keep)
    }
    fn follow_revocations<'a>(
        &'a self,
        revocations: &'a Revocations,
        max_staleness: Duration,
    ) -> StoreFuture<'a, Option<FeedGuard>> {
        (**self).follow_revocations(revocations, max_staleness)
    }
}

impl<S: ThrottleStore + ?Sized> ThrottleStore for Arc<S> {
    fn throttle<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        op: ThrottleOp,
    ) -> StoreFuture<'a, Throttle> {
        (**self).throttle(key, rate, op)
    }
}

impl<S: OneTimeStore + ?Sized> OneTimeStore for Arc<S> {
    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        (**self).first_use(key, ttl)
    }
}

/// A new refresh family, for [`SessionStore::open`].
#[derive(Debug)]
#[non_exhaustive]
pub struct NewFamily<'a> {
    /// The user's tag.
    pub user: &'a str,
    /// The session id.
    pub sid: &'a str,
    /// The user's id, handed back on every rotation (to rebuild the access token's claims).
    pub sub: &'a str,
    /// The hash of the first refresh token.
    pub token_hash: &'a str,
    /// When the user authenticated (Unix seconds): handed back on every rotation, so refreshed
    /// access tokens keep the login's `auth_time`.
    pub auth_time: u64,
    /// The thumbprint of the DPoP key the family is bound to (`cnf.jkt`), if any: handed back
    /// on every rotation, so a refresh needs a proof from that key.
    pub jkt: Option<&'a str>,
    /// The family's absolute lifetime.
    pub lifetime: Duration,
    /// How long the family may go without a rotation.
    pub idle: Duration,
    /// How long the user's generation, if any, must be kept from now on (it must outlive every
    /// family and access token that could carry an older one).
    pub generation_ttl: Duration,
    /// The lowest generation the family may get: the first one this node's revocation list
    /// does not refuse. A store that lost the user's generation (restarted empty, flushed)
    /// raises it to this instead of handing out tokens that are revoked at birth.
    pub min_generation: u64,
}

/// A rotation request, for [`SessionStore::rotate`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Rotation<'a> {
    /// The user's tag.
    pub user: &'a str,
    /// The session id.
    pub sid: &'a str,
    /// The hash of the presented refresh token.
    pub presented: &'a str,
    /// The hash of the successor, if the presented token is the current one.
    pub successor: &'a str,
    /// The successor's secret, sealed under the presented token: kept for the grace window
    /// and returned in [`Rotated::Repeat`].
    pub sealed: &'a str,
    /// How long the predecessor keeps getting the same successor (zero: never; the store
    /// compares times in milliseconds).
    pub grace: Duration,
    /// The family's idle lifetime, restarted by the rotation.
    pub idle: Duration,
    /// The thumbprint of the DPoP key the request proved it holds, if any. A family bound to a
    /// key rotates only for that key: otherwise [`Rotated::WrongKey`], and nothing changes.
    pub jkt: Option<&'a str>,
}

/// A read-only look at a rotation, for [`SessionStore::can_rotate`].
#[derive(Debug)]
#[non_exhaustive]
pub struct RotationCheck<'a> {
    /// The user's tag.
    pub user: &'a str,
    /// The session id.
    pub sid: &'a str,
    /// The hash of the presented refresh token.
    pub presented: &'a str,
    /// The thumbprint of the DPoP key the request proved it holds, if any.
    pub jkt: Option<&'a str>,
    /// Whatever key the family is bound to: a revocation (RFC 7009) asks whether the token is
    /// live, and needs no proof of the key to end its session.
    pub any_key: bool,
}

/// The outcome of [`SessionStore::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotated {
    /// The presented token was current: the successor is now current, the presented token is
    /// the predecessor until the grace window ends.
    Rotated {
        /// The user's id.
        sub: String,
        /// The family's generation.
        generation: u64,
        /// When the user authenticated.
        auth_time: u64,
        /// The DPoP key the family is bound to, if any.
        jkt: Option<String>,
    },
    /// The presented token was the predecessor, within the grace window: nothing changed; here
    /// is the current token's sealed secret (sealed under the presented one).
    Repeat {
        /// The user's id.
        sub: String,
        /// The family's generation.
        generation: u64,
        /// When the user authenticated.
        auth_time: u64,
        /// The DPoP key the family is bound to, if any.
        jkt: Option<String>,
        /// The successor's sealed secret, as stored.
        sealed: String,
    },
    /// No such family (expired, ended, revoked, or never existed), or its generation is gone.
    Invalid,
    /// The family is bound to a DPoP key and the request did not prove it holds that key:
    /// nothing changed.
    WrongKey,
    /// The family exists but the token is neither current nor a predecessor within the window:
    /// reuse. The store has deleted the family.
    Reused,
}

/// A GCRA rate: a burst of `burst`, refilled evenly over `period`. Parses from `N/SECS`
/// (`"5/60"`: five at once, then one every twelve seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    burst: u32,
    period: Duration,
}

impl Rate {
    /// `burst` at once, refilled over `period`. `None` if either is zero.
    #[must_use]
    pub const fn new(burst: u32, period: Duration) -> Option<Self> {
        if burst > 0 && !period.is_zero() {
            Some(Self { burst, period })
        } else {
            None
        }
    }

    /// The burst.
    #[must_use]
    pub fn burst(self) -> u32 {
        self.burst
    }

    /// The refill period.
    #[must_use]
    pub fn period(self) -> Duration {
        self.period
    }

    /// The period in milliseconds (at least 1).
    #[must_use]
    pub fn period_ms(self) -> u64 {
        u64::try_from(self.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The time one unit takes to refill, in milliseconds (at least 1).
    #[must_use]
    pub fn interval_ms(self) -> u64 {
        (self.period_ms() / u64::from(self.burst)).max(1)
    }

    /// The GCRA step at `now_ms` on a limiter whose theoretical arrival time is `tat_ms`
    /// (`None`: fresh). Returns the outcome and the new arrival time to store (`None`: delete).
    #[must_use]
    pub fn step(self, tat_ms: Option<u64>, now_ms: u64, op: ThrottleOp) -> (Throttle, Option<u64>) {
        let interval = self.interval_ms();
        match op {
            ThrottleOp::Take => {
                let next = tat_ms
                    .unwrap_or(now_ms)
                    .max(now_ms)
                    .saturating_add(interval);
                let ahead = next - now_ms;
                if ahead > self.period_ms() {
                    let wait = ahead - self.period_ms();
                    (
                        Throttle::Limited {
                            retry_after: Duration::from_millis(wait),
                        },
                        tat_ms,
                    )
                } else {
                    (Throttle::Allowed, Some(next))
                }
            }
            ThrottleOp::Give => {
                let next = tat_ms
                    .map(|t| t.saturating_sub(interval))
                    .filter(|t| *t > now_ms);
                (Throttle::Allowed, next)
            }
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected N/SECS with both above zero (like 5/60), got {s:?}");
        let (n, secs) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let secs: u64 = secs.trim().parse().map_err(|_| bad())?;
        Self::new(n, Duration::from_secs(secs)).ok_or_else(bad)
    }
}

/// What a [`ThrottleStore::throttle`] call does. Exhaustive: a store handles both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleOp {
    /// Take one unit, if the limiter allows it.
    Take,
    /// Give one unit back (a login that succeeded after its failure was counted).
    Give,
}

/// The answer of a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Throttle {
    /// Go ahead.
    Allowed,
    /// Refused: try again after `retry_after`.
    Limited {
        /// How long until one unit is back.
        retry_after: Duration,
    },
}

/// The store could not be reached or answered something unexpected: the operation did not
/// happen (or its outcome is unknown). Services answer 503 with `Retry-After`.
#[derive(Debug)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with this message (it must not contain tokens or credentials).
    #[must_use]
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// When to try again.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(1)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for StoreError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        let r: Rate = "5/60".parse().unwrap();
        assert_eq!((r.burst(), r.period()), (5, Duration::from_secs(60)));
        assert_eq!(r.interval_ms(), 12_000);
        for bad in ["", "5", "0/60", "5/0", "x/60", "5/-1"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn gcra_allows_the_burst_then_refills_evenly() {
        let r: Rate = "3/30".parse().unwrap();
        let mut tat = None;
        let now = 1_000_000;
        for _ in 0..3 {
            let (t, next) = r.step(tat, now, ThrottleOp::Take);
            assert_eq!(t, Throttle::Allowed);
            tat = next;
        }
        let (t, next) = r.step(tat, now, ThrottleOp::Take);
        assert_eq!(
            t,
            Throttle::Limited {
                retry_after: Duration::from_secs(10)
            }
        );
        assert_eq!(next, tat, "a refused step changes nothing");
        assert_eq!(
            r.step(tat, now + 10_000, ThrottleOp::Take).0,
            Throttle::Allowed
        );
        // Giving one back makes room at once.
        let (_, given) = r.step(tat, now, ThrottleOp::Give);
        assert_eq!(r.step(given, now, ThrottleOp::Take).0, Throttle::Allowed);
    }
}
