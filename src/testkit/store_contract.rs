//! The contract every store meets (feature `test-util` with `sessions`), to run against a store
//! of your own: the crate runs it against its `MemoryStore`, and the Redis store's crate against
//! a Redis server and a Redis Cluster.
//!
//! Each function drives the store through the crate's own users of it ([`Sessions`],
//! [`LoginThrottle`], the replay check), so what it checks is what the services rely on:
//! rotation with its grace window, reuse ending a session, concurrent refreshes never forking
//! a family, logout and "log out everywhere", idle and absolute lifetimes, bound families, GCRA
//! limits, one-time keys. A broken promise panics with the step that failed, as a test does.
//! The cases sleep (about five seconds in all) where the contract is about time passing, since
//! a store keeps its own clock.
//!
//! ```
//! use tower_jwt_auth::session::MemoryStore;
//! use tower_jwt_auth::testkit::store_contract;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # if false {
//! // In your store's tests: every call gives a fresh, empty store (a new key prefix, say).
//! store_contract::check(|| async { MemoryStore::new() }).await;
//! # }
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::RegisteredClaims;
use crate::session::{
    LoginThrottle, OneTimeStore, Rate, RefreshError, Session, SessionStore, Sessions, Throttle,
    ThrottleStore,
};

/// What a failed step says (the panic shows the store's error after it).
const STEP: &str = "a step of the store contract failed";

/// Every part of the contract, for a store that keeps sessions, limiters and one-time keys.
/// `new_store` is called once per case and must give a fresh, empty store each time.
///
/// # Panics
///
/// When the store breaks the contract: the message names the broken promise.
pub async fn check<S, F, Fut>(new_store: F)
where
    S: SessionStore + ThrottleStore + OneTimeStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    check_sessions(&new_store).await;
    check_throttle(new_store().await).await;
    check_one_time(new_store().await).await;
}

/// The [`SessionStore`] (and [`RevocationStore`](crate::session::RevocationStore)) part:
/// rotation, grace, reuse, concurrency, logout, generations, lifetimes, DPoP-bound families.
///
/// # Panics
///
/// When the store breaks the contract.
pub async fn check_sessions<S, F, Fut>(new_store: F)
where
    S: SessionStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let backend = NewStore(new_store);
    rotation_grace_and_reuse(&backend).await;
    a_forged_secret_of_a_known_family_is_reuse(&backend).await;
    the_grace_window_ends(&backend).await;
    concurrent_refreshes_never_fork(&backend).await;
    ending_a_session(&backend).await;
    logging_out_everywhere_then_logging_in_in_the_same_second(&backend).await;
    idle_and_absolute_lifetimes(&backend).await;
    garbage_is_invalid(&backend).await;
    a_bound_family_keeps_its_key(&backend).await;
    no_grace_means_no_repeat(&backend).await;
    can_rotate_looks_without_changing_anything(&backend).await;
    a_revocation_ends_a_bound_session_without_its_key(&backend).await;
}

/// The [`ThrottleStore`] part: a burst, an even refill, a unit given back, one budget per key.
///
/// # Panics
///
/// When the store breaks the contract.
pub async fn check_throttle(store: impl ThrottleStore) {
    throttling(Arc::new(store)).await;
}

/// The [`OneTimeStore`] part: a key is new once until its time is up.
///
/// # Panics
///
/// When the store breaks the contract.
pub async fn check_one_time(store: impl OneTimeStore) {
    a_key_is_used_first_once(&store).await;
}

/// Fresh sessions, each on a new store.
trait Fresh {
    fn sessions(&self) -> impl Future<Output = Sessions>;
}

struct NewStore<F>(F);

impl<S, F, Fut> Fresh for NewStore<F>
where
    S: SessionStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    async fn sessions(&self) -> Sessions {
        Sessions::new((self.0)().await)
    }
}

fn claims(json: serde_json::Value) -> RegisteredClaims {
    serde_json::from_value(json).expect("registered claims")
}

#[allow(clippy::needless_pass_by_value)]
fn invalid(result: Result<Session, RefreshError>) -> bool {
    matches!(result, Err(RefreshError::Invalid))
}

