//! OAuth 2 clients: the [`AuthenticateClient`] hook, the argon2id [`InMemoryClients`] table,
//! and how a request names its client (RFC 6749 §2.3.1).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use percent_encoding::percent_decode_str;
use serde::Serialize;

use super::super::users::{Authenticate, BoxError, InMemoryUsers};
use crate::error::{ConfigError, ConfigErrorKind};

/// The public client every token of a `/login` belongs to: it has no secret, and refreshes or
/// revokes its tokens with no client authentication.
pub const FIRST_PARTY: &str = "first-party";

/// A confidential client, as the registry knows it: its id and the scopes it may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredClient {
    id: String,
    scopes: Vec<String>,
}

impl RegisteredClient {
    /// The client `id`, allowed `scopes`.
    pub fn new<I, S>(id: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            id: id.into(),
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// The client id (`client_id`, and `sub` of its tokens).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scopes the client may ask for; with none asked, it gets them all.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// Checks a client's id and secret: the client side of [`Authenticate`].
///
/// Return `Ok(Some(client))` for a known client with the right secret, `Ok(None)` otherwise
/// (the same answer for an unknown id and a wrong secret), and `Err` when the check could not
/// be made, answered with 503. Compare secrets in constant time against stored hashes, as
/// [`InMemoryClients`] does, and do the same work for unknown ids as for known ones.
pub trait AuthenticateClient: Send + Sync + 'static {
    /// Check the credentials.
    fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> impl Future<Output = Result<Option<RegisteredClient>, BoxError>> + Send;

    /// The scopes clients may ask for, published as `scopes_supported` in the server's
    /// metadata (default: none published).
    fn scopes_supported(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An in-memory client table with argon2id secret hashes: what [`InMemoryUsers`] is for users
/// (the same hashing pool, the same work for unknown ids).
///
/// ```
/// use tower_jwt_auth::login::InMemoryClients;
///
/// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
/// let clients = InMemoryClients::new()?
///     .with_client("billing", "a long random secret", ["invoices.read", "invoices.write"])?;
/// // Or from a `client1:secret1:api.read api.write;…` list (the demos' `OAUTH_CLIENTS`):
/// let clients = InMemoryClients::new()?.with_clients_from_list("client1:secret1:api.read api.write")?;
/// # let _ = clients;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct InMemoryClients {
    table: InMemoryUsers<RegisteredClient>,
    ids: Vec<String>,
    scopes: Vec<String>,
}

impl InMemoryClients {
    /// An empty table with argon2's default parameters.
    ///
    /// # Errors
    ///
    /// When the dummy hash cannot be computed (no system randomness).
    pub fn new() -> Result<Self, ConfigError> {
        Ok(Self {
            table: InMemoryUsers::new()?,
            ids: Vec::new(),
            scopes: Vec::new(),
        })
    }

    /// Add a client, hashing `secret` with argon2id.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidClient`] for an empty id, `first-party`, an id made only of
    /// digits (it could pass for a user's `sub`), an id or scope with a character RFC 6749 does
    /// not allow, or an empty secret; or when hashing fails.
    pub fn with_client<I, S>(
        mut self,
        id: impl Into<String>,
        secret: impl AsRef<[u8]>,
        scopes: I,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let client = RegisteredClient::new(id, scopes);
        check_client(&client, secret.as_ref())?;
        self.ids.push(client.id.clone());
        self.scopes.extend(client.scopes.iter().cloned());
        self.table = self.table.with_user(client.id.clone(), secret, client)?;
        Ok(self)
    }

    /// Add the clients of `list`: `id:secret:scope scope…` entries separated by `;` (the
    /// secret may not hold `:` or `;`; scopes are separated by spaces).
    ///
    /// # Errors
    ///
    /// As [`with_client`](Self::with_client), and for an entry without two `:`.
    pub fn with_clients_from_list(mut self, list: &str) -> Result<Self, ConfigError> {
        for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(3, ':');
            let (Some(id), Some(secret), Some(scopes)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidClient,
                    "a client entry is `id:secret:scope scope…` (entries separated by `;`)",
                ));
            };
            self = self.with_client(id, secret, scopes.split_ascii_whitespace())?;
        }
        Ok(self)
    }

    /// The ids of the clients, in the order they were added.
    #[must_use]
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

