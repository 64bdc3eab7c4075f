//! The proxy of the [`KeyClient`](super::KeyClient) (feature `https-proxy`).

use std::fmt;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};

use std::sync::Arc;

use super::{ConnectFuture, KeyClientBuilder, Route};
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

    fn matcher(&self) -> Option<Matcher> {
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

impl Default for Proxy {
    fn default() -> Self {
        Self::from_env()
    }
}

/// What the builder holds: the proxy asked for.
pub(super) type Setting = Proxy;

/// The route the client takes, read (from the environment too) when it is built.
pub(super) fn route(proxy: &Proxy) -> Option<Arc<dyn Route>> {
    proxy
        .matcher()
        .map(|matcher| Arc::new(Through(matcher)) as Arc<dyn Route>)
}

impl KeyClientBuilder {
    /// The proxy for key and discovery requests (default with the `https-proxy` feature:
    /// [`Proxy::from_env`]).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }
}

/// Destinations the matcher intercepts go through a `CONNECT` tunnel.
struct Through(Matcher);

impl Route for Through {
    fn tunnel(&self, http: &HttpConnector, dst: &Uri) -> Option<ConnectFuture> {
        let intercept = self.0.intercept(dst)?;
        Some(tunnel(http.clone(), &intercept, dst.clone()))
    }
}

/// Connect to the proxy and open a `CONNECT` tunnel to `dst`.
fn tunnel(http: HttpConnector, intercept: &Intercept, dst: Uri) -> ConnectFuture {
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
