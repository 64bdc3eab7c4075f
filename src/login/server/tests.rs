//! What the composition root derives and wires; the HTTP round trips are in
//! `tests/auth_server.rs`.

use std::time::Duration;

use http::header::WWW_AUTHENTICATE;
use http::{Request, StatusCode};
use tower::{Layer, ServiceExt};

use super::AuthServer;
use crate::keys::SigningKey;
use crate::login::InMemoryUsers;
use jsonwebtoken::Algorithm;

fn users() -> InMemoryUsers<serde_json::Value> {
    InMemoryUsers::new()
        .unwrap()
        .with_user("u", "p", serde_json::json!({"sub": "1"}))
        .unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_secret(Algorithm::HS256, [3u8; 32]).unwrap()
}

#[tokio::test]
async fn the_access_window_is_the_lifetime_plus_the_leeway() {
    let auth = AuthServer::builder(users(), key())
        .ttl(Duration::from_secs(300))
        .leeway(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    assert_eq!(
        auth.sessions().current_access_window(),
        Duration::from_secs(330)
    );
}

#[tokio::test]
async fn issued_tokens_carry_what_the_layer_requires() {
    let auth = AuthServer::builder(users(), key())
        .issuer("https://auth.example")
        .audience("api")
        .build()
        .await
        .unwrap();
    let token = auth
        .issuer()
        .issue(&serde_json::json!({"sub": "1"}))
        .unwrap();
    let svc = auth
        .layer()
        .layer(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }));
    let req = Request::builder()
        .header("authorization", format!("Bearer {}", token.access_token()))
        .body(())
        .unwrap();
    assert_eq!(
        svc.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );

    // A token of another issuer with the same key is refused by the same layer.
    let other = crate::login::TokenIssuer::new(key())
        .audience("api")
        .issuer("https://elsewhere.example")
        .issue(&serde_json::json!({"sub": "1"}))
        .unwrap();
    let req = Request::builder()
        .header("authorization", format!("Bearer {}", other.access_token()))
        .body(())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key(WWW_AUTHENTICATE));
}

#[tokio::test]
async fn without_keys_to_publish_there_is_no_provider_metadata() {
    let auth = AuthServer::builder(users(), key())
        .public_url("https://auth.example")
        .build()
        .await
        .unwrap();
    assert!(auth.provider_metadata().is_none(), "the key is symmetric");
    let (path, _) = auth.resource_metadata().unwrap();
    assert_eq!(path, "/.well-known/oauth-protected-resource");
}

/// Cookie mode through the root: the login answers with cookies, and the root's layers read
/// the access token from its cookie with the CSRF check that comes with it.
#[cfg(feature = "cookie")]
#[tokio::test]
async fn cookie_mode_through_the_root_reads_the_cookie_and_checks_csrf() {
    use crate::login::LoginCookies;

    let auth = AuthServer::builder(users(), key())
        .cookies(LoginCookies::new())
        .build()
        .await
        .unwrap();
    let login = Request::post("/login")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"username":"u","password":"p"}"#,
        )))
        .unwrap();
    let res = auth.login().oneshot(login).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = |name: &str| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .unwrap()
    };
    let access = cookie(LoginCookies::DEFAULT_ACCESS_COOKIE);
    let csrf = cookie(LoginCookies::DEFAULT_CSRF_COOKIE);
    let svc = auth
        .layer()
        .layer(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }));
    let post = |csrf_header: Option<&str>| {
        let mut req = Request::post("/orders")
            .header("host", "app.example")
            .header("origin", "http://app.example")
            .header(
                "cookie",
                format!("{}={access}", LoginCookies::DEFAULT_ACCESS_COOKIE),
            );
        if let Some(value) = csrf_header {
            req = req.header("x-csrf-token", value);
        }
        req.body(()).unwrap()
    };
    let status = |req| {
        let svc = svc.clone();
        async move { svc.oneshot(req).await.unwrap().status() }
    };
    assert_eq!(status(post(None)).await, StatusCode::FORBIDDEN);
    assert_eq!(status(post(Some("forged"))).await, StatusCode::FORBIDDEN);
    assert_eq!(status(post(Some(&csrf))).await, StatusCode::OK);
    // A GET needs no CSRF token: the cookie alone authenticates it.
    let get = Request::get("/orders")
        .header(
            "cookie",
            format!("{}={access}", LoginCookies::DEFAULT_ACCESS_COOKIE),
        )
        .body(())
        .unwrap();
    assert_eq!(status(get).await, StatusCode::OK);
}

/// Two nodes on one shared store: a DPoP proof accepted by one is refused by the other,
/// unless the application chose its own replay cache.
#[cfg(feature = "dpop")]
#[tokio::test]
async fn with_a_shared_store_a_proof_is_used_once_across_nodes() {
    use std::sync::Arc;

    use crate::dpop::{Dpop, DpopKey, MemoryReplayCache};
    use crate::session::MemoryStore;

    let client = DpopKey::new(
        SigningKey::from_pem(
            Algorithm::ES256,
            include_bytes!("../../../tests/keys/ec256_private.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    let dpop = || Dpop::new("https://api.example").unwrap();
    let shared = Arc::new(MemoryStore::new());
    let node = |dpop: Dpop| {
        AuthServer::builder(users(), key())
            .store(Arc::clone(&shared))
            .dpop(dpop)
            .build()
    };
    let call =
        |auth: AuthServer<InMemoryUsers<serde_json::Value>>, token: String, proof: String| {
            let svc = auth
                .layer()
                .layer(tower::service_fn(|_req: Request<()>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
                }));
            let req = Request::get("/orders")
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .body(())
                .unwrap();
            async move { svc.oneshot(req).await.unwrap().status() }
        };
    let (a, b) = (node(dpop()).await.unwrap(), node(dpop()).await.unwrap());
    let token = a
        .issuer()
        .issue(&serde_json::json!({"sub": "1", "cnf": {"jkt": client.jkt()}}))
        .unwrap()
        .access_token()
        .to_owned();
    let proof = client
        .proof(
            &http::Method::GET,
            "https://api.example/orders",
            Some(&token),
            None,
        )
        .unwrap();
    assert_eq!(call(a, token.clone(), proof.clone()).await, StatusCode::OK);
    assert_eq!(
        call(b, token.clone(), proof.clone()).await,
        StatusCode::UNAUTHORIZED,
        "replayed against the other node"
    );

    // A replay cache the application chose is left alone (here: one per node).
    let own = || dpop().replay_cache(MemoryReplayCache::new());
    let (c, d) = (node(own()).await.unwrap(), node(own()).await.unwrap());
    assert_eq!(call(c, token.clone(), proof.clone()).await, StatusCode::OK);
    assert_eq!(call(d, token, proof).await, StatusCode::OK);
}