/// What a client must be: an id RFC 6749 allows (VSCHAR), not a user's id, not the first-party
/// client; scopes of NQCHAR; a secret.
fn check_client(client: &RegisteredClient, secret: &[u8]) -> Result<(), ConfigError> {
    let refuse = |what: &'static str| Err(ConfigError::new(ConfigErrorKind::InvalidClient, what));
    let vschar = |s: &str| s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    let nqchar = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    };
    if client.id.is_empty() || !vschar(&client.id) {
        return refuse("a client id must be printable ASCII, and not empty");
    }
    if client.id.bytes().all(|b| b.is_ascii_digit()) {
        return refuse("a client id made only of digits could pass for a user's id: name it");
    }
    if client.id == FIRST_PARTY {
        return refuse("`first-party` is the public client of /login tokens: choose another id");
    }
    if secret.is_empty() {
        return refuse("a confidential client needs a secret");
    }
    if !client.scopes.iter().all(|s| nqchar(s)) {
        return refuse("a scope is printable ASCII without spaces, `\"` or `\\`");
    }
    Ok(())
}

impl AuthenticateClient for InMemoryClients {
    async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Option<RegisteredClient>, BoxError> {
        self.table.authenticate(client_id, secret).await
    }

    fn scopes_supported(&self) -> Vec<String> {
        let mut scopes = self.scopes.clone();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

impl fmt::Debug for InMemoryClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryClients")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// The boxed future of [`Clients`].
type ClientFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<RegisteredClient>, BoxError>> + Send + 'a>>;

/// [`AuthenticateClient`] behind a pointer: what the endpoints keep.
pub(crate) trait Clients: Send + Sync + 'static {
    fn check<'a>(&'a self, client_id: &'a str, secret: &'a str) -> ClientFuture<'a>;
    fn scopes(&self) -> Vec<String>;
}

impl<T: AuthenticateClient> Clients for T {
    fn check<'a>(&'a self, client_id: &'a str, secret: &'a str) -> ClientFuture<'a> {
        Box::pin(self.authenticate_client(client_id, secret))
    }
    fn scopes(&self) -> Vec<String> {
        self.scopes_supported()
    }
}

/// No clients at all: only the first-party client's tokens are refreshed and revoked.
pub(crate) struct NoClients;

impl Clients for NoClients {
    fn check<'a>(&'a self, _: &'a str, _: &'a str) -> ClientFuture<'a> {
        Box::pin(std::future::ready(Ok(None)))
    }
    fn scopes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// How a request named its client (RFC 6749 §2.3.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// Not at all.
    None,
    /// `client_id` in the body without a secret: a public client naming itself.
    Named(String),
    /// HTTP Basic.
    Basic { id: String, secret: String },
    /// `client_id` and `client_secret` in the body.
    Post { id: String, secret: String },
}

/// What is wrong with the way a request names its client: 400 `invalid_request` (two methods,
/// an unreadable header), or 401 `invalid_client` for a `Basic` header that cannot be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CredentialsError {
    /// More than one method, or `client_id` in the body disagreeing with the header.
    TwoMethods,
    /// `Authorization: Basic …` that does not decode to `id:secret`.
    BadBasic,
}

