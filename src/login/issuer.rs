use std::fmt;
use std::time::Duration;

use jsonwebtoken::Header;
use serde::Serialize;

use super::claims::{Issued, Registered, SessionClaims, UserClaims};
use crate::keys::KeyRing;
use crate::keys::SigningKey;

/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(900);

/// Signs access tokens: adds `iat`, `nbf`, `exp`, `jti` (and `iss`/`aud` when configured) to your
/// claims and puts the key's `kid` in the header.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::{Algorithm, SigningKey};
/// use tower_jwt_auth::login::TokenIssuer;
///
/// let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [5u8; 32]).unwrap())
///     .issuer("https://auth.example.com")
///     .audience("orders-api")
///     .ttl(Duration::from_secs(300));
/// let token = issuer.issue(&serde_json::json!({"sub": "42"})).unwrap();
/// assert_eq!(token.expires_in(), 300);
/// assert_eq!(token.access_token().split('.').count(), 3);
/// ```
#[derive(Clone)]
#[must_use]
pub struct TokenIssuer {
    ring: KeyRing,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: Duration,
    typ: Option<String>,
    client_id: Option<String>,
}

impl TokenIssuer {
    /// An issuer signing with `key`, with a 15-minute lifetime and no `iss`/`aud`.
    pub fn new(key: SigningKey) -> Self {
        Self::from_key_ring(KeyRing::new(key))
    }

    /// An issuer signing with the current key of `ring`, which can be rotated while the issuer
    /// runs (see [`KeyRing`]).
    pub fn from_key_ring(ring: KeyRing) -> Self {
        Self {
            ring,
            issuer: None,
            audience: None,
            ttl: DEFAULT_TTL,
            typ: None,
            client_id: None,
        }
    }

    /// Issue RFC 9068 JWT access tokens: the header's `typ` is `at+jwt` (so a verifier that
    /// requires it, [`Validation::typ`](crate::Validation::typ), can never mistake an ID token
    /// or another JWT for an access token) and every token carries `client_id`. RFC 9068 also
    /// wants `iss` and `aud`: set [`issuer`](Self::issuer) and [`audience`](Self::audience).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, KeySet, SigningKey, Validation, Verifier};
    /// use tower_jwt_auth::login::TokenIssuer;
    ///
    /// let key = SigningKey::from_secret(Algorithm::HS256, [5u8; 32]).unwrap();
    /// let issuer = TokenIssuer::new(key.clone())
    ///     .issuer("https://auth.example.com")
    ///     .audience("orders-api")
    ///     .access_token_profile("web-app");
    /// let token = issuer.issue(&serde_json::json!({"sub": "42"})).unwrap();
    /// let verifier = Verifier::new(
    ///     KeySet::from(key.verifying_key().unwrap()),
    ///     Validation::new().issuer("https://auth.example.com").audience("orders-api").typ("at+jwt"),
    /// ).unwrap();
    /// let claims = verifier.verify::<serde_json::Value>(token.access_token()).unwrap();
    /// assert_eq!(claims.custom()["client_id"], "web-app");
    /// ```
    pub fn access_token_profile(mut self, client_id: impl Into<String>) -> Self {
        self.typ = Some("at+jwt".to_owned());
        self.client_id = Some(client_id.into());
        self
    }

    /// Write this `iss` into every token.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Write this `aud` into every token.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The access-token lifetime (whole seconds; default 900).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The key that signs now.
    #[must_use]
    pub fn signing_key(&self) -> SigningKey {
        self.ring.signing_key()
    }

    /// The key ring.
    #[must_use]
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Sign a token carrying `claims` (which must serialize to a JSON object) plus the registered
    /// claims this issuer sets; those override same-named fields of `claims`.
    ///
    /// # Errors
    ///
    /// When `claims` is not a JSON object or signing fails.
    pub fn issue<T: Serialize + ?Sized>(&self, claims: &T) -> Result<IssuedToken, IssueError> {
        let claims = UserClaims::new(claims).ok_or(IssueError::NotAnObject)?;
        self.issue_claims(claims, None)
    }

