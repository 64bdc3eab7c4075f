//! Outgoing calls with client-credentials tokens over real HTTP and gRPC: `tonic_client`
//! discovers `axum_server`'s token endpoint, gets a token (bearer, or bound to a DPoP key) and
//! calls `tonic_server` through one layer on its `Channel`; and the health exemption.

mod common;

use common::{SECRET, Server, run_example};
use http::uri::PathAndQuery;
use serde_json::Value;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;

/// The issuer and the service share the key and a mesh audience.
fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("JWT_AUDIENCE".to_owned(), "mesh".to_owned()),
        ("LOGIN_IP_LIMIT".to_owned(), "1000/60".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

fn client(issuer: &Server, service: &Server, extra: &[(&str, &str)]) -> (bool, String, String) {
    let mut env = vec![
        ("OAUTH_ISSUER".to_owned(), issuer.url("")),
        ("GRPC_URL".to_owned(), format!("http://{}", service.addr)),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    run_example("tonic_client", &env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grpc_client_calls_with_client_credentials_bearer_and_dpop() {
    let issuer = Server::start("axum_server", &env(&[]));
    let service = Server::start("tonic_server", &env(&[]));

    let (ok, out, err) = client(&issuer, &service, &[]);
    assert!(ok, "{err}");
    let reply: Value = serde_json::from_str(out.trim()).expect("a JSON line");
    assert_eq!(reply["username"], "client1", "{out}");
    assert_eq!(reply["subject"], "client1");

    let key = common::key_path("ec256_private.pem");
    let (ok, out, err) = client(&issuer, &service, &[("DPOP_KEY_FILE", key.as_str())]);
    assert!(ok, "DPoP: {err}");
    assert!(out.contains("client1"), "{out}");

    // A wrong secret: no token, so no call; the error names the refusal.
    let (ok, _, err) = client(&issuer, &service, &[("OAUTH_CLIENT_SECRET", "wrong")]);
    assert!(!ok);
    assert!(
        err.contains("invalid_client") || err.contains("401"),
        "{err}"
    );
}

async fn health(addr: std::net::SocketAddr) -> Result<i32, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("gRPC connection");
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
}

async fn whoami_without_token(addr: std::net::SocketAddr) -> tonic::Code {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Empty {}
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("gRPC connection");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let res: Result<tonic::Response<Empty>, _> = grpc
        .unary(
            tonic::Request::new(Empty {}),
            PathAndQuery::from_static("/demo.v1.Whoami/Get"),
            ProstCodec::default(),
        )
        .await;
    res.expect_err("no token").code()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_service_can_be_left_open_for_probes() {
    let closed = Server::start("tonic_server", &env(&[]));
    assert_eq!(
        health(closed.addr).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let open = Server::start("tonic_server", &env(&[("GRPC_HEALTH_OPEN", "1")]));
    assert_eq!(health(open.addr).await.unwrap(), 1, "SERVING");
    assert_eq!(
        whoami_without_token(open.addr).await,
        tonic::Code::Unauthenticated
    );
}
