//! [`KeyClient`]: the default HTTP client of [`RemoteJwks`](super::RemoteJwks) (feature
//! `hyper-client`), with the options company networks need: the operating system's certificate
//! store (feature `os-certs`), a private certificate authority, and an HTTP proxy with
//! `HTTPS_PROXY`/`NO_PROXY` (feature `https-proxy`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;

use super::client::{BoxError, Fetcher, fetcher};
use super::{RemoteJwks, RemoteJwksBuilder};
use crate::error::{ConfigError, ConfigErrorKind};

#[cfg(feature = "os-certs")]
mod os_roots;
#[cfg(feature = "https-proxy")]
mod proxy;
#[cfg(not(feature = "https-proxy"))]
#[path = "no_proxy.rs"]
mod proxy;
#[cfg(feature = "https-proxy")]
pub use proxy::Proxy;

/// The HTTP client [`RemoteJwks`](super::RemoteJwks) uses unless given another: hyper-util's
/// pooled HTTP/1 client, https through rustls (aws-lc-rs).
///
/// Out of the box it trusts the webpki roots (Mozilla's list, compiled in) and, with the
/// `https-proxy` feature, honours `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` as curl
/// does. Build one with [`KeyClient::builder`] to trust the operating system's certificate
/// store or a private certificate authority, then hand it to
/// [`RemoteJwksBuilder::client`](super::RemoteJwksBuilder::client) or
/// [`RemoteJwks::discover_with_client`](super::RemoteJwks::discover_with_client).
///
/// Which URLs are fetched at all is not this client's business: the key source still accepts
/// only `https://` (or plain http from this machine, or with
/// [`allow_insecure_http`](super::RemoteJwksBuilder::allow_insecure_http)).
///
/// ```no_run
/// use tower_jwt_auth::remote::{KeyClient, RemoteJwks};
///
/// # async fn run() -> Result<(), tower_jwt_auth::ConfigError> {
/// let company_ca = std::fs::read("/etc/company/ca.pem").expect("the company CA");
/// let client = KeyClient::builder()
///     .add_root_certificates_pem(&company_ca)?
///     .build()?;
/// let jwks = RemoteJwks::discover_with_client("https://login.corp.example", client)
///     .await?
///     .build()?;
/// # let _ = jwks;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KeyClient {
    inner: Client<HttpsConnector<Connector>, String>,
}

impl fmt::Debug for KeyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyClient").finish_non_exhaustive()
    }
}

impl KeyClient {
    /// A builder with the defaults: the webpki roots, and (feature `https-proxy`) the proxy
    /// environment variables.
    pub fn builder() -> KeyClientBuilder {
        KeyClientBuilder {
            webpki_roots: true,
            os_roots: None,
            extra_roots: Vec::new(),
            proxy: proxy::Setting::default(),
        }
    }
}

impl tower_service::Service<Request<String>> for KeyClient {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        tower_service::Service::call(&mut self.inner, request)
    }
}

/// Builds a [`KeyClient`]. See its docs.
#[must_use]
pub struct KeyClientBuilder {
    webpki_roots: bool,
    /// Adds the operating system's store (feature `os-certs`), when asked for.
    os_roots: Option<LoadRoots>,
    extra_roots: Vec<CertificateDer<'static>>,
    proxy: proxy::Setting,
}

/// Adds trust anchors from elsewhere than the builder.
type LoadRoots = fn(&mut RootCertStore) -> Result<(), ConfigError>;

/// How the client reaches a destination through a proxy (feature `https-proxy`).
trait Route: Send + Sync {
    /// A tunnel to `dst`, or `None` to connect directly.
    fn tunnel(&self, http: &HttpConnector, dst: &Uri) -> Option<ConnectFuture>;
}

impl fmt::Debug for KeyClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyClientBuilder")
            .field("webpki_roots", &self.webpki_roots)
            .field("os_roots", &self.os_roots.is_some())
            .field("extra_roots", &self.extra_roots.len())
            .field("proxy", &self.proxy)
            .finish()
    }
}

fn tls_error(message: &'static str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Tls, message)
}

impl KeyClientBuilder {
    /// Whether to trust the webpki roots, Mozilla's list compiled into the binary (default
    /// `true`). Turn them off to trust only the operating system's store or your own CAs.
    pub fn webpki_roots(mut self, trust: bool) -> Self {
        self.webpki_roots = trust;
        self
    }

    /// Also trust the CA certificates in `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks; other blocks are ignored).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Tls`] when `pem` holds no certificate or one that cannot be parsed.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let before = self.extra_roots.len();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                ConfigError::with_source(
                    ConfigErrorKind::Tls,
                    "the CA certificates are not valid PEM",
                    e,
                )
            })?;
            self.extra_roots.push(cert);
        }
        if self.extra_roots.len() == before {
            return Err(tls_error(
                "no CA certificate found in the PEM: expected -----BEGIN CERTIFICATE----- blocks",
            ));
        }
        Ok(self)
    }

    /// Build the client.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Tls`] when a CA certificate is not usable, when the operating
    /// system's store was asked for but yielded no certificate, when no root is trusted at all,
    /// or when TLS cannot be set up.
    pub fn build(self) -> Result<KeyClient, ConfigError> {
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(load) = self.os_roots {
            load(&mut roots)?;
        }
        for cert in self.extra_roots {
            roots.add(cert).map_err(|e| {
                ConfigError::with_source(
                    ConfigErrorKind::Tls,
                    "a CA certificate could not be used as a trust anchor",
                    e,
                )
            })?;
        }
        if roots.is_empty() {
            return Err(tls_error(
                "the key client trusts no certificate authority: keep the webpki roots, or add \
                 the operating system's store or your own CA",
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::Tls,
                "could not set up TLS for the JWKS client",
                e,
            )
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = Connector {
            http,
            route: proxy::route(&self.proxy),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(KeyClient {
            inner: Client::builder(TokioExecutor::new()).build(https),
        })
    }
}

/// TCP to the destination, or (feature `https-proxy`) a `CONNECT` tunnel through the proxy the
/// destination's scheme and host call for. TLS runs inside the tunnel, end to end.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    route: Option<Arc<dyn Route>>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> ConnectFuture {
        if let Some(tunnel) = self.route.as_ref().and_then(|r| r.tunnel(&self.http, &dst)) {
            return tunnel;
        }
        let connecting = self.http.call(dst);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The default client of a key source: a [`KeyClient`] with its defaults.
pub(super) fn default_fetcher() -> Result<Fetcher, ConfigError> {
    Ok(fetcher(KeyClient::builder().build()?))
}

impl RemoteJwks {
    /// OpenID Connect discovery with the default client (feature `hyper-client`): fetch
    /// `{issuer}/.well-known/openid-configuration` (https, or http from localhost), check its
    /// `issuer`, and return a builder for its `jwks_uri`. The source remembers the issuer, and a
    /// [`Verifier`](crate::verifier::Verifier) built on it accepts only tokens whose `iss` is that issuer.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] when the issuer URL is invalid;
    /// [`ConfigErrorKind::Discovery`] when the document cannot be fetched or parsed, or names
    /// another issuer; [`ConfigErrorKind::Tls`] when the client cannot be set up.
    pub async fn discover(issuer: &str) -> Result<RemoteJwksBuilder, ConfigError> {
        super::discovery::discover(issuer, default_fetcher()?).await
    }
}
