//! The session endpoints of the demo servers over real HTTP: one node in memory, and two nodes
//! (the axum demo and the hyper demo) sharing one private `redis-server`, with its failures.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use common::{Client, Reply, SECRET, SERVERS, Server};
use http::StatusCode;
use redis_server::{RedisCluster, RedisServer};

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("LOGIN_IP_LIMIT".to_owned(), "1000/60".to_owned()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

struct Tokens {
    access: String,
    refresh: String,
}

fn tokens(reply: &Reply) -> Tokens {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let json = reply.json();
    Tokens {
        access: json["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh: json["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    }
}

async fn login(c: &Client) -> Tokens {
    tokens(&c.login("user1", "password1").await)
}

async fn refresh(c: &Client, token: &str) -> Reply {
    let body = serde_json::json!({ "refresh_token": token }).to_string();
    c.post_json("/refresh", &[], &body).await
}

async fn logout(c: &Client, path: &str, access: &str) -> Reply {
    c.post_json(path, &[("authorization", &format!("Bearer {access}"))], "")
        .await
}

#[track_caller]
fn assert_invalid_grant(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.json()["error"], "invalid_grant");
}

/// Poll until `/protected` answers `status` for `token` on `c`; how long it took.
async fn until_status(c: &Client, token: &str, status: StatusCode, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let reply = c.protected(token).await;
        if reply.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "expected {status} within {limit:?}, still {} {} ({:?})",
            reply.status,
            reply.text(),
            reply.headers.get("www-authenticate")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn one_node_in_memory() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[("LOGIN_USER_LIMIT", "3/60")]));
        let c: &Client = &server;
        let t0 = login(c).await;
        assert_eq!(c.protected(&t0.access).await.status, StatusCode::OK);

        // Rotation; the predecessor within the grace window gets the same successor.
        let r1 = refresh(c, &t0.refresh).await;
        let t1 = tokens(&r1);
        assert_eq!(r1.headers["cache-control"], "no-store");
        assert_eq!(tokens(&refresh(c, &t0.refresh).await).refresh, t1.refresh);
        assert_eq!(c.protected(&t1.access).await.status, StatusCode::OK);
        let t2 = tokens(&refresh(c, &t1.refresh).await);
        // A grandparent is reuse: the whole session goes, access tokens included.
        assert_invalid_grant(&refresh(c, &t0.refresh).await);
        assert_invalid_grant(&refresh(c, &t2.refresh).await);
        let revoked = c.protected(&t2.access).await;
        revoked.assert_unauthorized(name);
        assert!(revoked.challenge().contains("invalid_token"), "{name}");

        // Malformed requests.
        assert_invalid_grant(&refresh(c, "not-a-token").await);
        let bad = c.post_json("/refresh", &[], "{\"refresh\":1}").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.json()["error"], "invalid_request");
        let form = c.post("/refresh", Some("text/plain"), "x").await;
        assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            c.get("/refresh", &[]).await.status,
            StatusCode::METHOD_NOT_ALLOWED
        );

        // Logout: 204, then the access token and the refresh token are dead.
        let t = login(c).await;
        assert_eq!(
            logout(c, "/logout", &t.access).await.status,
            StatusCode::NO_CONTENT
        );
        c.protected(&t.access).await.assert_unauthorized(name);
        assert_invalid_grant(&refresh(c, &t.refresh).await);
        logout(c, "/logout", "garbage")
            .await
            .assert_unauthorized("logout without a valid token");

        // Log out everywhere, then log in within the same second.
        let a = login(c).await;
        let b = login(c).await;
        assert_eq!(
            logout(c, "/logout-all", &a.access).await.status,
            StatusCode::NO_CONTENT
        );
        let fresh = login(c).await;
        assert_eq!(c.protected(&fresh.access).await.status, StatusCode::OK);
        c.protected(&b.access).await.assert_unauthorized(name);
        assert_invalid_grant(&refresh(c, &b.refresh).await);
        tokens(&refresh(c, &fresh.refresh).await);

        // Throttling: the fourth failure for user2 is refused, the right password too (the
        // hash never runs), with Retry-After; an unknown name is limited the same way.
        for user in ["user2", "nobody"] {
            for _ in 0..3 {
                assert_eq!(
                    c.login(user, "wrong").await.status,
                    StatusCode::UNAUTHORIZED
                );
            }
            let limited = c.login(user, "password2").await;
            assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
            assert_eq!(limited.json()["error"], "too_many_requests");
            let retry: u64 = limited.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=20).contains(&retry), "{retry}");
        }
        // user1's budget is its own.
        login(c).await;
    }
}

