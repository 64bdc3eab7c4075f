//! Session costs: the revocation check alone, a throttled login attempt, a refresh in memory
//! (criterion); then, under `cargo bench` only, refreshes per second with their p50/p99 latency
//! in memory and, when `REDIS_URL` is set, against that Redis, and the time a revocation takes
//! to reach a second node (`scripts/bench-sessions.sh` starts a private Redis and sets it).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::Criterion;
use http::Request;
use http_body_util::Full;
use tower::ServiceExt;
use tower_jwt_auth::login::{InMemoryUsers, LoginService, TokenIssuer};
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::session::{LoginThrottle, MemoryStore, PeerAddr, Sessions, TrustedProxies};
use tower_jwt_auth::{Algorithm, RegisteredClaims, SigningKey};
use tower_jwt_auth_redis::RedisStore;

fn micro(c: &mut Criterion) {
    let mut group = c.benchmark_group("sessions");

    // The per-request check: 10,000 revoked sessions, a token with sid, jti and sub (three
    // lookups, none matching).
    let revocations = Revocations::new();
    let until = SystemTime::now() + Duration::from_secs(3600);
    revocations.batch(|b| {
        for i in 0..10_000 {
            b.revoke_session(&format!("session-{i}"), until);
        }
        b.revoke_user_before("someone-else", 3, until);
    });
    let claims: RegisteredClaims = serde_json::from_value(serde_json::json!({
        "sub": "1", "sid": "0123456789abcdef0123456789abcdef",
        "jti": "fedcba9876543210fedcba9876543210", "gen": 0
    }))
    .unwrap();
    group.bench_function("revocation check, 10000 entries, no match", |b| {
        b.iter(|| black_box(&revocations).is_revoked(black_box(&claims)));
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // A login attempt refused by the per-address limit: no password hash.
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user("user1", "password1", serde_json::json!({"sub": "1"}))
        .unwrap();
    let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [3u8; 32]).unwrap());
    let throttle = LoginThrottle::new(MemoryStore::new())
        .per_address(Some("1/3600".parse().unwrap()))
        .trusted_proxies(TrustedProxies::none());
    let login = LoginService::new(users, issuer).throttle(throttle);
    let request = || {
        let mut req = Request::post("/login")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"username":"user1","password":"password1"}"#,
            )))
            .unwrap();
        req.extensions_mut()
            .insert(PeerAddr("192.0.2.1:5000".parse().unwrap()));
        req
    };
    rt.block_on(login.clone().oneshot(request())).unwrap();
    group.bench_function("throttled login attempt (429, memory store)", |b| {
        b.iter(|| {
            let res = rt.block_on(login.clone().oneshot(request())).unwrap();
            assert_eq!(res.status(), 429);
        });
    });

    let sessions = Sessions::new(MemoryStore::new());
    let mut token = rt.block_on(sessions.open("1")).unwrap();
    group.bench_function("refresh (memory store)", |b| {
        b.iter(|| {
            token = rt
                .block_on(sessions.refresh(token.refresh_token()))
                .unwrap();
        });
    });
    group.finish();
}

/// `clients` tasks refreshing their own session chains for `secs`: refreshes per second, p50
/// and p99.
async fn refresh_load(name: &str, sessions: &Sessions, clients: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let sessions = sessions.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut token = sessions.open("1").await.unwrap();
            while Instant::now() < deadline {
                let start = Instant::now();
                token = sessions.refresh(token.refresh_token()).await.unwrap();
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "refresh load, {name}, {clients} clients, {secs} s: {:.0} refreshes/s, p50 {:?}, p99 {:?}",
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99)
    );
}

async fn propagation(url: &str) {
    let a = RedisStore::connect(url).await.unwrap();
    let b = RedisStore::connect(url).await.unwrap();
    let a = Sessions::new(a);
    let b_list = Revocations::new();
    let _feed = b
        .follow(b_list.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    let mut took = Vec::new();
    for _ in 0..200 {
        let session = a.open("1").await.unwrap();
        let claims: RegisteredClaims =
            serde_json::from_value(serde_json::json!({"sid": session.sid()})).unwrap();
        let start = Instant::now();
        a.end("1", session.sid()).await.unwrap();
        while !b_list.is_revoked(&claims) {
            tokio::task::yield_now().await;
        }
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "revocation propagation A -> B (logout call to B's list), 200 logouts: median {:?}, p99 {:?}, max {:?}",
        took[100], took[198], took[199]
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    micro(&mut c);
    c.final_summary();
    // `cargo test --benches` runs this without `--bench`: skip the load runs there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        refresh_load("memory", &Sessions::in_memory(), 16, 5).await;
        match std::env::var("REDIS_URL") {
            Ok(url) => {
                let store = RedisStore::connect(&url).await.unwrap();
                refresh_load("redis", &Sessions::new(store), 16, 5).await;
                propagation(&url).await;
            }
            Err(_) => println!(
                "REDIS_URL is not set: no Redis figures (scripts/bench-sessions.sh sets it)"
            ),
        }
    });
}
