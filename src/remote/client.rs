//! How [`RemoteJwks`](super::RemoteJwks) talks HTTP: the [`HttpClient`] trait any tower client
//! fits, and the default one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Limited};

#[cfg(feature = "hyper-client")]
pub(super) use super::key_client::default_fetcher;

/// Without the `hyper-client` feature there is no default client.
#[cfg(not(feature = "hyper-client"))]
pub(super) fn default_fetcher() -> Result<Fetcher, crate::error::ConfigError> {
    Err(crate::error::ConfigError::new(
        crate::error::ConfigErrorKind::NoHttpClient,
        "no HTTP client for the key set: give one with RemoteJwksBuilder::client, or enable \
         the `hyper-client` feature of tower-jwt-auth for the default one",
    ))
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type FetchFuture =
    Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

/// One GET of `uri`, its body read up to `limit` bytes.
pub(crate) type Fetcher = Arc<dyn Fn(Uri, usize) -> FetchFuture + Send + Sync>;

/// An HTTP client [`RemoteJwks`](super::RemoteJwks) can fetch with: any cloneable tower service
/// from `http::Request<B>` to `http::Response` with any body, whose errors convert into a boxed
/// error (hyper-util's legacy client, reqwest through a tower adapter, a
/// `tower::ServiceBuilder` stack around either, a test double…). Implemented for every such
/// service; there is nothing to implement by hand.
pub trait HttpClient<B>:
    tower_service::Service<
        Request<B>,
        Response = Response<Self::ResBody>,
        Future: Send,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + Sync
    + 'static
{
    /// The response body type.
    type ResBody: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B, RB> HttpClient<B> for S
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type ResBody = RB;
}

/// Send `request` once `client` is ready; the response with its body read up to `limit`.
async fn send_bounded<S, B>(
    client: &mut S,
    request: Request<B>,
    limit: usize,
) -> Result<Response<Bytes>, BoxError>
where
    S: HttpClient<B>,
{
    std::future::poll_fn(|cx| client.poll_ready(cx))
        .await
        .map_err(Into::into)?;
    let response = client.call(request).await.map_err(Into::into)?;
    let (parts, body) = response.into_parts();
    let bytes = Limited::new(body, limit).collect().await?.to_bytes();
    Ok(Response::from_parts(parts, bytes))
}

/// One request (its body a string: a form), the response's body read up to the limit.
#[cfg_attr(not(feature = "oauth-client"), allow(dead_code))]
pub(crate) type Sender = Arc<dyn Fn(Request<String>, usize) -> FetchFuture + Send + Sync>;

/// Adapt a client into a [`Sender`].
#[cfg_attr(not(feature = "oauth-client"), allow(dead_code))]
pub(crate) fn sender<S, B>(client: S) -> Sender
where
    S: HttpClient<B>,
    B: From<String> + Send + 'static,
{
    Arc::new(move |request: Request<String>, limit: usize| {
        let mut client = client.clone();
        Box::pin(async move {
            let request = request.map(B::from);
            send_bounded(&mut client, request, limit).await
        }) as FetchFuture
    })
}

/// Adapt a client into a [`Fetcher`]: `GET uri` with an `Accept` for JWK Sets and JSON, the
/// body bounded by `limit`.
pub(crate) fn fetcher<S, B>(client: S) -> Fetcher
where
    S: HttpClient<B>,
    B: Default + Send + 'static,
{
    Arc::new(move |uri: Uri, limit: usize| {
        let mut client = client.clone();
        Box::pin(async move {
            let mut request = Request::new(B::default());
            *request.uri_mut() = uri;
            request.headers_mut().insert(
                ACCEPT,
                HeaderValue::from_static("application/jwk-set+json, application/json"),
            );
            send_bounded(&mut client, request, limit).await
        }) as FetchFuture
    })
}
