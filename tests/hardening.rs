//! What an adversary must not be able to do to the demo servers, over HTTP: write to the shared
//! store without credentials, lock a user out with bad proofs, pass a proof made for another
//! server, fork a session when there is no grace window, or get past the method check with the
//! wrong method.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use common::{Client, Reply, SERVERS, Server};
use http::{Method, StatusCode};
use tower_jwt_auth::dpop::DpopKey;
use tower_jwt_auth::{Algorithm, SigningKey};

const USER1: &str = r#"{"username":"user1","password":"password1"}"#;
const WRONG: &str = r#"{"username":"user1","password":"not-the-password"}"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A fresh ES256 key, so that no proof of another test could collide.
fn fresh_key() -> DpopKey {
    let pem = common::read_key("ec256_private.pem");
    DpopKey::new(SigningKey::from_pem(Algorithm::ES256, pem).unwrap()).unwrap()
}

async fn post_proof(client: &Client, path: &str, body: &str, key: &DpopKey) -> Reply {
    let proof = key
        .proof(&Method::POST, &client.url(path), None, None)
        .unwrap();
    client.post_json(path, &[("dpop", &proof)], body).await
}

/// `GET /protected` with `Authorization: DPoP <token>` and a fresh proof for this server.
async fn protected_with_proof(client: &Client, token: &str, key: &DpopKey) -> Reply {
    let proof = key
        .proof(&Method::GET, &client.url("/protected"), Some(token), None)
        .unwrap();
    let authorization = format!("DPoP {token}");
    client
        .get(
            "/protected",
            &[("authorization", &authorization), ("dpop", &proof)],
        )
        .await
}

fn error_of(reply: &Reply) -> String {
    reply.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn keys(redis: &redis_server::RedisServer) -> Vec<String> {
    redis
        .cli(&["--scan"])
        .lines()
        .map(str::to_owned)
        .filter(|k| !k.is_empty())
        .collect()
}

/// 300 requests with valid proofs but no valid credential (a forged refresh token, a wrong
/// password, a forged access token) leave no proof in Redis: the only keys they may create are
/// the two login limiters (the client address and the user).
#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_with_proofs_write_nothing_to_redis() {
    let Some(redis) = redis_server::RedisServer::start("hardening_anonymous") else {
        return;
    };
    for name in SERVERS {
        redis.cli(&["FLUSHALL"]);
        let server = Server::start(
            name,
            &env(&[
                ("REDIS_URL", &redis.url()),
                ("LOGIN_IP_LIMIT", "1000/60"),
                ("LOGIN_USER_LIMIT", "1000/60"),
            ]),
        );
        let before = keys(&redis);
        let key = fresh_key();
        let forged = format!(r#"{{"refresh_token":"{}"}}"#, "a".repeat(97));
        for _ in 0..100 {
            let reply = post_proof(&server, "/refresh", &forged, &key).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
            assert_eq!(error_of(&reply), "invalid_grant", "{name}");
            let reply = post_proof(&server, "/login", WRONG, &key).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
            let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
            let reply = protected_with_proof(&server, token, &key).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let after = keys(&redis);
        let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
        assert!(
            new.len() <= 2 && new.iter().all(|k| k.contains("{l:")),
            "{name}: anonymous requests created {new:?}"
        );
        // The same proofs with the right credentials are recorded: the count can move.
        let reply = post_proof(&server, "/login", USER1, &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert!(
            keys(&redis).iter().any(|k| k.contains("{p:")),
            "{name}: a successful login records its proof"
        );
    }
}

/// With no grace window, a proof replayed at `/refresh` with a valid refresh token is refused
/// and rotates nothing: the token it came with still refreshes once (with grace 0, a hidden
/// rotation would have made it a reused predecessor).
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_refresh_proof_is_refused_and_rotates_nothing() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[("REFRESH_GRACE_SECS", "0")]));
        let key = fresh_key();
        let login = post_proof(&server, "/login", USER1, &key).await;
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.text());
        let first = login.json()["refresh_token"].as_str().unwrap().to_owned();
        let body = |t: &str| serde_json::json!({ "refresh_token": t }).to_string();
        let proof = key
            .proof(&Method::POST, &server.url("/refresh"), None, None)
            .unwrap();
        let refreshed = server
            .post_json("/refresh", &[("dpop", &proof)], &body(&first))
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{name}");
        let second = refreshed.json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let replayed = server
            .post_json("/refresh", &[("dpop", &proof)], &body(&second))
            .await;
        assert_eq!(replayed.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(error_of(&replayed), "invalid_dpop_proof", "{name}");
        let again = post_proof(&server, "/refresh", &body(&second), &key).await;
        assert_eq!(again.status, StatusCode::OK, "{name}: {}", again.text());
    }
}

