//! Two nodes: the issuer (`axum_server`, or an in-process issuer with a key ring) and
//! `resource_server`, which verifies with the issuer's JWKS. Real processes, real HTTP.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};
use tower_jwt_auth::login::{InMemoryUsers, LoginService, TokenIssuer};
use tower_jwt_auth::{JwksService, KeyRing, SigningKey};

fn resource_env(jwks_url: &str) -> Vec<(String, String)> {
    vec![
        ("JWKS_URL".to_owned(), jwks_url.to_owned()),
        ("JWKS_COOLDOWN_MS".to_owned(), "300".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_server_accepts_issuer_tokens_even_after_the_issuer_stops() {
    let issuer = Server::start("axum_server", &env_for(Algorithm::RS256));
    let resource = Server::start(
        "resource_server",
        &resource_env(&issuer.url("/.well-known/jwks.json")),
    );
    let token = issuer.token().await;
    let reply = resource.protected(&token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({"id": 1, "username": "user1"})
    );
    resource
        .get("/protected", &[])
        .await
        .assert_unauthorized("no token");
    assert_eq!(resource.get("/health", &[]).await.status, StatusCode::OK);

    // A token the resource server has never seen (no cached verification): it must be
    // verified with the keys fetched before the issuer went away.
    let unseen = issuer.token().await;
    assert_ne!(unseen, token);
    drop(issuer);
    let reply = resource.protected(&unseen).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "after the issuer stopped: {}",
        reply.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn random_kid_flood_costs_a_bounded_number_of_fetches() {
    // A key endpoint that counts its fetches, serving the issuer's real key.
    let signing = SigningKey::from_pem(Algorithm::RS256, read_key("rsa_private.pem")).unwrap();
    let document = JwksService::new(&signing.verifying_key().unwrap().into())
        .unwrap()
        .document()
        .unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let document = document.clone();
            async move { document }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let resource = Server::start("resource_server", &resource_env(&url));
    let started = std::time::Instant::now();
    let key = encoding_key(Algorithm::RS256);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let client = Client::clone(&resource);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("random-{i}"));
        let token = jsonwebtoken::encode(&header, &standard_claims(), &key).unwrap();
        tasks.push(tokio::spawn(async move {
            client.protected(&token).await.status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let windows = started.elapsed().as_millis() / 300 + 1;
    let refreshes = fetches.load(Ordering::SeqCst) - 1;
    assert!(
        refreshes as u128 <= windows,
        "{refreshes} fetches in {windows} cooldown windows"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_on_the_issuer_is_followed_without_restart() {
    // An in-process issuer whose key ring rotates; the resource server is a separate process.
    let first = SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_private.pem")).unwrap();
    let second = SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_b_private.pem")).unwrap();
    let ring = KeyRing::new(first.clone()).rotation_delay(Duration::from_millis(200));
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user(
            "user1",
            "password1",
            serde_json::json!({"sub": "1", "username": "user1"}),
        )
        .unwrap();
    let login = LoginService::new(users, TokenIssuer::from_key_ring(ring.clone()));
    let app = Router::new().route_service("/login", login).route_service(
        "/.well-known/jwks.json",
        JwksService::from_key_ring(ring.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Client::new(listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let resource = Server::start(
        "resource_server",
        &resource_env(&issuer.url("/.well-known/jwks.json")),
    );
    let old_token = issuer.token().await;
    assert_eq!(
        jsonwebtoken::decode_header(&old_token)
            .unwrap()
            .kid
            .as_deref(),
        first.kid()
    );
    assert_eq!(resource.protected(&old_token).await.status, StatusCode::OK);

    ring.rotate(second.clone());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new_token = issuer.token().await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        second.kid()
    );
    let reply = resource.protected(&new_token).await;
    assert_eq!(reply.status, StatusCode::OK, "new key: {}", reply.text());
    // Tokens signed with the replaced key stay valid during the retention.
    assert_eq!(resource.protected(&old_token).await.status, StatusCode::OK);
}

/// A verification-only node following the issuer's revocation feed: a logout on the issuer is
/// refused on the resource server too, within a second.
#[tokio::test(flavor = "multi_thread")]
async fn a_resource_server_on_the_revocation_feed_refuses_revoked_tokens() {
    let Some(redis) = redis_server::RedisServer::start("resource_server_revocation_feed") else {
        return;
    };
    let mut env = env_for(Algorithm::EdDSA);
    env.push(("REDIS_URL".to_owned(), redis.url()));
    let issuer = Server::start("axum_server", &env);
    let mut env = resource_env(&issuer.url("/.well-known/jwks.json"));
    env.push(("REDIS_URL".to_owned(), redis.url()));
    let resource = Server::start("resource_server", &env);

    let token = issuer.token().await;
    assert_eq!(resource.protected(&token).await.status, StatusCode::OK);
    let logout = issuer
        .post_json(
            "/logout",
            &[("authorization", &format!("Bearer {token}"))],
            "",
        )
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let start = std::time::Instant::now();
    loop {
        let reply = resource.protected(&token).await;
        if reply.status == StatusCode::UNAUTHORIZED {
            assert!(reply.challenge().contains("invalid_token"));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another user's token is unaffected.
    let other = issuer.login("user2", "password2").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(resource.protected(&other).await.status, StatusCode::OK);
}

/// An in-process OpenID provider: `/.well-known/openid-configuration` naming itself, and its
/// JWK Set with one RSA key under `kid` "k1". Returns its issuer URL.
async fn provider(public_key: &str) -> String {
    use tower_jwt_auth::{KeySet, VerifyingKey};
    let key = VerifyingKey::from_pem(Algorithm::RS256, read_key(public_key))
        .unwrap()
        .with_kid("k1");
    let document = JwksService::new(&KeySet::from(key))
        .unwrap()
        .document()
        .unwrap();
    serve_provider(serde_json::from_slice(&document).unwrap()).await
}

/// Serve discovery naming the provider itself and `jwks` as its key set; returns its issuer URL.
async fn serve_provider(jwks: serde_json::Value) -> String {
    use tower_jwt_auth::metadata::ProviderMetadata;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let jwks = jwks.to_string();
    let app = Router::new()
        .route_service(
            "/.well-known/openid-configuration",
            ProviderMetadata::new(issuer.clone(), format!("{issuer}/jwks"))
                .service()
                .unwrap(),
        )
        .route(
            "/jwks",
            get(move || {
                let jwks = jwks.clone();
                async move { ([("content-type", "application/json")], jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn rs256(private_key: &str, iss: &str) -> String {
    tower_jwt_auth::install_crypto_provider().unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({
        "iss": iss, "sub": "1", "username": "user1", "iat": now(), "exp": now() + 600
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&read_key(private_key)).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Two discovered issuers whose keys share the `kid` "k1": each token is checked with its own
/// issuer's key only, and the RFC 9728 metadata names both.
#[tokio::test(flavor = "multi_thread")]
async fn several_issuers_each_with_its_own_keys() {
    let a = provider("rsa_public.pem").await;
    let b = provider("rsa2_public.pem").await;
    let resource = Server::start(
        "resource_server",
        &[
            ("OIDC_ISSUERS".to_owned(), format!("{a},{b}")),
            (
                "PUBLIC_URL".to_owned(),
                "http://api.example.test".to_owned(),
            ),
        ],
    );
    for (key, iss) in [("rsa_private.pem", &a), ("rsa2_private.pem", &b)] {
        let reply = resource.protected(&rs256(key, iss)).await;
        assert_eq!(reply.status, StatusCode::OK, "{iss}: {}", reply.text());
    }
    // B's key, same kid, claiming to be A (and the other way round): refused.
    for (key, iss) in [("rsa2_private.pem", &a), ("rsa_private.pem", &b)] {
        let reply = resource.protected(&rs256(key, iss)).await;
        reply.assert_unauthorized("a token signed by the other issuer");
        assert!(reply.challenge().contains("invalid_token"));
    }
    // An issuer nobody configured.
    resource
        .protected(&rs256("rsa_private.pem", "http://127.0.0.1:1"))
        .await
        .assert_unauthorized("unknown issuer");

    let metadata = resource
        .get("/.well-known/oauth-protected-resource", &[])
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(metadata.json()["resource"], "http://api.example.test");
    assert_eq!(
        metadata.json()["authorization_servers"],
        serde_json::json!([a, b])
    );
    assert!(resource.get("/protected", &[]).await.challenge().contains(
        "resource_metadata=\"http://api.example.test/.well-known/oauth-protected-resource\""
    ));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The issuing demos as two OpenID providers (PUBLIC_URL as issuer, their own EdDSA keys), and
/// `resource_server` trusting both through discovery: the black-box setup of the demo contract.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_issuers_are_discovered_by_the_resource_server() {
    let mut issuers = Vec::new();
    let mut urls = Vec::new();
    for (name, key) in [
        ("axum_server", "ed25519_private.pem"),
        ("hyper_server", "ed25519_b_private.pem"),
    ] {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let env = [
            ("BIND_ADDR".to_owned(), format!("127.0.0.1:{port}")),
            ("PUBLIC_URL".to_owned(), url.clone()),
            ("JWT_ALGORITHM".to_owned(), "EdDSA".to_owned()),
            ("JWT_PRIVATE_KEY_FILE".to_owned(), key_path(key)),
        ];
        issuers.push(Server::start(name, &env));
        urls.push(url);
    }
    let resource = Server::start(
        "resource_server",
        &[("OIDC_ISSUERS".to_owned(), urls.join(","))],
    );
    for issuer in &issuers {
        let token = issuer.token().await;
        let reply = resource.protected(&token).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            reply.json(),
            serde_json::json!({"id": 1, "username": "user1"})
        );
    }
    // A token from a third issuer with one of the same keys is refused: its iss is unknown.
    let third = Server::start(
        "axum_server",
        &[
            ("PUBLIC_URL".to_owned(), "http://127.0.0.1:9".to_owned()),
            ("JWT_ALGORITHM".to_owned(), "EdDSA".to_owned()),
            (
                "JWT_PRIVATE_KEY_FILE".to_owned(),
                key_path("ed25519_private.pem"),
            ),
        ],
    );
    resource
        .protected(&third.token().await)
        .await
        .assert_unauthorized("an issuer that is not trusted");
}

/// An outside provider in the RFC 9068 / RFC 9864 style: it publishes its Ed25519 key as
/// `"alg": "Ed25519"` and signs machine tokens with that name (`typ: at+jwt`, `sub` the client
/// id, `client_id`, `scope`, no `username`). Returns its issuer URL.
async fn ed25519_provider() -> String {
    use tower_jwt_auth::{KeySet, VerifyingKey};
    let key = VerifyingKey::from_pem(Algorithm::EdDSA, read_key("ed25519_public.pem"))
        .unwrap()
        .with_kid("e1");
    let document = JwksService::new(&KeySet::from(key))
        .unwrap()
        .document()
        .unwrap();
    let mut jwks: serde_json::Value = serde_json::from_slice(&document).unwrap();
    jwks["keys"][0]["alg"] = "Ed25519".into();
    serve_provider(jwks).await
}

/// A token signed with the provider's Ed25519 key under the header `alg` and `typ` given.
fn ed25519_token(alg: &str, typ: &str, claims: &serde_json::Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    tower_jwt_auth::install_crypto_provider().unwrap();
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = serde_json::json!({"alg": alg, "typ": typ, "kid": "e1"});
    let message = format!("{}.{}", b64(&header), b64(claims));
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&read_key("ed25519_private.pem")).unwrap();
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::EdDSA).unwrap();
    format!("{message}.{signature}")
}

/// `resource_server` takes a stock RFC 9068 access token of an outside provider (RFC 9864's
/// `Ed25519` in the token and in the key set), answers with what it carries, refuses what is
/// not an access token under `JWT_TYP=at+jwt`, and names a missing claim.
#[tokio::test(flavor = "multi_thread")]
async fn a_stock_rfc_9068_token_of_an_outside_provider_passes() {
    let issuer = ed25519_provider().await;
    let resource = Server::start(
        "resource_server",
        &[
            ("OIDC_ISSUERS".to_owned(), issuer.clone()),
            ("JWT_AUDIENCE".to_owned(), "api".to_owned()),
            ("JWT_TYP".to_owned(), "at+jwt".to_owned()),
        ],
    );
    let claims = serde_json::json!({
        "iss": issuer, "aud": "api", "sub": "client-7", "client_id": "client-7",
        "scope": "api.read api.write", "iat": now(), "exp": now() + 300, "jti": "j-1",
    });
    for alg in ["Ed25519", "EdDSA"] {
        let reply = resource
            .protected(&ed25519_token(alg, "at+jwt", &claims))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{alg}: {}", reply.text());
        assert_eq!(
            reply.json(),
            serde_json::json!({"id": "client-7", "client_id": "client-7", "scope": "api.read api.write"})
        );
    }
    // An ID token (or any JWT that is not an access token) of the same provider: refused.
    resource
        .protected(&ed25519_token("Ed25519", "JWT", &claims))
        .await
        .assert_unauthorized("not typ at+jwt");
    // A claim the API needs is missing: the answer names it.
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    let reply = resource
        .protected(&ed25519_token("Ed25519", "at+jwt", &no_sub))
        .await;
    reply.assert_unauthorized("no sub");
    assert!(
        reply.challenge().contains("`sub` is missing"),
        "{}",
        reply.challenge()
    );
}
