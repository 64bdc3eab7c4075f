//! A tiny hand-written gRPC service, `demo.v1.Whoami/Get`, so the tonic demo needs no `protoc`
//! and no build script. It answers with the caller's identity from the verified claims.
//!
//! The equivalent proto:
//!
//! ```proto
//! syntax = "proto3";
//! package demo.v1;
//! service Whoami { rpc Get(WhoamiRequest) returns (WhoamiReply); }
//! message WhoamiRequest {}
//! message WhoamiReply { string username = 1; string subject = 2; }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;
use tower_jwt_auth::Claims;

use crate::common::DemoClaims;

/// The (empty) request message.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WhoamiRequest {}

/// The reply: who the caller is.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WhoamiReply {
    #[prost(string, tag = "1")]
    pub(crate) username: String,
    #[prost(string, tag = "2")]
    pub(crate) subject: String,
}

pub(crate) const SERVICE_NAME: &str = "demo.v1.Whoami";
pub(crate) const GET_PATH: &str = "/demo.v1.Whoami/Get";

/// The gRPC service, ready for `Server::builder().add_service(..)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct WhoamiServer;

impl NamedService for WhoamiServer {
    const NAME: &'static str = SERVICE_NAME;
}

#[derive(Clone, Copy)]
struct Get;

impl UnaryService<WhoamiRequest> for Get {
    type Response = WhoamiReply;
    type Future = std::future::Ready<Result<Response<WhoamiReply>, Status>>;

    fn call(&mut self, request: Request<WhoamiRequest>) -> Self::Future {
        // `JwtAuthLayer` put the claims into the http::Request extensions; tonic carries them
        // over to the tonic::Request unchanged.
        std::future::ready(match request.extensions().get::<Claims<DemoClaims>>() {
            Some(claims) => {
                let claims = &claims.0;
                Ok(Response::new(WhoamiReply {
                    // A client's token has no username: its client id instead.
                    username: claims
                        .username
                        .clone()
                        .or_else(|| claims.client_id.clone())
                        .unwrap_or_default(),
                    subject: claims.sub.clone(),
                }))
            }
            None => Err(Status::internal("authentication layer missing")),
        })
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

impl<B> tower::Service<http::Request<B>> for WhoamiServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == GET_PATH {
            Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::default());
                Ok(grpc.unary(Get, req).await)
            })
        } else {
            Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}
