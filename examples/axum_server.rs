//! The Flask-JWT tutorial app (log in, then call a protected route), done with axum:
//! `POST /login`, `GET /protected`, `POST /refresh`, `POST /logout`, `POST /logout-all`,
//! the OAuth 2 `POST /token`, `POST /revoke` and `POST /introspect`, `GET /health` and
//! `GET /.well-known/jwks.json`.
//!
//! ```not_rust
//! cargo run --example axum_server
//! curl -s -X POST localhost:3000/login -H 'content-type: application/json' \
//!      -d '{"username":"user1","password":"password1"}'
//! curl -s localhost:3000/protected -H "authorization: Bearer $TOKEN"
//! ```
//!
//! Configuration comes from environment variables; see `examples/README.md`.

mod common;

use std::net::SocketAddr;

use axum::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Demo, DemoClaims, identity, init_tracing};
use tower_jwt_auth::Claims;

/// `Claims<C>` is an axum extractor (feature `axum`): the layer put the verified claims there.
async fn protected(claims: Claims<DemoClaims>) -> Response {
    Json(identity(&claims.0)).into_response()
}

/// A file of the cookie mode's page.
fn page(path: &str) -> Response {
    common::page::asset(path).map_or_else(
        || axum::http::StatusCode::NOT_FOUND.into_response(),
        IntoResponse::into_response,
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), common::BoxError> {
    init_tracing();
    let demo = Demo::from_env("127.0.0.1:3000").await?;
    let metrics = demo.metrics.clone();

    // The login server's endpoints, wired to each other: `/login`, `/refresh`, `/logout`,
    // `/logout-all` (POST only, the method checked before the credentials), the OAuth 2
    // `/token`, `/revoke` and `/introspect`, the JWK Set, the RFC 8414 metadata and OpenID
    // configuration and, with `PUBLIC_URL`, the RFC 9728 metadata.
    let mut app = demo
        .auth
        .router()
        // Only this route requires a token (the layer wraps its handler, not the router):
        // unknown paths still get 404.
        .route("/protected", get(protected).route_layer(demo.auth.layer()))
        .route("/health", get(health))
        // Prometheus text, unauthenticated like /health: no label holds a token or a name.
        .route(
            "/metrics",
            get(move || std::future::ready(common::metrics_response(&metrics))),
        );

    // Cookie mode: the page at `/` (its script and style beside it) is the browser front end.
    if demo.cookies {
        for path in ["/", "/app.js", "/app.css"] {
            app = app.route(path, get(move || std::future::ready(page(path))));
        }
    }

    let listener = demo.listener;
    tracing::info!(addr = %listener.local_addr()?, "axum demo server listening");
    // The login throttle counts attempts per client address: it reads axum's ConnectInfo.
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
