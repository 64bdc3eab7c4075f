//! [`ClientCredentialsLayer`]: the client's token on every outgoing request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Request;
use http::header::AUTHORIZATION;
use tower_layer::Layer;
use tower_service::Service;

use super::ClientCredentials;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Puts the client's access token in `Authorization` (`Bearer`, or `DPoP` for a bound token)
/// on every request of the service it wraps, replacing any there. Build it with
/// [`ClientCredentials::layer`].
#[derive(Clone, Debug)]
pub struct ClientCredentialsLayer {
    credentials: ClientCredentials,
}

impl ClientCredentialsLayer {
    pub(super) fn new(credentials: ClientCredentials) -> Self {
        Self { credentials }
    }
}

impl<S> Layer<S> for ClientCredentialsLayer {
    type Service = ClientCredentialsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientCredentialsService {
            inner,
            credentials: self.credentials.clone(),
        }
    }
}

/// The service of [`ClientCredentialsLayer`]. Its errors are the inner service's, boxed, or a
/// [`TokenError`](super::TokenError) when no token could be had (the request is then not
/// sent).
#[derive(Clone, Debug)]
pub struct ClientCredentialsService<S> {
    inner: S,
    credentials: ClientCredentials,
}

impl<S, B> Service<Request<B>> for ClientCredentialsService<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service polled ready is the one that sends; a clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let credentials = self.credentials.clone();
        Box::pin(async move {
            let value = credentials.authorization().await?;
            request.headers_mut().insert(AUTHORIZATION, value);
            inner.call(request).await.map_err(Into::into)
        })
    }
}
