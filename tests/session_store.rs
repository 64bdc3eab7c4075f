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
    let t2 = s
        .refresh_bound(t1.refresh_token(), Some(jkt))
        .await
        .unwrap();
    for other in [None, Some("another-key-thumbprint")] {
        assert!(matches!(
            s.refresh_bound(t2.refresh_token(), other).await,
            Err(RefreshError::WrongKey)
        ));
    }
    let t3 = s
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
    assert_eq!(fresh.generation(), a.generation() + 1);
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
    contract(Backend::Redis(server.url())).await;
    assert!(
        !server.dump().is_empty(),
        "the contract left state to inspect"
    );
    hygiene(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start("the_contract_holds_on_a_redis_cluster") else {
        return;
    };
    contract(Backend::Redis(cluster.url())).await;
    let mut keys = 0;
    for node in &cluster.nodes {
        hygiene(node);
        keys += node.dump().len();
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
fn hygiene(server: &RedisServer) {
    for (key, ttl, content) in &server.dump() {
        assert!(key.starts_with('c'), "prefix: {key}");
        // -1: no expiry; -2: gone meanwhile; 0: expiring this very millisecond.
        assert!(*ttl >= 0 || *ttl == -2, "{key} has no expiry ({ttl})");
        for secret in ["alice", "bob", "carol", "password"] {
            assert!(
                !key.contains(secret) && !content.contains(secret),
                "{key}: {content}"
            );
        }
        // Refresh tokens are <tag>.<family>.<secret>: no stored value has that shape.
        assert!(
            !content.contains('.') || key.contains("{rev}"),
            "{key}: {content}"
        );
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
