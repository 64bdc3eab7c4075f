//! [`ReqwestClient`] (feature `reqwest`): fetch key sets with a `reqwest::Client`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};

use crate::error::{ConfigError, ConfigErrorKind};

/// A tower adapter over a [`reqwest::Client`], for [`RemoteJwksBuilder::client`] and
/// [`RemoteJwks::discover_with_client`]: key sets are fetched with your client, its TLS
/// settings (custom root certificates, client certificates) and its proxy settings.
///
/// [`ReqwestClient::with_system_settings`] builds a client with reqwest's defaults as this
/// crate enables them: the operating system's certificate store (rustls with the platform
/// verifier) and the system's proxy settings, `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`
/// included, for company networks. The https-only rule for key URLs still applies.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_jwt_auth::remote::{ReqwestClient, RemoteJwks};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let jwks = RemoteJwks::builder("https://auth.example.com/.well-known/jwks.json")?
///     .client(ReqwestClient::with_system_settings()?)
///     .build_and_wait(Duration::from_secs(10))
///     .await?;
/// # let _ = jwks;
/// # Ok(())
/// # }
/// ```
///
/// [`RemoteJwksBuilder::client`]: super::RemoteJwksBuilder::client
/// [`RemoteJwks::discover_with_client`]: super::RemoteJwks::discover_with_client
#[derive(Clone)]
pub struct ReqwestClient {
    client: reqwest::Client,
}

impl ReqwestClient {
    /// Fetch with `client` (reqwest clients are cheap to clone and share their pool).
    #[must_use]
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A client trusting the operating system's certificate store and following the system's
    /// proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    ///
    /// # Errors
    ///
    /// When the TLS backend cannot be set up.
    pub fn with_system_settings() -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder().build().map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::Tls,
                "could not set up the reqwest client for the JWKS fetches",
                e,
            )
        })?;
        Ok(Self::new(client))
    }
}

impl fmt::Debug for ReqwestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestClient").finish_non_exhaustive()
    }
}

type ReqwestFuture =
    Pin<Box<dyn Future<Output = Result<Response<reqwest::Body>, reqwest::Error>> + Send>>;

impl tower_service::Service<Request<Bytes>> for ReqwestClient {
    type Response = Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = ReqwestFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let client = self.client.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            Ok(Response::from(response))
        })
    }
}
