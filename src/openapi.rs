//! OpenAPI (feature `utoipa`): describe the bearer authentication this crate enforces in a
//! [utoipa](https://docs.rs/utoipa) document, in one line.
//!
//! ```
//! use tower_jwt_auth::openapi::BearerSecurity;
//! use utoipa::Modify;
//! use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
//!
//! let mut doc = OpenApiBuilder::new()
//!     .info(InfoBuilder::new().title("orders").version("1").build())
//!     .build();
//! // With the derive macro: #[openapi(modifiers(&BearerSecurity::new()))]
//! BearerSecurity::new().modify(&mut doc);
//! let json = serde_json::to_value(&doc).unwrap();
//! assert_eq!(json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
//! assert_eq!(json["components"]["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
//! assert_eq!(json["security"][0]["bearer"], serde_json::json!([]));
//! ```

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};

/// The default name of the scheme in `components.securitySchemes`.
pub const DEFAULT_SCHEME_NAME: &str = "bearer";

/// An HTTP bearer security scheme with `bearerFormat: JWT`.
#[must_use]
pub fn bearer_scheme() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "A JWT access token in `Authorization: Bearer <token>` (RFC 6750).",
            ))
            .build(),
    )
}

/// A [`utoipa::Modify`] that adds the bearer scheme to the document's components and, unless
/// told otherwise, requires it for every operation (the document-level `security`).
#[derive(Debug, Clone)]
pub struct BearerSecurity {
    name: String,
    global: bool,
}

impl Default for BearerSecurity {
    fn default() -> Self {
        Self::new()
    }
}

impl BearerSecurity {
    /// The scheme under the name `bearer`, required everywhere.
    #[must_use]
    pub fn new() -> Self {
        Self {
            name: DEFAULT_SCHEME_NAME.to_owned(),
            global: true,
        }
    }

    /// Another name for the scheme (what `#[utoipa::path(security((name = [])))]` refers to).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Only declare the scheme; operations opt in with their own `security`.
    #[must_use]
    pub fn per_operation(mut self) -> Self {
        self.global = false;
        self
    }
}

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(self.name.clone(), bearer_scheme());
        if self.global {
            let requirement = SecurityRequirement::new(self.name.clone(), Vec::<String>::new());
            let security = openapi.security.get_or_insert_with(Vec::new);
            if !security.contains(&requirement) {
                security.push(requirement);
            }
        }
    }
}
