//! The OAuth 2 endpoints of both HTTP demos over real HTTP: discovery, `client_credentials`
//! (Basic and post), the refresh grant, revocation and introspection, with who may do what;
//! and two nodes on one Redis, where a revocation on one is seen by the other at once.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::{Client, Reply, SECRET, SERVERS, Server};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use redis_server::RedisServer;
use serde_json::{Value, json};

const CLIENTS: &str = "client1:secret1:api.read api.write;client2:secret2:api.read";

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("LOGIN_IP_LIMIT".to_owned(), "1000/60".to_owned()),
        ("OAUTH_CLIENTS".to_owned(), CLIENTS.to_owned()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// POST a form, with HTTP Basic when `auth` names a client.
async fn form(c: &Client, path: &str, auth: Option<(&str, &str)>, body: &str) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(c.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = auth {
        req = req.header("authorization", basic(id, secret));
    }
    let reply = c
        .send(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await;
    assert_eq!(
        reply
            .headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{path}: {}",
        reply.text()
    );
    reply
}

async fn client_token(c: &Client, id: &str, secret: &str) -> String {
    let r = form(
        c,
        "/token",
        Some((id, secret)),
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(c: &Client, token: &str) -> Value {
    let r = form(
        c,
        "/introspect",
        Some(("client2", "secret2")),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// The other node hears of a revocation through the store's feed: within a second or so.
async fn refused_soon(c: &Client, token: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.protected(token).await.status == StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[track_caller]
fn assert_error(r: &Reply, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"], error, "{}", r.text());
}

#[tokio::test]
async fn discovery_names_the_endpoints_on_both_demos() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let base = server.url("");
        let r = server
            .get("/.well-known/oauth-authorization-server", &[])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let doc = r.json();
        assert_eq!(
            doc["issuer"], base,
            "{name}: the listen address is the issuer"
        );
        assert_eq!(doc["token_endpoint"], format!("{base}/token"));
        assert_eq!(doc["revocation_endpoint"], format!("{base}/revoke"));
        assert_eq!(doc["introspection_endpoint"], format!("{base}/introspect"));
        assert_eq!(doc["scopes_supported"], json!(["api.read", "api.write"]));
        assert!(
            doc.get("jwks_uri").is_none(),
            "{name}: HS256 has no public keys"
        );
        let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
        assert!(algs.contains(&json!("Ed25519")), "{name}");
    }
    // With an issuer path (RFC 8414 §3.1) and public keys: the path is inserted, and the
    // OpenID configuration names the same endpoints.
    let mut extra = common::env_for(jsonwebtoken::Algorithm::ES256);
    extra.push(("JWT_ISSUER".into(), "https://login.example/tenant".into()));
    extra.push(("OAUTH_CLIENTS".into(), CLIENTS.into()));
    let server = Server::start("axum_server", &extra);
    let r = server
        .get("/.well-known/oauth-authorization-server/tenant", &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["issuer"], "https://login.example/tenant");
    assert_eq!(doc["jwks_uri"], server.url("/.well-known/jwks.json"));
    let openid = server
        .get("/.well-known/openid-configuration", &[])
        .await
        .json();
    assert_eq!(openid, doc);
}

#[tokio::test]
async fn client_credentials_tokens_reach_protected_on_both_demos() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        // Basic, all scopes.
        let r = form(
            &server,
            "/token",
            Some(("client1", "secret1")),
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let body = r.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "api.read api.write");
        assert!(body.get("refresh_token").is_none());
        let token = body["access_token"].as_str().unwrap();
        let claims = common::decode_payload(token);
        assert_eq!(
            claims["aud"],
            server.url(""),
            "{name}: aud is the issuer identifier"
        );
        assert_eq!(claims["iss"], server.url(""));
        let r = server.protected(token).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let me = r.json();
        assert_eq!(me["client_id"], "client1");
        assert!(me.get("username").is_none(), "{name}: {me}");

        // client_secret_post, narrowed.
        let r = form(
            &server,
            "/token",
            None,
            "grant_type=client_credentials&client_id=client1&client_secret=secret1&scope=api.write",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        assert_eq!(r.json()["scope"], "api.write");

        assert_error(
            &form(
                &server,
                "/token",
                Some(("client2", "secret2")),
                "grant_type=client_credentials&scope=api.write",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        );
        let r = form(
            &server,
            "/token",
            Some(("client1", "wrong")),
            "grant_type=client_credentials",
        )
        .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(
            r.challenge().starts_with("Basic"),
            "{name}: {}",
            r.challenge()
        );
        let r = form(
            &server,
            "/token",
            None,
            "grant_type=client_credentials&client_id=client1&client_secret=wrong",
        )
        .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_client");
        assert_error(
            &form(
                &server,
                "/token",
                None,
                "grant_type=password&username=user1&password=password1",
            )
            .await,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        );
        // A JSON body is not a token request.
        let r = server
            .post_json("/token", &[], r#"{"grant_type":"client_credentials"}"#)
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}");
    }
}

#[tokio::test]
async fn the_refresh_grant_and_revocation_of_user_sessions() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let login = server.login("user1", "password1").await.json();
        let refresh = login["refresh_token"].as_str().unwrap();
        // Another client may not use a first-party refresh token.
        assert_error(
            &form(
                &server,
                "/token",
                Some(("client1", "secret1")),
                &format!("grant_type=refresh_token&refresh_token={refresh}"),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );
        let r = form(
            &server,
            "/token",
            None,
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        let rotated = r.json();
        let access = rotated["access_token"].as_str().unwrap();
        let next = rotated["refresh_token"].as_str().unwrap();
        assert_eq!(server.protected(access).await.status, StatusCode::OK);
        // Revoking the refresh token ends the session: its access token is refused too.
        let r = form(
            &server,
            "/revoke",
            None,
            &format!("token={next}&token_type_hint=refresh_token"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        server
            .protected(access)
            .await
            .assert_unauthorized("a revoked session's token");
        assert_error(
            &form(
                &server,
                "/token",
                None,
                &format!("grant_type=refresh_token&refresh_token={next}"),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        );
        // Garbage: 200, nothing to do.
        assert_eq!(
            form(&server, "/revoke", None, "token=garbage").await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_client_revokes_and_inspects_only_what_is_its_own() {
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let token = client_token(&server, "client1", "secret1").await;
        let active = introspect(&server, &token).await;
        assert_eq!(active["active"], true, "{name}: {active}");
        assert_eq!(active["client_id"], "client1");
        assert_eq!(active["sub"], "client1");
        assert_eq!(active["scope"], "api.read api.write");
        assert_eq!(active["token_type"], "Bearer");
        assert_eq!(active["iss"], server.url(""));

        // Not without authentication, not by another client: and nothing is revoked.
        assert_error(
            &form(&server, "/revoke", None, &format!("token={token}")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        );
        assert_error(
            &form(
                &server,
                "/revoke",
                Some(("client2", "secret2")),
                &format!("token={token}"),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert_eq!(
            server.protected(&token).await.status,
            StatusCode::OK,
            "{name}"
        );
        let r = form(
            &server,
            "/revoke",
            Some(("client1", "secret1")),
            &format!("token={token}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.text());
        server
            .protected(&token)
            .await
            .assert_unauthorized("a revoked client token");
        assert_eq!(introspect(&server, &token).await, json!({"active": false}));

        // Introspection needs an authenticated client; refresh tokens are never active to one.
        let user = server.login("user1", "password1").await.json();
        let access = user["access_token"].as_str().unwrap();
        assert_error(
            &form(&server, "/introspect", None, &format!("token={access}")).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        );
        let seen = introspect(&server, access).await;
        assert_eq!(seen["active"], true);
        assert_eq!(seen["client_id"], "first-party");
        assert_eq!(seen["username"], "user1");
        let refresh = user["refresh_token"].as_str().unwrap();
        assert_eq!(introspect(&server, refresh).await, json!({"active": false}));
    }
}

#[tokio::test]
async fn failed_client_authentication_is_limited_per_address() {
    // Behind a trusted proxy, so the test can speak from several client addresses.
    let server = Server::start(
        "hyper_server",
        &env(&[
            ("LOGIN_IP_LIMIT", "3/600"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ]),
    );
    let token = |from: &'static str, secret: &'static str| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", from)
            .header("authorization", basic("client1", secret));
        req = req.header("accept", "application/json");
        server.send(
            req.body(Full::new(Bytes::from_static(
                b"grant_type=client_credentials",
            )))
            .unwrap(),
        )
    };
    for _ in 0..3 {
        assert_eq!(
            token("203.0.113.5", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = token("203.0.113.5", "wrong").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.headers.contains_key("retry-after"));
    // The attacker's address is limited; the client, elsewhere, is not locked out.
    let r = token("198.51.100.7", "secret1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Successes never use up an address's budget.
    for _ in 0..5 {
        assert_eq!(
            token("198.51.100.7", "secret1").await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn client_lists_the_demos_refuse() {
    for (list, says) in [
        ("123:secret:api.read", "digits"),
        ("client1:secret1", "id:secret:scope"),
        ("first-party:s:x", "first-party"),
    ] {
        let printed = Server::refused("axum_server", &env(&[("OAUTH_CLIENTS", list)]));
        assert!(
            printed.contains("OAUTH_CLIENTS") && printed.contains(says),
            "{list}: {printed}"
        );
    }
}

#[tokio::test]
async fn a_revocation_on_one_node_is_seen_by_the_other_at_once() {
    let Some(redis) = RedisServer::start("a_revocation_on_one_node_is_seen_by_the_other_at_once")
    else {
        return;
    };
    let url = redis.url();
    // One issuer identifier for both nodes (else each would name its own address).
    let shared = env(&[
        ("REDIS_URL", url.as_str()),
        ("JWT_ISSUER", "https://login.example"),
    ]);
    let (a, b) = (
        Server::start("axum_server", &shared),
        Server::start("hyper_server", &shared),
    );
    let token = client_token(&a, "client1", "secret1").await;
    assert_eq!(b.protected(&token).await.status, StatusCode::OK);
    let r = form(
        &b,
        "/revoke",
        Some(("client1", "secret1")),
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    refused_soon(&a, &token).await;
    // The layer and introspection read the same list: once one sees it, both do.
    assert_eq!(introspect(&a, &token).await, json!({"active": false}));

    let user = a.login("user1", "password1").await.json();
    let (access, refresh) = (
        user["access_token"].as_str().unwrap().to_owned(),
        user["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(b.protected(&access).await.status, StatusCode::OK);
    assert_eq!(introspect(&b, &access).await["active"], true);
    let r = form(&b, "/revoke", None, &format!("token={refresh}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    refused_soon(&a, &access).await;
    assert_eq!(introspect(&a, &access).await, json!({"active": false}));
}
