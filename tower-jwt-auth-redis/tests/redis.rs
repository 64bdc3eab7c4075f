//! The store contract (`tower_jwt_auth::testkit::store_contract`) run against `RedisStore` on a
//! private `redis-server` and a private Redis Cluster, plus what only a shared store has: the
//! revocation feed between nodes, reconnects, a stopped Redis, a Redis that lost its data, and
//! key hygiene.

#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_server::{RedisCluster, RedisServer};
use tower_jwt_auth::RegisteredClaims;
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::session::{RefreshError, Session, Sessions};
use tower_jwt_auth::testkit::store_contract;
use tower_jwt_auth_redis::{RedisOptions, RedisStore, RevocationFeed};

/// A Redis (`redis://` or `redis+cluster://` URL) whose stores each get a new key prefix, so
/// that cases do not see each other's state.
struct Backend(String);

static PREFIX: AtomicUsize = AtomicUsize::new(0);

impl Backend {
    async fn store(&self) -> RedisStore {
        let prefix = format!("c{}:", PREFIX.fetch_add(1, Ordering::Relaxed));
        RedisStore::connect_with(&self.0, RedisOptions::new().prefix(prefix))
            .await
            .expect("connects")
    }

    async fn sessions(&self) -> Sessions {
        Sessions::new(self.store().await)
    }
}

/// The whole contract, each case on a fresh prefix.
async fn contract(backend: &Backend) {
    store_contract::check(|| backend.store()).await;
}

fn claims(json: serde_json::Value) -> RegisteredClaims {
    serde_json::from_value(json).unwrap()
}

#[allow(clippy::needless_pass_by_value)]
fn invalid(result: Result<Session, RefreshError>) -> bool {
    matches!(result, Err(RefreshError::Invalid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_redis() {
    let Some(server) = RedisServer::start("the_contract_holds_on_redis") else {
        return;
    };
    let backend = Backend(server.url());
    contract(&backend).await;
    let tokens = census(&backend).await;
    hygiene(&server, &tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start("the_contract_holds_on_a_redis_cluster") else {
        return;
    };
    let backend = Backend(cluster.url());
    contract(&backend).await;
    let tokens = census(&backend).await;
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
    _feed: RevocationFeed,
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
