//! The Flask-JWT tutorial app (log in, then call a protected route), done with axum:
//! `POST /login`, `GET /protected`, `POST /refresh`, `POST /logout`, `POST /logout-all`,
//! `GET /health` and `GET /.well-known/jwks.json`.
//!
//! ```not_rust
//! cargo run --example axum_server
//! curl -s -X POST localhost:3000/login -H 'content-type: application/json' \
//!      -d '{"username":"user1","password":"password1"}'
//! curl -s localhost:3000/protected -H "authorization: Bearer $TOKEN"
//! ```
//!
//! Configuration comes from environment variables; see `README.md` ("Demo servers").

mod common;

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post_service};
use axum::{Json, Router};
use common::{Demo, DemoClaims, identity, init_tracing};
use tower::Layer;
use tower_jwt_auth::Claims;

/// `Claims<C>` is an axum extractor (feature `axum`): the layer put the verified claims there.
async fn protected(claims: Claims<DemoClaims>) -> Response {
    Json(identity(&claims)).into_response()
}

async fn method_not_allowed() -> Response {
    common::post_only().into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), common::BoxError> {
    init_tracing();
    let demo = Demo::from_env("127.0.0.1:3000").await?;
    let provider = demo.provider_metadata(demo.listener.local_addr()?);
    let listener = demo.listener;
    let metrics = demo.metrics.clone();

    let mut app = Router::new()
        // Only the routes above `route_layer` require a token; unknown paths still get 404.
        .route("/protected", get(protected))
        .route_layer(demo.layer.clone())
        // POST only, with the method checked before the credentials (the layer wraps the POST
        // handler alone, not the 405 fallback): `GET /logout` is 405, not 401.
        .route(
            "/logout",
            post_service(demo.layer.clone().layer(demo.logout)).fallback(method_not_allowed),
        )
        .route(
            "/logout-all",
            post_service(demo.layer.layer(demo.logout_all)).fallback(method_not_allowed),
        )
        // The login throttle counts attempts per client address: it reads axum's ConnectInfo
        // (the server below is made with `into_make_service_with_connect_info`).
        .route_service("/login", demo.login)
        .route_service("/refresh", demo.refresh)
        .route_service("/.well-known/jwks.json", demo.jwks)
        .route("/health", get(health))
        // Prometheus text, unauthenticated like /health: no label holds a token or a name.
        .route(
            "/metrics",
            get(move || std::future::ready(common::metrics_response(&metrics))),
        );
    if let Some((path, metadata)) = demo.resource_metadata {
        app = app.route_service(&path, metadata);
    }
    if let Some(provider) = provider {
        app = app.route_service("/.well-known/openid-configuration", provider);
    }

    tracing::info!(addr = %listener.local_addr()?, "axum demo server listening");
    let _feed = demo.feed;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
