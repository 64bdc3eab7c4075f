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

use super::client::BoxError;
use crate::error::{ConfigError, ConfigErrorKind};

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
            #[cfg(feature = "os-certs")]
            os_roots: false,
            extra_roots: Vec::new(),
            #[cfg(feature = "https-proxy")]
            proxy: Proxy::from_env(),
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
    #[cfg(feature = "os-certs")]
    os_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    #[cfg(feature = "https-proxy")]
    proxy: Proxy,
}

impl fmt::Debug for KeyClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KeyClientBuilder");
        d.field("webpki_roots", &self.webpki_roots);
        #[cfg(feature = "os-certs")]
        d.field("os_roots", &self.os_roots);
        d.field("extra_roots", &self.extra_roots.len());
        #[cfg(feature = "https-proxy")]
        d.field("proxy", &self.proxy);
        d.finish()
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

    /// Whether to trust the operating system's certificate store (default `false`), read once
    /// when the client is built: on Linux the distribution's bundle, or the file named by
    /// `SSL_CERT_FILE` / the directory named by `SSL_CERT_DIR`; the keychain on macOS; the
    /// system store on Windows. This is where company networks put the CA of a TLS-inspecting
    /// proxy or of an internal identity provider.
    #[cfg(feature = "os-certs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "os-certs")))]
    pub fn os_roots(mut self, trust: bool) -> Self {
        self.os_roots = trust;
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

    /// The proxy for key and discovery requests (default with the `https-proxy` feature:
    /// [`Proxy::from_env`]).
    #[cfg(feature = "https-proxy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "https-proxy")))]
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
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
        #[cfg(feature = "os-certs")]
        if self.os_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(match found.errors.into_iter().next() {
                    Some(e) => ConfigError::with_source(
                        ConfigErrorKind::Tls,
                        "the operating system's certificate store could not be read",
                        e,
                    ),
                    None => tls_error(
                        "the operating system's certificate store holds no usable certificate \
                         (on Linux: install ca-certificates, or point SSL_CERT_FILE at a bundle)",
                    ),
                });
            }
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
            #[cfg(feature = "https-proxy")]
            proxy: self.proxy.matcher().map(Arc::new),
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
    #[cfg(feature = "https-proxy")]
    proxy: Option<Arc<hyper_util::client::proxy::matcher::Matcher>>,
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
        #[cfg(feature = "https-proxy")]
        if let Some(intercept) = self.proxy.as_ref().and_then(|m| m.intercept(&dst)) {
            return proxy::tunnel(self.http.clone(), &intercept, dst);
        }
        let connecting = self.http.call(dst);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

#[cfg(feature = "https-proxy")]
pub use proxy::Proxy;

#[cfg(feature = "https-proxy")]
mod proxy {
    use std::fmt;

    use http::Uri;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::connect::proxy::Tunnel;
    use hyper_util::client::proxy::matcher::{Intercept, Matcher};

    use super::ConnectFuture;
    use crate::error::{ConfigError, ConfigErrorKind};

    /// Which HTTP proxy the [`KeyClient`](super::KeyClient) goes through (feature
    /// `https-proxy`). Requests are tunnelled with `CONNECT`, so TLS stays end to end between
    /// this process and the key endpoint; the proxy's own URL must be `http://` (credentials in
    /// it, `http://user:password@proxy:3128`, become `Proxy-Authorization: Basic`).
    #[derive(Clone)]
    pub struct Proxy(Mode);

    #[derive(Clone)]
    enum Mode {
        Env,
        Direct,
        Through { url: String, no_proxy: String },
    }