/// A zero grace window admits no repeat: of 20 concurrent refreshes exactly one succeeds, the
/// others are reuse, which ends the session.
async fn no_grace_means_no_repeat(backend: &impl Fresh) {
    let s = backend.sessions().await.grace(Duration::ZERO);
    for _ in 0..5 {
        let t0 = s.open("g0").await.expect(STEP);
        let results = futures_join_all((0..20).map(|_| {
            let (s, token) = (s.clone(), t0.refresh_token().to_owned());
            tokio::spawn(async move { s.refresh(&token).await })
        }))
        .await;
        let winners: Vec<&Session> = results
            .iter()
            .filter_map(|r| r.as_ref().expect(STEP).as_ref().ok())
            .collect();
        assert_eq!(winners.len(), 1);
        assert!(
            invalid(s.refresh(winners[0].refresh_token()).await),
            "reuse ended it"
        );
        assert!(
            s.revocations()
                .is_revoked(&claims(serde_json::json!({"sub": "g0", "sid": t0.sid()})))
        );
    }
}

/// `can_refresh` says what a refresh would do and changes nothing: asking about a predecessor
/// after the window, or about a stranger's key, is not reuse, and the token still refreshes.
async fn can_rotate_looks_without_changing_anything(backend: &impl Fresh) {
    let s = backend.sessions().await.grace(Duration::ZERO);
    let t0 = s.open_bound("look", Some("key-a")).await.expect(STEP);
    assert!(
        s.can_refresh(t0.refresh_token(), Some("key-a"))
            .await
            .expect(STEP)
    );
    assert!(
        !s.can_refresh(t0.refresh_token(), Some("key-b"))
            .await
            .expect(STEP)
    );
    assert!(!s.can_refresh(t0.refresh_token(), None).await.expect(STEP));
    assert!(!s.can_refresh("garbage", Some("key-a")).await.expect(STEP));
    let t1 = s
        .refresh_bound(t0.refresh_token(), Some("key-a"))
        .await
        .expect(STEP);
    // The predecessor, with no grace: not refreshable, and asking is not reuse.
    assert!(
        !s.can_refresh(t0.refresh_token(), Some("key-a"))
            .await
            .expect(STEP)
    );
    assert!(
        s.can_refresh(t1.refresh_token(), Some("key-a"))
            .await
            .expect(STEP)
    );
    s.refresh_bound(t1.refresh_token(), Some("key-a"))
        .await
        .expect(STEP);
}

/// A revocation (RFC 7009) ends the session of a live refresh token whatever its key, and
/// changes nothing for a token that is not live: a used predecessor, garbage, a made-up
/// family.
async fn a_revocation_ends_a_bound_session_without_its_key(backend: &impl Fresh) {
    let s = backend.sessions().await.grace(Duration::ZERO);
    let t0 = s.open_bound("revoked", Some("key-a")).await.expect(STEP);
    let t1 = s
        .refresh_bound(t0.refresh_token(), Some("key-a"))
        .await
        .expect(STEP);
    let made_up = format!("{}{}", &t1.refresh_token()[..32], "A".repeat(65));
    for dead in [t0.refresh_token(), "garbage", made_up.as_str()] {
        assert!(!s.end_by_refresh_token(dead).await.expect(STEP), "{dead}");
    }
    // Nothing was ended: the live token still refreshes.
    assert!(
        s.can_refresh(t1.refresh_token(), Some("key-a"))
            .await
            .expect(STEP)
    );
    assert!(
        s.end_by_refresh_token(t1.refresh_token())
            .await
            .expect(STEP)
    );
    assert!(matches!(
        s.refresh_bound(t1.refresh_token(), Some("key-a")).await,
        Err(RefreshError::Invalid)
    ));
    assert!(
        !s.end_by_refresh_token(t1.refresh_token())
            .await
            .expect(STEP)
    );
}

