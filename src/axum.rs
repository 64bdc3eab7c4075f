//! axum integration (feature `axum`, through axum-core only): [`Claims<C>`] and
//! `Option<Claims<C>>` as extractors.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! #[derive(serde::Deserialize)]
//! struct MyClaims { sub: String }
//!
//! async fn me(claims: Claims<MyClaims>) -> String {
//!     claims.sub.clone()
//! }
//!
//! async fn greeting(claims: Option<Claims<MyClaims>>) -> String {
//!     match claims {
//!         Some(c) => format!("hello {}", c.sub),
//!         None => "hello stranger".to_owned(),
//!     }
//! }
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?);
//! let verifier = Verifier::new(keys, Validation::new())?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(JwtAuthLayer::<MyClaims>::new(verifier.clone()))
//!     .merge(
//!         Router::new()
//!             .route("/greeting", get(greeting))
//!             .route_layer(JwtAuthLayer::<MyClaims>::new(verifier).optional()),
//!     );
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! A handler that asks for `Claims<C>` when no [`JwtAuthLayer<C>`](crate::auth::JwtAuthLayer) with the
//! same `C` ran gets [`MissingClaims`]: a **500** naming the type, because that is a server
//! configuration bug, not the client's fault.

use std::convert::Infallible;
use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::claims::Claims;

/// Rejection of the [`Claims<C>`] extractor when the request carries no claims of that type.
///
/// Status 500: the layer is missing from the route, or is configured with another claims type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MissingClaims {
    type_name: &'static str,
}

impl MissingClaims {
    fn new<C>() -> Self {
        Self {
            type_name: std::any::type_name::<C>(),
        }
    }

    /// Always 500 Internal Server Error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The response body: a server error, without the server's types (those go to the log,
    /// and to [`Display`](fmt::Display)).
    #[must_use]
    pub fn body_text(&self) -> String {
        "the server is misconfigured: this route reads claims no authentication layer provided"
            .to_owned()
    }

    /// The claims type the handler asked for.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

/// What is missing and the likely cause, for the developer (logged with the `tracing` feature;
/// never sent to the client).
impl fmt::Display for MissingClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!(
            "no Claims<{t}> in the request extensions: add JwtAuthLayer::<{t}> in front of this \
             handler (Router::route_layer) with the same claims type; for optional \
             authentication, extract Option<Claims<{t}>>",
            t = self.type_name
        ))
    }
}

impl std::error::Error for MissingClaims {}

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        #[cfg(feature = "tracing")]
        tracing::error!(target: "tower_jwt_auth", claims = self.type_name, "{self}");
        (self.status(), self.body_text()).into_response()
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(MissingClaims::new::<C>)
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_claims_is_500_and_names_the_type_only_to_the_developer() {
        let m = MissingClaims::new::<Vec<u8>>();
        assert_eq!(m.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(m.to_string().contains("Claims<alloc::vec::Vec<u8>>"));
        assert!(m.to_string().contains("JwtAuthLayer"));
        assert!(!m.body_text().contains("alloc::vec"), "{}", m.body_text());
        assert!(!m.body_text().contains("Claims<"), "{}", m.body_text());
        assert_eq!(
            m.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
