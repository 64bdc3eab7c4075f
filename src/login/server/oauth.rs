//! The OAuth 2 side of [`AuthServer`]: its clients, the token, revocation and introspection
//! endpoints, and the RFC 8414 metadata naming them.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{AuthServer, AuthServerBuilder};
use crate::login::Reissue;
use crate::login::oauth::{
    AuthenticateClient, IntrospectionService, RevocationService, TokenService,
};
use crate::login::proof::alg_names;
use crate::metadata::MetadataService;

/// RFC 8414's well-known suffix.
pub const AUTHORIZATION_SERVER_SUFFIX: &str = "/.well-known/oauth-authorization-server";

impl<U: Reissue> AuthServerBuilder<U> {
    /// The confidential clients of the OAuth 2 endpoints (default: none; the first-party
    /// client of `/login` tokens needs no registration): they get `client_credentials` tokens
    /// from [`token`](AuthServer::token), revoke them and introspect tokens.
    pub fn clients(mut self, clients: impl AuthenticateClient) -> Self {
        self.clients = Some(Arc::new(clients));
        self
    }

    /// The URL the server answers at when it has no [`public_url`](Self::public_url)
    /// (`http://<listen address>`): where the metadata says the endpoints and keys are, and
    /// the issuer identifier when no [`issuer`](Self::issuer) or public URL names one. Unlike
    /// the public URL, it is no RFC 9728 resource identifier.
    pub fn local_url(mut self, url: impl Into<String>) -> Self {
        self.local_url = Some(url.into());
        self
    }
}

impl<U: Reissue> AuthServer<U> {
    /// The OAuth 2 token endpoint: `client_credentials` for the [`clients`](AuthServerBuilder::clients),
    /// `refresh_token` with the rotation of [`refresh`](Self::refresh).
    #[must_use]
    pub fn token(&self) -> TokenService<Arc<U>> {
        TokenService::new(Arc::clone(&self.inner.endpoints), self.refresh())
    }

    /// RFC 7009 revocation, from this server's sessions and revocations.
    #[must_use]
    pub fn revocation(&self) -> RevocationService {
        RevocationService::new(Arc::clone(&self.inner.endpoints))
    }

    /// RFC 7662 introspection, for the [`clients`](AuthServerBuilder::clients).
    #[must_use]
    pub fn introspection(&self) -> IntrospectionService {
        IntrospectionService::new(Arc::clone(&self.inner.endpoints))
    }

    /// The issuer identifier: the [`issuer`](AuthServerBuilder::issuer), else the public URL,
    /// else the [`local_url`](AuthServerBuilder::local_url).
    #[must_use]
    pub fn issuer_identifier(&self) -> Option<&str> {
        self.inner.endpoints.identifier.as_deref()
    }

    /// RFC 8414 metadata: its path (`/.well-known/oauth-authorization-server`, followed by the
    /// issuer identifier's path, §3.1) and service, when the server knows its URL.
    #[must_use]
    pub fn authorization_server_metadata(&self) -> Option<(String, MetadataService)> {
        let identifier = self.issuer_identifier()?;
        let (_, issuer_path) = crate::text::split_url(identifier);
        let doc = self.oauth_metadata()?;
        let service = MetadataService::from_json(&Value::Object(doc)).ok()?;
        Some((
            format!("{AUTHORIZATION_SERVER_SUFFIX}{issuer_path}"),
            service,
        ))
    }

    /// The members both metadata documents share: the issuer, its endpoints and what they
    /// support. `None` without a URL to name them by.
    pub(super) fn oauth_metadata(&self) -> Option<Map<String, Value>> {
        let inner = &self.inner;
        let base = inner.base_url.as_deref()?.trim_end_matches('/');
        let identifier = self.issuer_identifier()?;
        let auth_methods = json!(["client_secret_basic", "client_secret_post"]);
        let mut doc = Map::new();
        doc.insert("issuer".into(), identifier.into());
        doc.insert("token_endpoint".into(), format!("{base}/token").into());
        doc.insert(
            "revocation_endpoint".into(),
            format!("{base}/revoke").into(),
        );
        doc.insert(
            "introspection_endpoint".into(),
            format!("{base}/introspect").into(),
        );
        if inner.issuer.key_ring().jwks_document().is_some() {
            doc.insert(
                "jwks_uri".into(),
                format!("{base}/.well-known/jwks.json").into(),
            );
        }
        doc.insert(
            "grant_types_supported".into(),
            json!(["client_credentials", "refresh_token"]),
        );
        for endpoint in ["token", "revocation", "introspection"] {
            doc.insert(
                format!("{endpoint}_endpoint_auth_methods_supported"),
                auth_methods.clone(),
            );
        }
        if let Some(algs) = alg_names(inner.dpop.as_ref()) {
            doc.insert("dpop_signing_alg_values_supported".into(), algs.into());
        }
        let scopes = inner.endpoints.clients.scopes();
        if !scopes.is_empty() {
            doc.insert("scopes_supported".into(), scopes.into());
        }
        Some(doc)
    }
}
