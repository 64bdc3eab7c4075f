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
//! // With the derive macro: `const BEARER: BearerSecurity = BearerSecurity::new();` and
//! // `#[openapi(modifiers(&BEARER))]` (see `BearerSecurity`).
//! BearerSecurity::new().modify(&mut doc);
//! let json = serde_json::to_value(&doc).unwrap();
//! assert_eq!(json["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
//! assert_eq!(json["components"]["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
//! assert_eq!(json["security"][0]["bearer"], serde_json::json!([]));
//! ```

use std::borrow::Cow;

use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};

/// The default name of the scheme in `components.securitySchemes`.
pub const DEFAULT_SCHEME_NAME: &str = "bearer";

/// The name of the DPoP proof scheme added by [`BearerSecurity::dpop`].
pub const DPOP_SCHEME_NAME: &str = "dpop";

/// The DPoP proof (RFC 9449) as OpenAPI can say it: a `DPoP` request header. OpenAPI has no
/// scheme for `Authorization: DPoP <token>` itself; the description says how the two go
/// together.
#[must_use]
pub fn dpop_scheme() -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
        "DPoP",
        "A DPoP proof (RFC 9449): a `dpop+jwt` signed with the client's key, fresh for each \
         request, with `htm`, `htu` and `ath`. The access token then goes in \
         `Authorization: DPoP <token>` instead of `Bearer`.",
    )))
}

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
///
/// The derive macro takes modifiers by path, so name one with a `const`:
///
/// ```
/// use tower_jwt_auth::openapi::BearerSecurity;
/// use utoipa::OpenApi;
///
/// const BEARER: BearerSecurity = BearerSecurity::new();
///
/// #[derive(OpenApi)]
/// #[openapi(modifiers(&BEARER))]
/// struct ApiDoc;
///
/// let json = serde_json::to_value(ApiDoc::openapi()).unwrap();
/// assert_eq!(json["security"][0], serde_json::json!({"bearer": []}));
/// ```
#[derive(Debug, Clone)]
pub struct BearerSecurity {
    name: Cow<'static, str>,
    global: bool,
    dpop: bool,
}

impl Default for BearerSecurity {
    fn default() -> Self {
        Self::new()
    }
}

impl BearerSecurity {
    /// The scheme under the name `bearer`, required everywhere.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            name: Cow::Borrowed(DEFAULT_SCHEME_NAME),
            global: true,
            dpop: false,
        }
    }

    /// Another name for the scheme (what `#[utoipa::path(security((name = [])))]` refers to).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Cow::Owned(name.into());
        self
    }

    /// Also declare the DPoP proof scheme ([`dpop_scheme`], named `dpop`), for an API whose
    /// layer accepts DPoP-bound tokens; the global requirement then accepts the bearer token
    /// alone, or the token with a proof.
    ///
    /// ```
    /// use tower_jwt_auth::openapi::BearerSecurity;
    /// use utoipa::Modify;
    ///
    /// let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
    /// BearerSecurity::new().dpop().modify(&mut doc);
    /// let json = serde_json::to_value(&doc).unwrap();
    /// assert_eq!(json["components"]["securitySchemes"]["dpop"]["name"], "DPoP");
    /// assert_eq!(json["security"][1], serde_json::json!({"bearer": [], "dpop": []}));
    /// ```
    #[must_use]
    pub const fn dpop(mut self) -> Self {
        self.dpop = true;
        self
    }

    /// Only declare the scheme; operations opt in with their own `security`.
    #[must_use]
    pub const fn per_operation(mut self) -> Self {
        self.global = false;
        self
    }
}

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(self.name.to_string(), bearer_scheme());
        if self.dpop {
            components.add_security_scheme(DPOP_SCHEME_NAME, dpop_scheme());
        }
        if self.global {
            let mut requirements = vec![SecurityRequirement::new(
                self.name.to_string(),
                Vec::<String>::new(),
            )];
            if self.dpop {
                requirements.push(
                    SecurityRequirement::new(self.name.to_string(), Vec::<String>::new())
                        .add(DPOP_SCHEME_NAME, Vec::<String>::new()),
                );
            }
            let security = openapi.security.get_or_insert_with(Vec::new);
            for requirement in requirements {
                if !security.contains(&requirement) {
                    security.push(requirement);
                }
            }
        }
    }
}
