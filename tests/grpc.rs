//! gRPC over real HTTP/2 with a tonic client: the tonic demo server (health service and
//! `demo.v1.Whoami`), and one layer in front of a router serving both REST and gRPC.

mod common;

use std::time::Duration;

use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;

/// The client side of `demo.v1.Whoami`, as a client generated from the proto would define it.
#[derive(Clone, PartialEq, prost::Message)]
struct WhoamiRequest {}

#[derive(Clone, PartialEq, prost::Message)]
struct WhoamiReply {
    #[prost(string, tag = "1")]
    username: String,
    #[prost(string, tag = "2")]
    subject: String,
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("gRPC connection")
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut req = Request::new(message);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn health(channel: &Channel, token: Option<&str>) -> Result<i32, tonic::Status> {
    let mut client = HealthClient::new(channel.clone());
    let req = with_token(
        HealthCheckRequest {
            service: String::new(),
        },
        token,
    );
    client.check(req).await.map(|r| r.into_inner().status)
}

async fn whoami(channel: &Channel, token: Option<&str>) -> Result<WhoamiReply, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("channel ready");
    let req = with_token(WhoamiRequest {}, token);
    let path = PathAndQuery::from_static("/demo.v1.Whoami/Get");
    grpc.unary(req, path, ProstCodec::default())
        .await
        .map(tonic::Response::into_inner)
}

fn mint(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &encoding_key(Algorithm::HS256),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tonic_demo_requires_a_valid_token() {
    let server = Server::start("tonic_server", &env_for(Algorithm::HS256));
    let ch = channel(server.addr).await;

    let status = health(&ch, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // A gRPC-native rejection (grpc-status 16 with our message), not a mapped HTTP 401.
    assert_eq!(status.message(), "no bearer token in the request");

    let status = health(&ch, Some("not.a.token")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut expired = standard_claims();
    expired["exp"] = serde_json::json!(now() - 3600);
    let status = health(&ch, Some(&mint(&expired))).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());

    let good = mint(&standard_claims());
    assert_eq!(
        health(&ch, Some(&good)).await.unwrap(),
        ServingStatus::Serving as i32
    );

    let reply = whoami(&ch, Some(&good)).await.unwrap();
    assert_eq!(reply.username, "user1");
    assert_eq!(reply.subject, "1");
    assert_eq!(
        whoami(&ch, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tonic_demo_accepts_tokens_from_the_axum_demo_login() {
    let env = env_for(Algorithm::EdDSA);
    let issuer = Server::start("axum_server", &env);
    let grpc = Server::start("tonic_server", &env);
    let token = issuer.token().await;
    let ch = channel(grpc.addr).await;
    assert_eq!(whoami(&ch, Some(&token)).await.unwrap().username, "user1");
}

/// One layer in front of a router that serves REST and gRPC: each client gets its own protocol.
#[tokio::test(flavor = "multi_thread")]
async fn one_layer_answers_rest_and_grpc_each_in_kind() {
    use axum::Router;
    use axum::routing::get;
    use tower_jwt_auth::{JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};

    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let layer =
        JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new()).unwrap());
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let grpc_routes = tonic::service::Routes::new(health_service).into_axum_router();
    let app = Router::new()
        .route("/rest", get(|| async { "rest ok" }))
        .merge(grpc_routes)
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rest = Client::new(addr);
    rest.get("/rest", &[])
        .await
        .assert_unauthorized("REST without token");
    let good = mint(&standard_claims());
    let reply = rest
        .get("/rest", &[("authorization", &format!("Bearer {good}"))])
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let ch = channel(addr).await;
    let status = health(&ch, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no bearer token in the request");
    assert_eq!(
        health(&ch, Some(&good)).await.unwrap(),
        ServingStatus::Serving as i32
    );
}

/// A failed authorization check is `PERMISSION_DENIED` for a gRPC client.
#[tokio::test(flavor = "multi_thread")]
async fn failed_scope_check_is_permission_denied() {
    use tonic::transport::Server as GrpcServer;
    use tonic::transport::server::TcpIncoming;
    use tower_jwt_auth::authorize::require_scope;
    use tower_jwt_auth::{JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};

    type C = serde_json::Value;
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let auth = JwtAuthLayer::<C>::new(Verifier::new(keys, Validation::new()).unwrap());
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        GrpcServer::builder()
            .layer(auth)
            .layer(require_scope::<C>("health:read"))
            .add_service(health_service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let ch = channel(addr).await;

    let mut claims = standard_claims();
    claims["scope"] = serde_json::json!("other");
    let status = health(&ch, Some(&mint(&claims))).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    claims["scope"] = serde_json::json!("other health:read");
    assert_eq!(
        health(&ch, Some(&mint(&claims))).await.unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health(&ch, None).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

/// DPoP over gRPC (the tonic demo, `DPOP=allowed`): a bound token needs the `DPoP` scheme and a
/// fresh proof for the call's URL (`POST`, `http://host:port/<service>/<method>`); every failure
/// is `UNAUTHENTICATED`.
#[tokio::test(flavor = "multi_thread")]
async fn dpop_bound_tokens_over_grpc() {
    use tower_jwt_auth::dpop::DpopKey;

    let server = Server::start("tonic_server", &env_for(Algorithm::HS256));
    let ch = channel(server.addr).await;
    let key = DpopKey::new(
        tower_jwt_auth::SigningKey::from_pem(Algorithm::ES256, read_key("ec256_private.pem"))
            .unwrap(),
    )
    .unwrap();
    let mut claims = standard_claims();
    claims["cnf"] = serde_json::json!({ "jkt": key.jkt() });
    let bound = mint(&claims);

    // As a bearer token: refused.
    let status = health(&ch, Some(&bound)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let url = format!("http://{}/grpc.health.v1.Health/Check", server.addr);
    let call = |proof: String| {
        let ch = ch.clone();
        let bound = bound.clone();
        async move {
            let mut req = Request::new(HealthCheckRequest {
                service: String::new(),
            });
            let metadata = req.metadata_mut();
            metadata.insert("authorization", format!("DPoP {bound}").parse().unwrap());
            metadata.insert("dpop", proof.parse().unwrap());
            HealthClient::new(ch)
                .check(req)
                .await
                .map(|r| r.into_inner().status)
        }
    };
    let proof = key
        .proof(&http::Method::POST, &url, Some(&bound), None)
        .unwrap();
    assert_eq!(
        call(proof.clone()).await.unwrap(),
        ServingStatus::Serving as i32
    );
    // The same proof again, or one for another method: UNAUTHENTICATED.
    let replay = call(proof).await.unwrap_err();
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert!(
        replay.message().contains("DPoP proof"),
        "{}",
        replay.message()
    );
    let wrong = key
        .proof(&http::Method::GET, &url, Some(&bound), None)
        .unwrap();
    assert_eq!(call(wrong).await.unwrap_err().code(), Code::Unauthenticated);
}