    /// Sign the user's `claims` with the `session` claims of a login or refresh.
    pub(super) fn issue_claims(
        &self,
        claims: UserClaims,
        session: Option<&SessionClaims<'_>>,
    ) -> Result<IssuedToken, IssueError> {
        let now = crate::time::unix_now();
        let ttl = self.ttl.as_secs();
        let jti = crate::text::random_hex::<16>().ok_or(IssueError::Randomness)?;
        let registered = Registered {
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl),
            jti: &jti,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
            client_id: self.client_id.as_deref(),
        };
        let key = self.ring.signing_key();
        let mut header = Header::new(key.algorithm());
        header.kid = key.kid().map(ToOwned::to_owned);
        if let Some(typ) = &self.typ {
            header.typ = Some(typ.clone());
        }
        let claims = Issued::new(registered, session, claims);
        let access_token = jsonwebtoken::encode(&header, &claims, key.encoding_key())
            .map_err(|_| IssueError::Signing)?;
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
        })
    }
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ring", &self.ring)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("typ", &self.typ)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// A signed access token and its lifetime.
#[derive(Clone)]
pub struct IssuedToken {
    access_token: String,
    expires_in: u64,
}

impl IssuedToken {
    /// The compact JWS.
    #[must_use]
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// Seconds until it expires.
    #[must_use]
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why a token could not be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueError {
    /// The claims did not serialize to a JSON object.
    NotAnObject,
    /// The signing backend failed.
    Signing,
    /// The operating system's random number generator failed (for the `jti`).
    Randomness,
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::NotAnObject => "the claims must serialize to a JSON object",
            Self::Signing => "signing the token failed",
            Self::Randomness => "the operating system's random number generator failed",
        })
    }
}

impl std::error::Error for IssueError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySet;
    use crate::validation::Validation;
    use crate::verifier::Verifier;
    use jsonwebtoken::Algorithm;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [8u8; 32]).unwrap())
    }

    #[test]
    fn issued_token_verifies_and_carries_registered_claims() {
        let issuer = issuer().issuer("me").audience("you");
        let token = issuer
            .issue(&serde_json::json!({"sub": "7", "exp": 1}))
            .unwrap();
        let keys = KeySet::from(issuer.signing_key().verifying_key().unwrap());
        let verifier = Verifier::new(keys, Validation::new().issuer("me").audience("you")).unwrap();
        let claims = verifier
            .verify::<serde_json::Value>(token.access_token())
            .unwrap();
        let reg = claims.registered();
        assert_eq!(reg.sub.as_deref(), Some("7"));
        assert!(reg.exp.unwrap() > reg.iat.unwrap());
        assert_eq!(reg.nbf, reg.iat);
        assert_eq!(reg.jti.as_ref().map(String::len), Some(32));
    }

    #[test]
    fn an_id_token_is_not_an_access_token() {
        let key = SigningKey::from_secret(Algorithm::HS256, [8u8; 32]).unwrap();
        let verifier = Verifier::new(
            KeySet::from(key.verifying_key().unwrap()),
            Validation::new().typ("at+jwt"),
        )
        .unwrap();
        let plain = issuer().issue(&serde_json::json!({"sub": "1"})).unwrap();
        assert_eq!(
            verifier
                .verify::<serde_json::Value>(plain.access_token())
                .unwrap_err()
                .kind(),
            crate::error::AuthErrorKind::InvalidType
        );
        let typed = issuer()
            .access_token_profile("cli")
            .issue(&serde_json::json!({"sub": "1"}))
            .unwrap();
        let header = jsonwebtoken::decode_header(typed.access_token()).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let claims = verifier
            .verify::<serde_json::Value>(typed.access_token())
            .unwrap();
        assert_eq!(claims.custom()["client_id"], "cli");
    }

    #[test]
    fn jti_is_unique() {
        let a = issuer().issue(&serde_json::json!({})).unwrap();
        let b = issuer().issue(&serde_json::json!({})).unwrap();
        assert_ne!(a.access_token(), b.access_token());
    }

    #[test]
    fn non_object_claims_are_refused() {
        assert_eq!(issuer().issue(&5).unwrap_err(), IssueError::NotAnObject);
    }
}
