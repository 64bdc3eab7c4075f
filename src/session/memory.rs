//! [`MemoryStore`]: the session store of a single process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::store::{
    NewFamily, OneTimeStore, Rate, RevocationEntry, RevocationStore, Rotated, Rotation,
    RotationCheck, SessionStore, StoreFuture, Throttle, ThrottleOp, ThrottleStore,
};

/// How many operations between two sweeps of expired state.
const SWEEP_EVERY: u32 = 256;

/// Sessions and limiters in this process's memory, behind one lock (every operation is a few
/// hash-map steps). The default store: nothing to set up, nothing shared. Expired state is
/// swept as operations go by, so memory follows the live sessions and limiters.
///
/// Revocations need nothing here: [`Sessions`](super::Sessions) puts them in its own list,
/// which is the only one on a single node.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    families: HashMap<(String, String), Family>,
    /// Per user tag: generation and when it may be forgotten (ms).
    generations: HashMap<String, (u64, u64)>,
    /// Per limiter key: the theoretical arrival time (ms).
    limiters: HashMap<String, u64>,
    /// Keys seen by `first_use`, until when (ms).
    seen: HashMap<String, u64>,
    since_sweep: u32,
}

struct Family {
    sub: String,
    generation: u64,
    auth_time: u64,
    jkt: Option<String>,
    current: String,
    /// The predecessor's hash, until when it is accepted, and the current token's secret
    /// sealed under it.
    previous: Option<(String, u64, String)>,
    expires_ms: u64,
    last_ms: u64,
    idle_ms: u64,
}

impl Family {
    fn alive(&self, now: u64) -> bool {
        now < self.expires_ms && now < self.last_ms.saturating_add(self.idle_ms)
    }

    /// Whether a request that holds the DPoP key `jkt` (if any) may use this family.
    fn key_matches(&self, jkt: Option<&str>) -> bool {
        self.jkt.as_deref().is_none_or(|bound| jkt == Some(bound))
    }

    /// The predecessor's sealed successor, if `presented` is the predecessor and its grace
    /// window (strictly before its end: a zero window admits nothing) is still open.
    fn within_grace(&self, presented: &str, now: u64) -> Option<&str> {
        self.previous
            .as_ref()
            .filter(|(hash, until, _)| same(hash, presented) && now < *until)
            .map(|(_, _, sealed)| sealed.as_str())
    }
}

use crate::time::unix_millis as now_ms;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_ms();
        state.since_sweep += 1;
        if state.since_sweep >= SWEEP_EVERY {
            state.since_sweep = 0;
            state.families.retain(|_, f| f.alive(now));
            state.generations.retain(|_, (_, until)| *until > now);
            state.limiters.retain(|_, tat| *tat > now);
            state.seen.retain(|_, until| *until > now);
        }
        f(&mut state, now)
    }

    /// How many sessions, generations and limiters are held (expired ones go at the next sweep).
    #[must_use]
    pub fn len(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.families.len() + state.generations.len() + state.limiters.len() + state.seen.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn generation(&self, user: &str, now: u64) -> u64 {
        self.generations
            .get(user)
            .filter(|(_, until)| *until > now)
            .map_or(0, |(g, _)| *g)
    }
}

