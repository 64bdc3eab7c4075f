//! Discovery documents: RFC 9728 protected-resource metadata
//! ([`ProtectedResourceMetadata`]) and the issuer's OpenID Connect / RFC 8414 configuration
//! ([`ProviderMetadata`]), each served by a [`MetadataService`].
//!
//! A protected resource tells clients (AI agents and MCP clients among them) where to get a
//! token: its metadata names the authorization servers, and every 401/403 challenge points to
//! the metadata (`resource_metadata="…"`, see
//! [`JwtAuthLayer::resource_metadata`](crate::JwtAuthLayer::resource_metadata)).
//!
//! ```
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_jwt_auth::metadata::ProtectedResourceMetadata;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metadata = ProtectedResourceMetadata::new("https://api.example.com/orders")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["orders:read", "orders:write"]);
//! // RFC 9728 §3.1: the well-known segment goes between the host and the path.
//! assert_eq!(
//!     metadata.metadata_url(),
//!     "https://api.example.com/.well-known/oauth-protected-resource/orders"
//! );
//! assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource/orders");
//! let res = metadata.service()?.oneshot(Request::new(())).await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use serde_json::{Map, Value};
use tower_service::Service;

use crate::body::JsonBody;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::rejection::DefaultOnRejection;

/// The well-known suffix of RFC 9728.
pub const PROTECTED_RESOURCE_SUFFIX: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 protected-resource metadata: a builder for the JSON document, its well-known URL,
/// and the service that answers it.
///
/// `resource` is kept byte for byte as given (clients compare it with the URL they called).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceMetadata {
    resource: String,
    fields: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// The rejection of a composition root's layers: every challenge names this metadata
    /// (RFC 9728 §5.1), or none without it.
    pub(crate) fn challenge_of(metadata: Option<&Self>) -> Result<DefaultOnRejection, ConfigError> {
        match metadata {
            Some(metadata) => DefaultOnRejection::new().resource_metadata(&metadata.metadata_url()),
            None => Ok(DefaultOnRejection::new()),
        }
    }

    /// Metadata for the resource identified by `resource` (an `https` URL in production), with
    /// `bearer_methods_supported: ["header"]`.
    pub fn new(resource: impl Into<String>) -> Self {
        let mut fields = Map::new();
        fields.insert(
            "bearer_methods_supported".into(),
            serde_json::json!(["header"]),
        );
        Self {
            resource: resource.into(),
            fields,
        }
    }

    fn push(mut self, field: &str, value: impl Into<String>) -> Self {
        let list = self
            .fields
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(Value::String(value.into()));
        }
        self
    }

    fn list<I, S>(mut self, field: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values
            .into_iter()
            .map(|v| Value::String(v.into()))
            .collect();
        self.fields.insert(field.into(), Value::Array(values));
        self
    }

    /// Add an authorization server (its issuer URL) that issues tokens for this resource.
    pub fn authorization_server(self, issuer: impl Into<String>) -> Self {
        self.push("authorization_servers", issuer)
    }

    /// The scopes this resource understands.
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.list("scopes_supported", scopes)
    }

    /// How tokens may be sent (`header`, `body`, `query`); default `["header"]`.
    pub fn bearer_methods_supported<I, S>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.list("bearer_methods_supported", methods)
    }

    /// A human-readable name.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.fields
            .insert("resource_name".into(), Value::String(name.into()));
        self
    }

    /// A URL of documentation for developers.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.fields
            .insert("resource_documentation".into(), Value::String(url.into()));
        self
    }

    /// Any other member (RFC 9728 §2 lists them; extensions are allowed). `resource` cannot be
    /// replaced this way.
    pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if name != "resource" {
            self.fields.insert(name, value);
        }
        self
    }

    /// The resource identifier, as given.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path the document is served at on the resource's host: the well-known suffix
    /// inserted between the host and the resource's path (RFC 9728 §3.1), so
    /// `https://api.example.com` → `/.well-known/oauth-protected-resource` and
    /// `https://api.example.com/orders` → `/.well-known/oauth-protected-resource/orders`.
    #[must_use]
    pub fn well_known_path(&self) -> String {
        let (_, path) = crate::text::split_url(&self.resource);
        format!("{PROTECTED_RESOURCE_SUFFIX}{path}")
    }

    /// The document's full URL: what goes into `resource_metadata="…"` of the challenges.
    #[must_use]
    pub fn metadata_url(&self) -> String {
        let (origin, _) = crate::text::split_url(&self.resource);
        format!("{origin}{}", self.well_known_path())
    }

    /// The JSON document.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("resource".into(), Value::String(self.resource.clone()));
        doc.extend(self.fields.clone());
        Value::Object(doc)
    }

    /// A service answering `GET` (and `HEAD`) with the document.
    ///
    /// # Errors
    ///
    /// Never today; kept fallible for validation of future members.
    pub fn service(&self) -> Result<MetadataService, ConfigError> {
        MetadataService::from_json(&self.to_json())
    }
}