    impl fmt::Debug for Proxy {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // The URL may carry credentials: never print it.
            f.write_str(match self.0 {
                Mode::Env => "Proxy::from_env",
                Mode::Direct => "Proxy::none",
                Mode::Through { .. } => "Proxy::through(..)",
            })
        }
    }

    impl Proxy {
        /// Read the environment as curl does, when the client is built: `HTTPS_PROXY` for
        /// https URLs, `HTTP_PROXY` for http URLs, `ALL_PROXY` for both, and `NO_PROXY` (a
        /// comma-separated list of hosts, domains, IP addresses and CIDR blocks, or `*`) for
        /// destinations to reach directly; lower-case names too. Nothing set: no proxy. The
        /// default.
        #[must_use]
        pub fn from_env() -> Self {
            Self(Mode::Env)
        }

        /// No proxy, whatever the environment says.
        #[must_use]
        pub fn none() -> Self {
            Self(Mode::Direct)
        }

        /// Every request through the proxy at `url` (`http://host:port`, with optional
        /// `user:password@`), except destinations listed with [`no_proxy`](Self::no_proxy).
        ///
        /// # Errors
        ///
        /// [`ConfigErrorKind::InvalidUrl`] when `url` is not an absolute `http://` URL.
        pub fn through(url: &str) -> Result<Self, ConfigError> {
            let uri: Uri = url.parse().map_err(|e| {
                ConfigError::with_source(ConfigErrorKind::InvalidUrl, "not a valid proxy URL", e)
            })?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidUrl,
                    "the proxy URL must be an absolute http:// URL (https traffic is tunnelled \
                     through it with CONNECT)",
                ));
            }
            Ok(Self(Mode::Through {
                url: url.to_owned(),
                no_proxy: String::new(),
            }))
        }

        /// Destinations to reach directly, in `NO_PROXY` syntax (for example
        /// `"localhost,127.0.0.1,.corp.example,10.0.0.0/8"`). Only for
        /// [`through`](Self::through); [`from_env`](Self::from_env) reads `NO_PROXY` itself.
        #[must_use]
        pub fn no_proxy(self, list: &str) -> Self {
            match self.0 {
                Mode::Through { url, .. } => Self(Mode::Through {
                    url,
                    no_proxy: list.to_owned(),
                }),
                other => Self(other),
            }
        }

        pub(super) fn matcher(&self) -> Option<Matcher> {
            match &self.0 {
                Mode::Env => Some(Matcher::from_env()),
                Mode::Direct => None,
                Mode::Through { url, no_proxy } => Some(
                    Matcher::builder()
                        .all(url.clone())
                        .no(no_proxy.clone())
                        .build(),
                ),
            }
        }
    }

    /// `dst` with its port spelled out: the tunnel would take 443 for any URI without one,
    /// plain http included.
    fn with_port(dst: Uri) -> Uri {
        if dst.port().is_some() {
            return dst;
        }
        let port = if dst.scheme_str() == Some("http") {
            80
        } else {
            443
        };
        let (Some(scheme), Some(host)) = (dst.scheme_str(), dst.host()) else {
            return dst;
        };
        format!("{scheme}://{host}:{port}/").parse().unwrap_or(dst)
    }

    /// Connect to the proxy and open a `CONNECT` tunnel to `dst`.
    pub(super) fn tunnel(http: HttpConnector, intercept: &Intercept, dst: Uri) -> ConnectFuture {
        if intercept.uri().scheme_str() != Some("http") {
            return Box::pin(std::future::ready(Err(
                "the proxy URL must be http:// (https proxies are not supported)".into(),
            )));
        }
        let mut tunnel = Tunnel::new(intercept.uri().clone(), http);
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let dst = with_port(dst);
        Box::pin(async move {
            std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut tunnel, cx)).await?;
            Ok(tower_service::Service::call(&mut tunnel, dst).await?)
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_tunnel_names_the_default_port_of_the_scheme() {
            let port = |uri: &str| super::with_port(uri.parse().unwrap()).port_u16();
            assert_eq!(port("http://keys.example/jwks"), Some(80));
            assert_eq!(port("https://keys.example/jwks"), Some(443));
            assert_eq!(port("http://keys.example:8080/jwks"), Some(8080));
        }
    }
}
