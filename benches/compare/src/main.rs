//! One axum app, `GET /protected` → `{"id", "username"}`, behind one of:
//!
//! - `MODE=none`: no authentication (the id and name are fixed);
//! - `MODE=ours`: `tower_jwt_auth::JwtAuthLayer` (`CACHE=on|off`, or `rev`: on, with 10,000
//!   revoked sessions and a trust bound checked per request);
//! - `MODE=fromfn`: a hand-rolled `axum::middleware::from_fn` with `jsonwebtoken::decode`, the way
//!   axum's JWT example does it.
//!
//! `ALG` is HS256, RS256, ES256 or EdDSA (keys from `tests/keys`), `BIND_ADDR` the address.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

const SECRET: &[u8] = b"bench-secret-that-is-64-bytes-long-for-every-hs-variant-01234567";

#[derive(Clone, Deserialize)]
struct Claims {
    sub: String,
    username: String,
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn public_pem(alg: Algorithm) -> Option<Vec<u8>> {
    match alg {
        Algorithm::RS256 => Some(key_file("rsa_public.pem")),
        Algorithm::ES256 => Some(key_file("ec256_public.pem")),
        Algorithm::EdDSA => Some(key_file("ed25519_public.pem")),
        _ => None,
    }
}

fn identity(claims: &Claims) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "id": claims.sub.parse::<u64>().unwrap_or(0), "username": claims.username }),
    )
}

async fn ours(claims: tower_jwt_auth::Claims<Claims>) -> Json<serde_json::Value> {
    identity(&claims)
}

async fn plain(Extension(claims): Extension<Arc<Claims>>) -> Json<serde_json::Value> {
    identity(&claims)
}

async fn none() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": 1, "username": "user1" }))
}

struct FromFn {
    key: DecodingKey,
    validation: Validation,
}

async fn from_fn_auth(
    Extension(state): Extension<Arc<FromFn>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match jsonwebtoken::decode::<Claims>(token, &state.key, &state.validation) {
        Ok(data) => {
            req.extensions_mut().insert(Arc::new(data.claims));
            next.run(req).await
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

#[tokio::main]
async fn main() {
    let mode = std::env::var("MODE").unwrap_or_else(|_| "ours".into());
    let alg: Algorithm = std::env::var("ALG")
        .unwrap_or_else(|_| "HS256".into())
        .parse()
        .unwrap();
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3990".into());
    tower_jwt_auth::install_crypto_provider().unwrap();

    let app = match mode.as_str() {
        "none" => Router::new().route("/protected", get(none)),
        "fromfn" => {
            let key = match public_pem(alg) {
                None => DecodingKey::from_secret(SECRET),
                Some(pem) => match alg {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem).unwrap(),
                    Algorithm::ES256 => DecodingKey::from_ec_pem(&pem).unwrap(),
                    _ => DecodingKey::from_ed_pem(&pem).unwrap(),
                },
            };
            let state = Arc::new(FromFn {
                key,
                validation: Validation::new(alg),
            });
            Router::new()
                .route("/protected", get(plain))
                .route_layer(middleware::from_fn(from_fn_auth))
                .layer(Extension(state))
        }
        _ => {
            let key = match public_pem(alg) {
                None => tower_jwt_auth::VerifyingKey::from_secret(alg, SECRET).unwrap(),
                Some(pem) => tower_jwt_auth::VerifyingKey::from_pem(alg, pem).unwrap(),
            };
            let verifier =
                tower_jwt_auth::Verifier::new(key.into(), tower_jwt_auth::Validation::new())
                    .unwrap();
            let cache = match std::env::var("CACHE").as_deref() {
                Ok("off") => tower_jwt_auth::CacheSettings::disabled(),
                _ => tower_jwt_auth::CacheSettings::new(),
            };
            let mut layer =
                tower_jwt_auth::JwtAuthLayer::<Claims>::new(verifier).token_cache(cache);
            // CACHE=rev: the hot cache plus 10,000 revoked sessions (none of them the request's)
            // and a trust bound, as a node fed from Redis checks them on every request.
            if std::env::var("CACHE").as_deref() == Ok("rev") {
                let revocations = tower_jwt_auth::revocation::Revocations::new();
                let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
                revocations.batch(|b| {
                    for i in 0..10_000 {
                        b.revoke_session(&format!("session-{i}"), until);
                    }
                });
                revocations.trust_until(Some(until));
                layer = layer.revocations(revocations);
            }
            Router::new()
                .route("/protected", get(ours))
                .route_layer(layer)
        }
    };
    let listener = tokio::net::TcpListener::bind(&bind).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
