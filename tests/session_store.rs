//! The session-store contract, written once and run against `MemoryStore` and `RedisStore`
//! (a private `redis-server`), plus what only a shared store has: the revocation feed between
//! nodes, reconnects, a stopped Redis, and key hygiene.

#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_server::{RedisCluster, RedisServer};
use tower_jwt_auth::RegisteredClaims;
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::session::{
    LoginThrottle, MemoryStore, Rate, RedisOptions, RedisStore, RefreshError, Session, Sessions,
    Throttle,
};

/// Where a contract case gets its sessions from.
enum Backend {
    Memory,
    /// A `redis://` or `redis+cluster://` URL.
    Redis(String),
}

static PREFIX: AtomicUsize = AtomicUsize::new(0);

impl Backend {
    /// Fresh sessions (a new key prefix on Redis, so cases do not see each other's state).
    async fn sessions(&self) -> Sessions {
        match self {
            Self::Memory => Sessions::new(MemoryStore::new()),
            Self::Redis(url) => {
                let prefix = format!("c{}:", PREFIX.fetch_add(1, Ordering::Relaxed));
                let store = RedisStore::connect_with(url, RedisOptions::new().prefix(prefix))
                    .await
                    .expect("connects");
                Sessions::new(store)
            }
        }
    }
}

fn claims(json: serde_json::Value) -> RegisteredClaims {
    serde_json::from_value(json).unwrap()
}

#[allow(clippy::needless_pass_by_value)]
fn invalid(result: Result<Session, RefreshError>) -> bool {
    matches!(result, Err(RefreshError::Invalid))
}

/// The contract. Every case asserts what both stores must do.
async fn contract(backend: Backend) {
    rotation_grace_and_reuse(&backend).await;
    a_forged_secret_of_a_known_family_is_reuse(&backend).await;
    the_grace_window_ends(&backend).await;
    concurrent_refreshes_never_fork(&backend).await;
    ending_a_session(&backend).await;
    logging_out_everywhere_then_logging_in_in_the_same_second(&backend).await;
    idle_and_absolute_lifetimes(&backend).await;
    throttling(&backend).await;
    garbage_is_invalid(&backend).await;
    a_bound_family_keeps_its_key(&backend).await;
    a_key_is_used_first_once(&backend).await;
    no_grace_means_no_repeat(&backend).await;
    can_rotate_looks_without_changing_anything(&backend).await;
}