impl Credentials {
    /// Read the client's credentials from the `Authorization` header (`Basic`, its parts
    /// form-encoded) and the body's `client_id` / `client_secret`.
    pub(crate) fn read(
        headers: &HeaderMap,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        let basic = match headers.get(AUTHORIZATION) {
            None => None,
            Some(value) => {
                let value = value.to_str().map_err(|_| CredentialsError::BadBasic)?;
                let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
                if scheme.eq_ignore_ascii_case("basic") {
                    Some(decode_basic(rest.trim()).ok_or(CredentialsError::BadBasic)?)
                } else {
                    // A bearer token or another scheme authenticates no client here.
                    None
                }
            }
        };
        match (basic, client_id, client_secret) {
            (Some(_), _, Some(_)) => Err(CredentialsError::TwoMethods),
            (Some((id, _)), Some(named), None) if named != id => Err(CredentialsError::TwoMethods),
            (Some((id, secret)), _, None) => Ok(Self::Basic { id, secret }),
            (None, Some(id), Some(secret)) => Ok(Self::Post {
                id: id.to_owned(),
                secret: secret.to_owned(),
            }),
            (None, Some(id), None) => Ok(Self::Named(id.to_owned())),
            (None, None, Some(_)) => Err(CredentialsError::TwoMethods),
            (None, None, None) => Ok(Self::None),
        }
    }

    /// Whether the client used HTTP Basic (a 401 then says `WWW-Authenticate: Basic`).
    pub(crate) fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// `base64(form-encoded id ":" form-encoded secret)`.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(encoded).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// One `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte.
fn form_decode(component: &str) -> Option<String> {
    let spaced = component.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_parts_are_form_decoded() {
        let creds = Credentials::read(&basic("my%3Aclient:s%2Bcr+t%25"), None, None).unwrap();
        assert_eq!(
            creds,
            Credentials::Basic {
                id: "my:client".into(),
                secret: "s+cr t%".into()
            }
        );
    }

    #[test]
    fn one_method_only() {
        let headers = basic("client1:secret1");
        assert_eq!(
            Credentials::read(&headers, None, Some("secret1")),
            Err(CredentialsError::TwoMethods)
        );
        assert_eq!(
            Credentials::read(&headers, Some("client2"), None),
            Err(CredentialsError::TwoMethods)
        );
        assert!(Credentials::read(&headers, Some("client1"), None).is_ok());
        assert_eq!(
            Credentials::read(&HeaderMap::new(), None, Some("secret1")),
            Err(CredentialsError::TwoMethods)
        );
    }

    #[test]
    fn undecodable_basic_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(
            Credentials::read(&headers, None, None),
            Err(CredentialsError::BadBasic)
        );
        assert_eq!(
            Credentials::read(&basic("no-colon"), None, None),
            Err(CredentialsError::BadBasic)
        );
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(
            Credentials::read(&headers, None, None),
            Ok(Credentials::None)
        );
    }

    #[test]
    fn client_ids_that_are_refused() {
        for (id, secret) in [("123", "s"), ("first-party", "s"), ("", "s"), ("ok", "")] {
            let err = InMemoryClients::new()
                .unwrap()
                .with_client(id, secret, ["a"])
                .unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::InvalidClient, "{id:?}");
        }
        let err = InMemoryClients::new()
            .unwrap()
            .with_clients_from_list("client1:secret1")
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidClient);
        let clients = InMemoryClients::new()
            .unwrap()
            .with_clients_from_list(" a1:s1:x y ; b2:s2: ")
            .unwrap();
        assert_eq!(clients.ids(), ["a1", "b2"]);
    }

    #[tokio::test]
    async fn secrets_are_checked() {
        let clients = InMemoryClients::new()
            .unwrap()
            .with_client("c1", "s1", ["x", "y"])
            .unwrap();
        let found = clients.authenticate_client("c1", "s1").await.unwrap();
        assert_eq!(found, Some(RegisteredClient::new("c1", ["x", "y"])));
        assert_eq!(clients.authenticate_client("c1", "s2").await.unwrap(), None);
        assert_eq!(clients.authenticate_client("c2", "s1").await.unwrap(), None);
    }
}