#[tokio::test]
async fn the_address_limit_believes_forwarded_for_only_from_trusted_proxies() {
    for (proxies, separate) in [("127.0.0.1/32", true), ("", false)] {
        let server = Server::start(
            "axum_server",
            &env(&[("LOGIN_IP_LIMIT", "2/60"), ("TRUSTED_PROXIES", proxies)]),
        );
        let body = r#"{"username":"user1","password":"wrong"}"#;
        for client in ["203.0.113.1", "203.0.113.2"] {
            for _ in 0..2 {
                let r = server
                    .post_json("/login", &[("x-forwarded-for", client)], body)
                    .await;
                let expected = if separate || client.ends_with(".1") {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                assert_eq!(r.status, expected, "{proxies:?} {client}");
            }
        }
    }
}

fn shared_env(redis: &RedisServer, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let url = redis.url();
    let mut all = vec![("REDIS_URL", url.as_str())];
    all.extend_from_slice(extra);
    env(&all)
}

#[tokio::test]
async fn two_nodes_share_sessions_through_redis() {
    let Some(redis) = RedisServer::start("two_nodes_share_sessions_through_redis") else {
        return;
    };
    let e = shared_env(
        &redis,
        &[("REFRESH_GRACE_SECS", "1"), ("LOGIN_USER_LIMIT", "3/60")],
    );
    let a = Server::start("axum_server", &e);
    let b = Server::start("hyper_server", &e);
    let (a, b): (&Client, &Client) = (&a, &b);

    // Rotation across the nodes.
    let t0 = login(a).await;
    let t1 = tokens(&refresh(b, &t0.refresh).await);
    assert_eq!(tokens(&refresh(a, &t0.refresh).await).refresh, t1.refresh);
    let t2 = tokens(&refresh(a, &t1.refresh).await);
    assert_eq!(b.protected(&t2.access).await.status, StatusCode::OK);

    // Grace boundary: the predecessor after the window is reuse.
    let s0 = login(a).await;
    let s1 = tokens(&refresh(a, &s0.refresh).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_invalid_grant(&refresh(b, &s0.refresh).await);
    assert_invalid_grant(&refresh(a, &s1.refresh).await);

    // Reuse on B of a family made on A: its access tokens are refused on both nodes.
    assert_invalid_grant(&refresh(b, &t0.refresh).await);
    let took_a = until_status(
        a,
        &t2.access,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
    )
    .await;
    let took_b = until_status(
        b,
        &t2.access,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("reuse revoked the family's access tokens: A after {took_a:?}, B after {took_b:?}");
    assert_invalid_grant(&refresh(a, &t2.refresh).await);

    // 20 concurrent refreshes of one token, split over the nodes, never fork the family.
    for round in 0..5 {
        let t = login(a).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let token = t.refresh.clone();
            tasks.push(tokio::spawn(async move { refresh(&node, &token).await }));
        }
        let mut successors = Vec::new();
        for task in tasks {
            successors.push(tokens(&task.await.unwrap()).refresh);
        }
        assert!(
            successors.iter().all(|s| *s == successors[0]),
            "round {round}: the family forked"
        );
        tokens(&refresh(b, &successors[0]).await);
    }

    // A logout on A reaches B within a second (the goal: well under 100 ms).
    let mut took = Vec::new();
    for _ in 0..10 {
        let t = login(a).await;
        assert_eq!(b.protected(&t.access).await.status, StatusCode::OK);
        assert_eq!(
            logout(a, "/logout", &t.access).await.status,
            StatusCode::NO_CONTENT
        );
        took.push(
            until_status(
                b,
                &t.access,
                StatusCode::UNAUTHORIZED,
                Duration::from_secs(1),
            )
            .await,
        );
        assert_invalid_grant(&refresh(b, &t.refresh).await);
    }
    took.sort();
    eprintln!(
        "logout propagation A -> B: median {:?}, max {:?}",
        took[5], took[9]
    );

    // Log out everywhere on B, log in on A in the same second: the new session works on both.
    let old = login(b).await;
    assert_eq!(
        logout(b, "/logout-all", &old.access).await.status,
        StatusCode::NO_CONTENT
    );
    let fresh = login(a).await;
    assert_eq!(a.protected(&fresh.access).await.status, StatusCode::OK);
    assert_eq!(b.protected(&fresh.access).await.status, StatusCode::OK);
    until_status(
        a,
        &old.access,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
    )
    .await;
    assert_invalid_grant(&refresh(a, &old.refresh).await);

    // Throttling counts on both nodes together.
    assert_eq!(a.login("user2", "x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.login("user2", "x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.login("user2", "x").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.login("user2", "password2").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Key hygiene: the prefix, an expiry on every key, no token, password or username.
    let dump = redis.dump();
    assert!(dump.len() > 5, "{dump:?}");
    for (key, ttl, content) in &dump {
        assert!(key.starts_with("tja:"), "{key}");
        assert!(*ttl >= 0 || *ttl == -2, "{key} has no expiry ({ttl})");
        for secret in [
            "user1",
            "user2",
            "password",
            &t0.refresh,
            &t0.access,
            &fresh.refresh,
        ] {
            assert!(
                !key.contains(secret) && !content.contains(secret),
                "{key} holds a secret: {content}"
            );
        }
    }
}

#[tokio::test]
async fn two_nodes_ride_out_redis_failures() {
    let Some(mut redis) = RedisServer::start("two_nodes_ride_out_redis_failures") else {
        return;
    };
    let e = shared_env(&redis, &[("REVOCATION_MAX_STALENESS_SECS", "2")]);
    let a = Server::start("axum_server", &e);
    let b = Server::start("hyper_server", &e);
    let (a, b): (&Client, &Client) = (&a, &b);

    // Every connection killed: B reconnects and catches up with a logout made meanwhile.
    redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    let t = login(a).await;
    assert_eq!(
        logout(a, "/logout", &t.access).await.status,
        StatusCode::NO_CONTENT
    );
    until_status(
        b,
        &t.access,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(3),
    )
    .await;

    // Redis stops: the stateful endpoints answer 503 with Retry-After at once; verification
    // goes on from the snapshot for the staleness bound, then fails closed with 503.
    let live = login(b).await;
    redis.stop();
    for reply in [
        a.login("user1", "password1").await,
        refresh(b, &live.refresh).await,
        logout(a, "/logout", &live.access).await,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text()
        );
        assert!(reply.headers.contains_key("retry-after"));
    }
    assert_eq!(b.protected(&live.access).await.status, StatusCode::OK);
    let took = until_status(
        b,
        &live.access,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(6),
    )
    .await;
    eprintln!("verification failed closed {took:?} after Redis stopped");
    assert!(
        b.protected(&live.access)
            .await
            .headers
            .contains_key("retry-after")
    );

    // Redis is back (empty: no persistence here): both nodes recover without a restart.
    redis.restart();
    until_status(a, &live.access, StatusCode::OK, Duration::from_secs(5)).await;
    until_status(b, &live.access, StatusCode::OK, Duration::from_secs(5)).await;
    let t = login(a).await;
    tokens(&refresh(b, &t.refresh).await);
}

#[tokio::test]
async fn two_nodes_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start("two_nodes_on_a_redis_cluster") else {
        return;
    };
    let url = cluster.url();
    let e = env(&[("REDIS_URL", url.as_str())]);
    let a = Server::start("axum_server", &e);
    let b = Server::start("hyper_server", &e);
    let (a, b): (&Client, &Client) = (&a, &b);
    let t0 = login(a).await;
    let t1 = tokens(&refresh(b, &t0.refresh).await);
    assert_eq!(tokens(&refresh(a, &t0.refresh).await).refresh, t1.refresh);
    assert_eq!(b.protected(&t1.access).await.status, StatusCode::OK);
    assert_eq!(
        logout(b, "/logout", &t1.access).await.status,
        StatusCode::NO_CONTENT
    );
    until_status(
        a,
        &t1.access,
        StatusCode::UNAUTHORIZED,
        Duration::from_secs(1),
    )
    .await;
    assert_invalid_grant(&refresh(a, &t1.refresh).await);
    let keys: usize = cluster.nodes.iter().map(|n| n.dump().len()).sum();
    assert!(keys > 0);
}
