//! The OAuth 2 endpoints beside `/login`: the token endpoint (RFC 6749 §3.2: the
//! `client_credentials` and `refresh_token` grants), revocation (RFC 7009) and introspection
//! (RFC 7662), for clients authenticated as RFC 6749 §2.3.1 says.

mod clients;
mod inspect;
mod token;

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

pub use clients::{AuthenticateClient, FIRST_PARTY, InMemoryClients, RegisteredClient};
pub(crate) use clients::{Clients, NoClients};

use self::clients::{Credentials, CredentialsError};
use super::proof::Dpop;
use super::request::{Form, read_form};
use super::service::{DEFAULT_BODY_LIMIT, EndpointFuture, store_unavailable, unavailable};
use super::users::Overloaded;
use super::{RefreshService, Reissue, TokenIssuer};
use crate::body::{JsonBody, json_error};
use crate::revocation::Revocations;
use crate::session::{LoginThrottle, Sessions, Throttle};
use crate::verifier::Verifier;

/// What the three endpoints share: the clients, the sessions and revocations of the
/// [`AuthServer`](super::AuthServer), its verifier and the issuer of clients' tokens.
pub(crate) struct Endpoints {
    pub(crate) clients: Arc<dyn Clients>,
    /// Signs clients' tokens: RFC 9068 (`typ: at+jwt`), `iss` the issuer identifier, `aud` the
    /// configured audience or else the identifier.
    pub(crate) client_issuer: TokenIssuer,
    pub(crate) sessions: Sessions,
    pub(crate) revocations: Revocations,
    pub(crate) verifier: Verifier,
    pub(crate) throttle: Option<LoginThrottle>,
    pub(crate) dpop: Option<Dpop>,
    /// The issuer identifier (introspection names it for tokens without `iss`).
    pub(crate) identifier: Option<String>,
}

/// Who is calling, once the credentials are checked.
enum Caller {
    /// No client named: the first-party client, by default.
    Anonymous,
    /// `client_id=first-party`, without a secret (a public client).
    FirstParty,
    /// A confidential client that authenticated.
    Client(RegisteredClient),
}

impl Caller {
    /// Whether the caller may act on a token issued to `owner`: `Ok` if so, else the refusal
    /// (400 `invalid_request` for another client, 401 `invalid_client` when the owner is a
    /// confidential client that did not authenticate).
    #[allow(clippy::result_large_err)]
    fn may_act_for(&self, owner: &str) -> Result<(), Response<JsonBody>> {
        let another = || {
            Err(json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the token was issued to another client",
            ))
        };
        match self {
            Self::Anonymous | Self::FirstParty if owner == FIRST_PARTY => Ok(()),
            Self::Anonymous | Self::FirstParty => Err(invalid_client(
                false,
                "this token belongs to a confidential client: authenticate as that client",
            )),
            Self::Client(client) if client.id() == owner => Ok(()),
            Self::Client(_) => another(),
        }
    }
}

/// 401 `invalid_client`, with `WWW-Authenticate: Basic` when the client used Basic.
fn invalid_client(basic: bool, description: &'static str) -> Response<JsonBody> {
    let mut res = json_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if basic {
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="oauth", charset="UTF-8""#),
        );
    }
    res
}

