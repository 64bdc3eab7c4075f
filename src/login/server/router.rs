//! [`AuthServer::router`] (feature `axum`): every endpoint at its usual path, in one call.

use std::convert::Infallible;

use axum::Router;
use axum::routing::post_service;
use http::Response;
use serde::de::DeserializeOwned;
use tower_layer::Layer;

use super::AuthServer;
use crate::body::JsonBody;
use crate::login::Reissue;

impl<U: Reissue> AuthServer<U>
where
    U::Claims: DeserializeOwned + Send + Sync + 'static,
{
    /// The endpoints as an axum [`Router`], to [`merge`](Router::merge) into your app:
    ///
    /// - `POST /login`, `POST /refresh`;
    /// - `POST /logout`, `POST /logout-all`, behind [`layer`](Self::layer) (other methods get
    ///   405 before the credentials are looked at);
    /// - `POST /token`, `POST /revoke`, `POST /introspect` (the OAuth 2 endpoints:
    ///   [`token`](Self::token), [`revocation`](Self::revocation),
    ///   [`introspection`](Self::introspection));
    /// - `GET /.well-known/jwks.json`;
    /// - `GET /.well-known/oauth-authorization-server` (RFC 8414) and
    ///   `GET /.well-known/openid-configuration` (asymmetric keys), when the server knows its
    ///   URL (public or local), and the RFC 9728 metadata with a public URL.
    ///
    /// Serve the app with `into_make_service_with_connect_info::<SocketAddr>()` so the login
    /// limit per client address sees the peer.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let layer = self.layer();
        let mut router = Router::new()
            .route_service("/login", self.login())
            .route_service("/refresh", self.refresh())
            .route(
                "/logout",
                post_service(layer.clone().layer(self.logout())).fallback(post_only),
            )
            .route(
                "/logout-all",
                post_service(layer.layer(self.logout_all())).fallback(post_only),
            )
            .route_service("/token", self.token())
            .route_service("/revoke", self.revocation())
            .route_service("/introspect", self.introspection())
            .route_service("/.well-known/jwks.json", self.jwks());
        if let Some((path, metadata)) = self.authorization_server_metadata() {
            router = router.route_service(&path, metadata);
        }
        if let Some(provider) = self.provider_metadata() {
            router = router.route_service("/.well-known/openid-configuration", provider);
        }
        if let Some((path, metadata)) = self.resource_metadata() {
            router = router.route_service(&path, metadata);
        }
        router
    }
}

/// 405 with `Allow: POST`, as the session services answer other methods.
async fn post_only() -> Result<Response<JsonBody>, Infallible> {
    Ok(super::super::service::post_only())
}