/// A zero grace window admits no repeat: of 20 concurrent refreshes exactly one succeeds, the
/// others are reuse, which ends the session.
async fn no_grace_means_no_repeat(backend: &Backend) {
    let s = backend.sessions().await.grace(Duration::ZERO);
    for _ in 0..5 {
        let t0 = s.open("g0").await.unwrap();
        let results = futures_join_all((0..20).map(|_| {
            let (s, token) = (s.clone(), t0.refresh_token().to_owned());
            tokio::spawn(async move { s.refresh(&token).await })
        }))
        .await;
        let winners: Vec<&Session> = results
            .iter()
            .filter_map(|r| r.as_ref().unwrap().as_ref().ok())
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
async fn can_rotate_looks_without_changing_anything(backend: &Backend) {
    let s = backend.sessions().await.grace(Duration::ZERO);
    let t0 = s.open_bound("look", Some("key-a")).await.unwrap();
    assert!(
        s.can_refresh(t0.refresh_token(), Some("key-a"))
            .await
            .unwrap()
    );
    assert!(
        !s.can_refresh(t0.refresh_token(), Some("key-b"))
            .await
            .unwrap()
    );
    assert!(!s.can_refresh(t0.refresh_token(), None).await.unwrap());
    assert!(!s.can_refresh("garbage", Some("key-a")).await.unwrap());
    let t1 = s
        .refresh_bound(t0.refresh_token(), Some("key-a"))
        .await
        .unwrap();
    // The predecessor, with no grace: not refreshable, and asking is not reuse.
    assert!(
        !s.can_refresh(t0.refresh_token(), Some("key-a"))
            .await
            .unwrap()
    );
    assert!(
        s.can_refresh(t1.refresh_token(), Some("key-a"))
            .await
            .unwrap()
    );
    s.refresh_bound(t1.refresh_token(), Some("key-a"))
        .await
        .unwrap();
}

/// The DPoP key of a bound session comes back with every rotation (and with the repeat within
/// the grace window); an unbound session has none.
async fn a_bound_family_keeps_its_key(backend: &Backend) {
    let s = backend.sessions().await;
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let t0 = s.open_bound("1", Some(jkt)).await.unwrap();
    assert_eq!(t0.jkt(), Some(jkt));
    let t1 = s
        .refresh_bound(t0.refresh_token(), Some(jkt))
        .await
        .unwrap();
    assert_eq!(t1.jkt(), Some(jkt));
    let repeat = s
        .refresh_bound(t0.refresh_token(), Some(jkt))
        .await
        .unwrap();
    assert_eq!(repeat.jkt(), Some(jkt));
    let plain = s.open("2").await.unwrap();
    assert_eq!(s.refresh(plain.refresh_token()).await.unwrap().jkt(), None);

    // Without the key, or with another: refused, and nothing changes (no rotation, no reuse).
    // With no grace window, a rotation hidden in a refused attempt would make the token a
    // reused predecessor: the refresh with the key below would fail.
    let strict = backend.sessions().await.grace(Duration::ZERO);
    let t2 = strict.open_bound("1", Some(jkt)).await.unwrap();
    for other in [None, Some("another-key-thumbprint")] {
        assert!(matches!(
            strict.refresh_bound(t2.refresh_token(), other).await,
            Err(RefreshError::WrongKey)
        ));
    }
    let t3 = strict
        .refresh_bound(t2.refresh_token(), Some(jkt))
        .await
        .unwrap();
    assert_ne!(t3.refresh_token(), t2.refresh_token());
    // An unbound session rotates with a proof from any key (it stays unbound).
    let plain2 = s.open("3").await.unwrap();
    let next = s
        .refresh_bound(plain2.refresh_token(), Some(jkt))
        .await
        .unwrap();
    assert_eq!(next.jkt(), None);
}

/// `first_use` (the DPoP replay check): true once per key until its time is up.
async fn a_key_is_used_first_once(backend: &Backend) {
    let s = backend.sessions().await;
    let store = s.store();
    assert!(
        store
            .first_use("p1", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !store
            .first_use("p1", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        store
            .first_use("p2", Duration::from_millis(300))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store
            .first_use("p1", Duration::from_millis(300))
            .await
            .unwrap()
    );
}

async fn rotation_grace_and_reuse(backend: &Backend) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.unwrap();
    assert_eq!(t0.generation(), 0);
    assert!(t0.refresh_token().len() >= 64, "at least 256 bits");
    assert!(
        !t0.refresh_token().contains('.'),
        "opaque: nothing like a JWT"
    );
    let t1 = s.refresh(t0.refresh_token()).await.unwrap();
    assert_eq!((t1.sid(), t1.sub()), (t0.sid(), "1"));
    assert_eq!(
        t1.auth_time(),
        t0.auth_time(),
        "a refresh keeps the login time"
    );
    assert_ne!(t1.refresh_token(), t0.refresh_token());
    // The predecessor within the window: the same successor, again and again.
    for _ in 0..3 {
        let again = s.refresh(t0.refresh_token()).await.unwrap();
        assert_eq!(again.refresh_token(), t1.refresh_token());
    }
    let t2 = s.refresh(t1.refresh_token()).await.unwrap();
    // The grandparent is reuse: refused, and the session is revoked.
    assert!(invalid(s.refresh(t0.refresh_token()).await));
    assert!(invalid(s.refresh(t2.refresh_token()).await), "family dead");
    assert!(
        s.revocations()
            .is_revoked(&claims(serde_json::json!({"sid": t0.sid()})))
    );
}

async fn a_forged_secret_of_a_known_family_is_reuse(backend: &Backend) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.unwrap();
    let mut forged = t0.refresh_token().to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(invalid(s.refresh(&forged).await));
    assert!(invalid(s.refresh(t0.refresh_token()).await));
}

async fn the_grace_window_ends(backend: &Backend) {
    let s = backend.sessions().await.grace(Duration::from_millis(600));
    let t0 = s.open("1").await.unwrap();
    let t1 = s.refresh(t0.refresh_token()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(invalid(s.refresh(t0.refresh_token()).await), "too late");
    assert!(
        invalid(s.refresh(t1.refresh_token()).await),
        "reuse ended it"
    );
}

async fn concurrent_refreshes_never_fork(backend: &Backend) {
    let s = backend.sessions().await;
    for _ in 0..5 {
        let t0 = s.open("1").await.unwrap();
        let results = futures_join_all((0..20).map(|_| {
            let s = s.clone();
            let token = t0.refresh_token().to_owned();
            tokio::spawn(async move { s.refresh(&token).await })
        }))
        .await;
        let tokens: Vec<String> = results
            .into_iter()
            .map(|r| r.unwrap().unwrap().refresh_token().to_owned())
            .collect();
        assert!(tokens.iter().all(|t| *t == tokens[0]), "one successor");
        s.refresh(&tokens[0]).await.unwrap();
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

async fn ending_a_session(backend: &Backend) {
    let s = backend.sessions().await;
    let a = s.open("1").await.unwrap();
    let b = s.open("1").await.unwrap();
    s.end("1", a.sid()).await.unwrap();
    assert!(invalid(s.refresh(a.refresh_token()).await));
    assert!(
        s.revocations()
            .is_revoked(&claims(serde_json::json!({"sid": a.sid()})))
    );
    // The other session of the same user is untouched.
    s.refresh(b.refresh_token()).await.unwrap();
    // Ending it twice is fine.
    s.end("1", a.sid()).await.unwrap();
}

async fn logging_out_everywhere_then_logging_in_in_the_same_second(backend: &Backend) {
    let s = backend.sessions().await;
    let a = s.open("7").await.unwrap();
    let b = s.open("7").await.unwrap();
    let other = s.open("8").await.unwrap();
    s.end_all("7").await.unwrap();
    assert!(invalid(s.refresh(a.refresh_token()).await));
    assert!(invalid(s.refresh(b.refresh_token()).await));
    s.refresh(other.refresh_token()).await.unwrap();
    let fresh = s.open("7").await.unwrap();
    // The generation only grows: past the old one, and at least the store's clock in ms, so a
    // store that lost the counter still raises it past every token issued before.
    assert!(fresh.generation() > a.generation());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
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
    s.refresh(fresh.refresh_token()).await.unwrap();
}

async fn idle_and_absolute_lifetimes(backend: &Backend) {
    let s = backend
        .sessions()
        .await
        .idle_lifetime(Duration::from_millis(700));
    let t0 = s.open("1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(invalid(s.refresh(t0.refresh_token()).await), "idle");

    let s = backend
        .sessions()
        .await
        .lifetime(Duration::from_millis(1200))
        .idle_lifetime(Duration::from_secs(60));
    let t0 = s.open("1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t1 = s.refresh(t0.refresh_token()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(invalid(s.refresh(t1.refresh_token()).await), "absolute");
}

async fn throttling(backend: &Backend) {
    let s = backend.sessions().await;
    let throttle = LoginThrottle::new(s.store().clone()).per_user(Some("3/60".parse().unwrap()));
    for _ in 0..3 {
        assert_eq!(
            throttle.take_user("alice").await.unwrap(),
            Throttle::Allowed
        );
    }
    match throttle.take_user("alice").await.unwrap() {
        Throttle::Limited { retry_after } => {
            assert!(
                retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20)
            );
        }
        other => panic!("expected a limit, got {other:?}"),
    }
    // Another name has its own budget; a success gives its unit back.
    assert_eq!(throttle.take_user("bob").await.unwrap(), Throttle::Allowed);
    throttle.give_user("alice").await.unwrap();
    assert_eq!(
        throttle.take_user("alice").await.unwrap(),
        Throttle::Allowed
    );
    let rate: Rate = "1/1".parse().unwrap();
    let quick = LoginThrottle::new(s.store().clone()).per_user(Some(rate));
    assert_eq!(quick.take_user("carol").await.unwrap(), Throttle::Allowed);
    assert!(matches!(
        quick.take_user("carol").await.unwrap(),
        Throttle::Limited { .. }
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        quick.take_user("carol").await.unwrap(),
        Throttle::Allowed,
        "refilled"
    );
}

async fn garbage_is_invalid(backend: &Backend) {
    let s = backend.sessions().await;
    let t0 = s.open("1").await.unwrap();
    for bad in [
        "",
        "x",
        "a.b.c",
        &"z".repeat(5000),
        &t0.refresh_token()[1..],
    ] {
        assert!(invalid(s.refresh(bad).await), "{bad:.40}");
    }
    s.refresh(t0.refresh_token()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_in_memory() {
    contract(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_redis() {
    let Some(server) = RedisServer::start("the_contract_holds_on_redis") else {
        return;
    };
    let backend = Backend::Redis(server.url());
    contract(backend).await;
    let tokens = census(&Backend::Redis(server.url())).await;
    hygiene(&server, &tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start("the_contract_holds_on_a_redis_cluster") else {
        return;
    };
    contract(Backend::Redis(cluster.url())).await;
    let tokens = census(&Backend::Redis(cluster.url())).await;
    let mut keys = 0;
    for node in &cluster.nodes {
        let held = node.dump().len();
        if held > 0 {
            hygiene(node, &tokens);
        }
        keys += held;
    }
    assert!(keys > 0);
    // Revocations travel between two nodes of the application through the cluster too.
    let (a, _) = node_on(&cluster.url(), Duration::from_secs(5)).await;
    let (_b, b_list) = node_on(&cluster.url(), Duration::from_secs(5)).await;
    let session = a.sessions.open("1").await.unwrap();
    let token = claims(serde_json::json!({"sid": session.sid()}));
    a.sessions.end("1", session.sid()).await.unwrap();
    until("logout through the cluster", Duration::from_secs(1), || {
        b_list.is_revoked(&token)
    })
    .await;
}

/// Every key has the prefix and a TTL; no value holds a refresh token, a username or a
/// password.
/// The user id the census issues tokens for: it must never show in a key.
const CENSUS_SUB: &str = "census-user-8c1f9e";

/// Issue tokens every way the store can see one (open, bound open, rotation, a repeat within
/// the grace window, reuse, "log out everywhere") and return every refresh token handed out.
async fn census(backend: &Backend) -> Vec<String> {
    let s = backend.sessions().await;
    let mut issued = Vec::new();
    let t0 = s.open(CENSUS_SUB).await.unwrap();
    let t1 = s.refresh(t0.refresh_token()).await.unwrap();
    let repeat = s.refresh(t0.refresh_token()).await.unwrap();
    let bound = s.open_bound(CENSUS_SUB, Some("census-key")).await.unwrap();
    let bound1 = s
        .refresh_bound(bound.refresh_token(), Some("census-key"))
        .await
        .unwrap();
    let reused = s.open(CENSUS_SUB).await.unwrap();
    let reused1 = s.refresh(reused.refresh_token()).await.unwrap();
    s.refresh(reused1.refresh_token()).await.unwrap();
    assert!(invalid(s.refresh(reused.refresh_token()).await));
    for t in [&t0, &t1, &repeat, &bound, &bound1, &reused, &reused1] {
        issued.push(t.refresh_token().to_owned());
    }
    s.end_all(CENSUS_SUB).await.unwrap();
    let after = s.open(CENSUS_SUB).await.unwrap();
    issued.push(after.refresh_token().to_owned());
    issued.push(
        s.refresh(after.refresh_token())
            .await
            .unwrap()
            .refresh_token()
            .to_owned(),
    );
    issued
}

/// Every key has the prefix and an expiry; no key or value holds a password, a username, the
/// census user's id (in a key), or any refresh token the census handed out, whole or its
/// family or secret part.
fn hygiene(server: &RedisServer, tokens: &[String]) {
    let dump = server.dump();
    assert!(!dump.is_empty(), "nothing to inspect");
    assert!(tokens.len() >= 9, "the census handed out its tokens");
    for (key, ttl, content) in &dump {
        assert!(key.starts_with('c'), "prefix: {key}");
        // -1: no expiry; -2: gone meanwhile; 0: expiring this very millisecond.
        assert!(*ttl >= 0 || *ttl == -2, "{key} has no expiry ({ttl})");
        for secret in ["alice", "bob", "carol", "password"] {
            assert!(
                !key.contains(secret) && !content.contains(secret),
                "{key}: {content}"
            );
        }
        assert!(!key.contains(CENSUS_SUB), "the user id in a key: {key}");
        for token in tokens {
            // <32-hex user tag><22-char family id><43-char secret>
            assert_eq!(token.len(), 97);
            for part in [token.as_str(), &token[32..54], &token[54..]] {
                assert!(
                    !key.contains(part) && !content.contains(part),
                    "{key} holds a refresh token (or part of one): {content}"
                );
            }
        }
    }
}

/// Two nodes: each with its own connection, sessions and revocation list, following Redis.
struct Node {
    sessions: Sessions,
    _feed: tower_jwt_auth::session::RevocationFeed,
}

async fn node(server: &RedisServer, staleness: Duration) -> (Node, Revocations) {
    node_on(&server.url(), staleness).await
}

async fn node_on(url: &str, staleness: Duration) -> (Node, Revocations) {
    let store = RedisStore::connect_with(
        url,
        RedisOptions::new()
            .prefix("feed:")
            .timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let revocations = Revocations::new();
    let feed = store.follow(revocations.clone(), staleness).await.unwrap();
    let sessions = Sessions::new(store).with_revocations(revocations.clone());
    (
        Node {
            sessions,
            _feed: feed,
        },
        revocations,
    )
}

async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_the_other_node_and_survive_lost_connections() {
    let Some(mut server) = RedisServer::start("revocations_reach_the_other_node") else {
        return;
    };
    let (a, _) = node(&server, Duration::from_secs(2)).await;
    let (b, b_list) = node(&server, Duration::from_secs(2)).await;

    // A logout on A reaches B well within a second.
    let session = a.sessions.open("1").await.unwrap();
    let token = claims(serde_json::json!({"sub": "1", "sid": session.sid(), "gen": 0}));
    a.sessions.end("1", session.sid()).await.unwrap();
    let took = until("logout on B", Duration::from_secs(1), || {
        b_list.is_revoked(&token)
    })
    .await;
    eprintln!("revocation reached the other node in {took:?}");

    // Kill B's connections (the subscription among them): B reconnects, reloads, and sees a
    // revocation made meanwhile.
    let reloads = b._feed.reloads();
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    let session = a.sessions.open("2").await.unwrap();
    let token = claims(serde_json::json!({"sub": "2", "sid": session.sid()}));
    a.sessions.end("2", session.sid()).await.unwrap();
    until("catch-up after CLIENT KILL", Duration::from_secs(3), || {
        b_list.is_revoked(&token)
    })
    .await;
    until("a reload after the kill", Duration::from_secs(3), || {
        b._feed.reloads() > reloads
    })
    .await;

    // Redis stops: operations fail fast, verification goes on until the staleness bound, then
    // refuses; Redis returns: the node recovers by itself.
    server.stop();
    let start = Instant::now();
    assert!(matches!(
        b.sessions.refresh(session.refresh_token()).await,
        Err(RefreshError::Unavailable(_))
    ));
    assert!(b.sessions.open("3").await.is_err());
    assert!(start.elapsed() < Duration::from_secs(2), "fails fast");
    assert!(b_list.is_current(), "still within the bound");
    until("stale after the bound", Duration::from_secs(5), || {
        !b_list.is_current()
    })
    .await;
    server.restart();
    until("current again", Duration::from_secs(5), || {
        b_list.is_current()
    })
    .await;
    b.sessions.open("3").await.unwrap();
    // Revocations made after the restart still travel.
    let session = a.sessions.open("4").await.unwrap();
    let token = claims(serde_json::json!({"sub": "4", "sid": session.sid()}));
    a.sessions.end("4", session.sid()).await.unwrap();
    until("after recovery", Duration::from_secs(3), || {
        b_list.is_revoked(&token)
    })
    .await;
}

/// Redis loses its data (a `FLUSHALL`, then a restart without persistence): the nodes notice
/// (the epoch is gone) and write back what they hold, so no revoked token comes back on any
/// node, nor on a node started after the loss; a "log out everywhere" after the loss still
/// revokes every older token, a login after it gets a token that works; and revocations made
/// after the loss, with a sequence number that started again, reach every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_lost_by_redis_does_not_undo_revocations() {
    let Some(mut server) = RedisServer::start("data_lost_by_redis") else {
        return;
    };
    let staleness = Duration::from_secs(5);
    let (a, a_list) = node(&server, staleness).await;
    let (b, b_list) = node(&server, staleness).await;
    let (_c, c_list) = node(&server, staleness).await;

    for (round, lose) in ["FLUSHALL", "restart"].into_iter().enumerate() {
        let sub = format!("loss-{round}");
        // Before the loss: a logout (on A), a "log out everywhere" (on B), a revoked token.
        let ended = a.sessions.open(&sub).await.unwrap();
        a.sessions.end(&sub, ended.sid()).await.unwrap();
        let old = b.sessions.open(&sub).await.unwrap();
        b.sessions.end_all(&sub).await.unwrap();
        a.sessions
            .revoke_token(&format!("jti-{round}"))
            .await
            .unwrap();
        let logged_out = claims(serde_json::json!({"sub": sub, "sid": ended.sid(), "gen": 0}));
        let everywhere =
            claims(serde_json::json!({"sub": sub, "sid": old.sid(), "gen": old.generation()}));
        let single = claims(serde_json::json!({"sub": "x", "jti": format!("jti-{round}")}));
        let revoked = [&logged_out, &everywhere, &single];
        for list in [&a_list, &b_list, &c_list] {
            until("revocations everywhere", Duration::from_secs(2), || {
                revoked.iter().all(|t| list.is_revoked(t))
            })
            .await;
        }

        let write_backs = a._feed.write_backs();
        if lose == "FLUSHALL" {
            server.cli(&["FLUSHALL"]);
        } else {
            server.stop();
            server.restart();
        }
        until(
            "a write-back after the loss",
            Duration::from_secs(5),
            || a._feed.write_backs() > write_backs,
        )
        .await;
        // Redis has them again: a node started now refuses them too.
        let (_d, d_list) = node(&server, staleness).await;
        until(
            "a node started after the loss",
            Duration::from_secs(3),
            || revoked.iter().all(|t| d_list.is_revoked(t)),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        for (i, list) in [&a_list, &b_list, &c_list].iter().enumerate() {
            for t in revoked {
                assert!(list.is_revoked(t), "{lose}: node {i} let {t:?} back in");
            }
        }

        // A login after the loss gets a token no node refuses (its generation is not below
        // the revoked one); a "log out everywhere" after the loss revokes it and every older
        // token, on every node.
        let fresh = a.sessions.open(&sub).await.unwrap();
        assert!(fresh.generation() > old.generation(), "{lose}");
        let fresh_token =
            claims(serde_json::json!({"sub": sub, "sid": fresh.sid(), "gen": fresh.generation()}));
        for list in [&a_list, &b_list, &c_list] {
            assert!(!list.is_revoked(&fresh_token), "{lose}");
        }
        b.sessions.end_all(&sub).await.unwrap();
        let again = claims(serde_json::json!({"sub": sub, "gen": fresh.generation()}));
        for list in [&a_list, &b_list, &c_list, &d_list] {
            until(
                "log out everywhere after the loss",
                Duration::from_secs(2),
                || list.is_revoked(&again) && list.is_revoked(&everywhere),
            )
            .await;
        }

        // A plain logout after the loss (the sequence started again) reaches every node.
        let later = a.sessions.open("after").await.unwrap();
        a.sessions.end("after", later.sid()).await.unwrap();
        let later = claims(serde_json::json!({"sub": "after", "sid": later.sid()}));
        for list in [&b_list, &c_list, &d_list] {
            until(
                "a revocation after the loss",
                Duration::from_secs(2),
                || list.is_revoked(&later),
            )
            .await;
        }
    }
}

/// A Redis that may evict keys is refused at start: an evicted revocation would let a
/// logged-out token back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_is_refused() {
    let Some(server) = RedisServer::start("a_redis_that_may_evict") else {
        return;
    };
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let error = RedisStore::connect(&server.url()).await.unwrap_err();
    assert!(error.to_string().contains("allkeys-lru"), "{error}");
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    RedisStore::connect(&server.url()).await.unwrap();
    // A server that hides CONFIG (as managed services do): accepted, with a warning.
    server.cli(&["ACL", "SETUSER", "default", "-config"]);
    RedisStore::connect(&server.url()).await.unwrap();
}
