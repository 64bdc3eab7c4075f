//! DPoP (RFC 9449) against the demo servers over HTTP: binding at login and refresh, proofs on
//! `/protected`, the challenges, `DPOP=required|off`, the client layer, and a proof replayed
//! against a second node sharing Redis.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::{Client, Reply, SERVERS, Server, read_key};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tower_jwt_auth::dpop::{DpopClientLayer, DpopKey};
use tower_jwt_auth::{Algorithm, SigningKey};

/// The login body of the demos' first user.
const USER1: &str = r#"{"username":"user1","password":"password1"}"#;

fn es256() -> DpopKey {
    DpopKey::new(SigningKey::from_pem(Algorithm::ES256, read_key("ec256_private.pem")).unwrap())
        .unwrap()
}

fn eddsa() -> DpopKey {
    DpopKey::new(SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_private.pem")).unwrap())
        .unwrap()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The payload of a JWT, decoded without verification.
fn payload(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// POST JSON to `path` with a proof for `url` (when `key` is given).
async fn post_with_proof(
    client: &Client,
    path: &str,
    body: &str,
    key: Option<&DpopKey>,
    url: &str,
) -> Reply {
    let proof = key.map(|k| k.proof(&Method::POST, url, None, None).unwrap());
    let mut headers = Vec::new();
    if let Some(p) = &proof {
        headers.push(("dpop", p.as_str()));
    }
    client.post_json(path, &headers, body).await
}

async fn login(client: &Client, key: Option<&DpopKey>) -> serde_json::Value {
    let reply = post_with_proof(client, "/login", USER1, key, &client.url("/login")).await;
    assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.text());
    reply.json()
}

/// GET `/protected` with `authorization` and an optional proof.
async fn protected(client: &Client, authorization: &str, proof: Option<&str>) -> Reply {
    let mut headers = vec![("authorization", authorization)];
    if let Some(p) = proof {
        headers.push(("dpop", p));
    }
    client.get("/protected", &headers).await
}

fn proof_for(key: &DpopKey, url: &str, token: &str) -> String {
    key.proof(&Method::GET, url, Some(token), None).unwrap()
}

/// The `error` of the `DPoP` challenge of a 401 (`""` without one).
fn dpop_error(reply: &Reply) -> String {
    challenges(reply)
        .iter()
        .filter(|c| c.starts_with("DPoP "))
        .find_map(|c| {
            c.split("error=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// Every `WWW-Authenticate` value.
fn challenges(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_with_a_proof_gets_a_bound_token_that_needs_proofs() {
    for name in SERVERS {
        // No grace window: had a refused attempt rotated the token behind the scenes, the
        // refresh with the right key below would be reuse.
        let server = Server::start(name, &env(&[("REFRESH_GRACE_SECS", "0")]));
        let key = es256();
        let answer = login(&server, Some(&key)).await;
        assert_eq!(answer["token_type"], "DPoP", "{name}");
        let token = answer["access_token"].as_str().unwrap().to_owned();
        assert_eq!(payload(&token)["cnf"]["jkt"], key.jkt(), "{name}");
        let url = server.url("/protected");

        // With a fresh proof: in, as the user.
        let proof = proof_for(&key, &url, &token);
        let ok = protected(&server, &format!("DPoP {token}"), Some(&proof)).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}: {}", ok.text());
        assert_eq!(ok.json()["username"], "user1");

        // The same proof again: a replay.
        let replay = protected(&server, &format!("DPoP {token}"), Some(&proof)).await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{name}");
        let found = challenges(&replay);
        assert!(
            found.iter().any(|c| c.starts_with("DPoP ")
                && c.contains("error=\"invalid_dpop_proof\"")
                && c.contains("algs=\"")),
            "{name}: {found:?}"
        );
        assert!(found.iter().any(|c| c.starts_with("Bearer ")), "{name}");

        // No downgrade: the bound token as a bearer token, with or without a proof.
        let bearer = protected(
            &server,
            &format!("Bearer {token}"),
            Some(&proof_for(&key, &url, &token)),
        )
        .await;
        assert_eq!(bearer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(challenges(&bearer).iter().any(|c| c.starts_with("DPoP ")));
        assert_eq!(dpop_error(&bearer), "invalid_token", "{name}");

        // A proof from another key, or for another URL or method.
        let other = eddsa();
        for (what, proof, error) in [
            // A valid proof, but not from the token's key: the token does not fit.
            (
                "other key",
                proof_for(&other, &url, &token),
                "invalid_token",
            ),
            (
                "other url",
                proof_for(&key, &server.url("/health"), &token),
                "invalid_dpop_proof",
            ),
            (
                "other method",
                key.proof(&Method::POST, &url, Some(&token), None).unwrap(),
                "invalid_dpop_proof",
            ),
            (
                "no ath",
                key.proof(&Method::GET, &url, None, None).unwrap(),
                "invalid_dpop_proof",
            ),
        ] {
            let reply = protected(&server, &format!("DPoP {token}"), Some(&proof)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {what}");
            assert_eq!(dpop_error(&reply), error, "{name}: {what}");
        }

        // A login without a proof: a plain bearer token, refused with the DPoP scheme.
        let plain = login(&server, None).await;
        assert_eq!(plain["token_type"], "Bearer");
        let plain = plain["access_token"].as_str().unwrap();
        assert!(payload(plain).get("cnf").is_none());
        assert_eq!(server.protected(plain).await.status, StatusCode::OK);
        let upgraded = protected(
            &server,
            &format!("DPoP {plain}"),
            Some(&proof_for(&key, &url, plain)),
        )
        .await;
        assert_eq!(upgraded.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(dpop_error(&upgraded), "invalid_token", "{name}");

        // A bad proof at login: 400 invalid_dpop_proof, no token.
        let bad =
            post_with_proof(&server, "/login", USER1, Some(&key), &server.url("/other")).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(bad.json()["error"], "invalid_dpop_proof");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bound_session_refreshes_only_with_its_key() {
    for name in SERVERS {
        // No grace window: had a refused attempt rotated the token behind the scenes, the
        // refresh with the right key below would be reuse.
        let server = Server::start(name, &env(&[("REFRESH_GRACE_SECS", "0")]));
        let key = es256();
        let answer = login(&server, Some(&key)).await;
        let refresh = answer["refresh_token"].as_str().unwrap().to_owned();
        let body = serde_json::json!({ "refresh_token": refresh }).to_string();
        let url = server.url("/refresh");

        // Without a proof, or with another key's: refused.
        let none = post_with_proof(&server, "/refresh", &body, None, &url).await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(none.json()["error"], "invalid_dpop_proof");
        let other = post_with_proof(&server, "/refresh", &body, Some(&eddsa()), &url).await;
        assert_eq!(other.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(other.json()["error"], "invalid_dpop_proof");

        // With its key (the same refresh token: nothing rotated it): a bound token.
        let ok = post_with_proof(&server, "/refresh", &body, Some(&key), &url).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}: {}", ok.text());
        let ok = ok.json();
        assert_eq!(ok["token_type"], "DPoP");
        let token = ok["access_token"].as_str().unwrap();
        assert_eq!(payload(token)["cnf"]["jkt"], key.jkt());
        let reply = protected(
            &server,
            &format!("DPoP {token}"),
            Some(&proof_for(&key, &server.url("/protected"), token)),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn required_refuses_bearer_tokens_and_off_issues_them() {
    for name in SERVERS {
        let required = Server::start(name, &env(&[("DPOP", "required")]));
        let plain = login(&required, None).await;
        let reply = required
            .protected(plain["access_token"].as_str().unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        let found = challenges(&reply);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(dpop_error(&reply), "invalid_token", "{name}: {found:?}");
        assert!(found[0].starts_with("DPoP ") && found[0].contains("algs=\""));
        // A bound token still passes.
        let key = es256();
        let bound = login(&required, Some(&key)).await;
        let token = bound["access_token"].as_str().unwrap();
        let proof = proof_for(&key, &required.url("/protected"), token);
        let ok = protected(&required, &format!("DPoP {token}"), Some(&proof)).await;
        assert_eq!(ok.status, StatusCode::OK, "{name}");
        drop(required);

        let off = Server::start(name, &env(&[("DPOP", "off")]));
        let answer = login(&off, Some(&key)).await;
        assert_eq!(answer["token_type"], "Bearer", "{name}");
        let token = answer["access_token"].as_str().unwrap();
        assert!(payload(token).get("cnf").is_none());
        assert_eq!(off.protected(token).await.status, StatusCode::OK);
        let missing = off.get("/protected", &[]).await;
        assert_eq!(challenges(&missing).len(), 1, "{name}: only Bearer");
    }
}

/// The client layer: a hyper client wrapped in `DpopClientLayer` adds a fresh proof (with
/// `ath`) to each request; the same client works for many requests.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_layer_adds_fresh_proofs() {
    use tower::{Service, ServiceBuilder, ServiceExt};

    let server = Server::start("axum_server", &[]);
    let key = es256();
    let answer = login(&server, Some(&key)).await;
    let token = answer["access_token"].as_str().unwrap().to_owned();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut client = ServiceBuilder::new()
        .layer(DpopClientLayer::new(key))
        .service(http);
    for _ in 0..3 {
        let request = Request::get(server.url("/protected"))
            .header("authorization", format!("DPoP {token}"))
            .body(Full::default())
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// Two nodes behind one public URL, sharing Redis: a proof accepted by one is refused by the
/// other.
#[tokio::test(flavor = "multi_thread")]
async fn a_proof_replayed_against_another_node_is_refused() {
    let Some(redis) = redis_server::RedisServer::start("dpop_replay") else {
        return;
    };
    let shared = env(&[
        ("REDIS_URL", &redis.url()),
        ("PUBLIC_URL", "http://api.test"),
        ("JWT_ISSUER", "http://api.test"),
        ("JWT_SECRET", "a-shared-secret-of-at-least-32-bytes!"),
    ]);
    let a = Server::start("axum_server", &shared);
    let b = Server::start("hyper_server", &shared);
    let key = es256();
    let login_proof = key
        .proof(&Method::POST, "http://api.test/login", None, None)
        .unwrap();
    let reply = a
        .post_json("/login", &[("dpop", &login_proof)], USER1)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    // The login proof is spent on every node.
    let again = b
        .post_json("/login", &[("dpop", &login_proof)], USER1)
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.text());
    assert_eq!(again.json()["error"], "invalid_dpop_proof");

    let proof = proof_for(&key, "http://api.test/protected", &token);
    let first = protected(&b, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let replayed = protected(&a, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop_error(&replayed), "invalid_dpop_proof");
    // A fresh proof works on either node.
    for node in [&a, &b] {
        let proof = proof_for(&key, "http://api.test/protected", &token);
        let reply = protected(node, &format!("DPoP {token}"), Some(&proof)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

/// `DPOP_NONCE_SECRET`: proofs must carry the server's nonce. The login service and the layer
/// ask for it (`use_dpop_nonce` with `DPoP-Nonce`); the client layer learns it from that answer,
/// so its next request passes.
#[tokio::test(flavor = "multi_thread")]
async fn server_nonces_are_asked_for_and_learned() {
    use tower::{Service, ServiceBuilder, ServiceExt};

    for name in SERVERS {
        let server = Server::start(
            name,
            &env(&[("DPOP_NONCE_SECRET", "a-nonce-secret-of-at-least-32-bytes!!")]),
        );
        let key = es256();
        let asked =
            post_with_proof(&server, "/login", USER1, Some(&key), &server.url("/login")).await;
        assert_eq!(asked.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(asked.json()["error"], "use_dpop_nonce");
        let nonce = asked.headers["dpop-nonce"].to_str().unwrap().to_owned();
        let proof = key
            .proof(&Method::POST, &server.url("/login"), None, Some(&nonce))
            .unwrap();
        let login = server.post_json("/login", &[("dpop", &proof)], USER1).await;
        assert_eq!(login.status, StatusCode::OK, "{name}: {}", login.text());
        let token = login.json()["access_token"].as_str().unwrap().to_owned();

        // The resource side: the layer asks with a 401, the client layer retries with it.
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let mut client = ServiceBuilder::new()
            .layer(DpopClientLayer::new(key))
            .service(http);
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let request = Request::get(server.url("/protected"))
                .header("authorization", format!("DPoP {token}"))
                .body(Full::default())
                .unwrap();
            let response = client.ready().await.unwrap().call(request).await.unwrap();
            if response.status() == StatusCode::UNAUTHORIZED {
                let challenge = response.headers()["www-authenticate"].to_str().unwrap();
                assert!(
                    response
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .any(|c| c.to_str().unwrap().contains("use_dpop_nonce")),
                    "{name}: {challenge}"
                );
                assert!(response.headers().contains_key("dpop-nonce"));
            }
            statuses.push(response.status());
        }
        // The new client layer had no nonce yet: asked once, then in.
        assert_eq!(
            statuses,
            [StatusCode::UNAUTHORIZED, StatusCode::OK],
            "{name}"
        );
    }
}
