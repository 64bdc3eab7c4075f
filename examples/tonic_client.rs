//! A gRPC client that authenticates as an OAuth 2 client: it discovers the issuer's token
//! endpoint (RFC 8414), gets a `client_credentials` token, and calls `demo.v1.Whoami/Get` on
//! `tonic_server` with it. One layer on the tonic `Channel` adds the token to every call and
//! renews it before it expires (one token request at a time, however many calls wait); with
//! `DPOP_KEY_FILE` the token is bound to that key and every call carries a proof.
//!
//! ```not_rust
//! JWT_SECRET=… JWT_AUDIENCE=mesh cargo run --example axum_server &     # the issuer, :3000
//! JWT_SECRET=… JWT_AUDIENCE=mesh cargo run --example tonic_server &    # the service, :50051
//! cargo run --example tonic_client
//! # {"subject":"client1","username":"client1"}
//! ```
//!
//! Variables: `OAUTH_ISSUER` (default `http://127.0.0.1:3000`), `OAUTH_CLIENT_ID` and
//! `OAUTH_CLIENT_SECRET` (default the demo client, `client1` / `secret1`), `OAUTH_SCOPE`,
//! `GRPC_URL` (default `http://127.0.0.1:50051`), `DPOP_KEY_FILE` (a PKCS#8 PEM EC P-256 key).

use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::transport::Endpoint;
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;
use tower_jwt_auth::dpop::{DpopClientLayer, DpopKey};
use tower_jwt_auth::oauth_client::ClientCredentials;
use tower_jwt_auth::{Algorithm, SigningKey};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `demo.v1.WhoamiRequest`, as a client generated from the proto would define it.
#[derive(Clone, PartialEq, prost::Message)]
struct WhoamiRequest {}

/// `demo.v1.WhoamiReply`.
#[derive(Clone, PartialEq, prost::Message)]
struct WhoamiReply {
    #[prost(string, tag = "1")]
    username: String,
    #[prost(string, tag = "2")]
    subject: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let issuer = var("OAUTH_ISSUER", "http://127.0.0.1:3000");
    let grpc_url = var("GRPC_URL", "http://127.0.0.1:50051");

    let mut credentials = ClientCredentials::discover(
        &issuer,
        var("OAUTH_CLIENT_ID", "client1"),
        var("OAUTH_CLIENT_SECRET", "secret1"),
    )
    .await
    .map_err(|e| format!("OAUTH_ISSUER {issuer}: {e}"))?;
    if let Ok(scope) = std::env::var("OAUTH_SCOPE") {
        credentials = credentials.scope(scope);
    }
    // DPoP: the token requests and every call carry proofs of one key.
    let dpop = match std::env::var("DPOP_KEY_FILE") {
        Ok(file) => {
            let key = SigningKey::from_pem_file(Algorithm::ES256, &file)
                .map_err(|e| format!("DPOP_KEY_FILE {file}: {e}"))?;
            let key = DpopKey::new(key)?;
            credentials = credentials.dpop(key.clone());
            Some(DpopClientLayer::new(key))
        }
        Err(_) => None,
    };
    let credentials = credentials.build()?;

    let channel = Endpoint::from_shared(grpc_url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("GRPC_URL {grpc_url}: {e}"))?;
    // The token outside, the DPoP proof (which covers the token) inside.
    let channel = ServiceBuilder::new()
        .layer(credentials.layer())
        .option_layer(dpop)
        .map_err(BoxError::from)
        .service(channel);
    // With the origin, requests carry absolute URIs: what a DPoP proof's `htu` names.
    let mut grpc = tonic::client::Grpc::with_origin(channel, grpc_url.parse()?);
    grpc.ready().await?;
    let reply: WhoamiReply = grpc
        .unary(
            tonic::Request::new(WhoamiRequest {}),
            PathAndQuery::from_static("/demo.v1.Whoami/Get"),
            ProstCodec::default(),
        )
        .await?
        .into_inner();
    println!(
        "{}",
        serde_json::json!({ "username": reply.username, "subject": reply.subject })
    );
    Ok(())
}
