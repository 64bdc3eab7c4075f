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