/// Only a wrong password counts against the per-user limit: malformed proofs and nonce round
/// trips with the right password never lock the user out; wrong passwords still do.
#[tokio::test(flavor = "multi_thread")]
async fn bad_proofs_never_lock_out_the_right_password() {
    for name in SERVERS {
        let server = Server::start(
            name,
            &env(&[
                ("LOGIN_USER_LIMIT", "5/600"),
                ("LOGIN_IP_LIMIT", "1000/60"),
                ("DPOP_NONCE_SECRET", "a-nonce-secret-of-at-least-32-bytes!!"),
            ]),
        );
        let key = fresh_key();
        for _ in 0..6 {
            let malformed = server
                .post_json("/login", &[("dpop", "not-a-proof")], USER1)
                .await;
            assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{name}");
            assert_eq!(error_of(&malformed), "invalid_dpop_proof", "{name}");
            // A proof without the server's nonce: the nonce round trip.
            let asked = post_proof(&server, "/login", USER1, &key).await;
            assert_eq!(asked.status, StatusCode::BAD_REQUEST, "{name}");
            assert_eq!(error_of(&asked), "use_dpop_nonce", "{name}");
        }
        let login = server.login("user1", "password1").await;
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.text());
        for _ in 0..5 {
            let wrong = server.post_json("/login", &[], WRONG).await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{name}");
        }
        let locked = server.login("user1", "password1").await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{name}");
    }
}

/// Without `PUBLIC_URL` the demos expect proofs for the address they listen on: a proof made
/// for another server, sent with that server's name in `Host`, is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_proof_for_another_host_is_refused_whatever_host_says() {
    for name in SERVERS {
        let server = Server::start(name, &[]);
        let key = fresh_key();
        let login = post_proof(&server, "/login", USER1, &key).await;
        assert_eq!(login.status, StatusCode::OK, "{name}");
        let token = login.json()["access_token"].as_str().unwrap().to_owned();
        let other = "http://other.example:3000/protected";
        let proof = key.proof(&Method::GET, other, Some(&token), None).unwrap();
        let reply = server
            .get(
                "/protected",
                &[
                    ("host", "other.example:3000"),
                    ("authorization", &format!("DPoP {token}")),
                    ("dpop", &proof),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            reply
                .headers
                .get_all("www-authenticate")
                .iter()
                .any(|c| c.to_str().unwrap().contains("invalid_dpop_proof")),
            "{name}"
        );
        // The same token with a proof for this server passes.
        let reply = protected_with_proof(&server, &token, &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
    }
}

/// `REFRESH_GRACE_SECS=0`: of 20 concurrent refreshes of one token exactly one succeeds, and
/// the others are reuse: the session is revoked, its new refresh token and its access tokens
/// with it.
#[tokio::test(flavor = "multi_thread")]
async fn no_grace_means_one_success_and_the_rest_is_reuse() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[("REFRESH_GRACE_SECS", "0")]));
        for round in 0..3 {
            let login = server.login("user1", "password1").await.json();
            let token = login["refresh_token"].as_str().unwrap().to_owned();
            let access = login["access_token"].as_str().unwrap().to_owned();
            let body = serde_json::json!({ "refresh_token": token }).to_string();
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let (client, body) = (Client::clone(&server), body.clone());
                    tokio::spawn(async move { client.post_json("/refresh", &[], &body).await })
                })
                .collect();
            let mut replies = Vec::new();
            for task in tasks {
                replies.push(task.await.unwrap());
            }
            let winners: Vec<&Reply> = replies
                .iter()
                .filter(|r| r.status == StatusCode::OK)
                .collect();
            assert_eq!(winners.len(), 1, "{name}, round {round}");
            assert!(
                replies
                    .iter()
                    .filter(|r| r.status != StatusCode::OK)
                    .all(|r| r.status == StatusCode::BAD_REQUEST && error_of(r) == "invalid_grant"),
                "{name}"
            );
            let successor = winners[0].json()["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned();
            let body = serde_json::json!({ "refresh_token": successor }).to_string();
            let after = server.post_json("/refresh", &[], &body).await;
            assert_eq!(
                after.status,
                StatusCode::BAD_REQUEST,
                "{name}: reuse ends it"
            );
            let fresh_access = winners[0].json()["access_token"]
                .as_str()
                .unwrap()
                .to_owned();
            for access in [&access, &fresh_access] {
                assert_eq!(
                    server.protected(access).await.status,
                    StatusCode::UNAUTHORIZED,
                    "{name}: the session's access tokens are revoked"
                );
            }
        }
    }
}

/// The session endpoints check the method before the credentials.
#[tokio::test(flavor = "multi_thread")]
async fn session_endpoints_answer_405_before_asking_for_credentials() {
    for name in SERVERS {
        let server = Server::start(name, &[]);
        for path in ["/logout", "/logout-all", "/login", "/refresh"] {
            let reply = server.get(path, &[]).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{name} {path}"
            );
            assert_eq!(reply.headers["allow"], "POST", "{name} {path}");
            assert_eq!(error_of(&reply), "method_not_allowed", "{name} {path}");
        }
        // POST without credentials is still 401.
        let reply = server.post_json("/logout", &[], "{}").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
    }
}
