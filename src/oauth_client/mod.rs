//! Outgoing calls with OAuth 2 client-credentials tokens (feature `oauth-client`):
//! [`ClientCredentials`] gets a token from any RFC 8414 issuer's token endpoint (this crate's
//! [`AuthServer`](crate::login::AuthServer) or another), keeps it, and renews it before it
//! expires, one request at a time however many calls wait; [`ClientCredentialsLayer`] puts it
//! on every request of a tower client (a tonic `Channel`, a hyper client).
//!
//! ```no_run
//! use tower_jwt_auth::oauth_client::ClientCredentials;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // RFC 8414 discovery finds the token endpoint and the authentication method.
//! let credentials = ClientCredentials::discover("https://auth.example.com", "billing", "s3cret")
//!     .await?
//!     .scope("invoices.read")
//!     .build()?;
//! let channel = tonic::transport::Endpoint::from_static("https://invoices.internal:50051")
//!     .connect_lazy();
//! let channel = tower::ServiceBuilder::new()
//!     .layer(credentials.layer())
//!     .service(channel);
//! // InvoicesClient::new(channel) … every call carries `authorization: Bearer …`.
//! # let _ = channel;
//! # Ok(())
//! # }
//! ```
//!
//! With DPoP ([`ClientCredentialsBuilder::dpop`], feature `dpop`), token requests carry a proof
//! of the client's key (and the server's nonce when it asks), the token comes back bound to it,
//! and [`DpopClientLayer`](crate::dpop::DpopClientLayer) with the same key, inside this layer,
//! adds a proof to every call.
//!
//! Failures: a token request that fails while the current token is still valid keeps that
//! token (and retries at most once a second); without a valid token the call fails with a
//! [`TokenError`], before anything is sent to the inner service.

mod discovery;
mod layer;
mod support;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use serde::Deserialize;

pub use layer::{ClientCredentialsLayer, ClientCredentialsService};

use crate::error::{ConfigError, ConfigErrorKind};
use crate::remote::HttpClient;
use crate::remote::client::Sender;

/// How long before its expiry a token is renewed, at most (default): 60 s.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(60);

/// How long a token request may take: 10 s.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;
/// After a failed renewal, how long calls keep the still-valid token without asking again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The lifetime assumed when the server does not say (`expires_in` is only recommended).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (`client_secret_basic`, the default).
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post,
}

/// Why no token could be had.
#[derive(Debug)]
pub struct TokenError {
    message: String,
    /// The OAuth 2 `error` code of the token endpoint's answer, if it gave one.
    code: Option<String>,
    status: Option<StatusCode>,
}

impl TokenError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            status: None,
        }
    }

    /// The token endpoint's `error` (`invalid_client`, `invalid_scope`, …), when it answered one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The token endpoint's HTTP status, when it answered.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TokenError {}

/// An access token of the client, as the token endpoint issued it.
#[derive(Clone)]
pub struct AccessToken {
    value: String,
    dpop: bool,
    scope: Option<String>,
    expires_at: Instant,
    renew_at: Instant,
}

