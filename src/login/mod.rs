//! The issuing side: [`LoginService`], the [`Authenticate`] hook, the argon2id
//! [`InMemoryUsers`] table and [`TokenIssuer`].
//!
//! `LoginService` accepts `POST` with `Content-Type: application/json` and a body
//! `{"username": "…", "password": "…"}`, asks the [`Authenticate`] hook, and answers
//! `200 {"access_token": "…", "token_type": "Bearer", "expires_in": 900}` with
//! `Cache-Control: no-store`. Errors are JSON `{"error": …, "error_description": …}`: 400 for bad
//! JSON or missing/mistyped fields, 401 for bad credentials (the same body whether the user is
//! unknown or the password wrong), 405 for other methods, 413 for bodies over the limit
//! (16 KiB by default), 415 for other content types, 503 with `Retry-After` when the hook fails
//! (or, for [`InMemoryUsers`], when too many password checks are already waiting).
//!
//! # Example
//!
//! ```
//! use http::{Request, StatusCode, header::CONTENT_TYPE};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::ServiceExt;
//! use tower_jwt_auth::{Algorithm, SigningKey};
//! use tower_jwt_auth::login::{InMemoryUsers, LoginService, TokenIssuer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = InMemoryUsers::new()?
//!     .with_user("user1", "password1", serde_json::json!({"sub": "1", "username": "user1"}))?;
//! let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [5u8; 32])?);
//! let login = LoginService::new(users, issuer);
//!
//! let req = Request::post("/login")
//!     .header(CONTENT_TYPE, "application/json")
//!     .body(Full::new(Bytes::from(r#"{"username":"user1","password":"password1"}"#)))?;
//! let res = login.clone().oneshot(req).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! assert_eq!(res.headers()["cache-control"], "no-store");
//!
//! let req = Request::post("/login")
//!     .header(CONTENT_TYPE, "application/json")
//!     .body(Full::new(Bytes::from(r#"{"username":"user1","password":"nope"}"#)))?;
//! assert_eq!(login.oneshot(req).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

mod claims;
#[cfg(feature = "cookie")]
mod cookies;
mod issuer;
mod oauth;
mod proof;
mod refresh;
mod request;
mod server;
mod service;
mod users;

#[cfg(feature = "cookie")]
pub use cookies::{ClearCookies, LoginCookies};
pub use issuer::{DEFAULT_TTL, IssueError, IssuedToken, TokenIssuer};
pub use oauth::{
    AuthenticateClient, FIRST_PARTY, InMemoryClients, IntrospectionService, RegisteredClient,
    RevocationService, TokenService,
};
pub use refresh::{LogoutAllService, LogoutService, RefreshService};
pub use server::{
    AUTHORIZATION_SERVER_SUFFIX, AuthServer, AuthServerBuilder, DEFAULT_LEEWAY,
    DEFAULT_MAX_STALENESS,
};
pub use service::{DEFAULT_BODY_LIMIT, EndpointFuture, LoginService};
pub use users::{Authenticate, BoxError, InMemoryUsers, Overloaded, Reissue, hash_password};
