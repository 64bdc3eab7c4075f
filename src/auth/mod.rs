//! The verifying middleware: [`JwtAuthLayer`], [`JwtAuth`] and [`ResponseFuture`].
//!
//! For each request, the layer finds the bearer token, picks the key by the token's `kid` and
//! `alg`, verifies the signature and the claims, and then either inserts [`Claims<C>`] into the
//! request extensions and calls the inner service, or answers through [`OnRejection`] without
//! calling it (401 with an RFC 6750 challenge by default). Rejections are `Ok(Response)`: the
//! error type stays `S::Error`.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode, header::AUTHORIZATION};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! #[derive(serde::Deserialize)]
//! struct MyClaims {
//!     sub: String,
//! }
//!
//! async fn handle(req: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     // The layer guarantees the claims are there.
//!     let sub = req.extensions().get::<Claims<MyClaims>>().map(|c| c.sub.clone()).unwrap_or_default();
//!     Ok(Response::new(Full::new(Bytes::from(sub))))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let verifier = Verifier::new(keys, Validation::new())?;
//! let mut service = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::<MyClaims>::new(verifier))
//!     .service_fn(handle);
//!
//! // No token: 401 with a bare challenge.
//! let res = service.ready().await?.call(Request::new(Full::default())).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"api\"");
//!
//! // A bad token: 401 invalid_token.
//! let req = Request::builder()
//!     .header(AUTHORIZATION, "Bearer not.a.jwt")
//!     .body(Full::default())?;
//! let res = service.ready().await?.call(req).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```
//!
//! With axum, put the layer on the routes that need it with `Router::route_layer`, so that
//! unknown paths still answer 404 instead of 401.
//!
//! [`Claims<C>`]: crate::claims::Claims
//! [`OnRejection`]: crate::OnRejection

pub(crate) mod check;
mod future;
mod layer;
mod pipeline;
mod service;
mod shared;

pub use check::{Check, CheckFuture, RequestContext, Verdict};
pub use future::ResponseFuture;
pub use layer::{JwtAuthLayer, MayWait, NeverWait};
pub use service::JwtAuth;