fn invalid_request(description: &'static str) -> Response<JsonBody> {
    json_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// Nothing of these endpoints' answers may be cached (RFC 6749 §5.1, RFC 7662 §2.2).
fn no_store(mut res: Response<JsonBody>) -> Response<JsonBody> {
    let headers = res.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl Endpoints {
    /// Check the request's client credentials. A wrong secret takes a unit of the client
    /// address's budget (given back when the secret is right), never of the client's.
    async fn caller(&self, parts: &Parts, form: &Form) -> Result<Caller, Response<JsonBody>> {
        let credentials = Credentials::read(
            &parts.headers,
            form.get("client_id"),
            form.get("client_secret"),
        )
        .map_err(|e| match e {
            CredentialsError::TwoMethods => invalid_request(
                "authenticate the client one way: HTTP Basic, or client_id and client_secret \
                 in the body",
            ),
            CredentialsError::BadBasic => invalid_client(
                true,
                "the Basic credentials must be base64 of the form-encoded client id, `:` and \
                 the form-encoded secret",
            ),
        })?;
        let basic = credentials.is_basic();
        let (id, secret) = match credentials {
            Credentials::None => return Ok(Caller::Anonymous),
            Credentials::Named(id) if id == FIRST_PARTY => return Ok(Caller::FirstParty),
            Credentials::Named(_) => {
                return Err(invalid_client(
                    false,
                    "this client must authenticate: HTTP Basic, or client_secret in the body",
                ));
            }
            Credentials::Basic { id, secret } | Credentials::Post { id, secret } => (id, secret),
        };
        if id == FIRST_PARTY {
            return Err(invalid_client(
                basic,
                "the first-party client has no secret",
            ));
        }
        if let Some(throttle) = &self.throttle {
            match throttle
                .take_client_failure(&parts.headers, &parts.extensions)
                .await
            {
                Ok(Throttle::Allowed) => {}
                Ok(Throttle::Limited { retry_after }) => {
                    return Err(too_many(retry_after));
                }
                Err(e) => return Err(store_unavailable(&e)),
            }
        }
        match self.clients.check(&id, &secret).await {
            Ok(Some(client)) => {
                self.give_back(parts).await;
                Ok(Caller::Client(client))
            }
            Ok(None) => Err(invalid_client(basic, "unknown client or wrong secret")),
            Err(e) => {
                self.give_back(parts).await;
                let retry_after = e
                    .downcast_ref::<Overloaded>()
                    .map_or(Duration::from_secs(1), |o| o.retry_after);
                Err(unavailable(
                    "the client could not be authenticated now; try again shortly",
                    retry_after,
                ))
            }
        }
    }

    /// Best effort: a lost give-back only costs the address one unit.
    async fn give_back(&self, parts: &Parts) {
        if let Some(throttle) = &self.throttle {
            let _ = throttle
                .give_client_failure(&parts.headers, &parts.extensions)
                .await;
        }
    }
}

/// 429 with `Retry-After` in whole seconds (at least 1).
fn too_many(retry_after: Duration) -> Response<JsonBody> {
    crate::metrics::throttled(crate::metrics::Limit::Address);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut res = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many failed client authentications from this address; try again after the time \
         in Retry-After",
    );
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// Read the form of `req`, answer it with `handle`, and mark the answer (or the refusal of the
/// request itself) `no-store`.
fn serve_form<B, F, Fut>(req: Request<B>, limit: usize, handle: F) -> EndpointFuture
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    F: FnOnce(Parts, Form) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Response<JsonBody>> + Send,
{
    EndpointFuture::new(async move {
        let res = match read_form(req, limit).await {
            Ok((parts, form)) => handle(parts, form).await,
            Err(res) => res,
        };
        Ok(no_store(res))
    })
}

/// Declares one endpoint service over [`Endpoints`]: `Clone`, `Debug`, a body limit, and a
/// `Service` whose every answer is marked `no-store`.
macro_rules! endpoint {
    ($(#[$doc:meta])* $name:ident, $handle:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            endpoints: Arc<Endpoints>,
            body_limit: usize,
        }

        impl $name {
            pub(crate) fn new(endpoints: Arc<Endpoints>) -> Self {
                Self {
                    endpoints,
                    body_limit: DEFAULT_BODY_LIMIT,
                }
            }

            /// Set the largest request body accepted (default 16 KiB); larger bodies get 413.
            #[must_use]
            pub fn body_limit(mut self, limit: usize) -> Self {
                self.body_limit = limit;
                self
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("issuer", &self.endpoints.identifier)
                    .field("body_limit", &self.body_limit)
                    .finish_non_exhaustive()
            }
        }

        impl<B> Service<Request<B>> for $name
        where
            B: http_body::Body + Send + 'static,
            B::Data: Send,
        {
            type Response = Response<JsonBody>;
            type Error = Infallible;
            type Future = EndpointFuture;

            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: Request<B>) -> EndpointFuture {
                let endpoints = Arc::clone(&self.endpoints);
                serve_form(req, self.body_limit, move |parts, form| async move {
                    endpoints.$handle(&parts, &form).await
                })
            }
        }
    };
}

endpoint!(
    /// RFC 7009 token revocation (`Error = Infallible`): `POST` a form with `token` (and
    /// optionally `token_type_hint`) → 200, whether or not the token was known.
    ///
    /// A refresh token ends its session: the refresh token and every access token of the
    /// session are refused from then on, on every node sharing the store. An access token is
    /// revoked by its `jti`. Tokens of the first-party client (`/login`) are revoked with no
    /// client authentication; a confidential client's tokens only by that client,
    /// authenticated (401 `invalid_client` without it, 400 `invalid_request` for another
    /// client; nothing is revoked then).
    RevocationService,
    revoke
);

endpoint!(
    /// RFC 7662 token introspection (`Error = Infallible`), for authenticated confidential
    /// clients: `POST` a form with `token` → `{"active": true, "sub", "client_id", "scope",
    /// "exp", "iat", "iss", "token_type", …}` for an access token that would pass the
    /// verifying layer now (with `cnf` and `token_type: "DPoP"` for a token bound to a key,
    /// RFC 9449 §6.2), else `{"active": false}`. Refresh tokens belong to the first-party
    /// client, which has no secret: they are never active to an introspecting client.
    IntrospectionService,
    introspect
);

/// The OAuth 2 token endpoint (`Error = Infallible`): `POST` a form (RFC 6749 §3.2).
///
/// - `grant_type=client_credentials` (§4.4): the client authenticates (HTTP Basic with the
///   form-encoded id and secret, or `client_id` and `client_secret` in the body), may narrow
///   its scopes with `scope`, and gets an RFC 9068 access token (`typ: at+jwt`; `sub` and
///   `client_id` are its id) with `scope`; no refresh token.
/// - `grant_type=refresh_token` (§6): exactly the rotation of the
///   [`RefreshService`], for the first-party client's refresh tokens (no client
///   authentication; `client_id`, if sent, is `first-party`).
///
/// Errors are RFC 6749 §5.2 JSON (`invalid_request`, `invalid_client` with
/// `WWW-Authenticate: Basic` when Basic was used, `invalid_grant`, `unsupported_grant_type`,
/// `invalid_scope`), 429 when an address failed to authenticate too often, 503 when the store
/// or the client check is unavailable; every answer has `Cache-Control: no-store`. A DPoP
/// proof (RFC 9449 §5) binds the issued token (`token_type: "DPoP"`).
pub struct TokenService<A> {
    endpoints: Arc<Endpoints>,
    refresh: RefreshService<A>,
    body_limit: usize,
}

impl<A> TokenService<A> {
    pub(crate) fn new(endpoints: Arc<Endpoints>, refresh: RefreshService<A>) -> Self {
        Self {
            endpoints,
            refresh,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Set the largest request body accepted (default 16 KiB); larger bodies get 413.
    #[must_use]
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

impl<A> Clone for TokenService<A> {
    fn clone(&self) -> Self {
        Self {
            endpoints: Arc::clone(&self.endpoints),
            refresh: self.refresh.clone(),
            body_limit: self.body_limit,
        }
    }
}

impl<A> fmt::Debug for TokenService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.endpoints.identifier)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl<A, B> Service<Request<B>> for TokenService<A>
where
    A: Reissue,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = EndpointFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> EndpointFuture {
        let this = self.clone();
        serve_form(req, self.body_limit, move |parts, form| async move {
            this.token(&parts, &form).await
        })
    }
}

#[cfg(test)]
mod tests;