/// The configuration an issuer publishes at `/.well-known/openid-configuration` (and RFC 8414's
/// `/.well-known/oauth-authorization-server`): its `issuer` and `jwks_uri`, plus any members
/// you add. Enough for a resource server to discover the keys
/// ([`RemoteJwks::discover`](crate::remote::RemoteJwks::discover) with feature
/// `remote-jwks`).
#[derive(Debug, Clone)]
#[must_use]
pub struct ProviderMetadata {
    doc: Map<String, Value>,
}

impl ProviderMetadata {
    /// `issuer` (exactly the `iss` of the issued tokens) and the URL of its JWK Set.
    pub fn new(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        let mut doc = Map::new();
        doc.insert("issuer".into(), Value::String(issuer.into()));
        doc.insert("jwks_uri".into(), Value::String(jwks_uri.into()));
        Self { doc }
    }

    /// Any other member (`token_endpoint`, `id_token_signing_alg_values_supported`, …).
    /// `issuer` and `jwks_uri` cannot be replaced this way.
    pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if name != "issuer" && name != "jwks_uri" {
            self.doc.insert(name, value);
        }
        self
    }

    /// The JSON document.
    #[must_use]
    pub fn to_json(&self) -> Value {
        Value::Object(self.doc.clone())
    }

    /// A service answering `GET` (and `HEAD`) with the document.
    ///
    /// # Errors
    ///
    /// Never today; kept fallible for validation of future members.
    pub fn service(&self) -> Result<MetadataService, ConfigError> {
        MetadataService::from_json(&self.to_json())
    }
}

/// Serves one JSON document, built once: `GET` and `HEAD` get it (`Content-Type:
/// application/json`, cacheable for an hour), other methods 405. Mount it at the document's
/// well-known path.
#[derive(Debug, Clone)]
pub struct MetadataService {
    doc: Bytes,
}

impl MetadataService {
    /// Serve `doc` (a JSON object).
    ///
    /// # Errors
    ///
    /// When `doc` is not a JSON object.
    pub fn from_json(doc: &Value) -> Result<Self, ConfigError> {
        if !doc.is_object() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHeaderValue,
                "a metadata document must be a JSON object",
            ));
        }
        Ok(Self {
            doc: Bytes::from(doc.to_string()),
        })
    }

    fn respond(&self, method: &Method) -> Response<JsonBody> {
        crate::body::document(
            method,
            Some(self.doc.clone()),
            "application/json",
            "public, max-age=3600",
        )
    }
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<JsonBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(req.method())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http::header::CONTENT_TYPE;

    #[test]
    fn the_well_known_segment_goes_between_host_and_path() {
        for (resource, url) in [
            (
                "https://api.example.com",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "http://127.0.0.1:3000",
                "http://127.0.0.1:3000/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/v1/orders",
                "https://api.example.com/.well-known/oauth-protected-resource/v1/orders",
            ),
            (
                "https://api.example.com/v1?x=1",
                "https://api.example.com/.well-known/oauth-protected-resource/v1",
            ),
        ] {
            assert_eq!(
                ProtectedResourceMetadata::new(resource).metadata_url(),
                url,
                "{resource}"
            );
        }
    }

    #[test]
    fn the_resource_is_kept_byte_for_byte_and_first() {
        let doc = ProtectedResourceMetadata::new("https://API.example.com:443/")
            .authorization_server("https://a")
            .authorization_server("https://b")
            .field("resource", Value::String("other".into()))
            .to_json();
        assert_eq!(doc["resource"], "https://API.example.com:443/");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://a", "https://b"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }

    #[test]
    fn the_service_answers_get_and_head_only() {
        let svc = ProviderMetadata::new("https://i", "https://i/jwks")
            .service()
            .unwrap();
        let res = svc.respond(&Method::GET);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            svc.respond(&Method::POST).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert!(MetadataService::from_json(&Value::Null).is_err());
    }
}