/// The DPoP key of a bound session comes back with every rotation (and with the repeat within
/// the grace window); an unbound session has none.
async fn a_bound_family_keeps_its_key(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let t0 = s.open_bound("1", Some(jkt)).await.expect(STEP);
    assert_eq!(t0.jkt(), Some(jkt));
    let t1 = s
        .refresh_bound(t0.refresh_token(), Some(jkt))
        .await
        .expect(STEP);
    assert_eq!(t1.jkt(), Some(jkt));
    let repeat = s
        .refresh_bound(t0.refresh_token(), Some(jkt))
        .await
        .expect(STEP);
    assert_eq!(repeat.jkt(), Some(jkt));
    let plain = s.open("2").await.expect(STEP);
    assert_eq!(
        s.refresh(plain.refresh_token()).await.expect(STEP).jkt(),
        None
    );

    // Without the key, or with another: refused, and nothing changes (no rotation, no reuse).
    // With no grace window, a rotation hidden in a refused attempt would make the token a
    // reused predecessor: the refresh with the key below would fail.
    let strict = backend.sessions().await.grace(Duration::ZERO);
    let t2 = strict.open_bound("1", Some(jkt)).await.expect(STEP);
    for other in [None, Some("another-key-thumbprint")] {
        assert!(matches!(
            strict.refresh_bound(t2.refresh_token(), other).await,
            Err(RefreshError::WrongKey)
        ));
    }
    let t3 = strict
        .refresh_bound(t2.refresh_token(), Some(jkt))
        .await
        .expect(STEP);
    assert_ne!(t3.refresh_token(), t2.refresh_token());
    // An unbound session rotates with a proof from any key (it stays unbound).
    let plain2 = s.open("3").await.expect(STEP);
    let next = s
        .refresh_bound(plain2.refresh_token(), Some(jkt))
        .await
        .expect(STEP);
    assert_eq!(next.jkt(), None);
}

/// `first_use` (the DPoP replay check): true once per key until its time is up.
async fn a_key_is_used_first_once(store: &dyn OneTimeStore) {
    assert!(
        store
            .first_use("p1", Duration::from_millis(300))
            .await
            .expect(STEP)
    );
    assert!(
        !store
            .first_use("p1", Duration::from_millis(300))
            .await
            .expect(STEP)
    );
    assert!(
        store
            .first_use("p2", Duration::from_millis(300))
            .await
            .expect(STEP)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store
            .first_use("p1", Duration::from_millis(300))
            .await
            .expect(STEP)
    );
}

async fn rotation_grace_and_reuse(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.expect(STEP);
    assert_eq!(t0.generation(), 0);
    assert!(t0.refresh_token().len() >= 64, "at least 256 bits");
    assert!(
        !t0.refresh_token().contains('.'),
        "opaque: nothing like a JWT"
    );
    let t1 = s.refresh(t0.refresh_token()).await.expect(STEP);
    assert_eq!((t1.sid(), t1.sub()), (t0.sid(), "1"));
    assert_eq!(
        t1.auth_time(),
        t0.auth_time(),
        "a refresh keeps the login time"
    );
    assert_ne!(t1.refresh_token(), t0.refresh_token());
    // The predecessor within the window: the same successor, again and again.
    for _ in 0..3 {
        let again = s.refresh(t0.refresh_token()).await.expect(STEP);
        assert_eq!(again.refresh_token(), t1.refresh_token());
    }
    let t2 = s.refresh(t1.refresh_token()).await.expect(STEP);
    // The grandparent is reuse: refused, and the session is revoked.
    assert!(invalid(s.refresh(t0.refresh_token()).await));
    assert!(invalid(s.refresh(t2.refresh_token()).await), "family dead");
    assert!(
        s.revocations()
            .is_revoked(&claims(serde_json::json!({"sid": t0.sid()})))
    );
}

async fn a_forged_secret_of_a_known_family_is_reuse(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.expect(STEP);
    let mut forged = t0.refresh_token().to_owned();
    let last = forged.pop().expect(STEP);
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(invalid(s.refresh(&forged).await));
    assert!(invalid(s.refresh(t0.refresh_token()).await));
}

async fn the_grace_window_ends(backend: &impl Fresh) {
    let s = backend.sessions().await.grace(Duration::from_millis(600));
    let t0 = s.open("1").await.expect(STEP);
    let t1 = s.refresh(t0.refresh_token()).await.expect(STEP);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(invalid(s.refresh(t0.refresh_token()).await), "too late");
    assert!(
        invalid(s.refresh(t1.refresh_token()).await),
        "reuse ended it"
    );
}

async fn concurrent_refreshes_never_fork(backend: &impl Fresh) {
    let s = backend.sessions().await;
    for _ in 0..5 {
        let t0 = s.open("1").await.expect(STEP);
        let results = futures_join_all((0..20).map(|_| {
            let s = s.clone();
            let token = t0.refresh_token().to_owned();
            tokio::spawn(async move { s.refresh(&token).await })
        }))
        .await;
        let tokens: Vec<String> = results
            .into_iter()
            .map(|r| r.expect(STEP).expect(STEP).refresh_token().to_owned())
            .collect();
        assert!(tokens.iter().all(|t| *t == tokens[0]), "one successor");
        s.refresh(&tokens[0]).await.expect(STEP);
    }
}

