//! JWT bearer authentication for any [tower] service.
//!
//! - [`JwtAuthLayer`] wraps any `Service<http::Request<B>>`: a request without a valid bearer
//!   token gets **401** with an RFC 6750 `WWW-Authenticate` challenge; a valid one reaches the
//!   inner service with its decoded, typed [`Claims<C>`] in the request extensions.
//! - [`login::LoginService`] (feature `login`) checks a username and password through your
//!   [`login::Authenticate`] hook and issues signed tokens; [`login::AuthServer`] wires the
//!   issuing side in one value, with the OAuth 2 token (`client_credentials`,
//!   `refresh_token`), revocation and introspection endpoints for confidential clients
//!   ([`login::AuthenticateClient`]).
//! - `oauth_client` (feature `oauth-client`): a service's own client-credentials token on
//!   every outgoing request (a tonic `Channel`, a hyper client), from any RFC 8414 issuer.
//! - [`JwksService`] publishes the public keys as a JWK Set so other services can verify, and
//!   [`KeyRing`] rotates the issuer's signing keys; resource servers verify with a
//!   [`KeySource`] such as `remote::RemoteJwks` (feature `remote-jwks`).
//! - [`verifier`] and [`validation`] hold the verifying pipeline and its policy (one issuer, or
//!   several with `Verifier::for_issuers`); [`keys`] every kind of key.
//! - `session` (feature `sessions`, turned on by `login`): refresh tokens with rotation and reuse
//!   detection, logout, login throttling, in memory or shared through Redis (the crate `tower-jwt-auth-redis`);
//!   [`revocation`] is the per-request check they feed.
//! - [`metadata`]: RFC 9728 protected-resource metadata and the issuer's OpenID configuration;
//!   [`metrics`] (feature `metrics`) counts what happens.
//!
//! Keys are pinned to one algorithm when loaded ([`VerifyingKey`], [`SigningKey`]), so the
//! token header can never choose a weaker algorithm, and `alg: none` never verifies.
//!
//! # Quick start
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode, header::AUTHORIZATION};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, KeySet, SigningKey, Validation, Verifier};
//! use tower_jwt_auth::login::TokenIssuer;
//!
//! #[derive(serde::Deserialize)]
//! struct MyClaims {
//!     username: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let signing = SigningKey::from_secret(Algorithm::HS256, b"an example secret of 32 bytes!!!")?;
//! let keys = KeySet::from(signing.verifying_key()?);
//! let layer = JwtAuthLayer::<MyClaims>::new(Verifier::new(keys, Validation::new())?);
//!
//! let mut service = ServiceBuilder::new().layer(layer).service_fn(|req: Request<Full<Bytes>>| async move {
//!     let name = req.extensions().get::<Claims<MyClaims>>().map(|c| c.username.clone());
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(name.unwrap_or_default()))))
//! });
//!
//! // Issue a token (the login service does this after checking a password).
//! let token = TokenIssuer::new(signing).issue(&serde_json::json!({"sub": "1", "username": "ada"}))?;
//! let req = Request::builder()
//!     .header(AUTHORIZATION, format!("Bearer {}", token.access_token()))
//!     .body(Full::default())?;
//! let res = service.ready().await?.call(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! With axum, attach the layer with `Router::route_layer` (not `layer`), so unknown paths still
//! answer 404; with tonic, with `Server::builder().layer(..)`. gRPC requests get gRPC statuses
//! (see [`rejection`]). The `examples/` folder has complete hyper, axum and tonic servers.
//!
//! More in the modules: [`token`] (where tokens are read: header, cookie, query; with the
//! `cookie` feature, `csrf` protects cookie tokens),
//! [`authorize`] (scopes, roles and predicates, 403), [`rejection`] (RFC 6750, JSON and gRPC
//! responses, custom closures), [`validation`] (issuer, audience, leeway, required claims).
//!
//! # Feature flags
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `aws-lc-rs` | yes | jsonwebtoken crypto backend aws-lc-rs (fastest on our benchmarks) |
//! | `rust-crypto` | no | pure-Rust RustCrypto backend; if both are on, aws-lc-rs is used |
//! | `login` | no | [`login::LoginService`], [`login::TokenIssuer`], argon2id [`login::InMemoryUsers`]; refresh and logout services; turns on `sessions` |
//! | `sessions` | no | the `session` module: refresh-token families, logout, login throttling, `MemoryStore` |
//! | `remote-jwks` | no | `remote::RemoteJwks`: keys fetched from a JWKS URL with any tower HTTP client (tokio) |
//! | `hyper-client` | no | the default HTTP client of `RemoteJwks` (hyper-util, rustls); turns on `remote-jwks` |
//! | `oauth-client` | no | `oauth_client::ClientCredentials` and its layer: client-credentials tokens on outgoing requests; turns on `remote-jwks` |
//! | `axum` | no | `Claims<C>` and `Option<Claims<C>>` as axum extractors (the `axum` module) |
//! | `cookie` | no | `TokenSource::cookie`, with CSRF protection (the `csrf` module), and the login service's cookie mode |
//! | `dpop` | no | the `dpop` module: DPoP-bound tokens (RFC 9449) on the verifying and issuing sides, and a client layer that adds proofs |
//! | `os-certs` | no | `remote::KeyClientBuilder::os_roots`: the default key client trusts the OS certificate store |
//! | `https-proxy` | no | `remote::Proxy`: the default key client honours `HTTPS_PROXY`/`NO_PROXY` |
//! | `reqwest` | no | `remote::ReqwestClient`: key sets fetched with reqwest (OS certificate store, system proxies) |
//! | `test-util` | no | `testkit::TokenMinter`: valid, expired, foreign-key… tokens for your tests; with `sessions`, `testkit::store_contract` for a store of your own |
//! | `utoipa` | no | `openapi::BearerSecurity`: the bearer scheme in a utoipa OpenAPI document |
//! | `metrics` | no | counters and gauges through the `metrics` facade (the `metrics` module lists them) |
//! | `tracing` | no | one `debug` event per rejection, with its kind and never the token |
//!
//! Sessions shared by several nodes through Redis (standalone or Cluster) come from the crate
//! `tower-jwt-auth-redis`, built on this crate's public store traits.
//!
//! The default is only the crypto backend: verifying with static keys pulls in no async
//! runtime, HTTP client or password hashing.
//!
//! Exactly one crypto backend is used; see [`install_crypto_provider`].
//!
//! [tower]: https://docs.rs/tower

