//! `benches/compare`'s app (`GET /protected` → `{"id", "username"}`) behind jwt-authorizer 0.15
//! (axum 0.7), for `scripts/bench-http.sh`. `ALG` is HS256, RS256, ES256 or EdDSA (keys from
//! `tests/keys`), `BIND_ADDR` the address; `MODE=none` serves the same answer without
//! authentication (the axum 0.7 baseline).

use axum::routing::get;
use axum::{Json, Router};
use jwt_authorizer::{AuthorizerBuilder, IntoLayer, JwtClaims};
use serde::Deserialize;

const SECRET: &str = "bench-secret-that-is-64-bytes-long-for-every-hs-variant-01234567";

#[derive(Clone, Deserialize)]
struct Claims {
    sub: String,
    username: String,
}

fn key_text(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn none() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": 1, "username": "user1" }))
}

async fn protected(JwtClaims(claims): JwtClaims<Claims>) -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "id": claims.sub.parse::<u64>().unwrap_or(0), "username": claims.username }),
    )
}

#[tokio::main]
async fn main() {
    let alg = std::env::var("ALG").unwrap_or_else(|_| "HS256".into());
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3990".into());
    let listener = tokio::net::TcpListener::bind(&bind).await.unwrap();
    if std::env::var("MODE").as_deref() == Ok("none") {
        let app = Router::new().route("/protected", get(none));
        return axum::serve(listener, app).await.unwrap();
    }
    let builder = match alg.as_str() {
        "HS256" => AuthorizerBuilder::<Claims>::from_secret(SECRET),
        "RS256" => AuthorizerBuilder::from_rsa_pem_text(&key_text("rsa_public.pem")),
        "ES256" => AuthorizerBuilder::from_ec_pem_text(&key_text("ec256_public.pem")),
        "EdDSA" => AuthorizerBuilder::from_ed_pem_text(&key_text("ed25519_public.pem")),
        other => panic!("ALG {other} is not one of HS256 RS256 ES256 EdDSA"),
    };
    let authorizer = builder.build().await.unwrap();
    let app = Router::new()
        .route("/protected", get(protected))
        .route_layer(authorizer.into_layer());
    axum::serve(listener, app).await.unwrap();
}