async fn futures_join_all<T>(
    handles: impl IntoIterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await);
    }
    out
}

async fn ending_a_session(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let a = s.open("1").await.expect(STEP);
    let b = s.open("1").await.expect(STEP);
    s.end("1", a.sid()).await.expect(STEP);
    assert!(invalid(s.refresh(a.refresh_token()).await));
    assert!(
        s.revocations()
            .is_revoked(&claims(serde_json::json!({"sid": a.sid()})))
    );
    // The other session of the same user is untouched.
    s.refresh(b.refresh_token()).await.expect(STEP);
    // Ending it twice is fine.
    s.end("1", a.sid()).await.expect(STEP);
}

async fn logging_out_everywhere_then_logging_in_in_the_same_second(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let a = s.open("7").await.expect(STEP);
    let b = s.open("7").await.expect(STEP);
    let other = s.open("8").await.expect(STEP);
    s.end_all("7").await.expect(STEP);
    assert!(invalid(s.refresh(a.refresh_token()).await));
    assert!(invalid(s.refresh(b.refresh_token()).await));
    s.refresh(other.refresh_token()).await.expect(STEP);
    let fresh = s.open("7").await.expect(STEP);
    // The generation only grows: past the old one, and at least the store's clock in ms, so a
    // store that lost the counter still raises it past every token issued before.
    assert!(fresh.generation() > a.generation());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect(STEP)
        .as_millis();
    assert!(
        u128::from(fresh.generation()) + 5000 >= now_ms,
        "{}",
        fresh.generation()
    );
    let old = claims(serde_json::json!({"sub": "7", "gen": a.generation(), "sid": a.sid()}));
    let new =
        claims(serde_json::json!({"sub": "7", "gen": fresh.generation(), "sid": fresh.sid()}));
    assert!(s.revocations().is_revoked(&old));
    assert!(
        !s.revocations().is_revoked(&new),
        "a login right after works"
    );
    s.refresh(fresh.refresh_token()).await.expect(STEP);
}

async fn idle_and_absolute_lifetimes(backend: &impl Fresh) {
    let s = backend
        .sessions()
        .await
        .idle_lifetime(Duration::from_millis(700));
    let t0 = s.open("1").await.expect(STEP);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(invalid(s.refresh(t0.refresh_token()).await), "idle");

    let s = backend
        .sessions()
        .await
        .lifetime(Duration::from_millis(1200))
        .idle_lifetime(Duration::from_secs(60));
    let t0 = s.open("1").await.expect(STEP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t1 = s.refresh(t0.refresh_token()).await.expect(STEP);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(invalid(s.refresh(t1.refresh_token()).await), "absolute");
}

async fn throttling(store: Arc<dyn ThrottleStore>) {
    let throttle =
        LoginThrottle::new(Arc::clone(&store)).per_user(Some("3/60".parse().expect(STEP)));
    for _ in 0..3 {
        assert_eq!(
            throttle.take_user("alice").await.expect(STEP),
            Throttle::Allowed
        );
    }
    match throttle.take_user("alice").await.expect(STEP) {
        Throttle::Limited { retry_after } => {
            assert!(
                retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20)
            );
        }
        other => panic!("expected a limit, got {other:?}"),
    }
    // Another name has its own budget; a success gives its unit back.
    assert_eq!(
        throttle.take_user("bob").await.expect(STEP),
        Throttle::Allowed
    );
    throttle.give_user("alice").await.expect(STEP);
    assert_eq!(
        throttle.take_user("alice").await.expect(STEP),
        Throttle::Allowed
    );
    let rate: Rate = "1/1".parse().expect(STEP);
    let quick = LoginThrottle::new(store).per_user(Some(rate));
    assert_eq!(
        quick.take_user("carol").await.expect(STEP),
        Throttle::Allowed
    );
    assert!(matches!(
        quick.take_user("carol").await.expect(STEP),
        Throttle::Limited { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        quick.take_user("carol").await.expect(STEP),
        Throttle::Allowed,
        "refilled"
    );
}

async fn garbage_is_invalid(backend: &impl Fresh) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.expect(STEP);
    for bad in [
        "",
        "x",
        "a.b.c",
        &"z".repeat(5000),
        &t0.refresh_token()[1..],
    ] {
        assert!(invalid(s.refresh(bad).await), "{bad:.40}");
    }
    s.refresh(t0.refresh_token()).await.expect(STEP);
}
