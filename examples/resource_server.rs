//! An API node that issues nothing: it verifies tokens with the keys published at `JWKS_URL`.
//! Run it beside `axum_server` (with an asymmetric algorithm) for two nodes on one machine:
//!
//! ```not_rust
//! JWT_ALGORITHM=EdDSA JWT_PRIVATE_KEY_FILE=ed25519.pem cargo run --example axum_server &
//! JWKS_URL=http://127.0.0.1:3000/.well-known/jwks.json cargo run --example resource_server
//! curl -s localhost:3001/protected -H "authorization: Bearer $TOKEN"
//! ```
//!
//! Variables: `JWKS_URL` (required), `BIND_ADDR` (default `127.0.0.1:3001`), `JWT_ISSUER` and
//! `JWT_AUDIENCE` (required in tokens when set), `JWT_LEEWAY_SECS` (default 60) and
//! `JWKS_COOLDOWN_MS` (least time between refreshes caused by unknown `kid`s, default 5000).
//! Until the first key set arrives, `/protected` answers 503.
//!
//! With `REDIS_URL` (the issuer's), it also refuses revoked tokens (logouts, reuse, "log out
//! everywhere" on any issuing node): it follows the revocation feed, and nothing else of the
//! sessions; `REVOCATION_MAX_STALENESS_SECS` (default 60) bounds how long it verifies from a
//! list it cannot refresh.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::{BoxError, DemoClaims, identity, init_tracing, secs, var};
use tower_jwt_auth::remote::RemoteJwks;
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::session::RedisStore;
use tower_jwt_auth::{Claims, JwtAuthLayer, Validation, Verifier};

async fn protected(claims: Claims<DemoClaims>) -> Response {
    Json(identity(&claims)).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    init_tracing();
    let url = var("JWKS_URL").ok_or("JWKS_URL is required (the issuer's JWK Set URL)")?;
    let bind: SocketAddr = var("BIND_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned())
        .parse()
        .map_err(|e| format!("BIND_ADDR is not a socket address: {e}"))?;
    let cooldown = match var("JWKS_COOLDOWN_MS") {
        Some(ms) => Duration::from_millis(
            ms.parse()
                .map_err(|_| "JWKS_COOLDOWN_MS must be a number")?,
        ),
        None => Duration::from_secs(5),
    };
    let mut validation = Validation::new().leeway(secs("JWT_LEEWAY_SECS", 60)?);
    if let Some(iss) = var("JWT_ISSUER") {
        validation = validation.issuer(iss);
    }
    if let Some(aud) = var("JWT_AUDIENCE") {
        validation = validation.audience(aud);
    }

    let jwks = RemoteJwks::builder(&url)?
        .refresh_cooldown(cooldown)
        .build()?;
    if jwks.wait_for_keys(Duration::from_secs(5)).await {
        tracing::info!(%url, "key set loaded");
    } else {
        tracing::warn!(%url, "no key set yet: answering 503 until the key endpoint responds");
    }
    let mut layer = JwtAuthLayer::<DemoClaims>::new(Verifier::from_source(jwks, validation)?);
    // A verification-only node: the revocation feed, without sessions or logins.
    let _feed = match var("REDIS_URL") {
        None => None,
        Some(redis) => {
            let store = RedisStore::connect(&redis)
                .await
                .map_err(|e| format!("REDIS_URL: cannot use Redis: {e}"))?;
            let revocations = Revocations::new();
            let staleness = secs("REVOCATION_MAX_STALENESS_SECS", 60)?;
            let feed = store
                .follow(revocations.clone(), staleness)
                .await
                .map_err(|e| format!("REDIS_URL: {e}"))?;
            layer = layer.revocations(revocations);
            Some(feed)
        }
    };

    let app = Router::new()
        .route("/protected", get(protected))
        .route_layer(layer)
        .route("/health", get(health));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(addr = %listener.local_addr()?, jwks_url = %url, "resource server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