// On docs.rs, every feature-gated item gets its feature's badge by itself (no per-item attribute).
#![cfg_attr(docsrs, feature(doc_cfg))]
// `deny` in Cargo.toml (so a test may count allocations with a global allocator); the library
// itself forbids unsafe code outright.
#![forbid(unsafe_code)]

#[macro_use]
mod macros;

// The README's Rust blocks are compiled as doc tests (and run, unless marked otherwise).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod auth;
pub mod authorize;
#[cfg(feature = "axum")]
pub mod axum;
mod body;
pub mod cache;
mod claims;
mod crypto;
#[cfg(feature = "cookie")]
pub mod csrf;
#[cfg(feature = "dpop")]
pub mod dpop;
pub mod error;
mod jwks;
pub mod keys;
#[cfg(feature = "login")]
pub mod login;
pub mod metadata;
pub mod metrics;
#[cfg(feature = "oauth-client")]
pub mod oauth_client;
#[cfg(feature = "utoipa")]
pub mod openapi;
pub mod rejection;
#[cfg(feature = "remote-jwks")]
pub mod remote;
pub mod resource;
pub mod revocation;
#[cfg(feature = "sessions")]
pub mod session;
#[cfg(feature = "test-util")]
pub mod testkit;
mod text;
mod time;
pub mod token;
pub mod validation;
pub mod verifier;

pub use auth::{JwtAuth, JwtAuthLayer};
pub use body::JsonBody;
pub use cache::CacheSettings;
pub use claims::{Claims, Confirmation, RegisteredClaims};
pub use crypto::install_crypto_provider;
pub use error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};
/// The JWS signature algorithms (re-exported from jsonwebtoken).
pub use jsonwebtoken::Algorithm;
pub use jwks::JwksService;
pub use keys::{KeyRing, KeySet, KeySource, SigningKey, VerifyingKey};
pub use rejection::{DefaultOnRejection, JsonOnRejection, OnRejection};
pub use token::TokenSource;
pub use validation::Validation;
pub use verifier::Verifier;
