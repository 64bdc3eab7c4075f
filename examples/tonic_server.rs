//! A gRPC server behind `JwtAuthLayer`: the standard health service `grpc.health.v1.Health`
//! and `demo.v1.Whoami/Get`, which answers with the caller's username from the claims.
//!
//! ```not_rust
//! cargo run --example tonic_server
//! ```
//!
//! It reads the same environment variables as `axum_server` (`BIND_ADDR`, default
//! `127.0.0.1:50051` here, `JWT_ALGORITHM`, `JWT_SECRET`, key files, issuer, audience, leeway,
//! and `GRPC_HEALTH_OPEN=1` to leave the health service open to probes),
//! so tokens from `axum_server`'s `/login` work when both share the configuration. Calls need
//! `authorization: Bearer <token>` metadata; without it the answer is `UNAUTHENTICATED`.

mod common;
#[path = "common/whoami.rs"]
mod whoami;

use common::{Demo, init_tracing};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use whoami::WhoamiServer;

#[tokio::main]
async fn main() -> Result<(), common::BoxError> {
    init_tracing();
    // A different default port from the HTTP demos, so both can run side by side.
    let demo = Demo::from_env("127.0.0.1:50051").await?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<WhoamiServer>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;

    // Every service on this server requires a valid token; with `GRPC_HEALTH_OPEN=1` the
    // health service answers probes without one (an exemption of the same layer).
    let mut layer = demo.auth.layer();
    if common::var("GRPC_HEALTH_OPEN").is_some_and(|v| v == "1") {
        layer = layer.exempt("/grpc.health.v1.Health/");
    }
    let listener = demo.listener;
    tracing::info!(addr = %listener.local_addr()?, "tonic demo server listening");
    Server::builder()
        .layer(layer)
        .add_service(health_service)
        .add_service(WhoamiServer)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
