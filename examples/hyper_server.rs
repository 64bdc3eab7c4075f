//! The Flask-JWT tutorial app (log in, then call a protected route) with plain hyper 1 and
//! hyper-util (no axum): `POST /login`, `GET /protected`, `POST /refresh`, `POST /logout`,
//! `POST /logout-all`, the OAuth 2 `POST /token`, `POST /revoke` and `POST /introspect`,
//! `GET /health` and `GET /.well-known/jwks.json`.
//!
//! ```not_rust
//! cargo run --example hyper_server
//! ```
//!
//! Configuration comes from the same environment variables as `axum_server`; see `README.md`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{Demo, DemoClaims, identity, init_tracing};
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::Claims;
use tower_jwt_auth::login::{
    InMemoryUsers, IntrospectionService, LoginService, RefreshService, RevocationService,
    TokenService,
};
use tower_jwt_auth::metadata::MetadataService;
use tower_jwt_auth::session::PeerAddr;
use tower_jwt_auth::{JsonBody, JwksService};

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    // Serializing these plain structs and maps cannot fail; an empty body would be the fallback.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The `/protected` handler; `JwtAuth` has put the claims in the extensions.
async fn protected(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.extensions().get::<Claims<DemoClaims>>() {
        Some(claims) => json(StatusCode::OK, &identity(&claims.0)),
        // Only reachable if the layer were missing: a server bug, not the client's fault.
        None => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": "authentication layer missing" }),
        ),
    })
}

type Protected = BoxCloneService<Request<Incoming>, Response<Full<Bytes>>, Infallible>;
type Authenticated = BoxCloneService<Request<Incoming>, Response<Body>, Infallible>;

#[derive(Clone)]
struct App {
    protected: Protected,
    login: LoginService<Arc<InMemoryUsers<DemoClaims>>>,
    refresh: RefreshService<Arc<InMemoryUsers<DemoClaims>>>,
    token: TokenService<Arc<InMemoryUsers<DemoClaims>>>,
    revoke: RevocationService,
    introspect: IntrospectionService,
    authorization_server: Option<(String, MetadataService)>,
    logout: Authenticated,
    logout_all: Authenticated,
    jwks: JwksService,
    /// RFC 9728 metadata (with `PUBLIC_URL`): its path and service.
    resource_metadata: Option<(String, MetadataService)>,
    provider: Option<MetadataService>,
    /// Cookie mode: the page at `/`.
    cookies: bool,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl App {
    async fn route(
        self,
        peer: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        // The login throttle counts attempts per client address.
        req.extensions_mut().insert(PeerAddr(peer));
        let path = req.uri().path();
        if path == "/.well-known/openid-configuration"
            && let Some(provider) = self.provider
        {
            return Ok(provider.oneshot(req).await?.map(BodyExt::boxed_unsync));
        }
        for (metadata_path, metadata) in [self.resource_metadata, self.authorization_server]
            .into_iter()
            .flatten()
        {
            if metadata_path == path {
                return Ok(metadata.oneshot(req).await?.map(BodyExt::boxed_unsync));
            }
        }
        let method = req.method().clone();
        if self.cookies
            && (method == Method::GET || method == Method::HEAD)
            && let Some(page) = common::page::asset(path)
        {
            return Ok(page.map(|text| Full::new(Bytes::from(text)).boxed_unsync()));
        }
        Ok(match path {
            "/login" => self.login.oneshot(req).await?.map(BodyExt::boxed_unsync),
            "/refresh" => self.refresh.oneshot(req).await?.map(BodyExt::boxed_unsync),
            "/token" => self.token.oneshot(req).await?.map(BodyExt::boxed_unsync),
            "/revoke" => self.revoke.oneshot(req).await?.map(BodyExt::boxed_unsync),
            "/introspect" => self
                .introspect
                .oneshot(req)
                .await?
                .map(BodyExt::boxed_unsync),
            // The method is checked before the credentials: `GET /logout` is 405, not 401.
            "/logout" | "/logout-all" if method != Method::POST => {
                common::post_only().map(|body| Full::new(Bytes::from(body)).boxed_unsync())
            }
            "/logout" => self.logout.oneshot(req).await?,
            "/logout-all" => self.logout_all.oneshot(req).await?,
            "/protected" if method == Method::GET || method == Method::HEAD => self
                .protected
                .oneshot(req)
                .await?
                .map(BodyExt::boxed_unsync),
            "/protected" | "/health" | "/metrics"
                if method != Method::GET && method != Method::HEAD =>
            {
                let mut res = json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &serde_json::json!({ "error": "method_not_allowed" }),
                );
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                res.map(BodyExt::boxed_unsync)
            }
            "/health" => json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
                .map(BodyExt::boxed_unsync),
            "/metrics" => common::metrics_response(&self.metrics)
                .map(|text| Full::new(Bytes::from(text)).boxed_unsync()),
            "/.well-known/jwks.json" => self.jwks.oneshot(req).await?.map(BodyExt::boxed_unsync),
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "not_found" }),
            )
            .map(BodyExt::boxed_unsync),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), common::BoxError> {
    init_tracing();
    let demo = Demo::from_env("127.0.0.1:3000").await?;
    // Every part from the login server, already wired to each other.
    let auth = demo.auth;
    let app = App {
        protected: ServiceBuilder::new()
            .layer(auth.layer())
            .service_fn(protected)
            .boxed_clone(),
        login: auth.login(),
        refresh: auth.refresh(),
        token: auth.token(),
        revoke: auth.revocation(),
        introspect: auth.introspection(),
        authorization_server: auth.authorization_server_metadata(),
        logout: ServiceBuilder::new()
            .boxed_clone()
            .map_response(|res: Response<JsonBody>| res.map(BodyExt::boxed_unsync))
            .layer(auth.layer())
            .service(auth.logout()),
        logout_all: ServiceBuilder::new()
            .boxed_clone()
            .map_response(|res: Response<JsonBody>| res.map(BodyExt::boxed_unsync))
            .layer(auth.layer())
            .service(auth.logout_all()),
        jwks: auth.jwks(),
        resource_metadata: auth.resource_metadata(),
        provider: auth.provider_metadata(),
        cookies: demo.cookies,
        metrics: demo.metrics,
    };
    let listener = demo.listener;

    tracing::info!(addr = %listener.local_addr()?, "hyper demo server listening");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let app = app.clone();
        let service = TowerToHyperService::new(service_fn(move |req| app.clone().route(peer, req)));
        tokio::spawn(async move {
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