impl AccessToken {
    /// The token.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether it is bound to the client's DPoP key (`token_type: DPoP`): sent as
    /// `Authorization: DPoP …` with a proof, else as `Bearer`.
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        self.dpop
    }

    /// The scope granted, when the server named it.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// When it expires (by this process's clock, from `expires_in`).
    #[must_use]
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// The `Authorization` header value.
    fn header(&self) -> Result<HeaderValue, TokenError> {
        let scheme = if self.dpop { "DPoP" } else { "Bearer" };
        let mut value =
            HeaderValue::from_str(&format!("{scheme} {}", self.value)).map_err(|_| {
                TokenError::new("the token endpoint issued a token that cannot go in a header")
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("dpop", &self.dpop)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A client's credentials at one token endpoint, and the token they got: cheap to clone (the
/// clones share the token). See the [module docs](self).
#[derive(Clone)]
pub struct ClientCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    token_endpoint: Uri,
    client_id: String,
    secret: String,
    auth: ClientAuth,
    scope: Option<String>,
    send: Sender,
    renew_before: Duration,
    /// The DPoP key token requests prove (none without the `dpop` feature).
    dpop: Option<support::Key>,
    /// The server's last DPoP nonce.
    nonce: Mutex<Option<String>>,
    current: ArcSwapOption<AccessToken>,
    /// Held by the one request renewing the token; the others wait, then take its token.
    renewing: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<Instant>>,
}

/// Builds [`ClientCredentials`]; see [`ClientCredentials::builder`] and
/// [`ClientCredentials::discover`].
#[must_use = "a ClientCredentialsBuilder does nothing until `build` is called"]
pub struct ClientCredentialsBuilder {
    token_endpoint: String,
    client_id: String,
    secret: String,
    auth: ClientAuth,
    scope: Option<String>,
    send: Option<Sender>,
    renew_before: Duration,
    insecure_http: bool,
    dpop: Option<support::Key>,
}

impl ClientCredentials {
    /// Credentials `client_id` / `secret` at `token_endpoint`.
    pub fn builder(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> ClientCredentialsBuilder {
        ClientCredentialsBuilder {
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
            secret: secret.into(),
            auth: ClientAuth::Basic,
            scope: None,
            send: None,
            renew_before: DEFAULT_RENEW_BEFORE,
            insecure_http: false,
            dpop: None,
        }
    }

    /// The layer that puts this client's token on every request.
    #[must_use]
    pub fn layer(&self) -> ClientCredentialsLayer {
        ClientCredentialsLayer::new(self.clone())
    }

    /// A token valid for at least a while longer: the one kept, or a new one when it is due
    /// for renewal (one request at a time: concurrent callers wait for it and share it).
    ///
    /// # Errors
    ///
    /// [`TokenError`] when no valid token is kept and the token endpoint did not give one.
    pub async fn token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let inner = &self.inner;
        if let Some(token) = inner.fresh(Instant::now()) {
            return Ok(token);
        }
        let _renewing = inner.renewing.lock().await;
        let now = Instant::now();
        if let Some(token) = inner.fresh(now) {
            return Ok(token);
        }
        let current = inner.current.load_full().filter(|t| t.expires_at > now);
        if let Some(token) = &current
            && inner.failed_recently(now)
        {
            return Ok(Arc::clone(token));
        }
        match inner.request().await {
            Ok(token) => {
                let token = Arc::new(token);
                inner.current.store(Some(Arc::clone(&token)));
                Ok(token)
            }
            Err(error) => {
                *inner
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
                #[cfg(feature = "tracing")]
                tracing::warn!(%error, kept = current.is_some(), "the client-credentials token could not be renewed");
                current.ok_or(error)
            }
        }
    }

    /// The header value for a call, with the token (renewed first if due).
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, TokenError> {
        self.token().await?.header()
    }
}

impl Inner {
    /// The kept token, if it is not due for renewal at `now`.
    fn fresh(&self, now: Instant) -> Option<Arc<AccessToken>> {
        self.current.load_full().filter(|t| now < t.renew_at)
    }

    fn failed_recently(&self, now: Instant) -> bool {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| now.duration_since(at) < RETRY_AFTER_FAILURE)
    }

    /// One token request; once more with the server's DPoP nonce if it asks for one.
    async fn request(&self) -> Result<AccessToken, TokenError> {
        let first = self.request_once().await;
        match first {
            Err(e) if e.code.as_deref() == Some("use_dpop_nonce") => self.request_once().await,
            other => other,
        }
    }

    /// The token request (its body a form), with a DPoP proof when bound.
    fn token_request(&self) -> Result<Request<String>, TokenError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        if self.auth == ClientAuth::Post {
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", &self.secret);
        }
        let mut request = Request::new(form.finish());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_endpoint.clone();
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if self.auth == ClientAuth::Basic {
            let encode =
                |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", encode(&self.client_id), encode(&self.secret));
            let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
                .map_err(|_| TokenError::new("the client id cannot go in a header"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(key) = &self.dpop {
            let nonce = self
                .nonce
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            support::add_proof(key, &mut request, nonce.as_deref())?;
        }
        Ok(request)
    }

    async fn request_once(&self) -> Result<AccessToken, TokenError> {
        let request = self.token_request()?;
        let started = Instant::now();
        let response = tokio::time::timeout(TIMEOUT, (self.send)(request, MAX_RESPONSE))
            .await
            .map_err(|_| TokenError::new("the token endpoint did not answer in time"))?
            .map_err(|_| TokenError::new("the token endpoint could not be reached"))?;
        self.keep_nonce(&response);
        read_token(&response, started, self.renew_before)
    }

    fn keep_nonce(&self, response: &Response<Bytes>) {
        if let Some(nonce) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
        {
            *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = Some(nonce.to_owned());
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

/// The token of a 200 answer (renewed `renew_before` ahead of its expiry, at most half its
/// lifetime ahead), or the error of any other.
fn read_token(
    response: &Response<Bytes>,
    started: Instant,
    renew_before: Duration,
) -> Result<AccessToken, TokenError> {
    let status = response.status();
    if status != StatusCode::OK {
        let code = serde_json::from_slice::<ErrorResponse>(response.body())
            .ok()
            .map(|e| e.error);
        return Err(TokenError {
            message: format!("the token endpoint refused the request with {status}"),
            code,
            status: Some(status),
        });
    }
    let token: TokenResponse = serde_json::from_slice(response.body()).map_err(|_| {
        TokenError::new("the token endpoint's answer is not an OAuth 2 token response")
    })?;
    let dpop = if token.token_type.eq_ignore_ascii_case("dpop") {
        true
    } else if token.token_type.eq_ignore_ascii_case("bearer") {
        false
    } else {
        return Err(TokenError::new(
            "the token endpoint issued a token of a type other than Bearer or DPoP",
        ));
    };
    let lifetime = token
        .expires_in
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    let ahead = renew_before.min(lifetime / 2);
    Ok(AccessToken {
        value: token.access_token,
        dpop,
        scope: token.scope,
        expires_at: started + lifetime,
        renew_at: started + (lifetime - ahead),
    })
}

impl ClientCredentialsBuilder {
    /// The scopes to ask for, space-separated (default: none asked, so the client's default).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// How the client authenticates (default [`ClientAuth::Basic`]; discovery picks what the
    /// server supports).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Renew the token this long before it expires (default 60 s; at most half its lifetime).
    pub fn renew_before(mut self, ahead: Duration) -> Self {
        self.renew_before = ahead;
        self
    }

    /// Ask for tokens bound to `key` (RFC 9449, feature `dpop`): every token request carries a
    /// proof of it. Stack [`DpopClientLayer`](crate::dpop::DpopClientLayer) with the same key
    /// inside [`ClientCredentials::layer`], so each call carries a proof too.
    #[cfg(feature = "dpop")]
    pub fn dpop(mut self, key: crate::dpop::DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// Request tokens with `client` instead of the default hyper-util client (feature
    /// `hyper-client`): any [`HttpClient`] taking `http::Request<B>` with `B: From<String>`.
    pub fn client<S, B>(mut self, client: S) -> Self
    where
        S: HttpClient<B>,
        B: From<String> + Send + 'static,
    {
        self.send = Some(crate::remote::client::sender(client));
        self
    }

    pub(crate) fn sender(mut self, send: Sender) -> Self {
        self.send = Some(send);
        self
    }

    /// Accept a plain `http://` token endpoint on another machine. By default only `https://`
    /// is accepted, and `http://` only for `localhost` and loopback addresses: over plain http
    /// the secret and the tokens cross the network in the clear.
    pub fn allow_insecure_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    /// The credentials, ready; the first token is requested by the first call.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] for a token endpoint that is not an absolute http(s)
    /// URL, or plain http to another machine without
    /// [`allow_insecure_http`](Self::allow_insecure_http);
    /// [`ConfigErrorKind::NoHttpClient`] without a client and without the `hyper-client`
    /// feature; [`ConfigErrorKind::InvalidClient`] for an empty client id.
    pub fn build(self) -> Result<ClientCredentials, ConfigError> {
        let uri = crate::remote::parse_url(&self.token_endpoint)?;
        if uri.scheme_str() != Some("https")
            && !crate::remote::is_loopback(&uri)
            && !self.insecure_http
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidUrl,
                "the token endpoint must be https (plain http is accepted only on localhost, or \
                 with ClientCredentialsBuilder::allow_insecure_http)",
            ));
        }
        if self.client_id.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidClient,
                "the client id is empty",
            ));
        }
        let send = match self.send {
            Some(send) => send,
            None => support::default_sender()?,
        };
        Ok(ClientCredentials {
            inner: Arc::new(Inner {
                token_endpoint: uri,
                client_id: self.client_id,
                secret: self.secret,
                auth: self.auth,
                scope: self.scope,
                send,
                renew_before: self.renew_before,
                dpop: self.dpop,
                nonce: Mutex::new(None),
                current: ArcSwapOption::empty(),
                renewing: tokio::sync::Mutex::new(()),
                last_failure: Mutex::new(None),
            }),
        })
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_endpoint", &self.inner.token_endpoint)
            .field("client_id", &self.inner.client_id)
            .field("auth", &self.inner.auth)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientCredentialsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsBuilder")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