impl SessionStore for MemoryStore {
    fn open<'a>(&'a self, family: &'a NewFamily<'a>) -> StoreFuture<'a, u64> {
        let generation = self.with(|state, now| {
            let generation = state
                .generation(family.user, now)
                .max(family.min_generation);
            if generation > 0 {
                let keep = now.saturating_add(ms(family.generation_ttl));
                let entry = state
                    .generations
                    .entry(family.user.to_owned())
                    .or_insert((generation, keep));
                *entry = (generation, entry.1.max(keep));
            }
            state.families.insert(
                (family.user.to_owned(), family.sid.to_owned()),
                Family {
                    sub: family.sub.to_owned(),
                    generation,
                    auth_time: family.auth_time,
                    jkt: family.jkt.map(str::to_owned),
                    current: family.token_hash.to_owned(),
                    previous: None,
                    expires_ms: now.saturating_add(ms(family.lifetime)),
                    last_ms: now,
                    idle_ms: ms(family.idle),
                },
            );
            generation
        });
        Box::pin(async move { Ok(generation) })
    }

    fn rotate<'a>(&'a self, rotation: &'a Rotation<'a>) -> StoreFuture<'a, Rotated> {
        let outcome = self.with(|state, now| {
            let key = (rotation.user.to_owned(), rotation.sid.to_owned());
            let current_generation = state.generation(rotation.user, now);
            let Some(family) = state.families.get_mut(&key) else {
                return Rotated::Invalid;
            };
            if !family.alive(now) || family.generation < current_generation {
                state.families.remove(&key);
                return Rotated::Invalid;
            }
            if !family.key_matches(rotation.jkt) {
                return Rotated::WrongKey;
            }
            if same(&family.current, rotation.presented) {
                family.previous = Some((
                    rotation.presented.to_owned(),
                    now.saturating_add(ms(rotation.grace)),
                    rotation.sealed.to_owned(),
                ));
                rotation.successor.clone_into(&mut family.current);
                family.last_ms = now;
                family.idle_ms = ms(rotation.idle);
                return Rotated::Rotated {
                    sub: family.sub.clone(),
                    generation: family.generation,
                    auth_time: family.auth_time,
                    jkt: family.jkt.clone(),
                };
            }
            if let Some(sealed) = family.within_grace(rotation.presented, now) {
                return Rotated::Repeat {
                    sub: family.sub.clone(),
                    generation: family.generation,
                    auth_time: family.auth_time,
                    jkt: family.jkt.clone(),
                    sealed: sealed.to_owned(),
                };
            }
            state.families.remove(&key);
            Rotated::Reused
        });
        Box::pin(async move { Ok(outcome) })
    }

    fn can_rotate<'a>(&'a self, check: &'a RotationCheck<'a>) -> StoreFuture<'a, bool> {
        let ok = self.with(|state, now| {
            let current_generation = state.generation(check.user, now);
            state
                .families
                .get(&(check.user.to_owned(), check.sid.to_owned()))
                .is_some_and(|family| {
                    family.alive(now)
                        && family.generation >= current_generation
                        && (check.any_key || family.key_matches(check.jkt))
                        && (same(&family.current, check.presented)
                            || family.within_grace(check.presented, now).is_some())
                })
        });
        Box::pin(async move { Ok(ok) })
    }

    fn end_session<'a>(&'a self, user: &'a str, sid: &'a str) -> StoreFuture<'a, ()> {
        self.with(|state, _| {
            state.families.remove(&(user.to_owned(), sid.to_owned()));
        });
        Box::pin(async { Ok(()) })
    }

    fn end_all<'a>(&'a self, user: &'a str, keep: Duration) -> StoreFuture<'a, u64> {
        let generation = self.with(|state, now| {
            let next = state.generation(user, now).saturating_add(1).max(now);
            let until = now.saturating_add(ms(keep));
            state.families.retain(|(u, _), _| u != user);
            state.generations.insert(user.to_owned(), (next, until));
            next
        });
        Box::pin(async move { Ok(generation) })
    }
}

/// Revocations need nothing here: [`Sessions`](super::Sessions) puts them in its own list,
/// the only one on a single node.
impl RevocationStore for MemoryStore {
    fn revoke<'a>(&'a self, _entry: &'a RevocationEntry, _keep: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

impl ThrottleStore for MemoryStore {
    fn throttle<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        op: ThrottleOp,
    ) -> StoreFuture<'a, Throttle> {
        let outcome = self.with(|state, now| {
            let tat = state.limiters.get(key).copied().filter(|t| *t > now);
            let (outcome, next) = rate.step(tat, now, op);
            match next {
                Some(t) => {
                    state.limiters.insert(key.to_owned(), t);
                }
                None => {
                    state.limiters.remove(key);
                }
            }
            outcome
        });
        Box::pin(async move { Ok(outcome) })
    }
}

impl OneTimeStore for MemoryStore {
    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        let fresh = self.with(|state, now| match state.seen.get(key) {
            Some(until) if *until > now => false,
            _ => {
                state
                    .seen
                    .insert(key.to_owned(), now.saturating_add(ms(ttl).max(1)));
                true
            }
        });
        Box::pin(async move { Ok(fresh) })
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .finish()
    }
}
