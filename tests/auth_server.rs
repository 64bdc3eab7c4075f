//! The composition root over real HTTP: the router and layer an `AuthServer` hands out are
//! wired to each other (a logout is refused at once, a refresh works), its login limit sees
//! axum's peer address, and on Redis its revocation feed lives as long as a layer does; a
//! verify-only `ResourceServer` on the same store sees the same logouts.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Client, Reply};
use redis_server::RedisServer;
use serde::{Deserialize, Serialize};
use tower_jwt_auth::login::{AuthServer, InMemoryUsers};
use tower_jwt_auth::resource::ResourceServer;
use tower_jwt_auth::session::Rate;
use tower_jwt_auth::{Algorithm, Claims, KeySet, SigningKey, Validation, Verifier};
use tower_jwt_auth_redis::RedisStore;

#[derive(Clone, Serialize, Deserialize)]
struct User {
    sub: String,
    username: String,
}

fn users() -> InMemoryUsers<User> {
    let user = User {
        sub: "1".into(),
        username: "user1".into(),
    };
    InMemoryUsers::new()
        .unwrap()
        .with_user("user1", "password1", user)
        .unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap()
}

async fn me(claims: Claims<User>) -> String {
    claims.username.clone()
}

/// The whole app of a node: the server's router, and a protected route behind its layer.
async fn serve(auth: &AuthServer<InMemoryUsers<User>>) -> Client {
    let app: Router = auth
        .router()
        .route("/protected", get(me).route_layer(auth.layer()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(addr)
}

async fn login(client: &Client) -> Reply {
    client
        .post_json(
            "/login",
            &[],
            r#"{"username":"user1","password":"password1"}"#,
        )
        .await
}

async fn post_bearer(client: &Client, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    client
        .post_json(path, &[("authorization", &auth)], "")
        .await
}

#[tokio::test]
async fn login_refresh_and_logout_are_wired_to_the_layer() {
    let auth = AuthServer::builder(users(), key()).build().await.unwrap();
    let client = serve(&auth).await;

    let tokens = login(&client).await.json();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let res = client.protected(&access).await;
    assert_eq!((res.status.as_u16(), res.text()), (200, "user1".into()));

    // The refresh token the login handed out is honoured (the users can be reissued a token).
    let body = serde_json::json!({ "refresh_token": refresh_token }).to_string();
    let res = client.post_json("/refresh", &[], &body).await;
    assert_eq!(res.status.as_u16(), 200, "{}", res.text());
    let refreshed = res.json()["access_token"].as_str().unwrap().to_owned();

    // Methods are checked before credentials; a logout is refused on the very next request.
    assert_eq!(client.get("/logout", &[]).await.status.as_u16(), 405);
    assert_eq!(
        post_bearer(&client, "/logout", &refreshed)
            .await
            .status
            .as_u16(),
        204
    );
    let res = client.protected(&refreshed).await;
    res.assert_unauthorized("a logged-out session");
    assert!(res.challenge().contains("revoked"), "{}", res.challenge());
    assert_eq!(
        client
            .get("/.well-known/jwks.json", &[])
            .await
            .status
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn the_public_url_is_named_in_challenges_and_its_metadata_served() {
    let auth = AuthServer::builder(users(), key())
        .public_url("https://api.example")
        .build()
        .await
        .unwrap();
    let client = serve(&auth).await;
    let res = client.get("/protected", &[]).await;
    assert!(
        res.challenge().contains(
            "resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\""
        ),
        "{}",
        res.challenge()
    );
    let metadata = client
        .get("/.well-known/oauth-protected-resource", &[])
        .await
        .json();
    assert_eq!(metadata["resource"], "https://api.example");
    assert_eq!(metadata["authorization_servers"][0], "https://api.example");
}

#[tokio::test]
async fn the_login_limit_per_address_reads_axums_peer_address() {
    let per_address = Rate::new(2, Duration::from_secs(60));
    let auth = AuthServer::builder(users(), key())
        .login_limits(None, per_address)
        .build()
        .await
        .unwrap();
    let client = serve(&auth).await;
    for _ in 0..2 {
        assert_eq!(login(&client).await.status.as_u16(), 200);
    }
    let res = login(&client).await;
    assert_eq!(res.status.as_u16(), 429, "{}", res.text());
}

#[tokio::test]
async fn on_redis_a_logout_reaches_every_node_and_the_feed_lives_with_the_layers() {
    let Some(redis) = RedisServer::start("auth_server") else {
        return;
    };
    let node = || async {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        let auth = AuthServer::builder(users(), key())
            .store(store)
            .revocation_max_staleness(Duration::from_secs(1))
            .build()
            .await
            .unwrap();
        // Only the app is kept: the layers hold the revocation feed.
        serve(&auth).await
    };
    let (a, b) = (node().await, node().await);
    // A verify-only node on the same store: the same keys, the same revocations.
    let c = {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        let keys = KeySet::from(key().verifying_key().unwrap());
        let api = ResourceServer::builder(Verifier::new(keys, Validation::new()).unwrap())
            .follow_revocations(store, Duration::from_secs(1))
            .build()
            .await
            .unwrap();
        let app: Router = api
            .router()
            .route("/protected", get(me).route_layer(api.layer::<User>()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Client::new(addr)
    };
    let access = login(&a).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.protected(&access).await.status.as_u16(), 200);
    assert_eq!(c.protected(&access).await.status.as_u16(), 200);
    // Past the staleness bound, nodes B and C still trust their lists: their feeds run.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(b.protected(&access).await.status.as_u16(), 200);
    assert_eq!(c.protected(&access).await.status.as_u16(), 200);

    assert_eq!(
        post_bearer(&a, "/logout", &access).await.status.as_u16(),
        204
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let res = b.protected(&access).await;
        if res.status.as_u16() == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node B never saw the logout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
