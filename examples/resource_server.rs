//! An API node that issues nothing: it verifies tokens with the keys published at `JWKS_URL`.
//! Run it beside `axum_server` (with an asymmetric algorithm) for two nodes on one machine:
//!
//! ```not_rust
//! JWT_ALGORITHM=EdDSA JWT_PRIVATE_KEY_FILE=ed25519.pem cargo run --example axum_server &
//! JWKS_URL=http://127.0.0.1:3000/.well-known/jwks.json cargo run --example resource_server
//! curl -s localhost:3001/protected -H "authorization: Bearer $TOKEN"
//! ```
//!
//! Variables: `JWKS_URL` (required unless `OIDC_ISSUERS` is set), `OIDC_ISSUERS` (comma-separated
//! issuer URLs, each discovered through `/.well-known/openid-configuration` and trusted only
//! with its own keys), `BIND_ADDR` (default `127.0.0.1:3001`), `JWT_ISSUER` and
//! `JWT_AUDIENCE` (required in tokens when set: with an outside provider set it, or any token
//! that provider issues for another API passes here too), `JWT_TYP` (`at+jwt` refuses
//! anything but RFC 9068 access tokens, ID tokens included), `JWT_LEEWAY_SECS` (default 60) and
//! `JWKS_COOLDOWN_MS` (least time between refreshes caused by unknown `kid`s, default 5000).
//! Until the first key set arrives, `/protected` answers 503.
//!
//! Tokens need only the registered claims and `sub`: a stock RFC 9068 access token (`sub` the
//! client id, `client_id`, `scope`, no `username`) passes, and `/protected` answers with what
//! it carries.
//!
//! With `PUBLIC_URL`, it serves RFC 9728 metadata naming the trusted issuers, and points to it
//! from every 401 and 403 challenge.
//!
//! With `REDIS_URL` (the issuer's), it also refuses revoked tokens (logouts, reuse, "log out
//! everywhere" on any issuing node): it follows the revocation feed, and nothing else of the
//! sessions; `REVOCATION_MAX_STALENESS_SECS` (default 60) bounds how long it verifies from a
//! list it cannot refresh. DPoP-bound tokens are accepted as on the issuing demos (`DPOP`:
//! `allowed`, `required` or `off`), with DPoP proofs checked for replay in that Redis too.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{BoxError, CallerClaims, identity, init_tracing, secs, var};
use tower_jwt_auth::remote::RemoteJwks;
use tower_jwt_auth::resource::ResourceServer;
use tower_jwt_auth::{Claims, Validation, Verifier};
use tower_jwt_auth_redis::RedisStore;

async fn protected(claims: Claims<CallerClaims>) -> Response {
    Json(identity(&claims)).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Wait a little for the first key set, so the first requests do not get 503.
async fn wait_for(jwks: &RemoteJwks, name: &str) {
    if jwks.wait_for_keys(Duration::from_secs(5)).await {
        tracing::info!(source = %name, "key set loaded");
    } else {
        tracing::warn!(source = %name, "no key set yet: answering 503 until the key endpoint responds");
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    init_tracing();
    let issuers: Vec<String> = var("OIDC_ISSUERS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(ToOwned::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let url = var("JWKS_URL").unwrap_or_default();
    if issuers.is_empty() && url.is_empty() {
        return Err("set JWKS_URL (the issuer's JWK Set URL) or OIDC_ISSUERS (issuer URLs)".into());
    }
    let bind: SocketAddr = var("BIND_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned())
        .parse()
        .map_err(|e| format!("BIND_ADDR is not a socket address: {e}"))?;
    // Bound first: the server's own address names it in DPoP proofs when PUBLIC_URL is unset.
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let bind = listener.local_addr()?;
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
    // `JWT_TYP=at+jwt`: only RFC 9068 access tokens (an ID token of the same issuer is refused).
    if let Some(typ) = var("JWT_TYP") {
        validation = validation.typ(typ);
    }

    let verifier = if issuers.is_empty() {
        let jwks = RemoteJwks::builder(&url)?
            .refresh_cooldown(cooldown)
            .build()?;
        wait_for(&jwks, &url).await;
        Verifier::from_source(jwks, validation)?
    } else {
        // Several issuers: each discovered, each bound to its own keys (and `iss`).
        let mut verifiers = Vec::new();
        for issuer in &issuers {
            let jwks = RemoteJwks::discover(issuer)
                .await
                .map_err(|e| format!("OIDC_ISSUERS: {issuer}: {e}"))?
                .refresh_cooldown(cooldown)
                .build()?;
            wait_for(&jwks, issuer).await;
            verifiers.push(Verifier::from_source(jwks, validation.clone())?);
        }
        Verifier::for_issuers(verifiers)?
    };
    let mut api = ResourceServer::builder(verifier);
    // A verification-only node: the revocation feed, without sessions or logins.
    let mut store = None;
    if let Some(redis) = var("REDIS_URL") {
        let redis = RedisStore::connect(&redis)
            .await
            .map_err(|e| format!("REDIS_URL: cannot use Redis: {e}"))?;
        let staleness = secs("REVOCATION_MAX_STALENESS_SECS", 60)?;
        store = Some(redis.clone());
        api = api.follow_revocations(redis, staleness);
    }
    // DPoP-bound tokens (`DPOP`: allowed, required or off), with the issuers' replay store.
    if let (_, Some(dpop)) = common::dpop_from_env(
        &var("PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}")),
        store,
    )? {
        api = api.dpop(dpop);
    }
    // RFC 9728 with PUBLIC_URL: the metadata names the trusted issuers.
    if let Some(public) = var("PUBLIC_URL") {
        api = api.public_url(public);
        for issuer in issuers.iter().cloned().chain(var("JWT_ISSUER")) {
            api = api.authorization_server(issuer);
        }
    }
    let api = api
        .build()
        .await
        .map_err(|e| format!("cannot start the resource server: {e}"))?;

    let app = api
        .router()
        .route(
            "/protected",
            get(protected).route_layer(api.layer::<CallerClaims>()),
        )
        .route("/health", get(health));
    tracing::info!(addr = %listener.local_addr()?, jwks_url = %url, issuers = issuers.len(), "resource server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
