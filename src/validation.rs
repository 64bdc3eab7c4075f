//! [`Validation`]: what a token must satisfy besides its signature, and [`Verifier`], which
//! checks tokens against a [`KeySet`].
//!
//! Both are built once, when the layer is built; nothing is rebuilt per request.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::{Algorithm, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [42u8; 32])?);
//! let validation = Validation::new()
//!     .issuer("https://auth.example.com")
//!     .audience("orders-api")
//!     .leeway(Duration::from_secs(30))
//!     .require_claim("sub");
//! let verifier = Verifier::new(keys, validation)?;
//! let err = verifier.verify::<serde_json::Value>("not.a.token").unwrap_err();
//! assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::claims::{Claims, RegisteredClaims};
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};
use crate::keys::KeySet;
use crate::source::{KeySource, StaticKeys};

/// Default cap on the token length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Default clock-skew leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Claims checks applied to every token (strict by default).
///
/// - `exp` is required; `nbf` is checked when present; both with a leeway (default 60 s).
/// - Configuring an issuer or audience makes `iss` or `aud` required. A token that carries an
///   `aud` is rejected when no audience is configured (RFC 7519 §4.1.3).
/// - Registered claims with the wrong JSON type are rejected.
/// - Tokens longer than [`DEFAULT_MAX_TOKEN_LEN`] are rejected before decoding.
///
/// See the [module docs](self) for an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct Validation {
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    required: Vec<String>,
    max_token_len: usize,
    typ: Option<String>,
}

impl Default for Validation {
    fn default() -> Self {
        Self::new()
    }
}

impl Validation {
    /// The strict defaults described above.
    pub fn new() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            required: Vec::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            typ: None,
        }
    }

    /// Accept tokens from this issuer (`iss`). May be called several times to accept any of them.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accept tokens for this audience (`aud`). May be called several times; a token must name at
    /// least one of them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock-skew leeway for `exp` and `nbf` (whole seconds; default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Require a claim to be present (any name: registered like `sub` or `jti`, or your own).
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.required.push(name.into());
        self
    }

    /// The longest token accepted, in bytes (default 8 KiB). Longer tokens are rejected before
    /// any decoding.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Require the token's `typ` header to be this media type (compared case-insensitively, with
    /// or without the `application/` prefix, RFC 7515 §4.1.9), e.g. `at+jwt` for RFC 9068 access
    /// tokens. Without it, any `typ` (or none) is accepted.
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }
}

// ===== Verifier =====

struct Inner {
    source: Box<dyn KeySource>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    /// Required claims that are registered claims (checked on the typed struct).
    required_registered: Vec<String>,
    /// Required claims outside the registered set (checked on the JSON object's keys).
    required_custom: Vec<String>,
    max_token_len: usize,
    typ: Option<String>,
    leeway: u64,
}

/// The result of starting a verification: done now, or waiting for a key refresh.
pub(crate) enum Verification<C> {
    Done(Result<Claims<C>, AuthError>),
    Pending(Pin<Box<dyn Future<Output = Result<Claims<C>, AuthError>> + Send>>),
}

/// The protected header: only what verification needs. Unknown members (`jwk`, `jku`, `x5u`,
/// `x5c`, …) are ignored: keys never come from the token.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    alg: Algorithm,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A compact JWS split into its parts (exactly three).
struct Parts<'t> {
    /// `header.payload`, the signed bytes.
    message: &'t str,
    payload: &'t str,
    signature: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Option<(Self, &'t str)> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        Some((
            Self {
                message,
                payload,
                signature,
            },
            header,
        ))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies tokens against a key source and a [`Validation`]. Cheap to clone (one `Arc`).
///
/// See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl Verifier {
    /// A verifier for a static key set. Validation settings are computed here, once.
    ///
    /// # Errors
    ///
    /// When the key set is empty.
    pub fn new(keys: KeySet, validation: Validation) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::NoKeys,
                "the key set is empty: add at least one verifying key",
            ));
        }
        Self::with_source(StaticKeys(Arc::new(keys)), validation)
    }

    /// A verifier for any [`KeySource`] (a remote JWKS, say).
    ///
    /// # Errors
    ///
    /// When no crypto backend is available.
    pub fn with_source(
        source: impl KeySource,
        validation: Validation,
    ) -> Result<Self, ConfigError> {
        crate::crypto::install_crypto_provider()?;
        let probe = RegisteredClaims::default();
        let (required_registered, required_custom) = validation
            .required
            .into_iter()
            .partition(|name| probe.has(name).is_some());
        Ok(Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                issuers: validation.issuers,
                audiences: validation.audiences,
                required_registered,
                required_custom,
                max_token_len: validation.max_token_len,
                typ: validation.typ.map(|t| strip_application(&t).to_owned()),
                leeway: validation.leeway.as_secs(),
            }),
        })
    }

    /// Verify a compact JWS token with the keys in memory and deserialize its claims into `C`.
    ///
    /// This never waits for a key refresh: a token naming a key the source has not fetched yet
    /// is rejected with [`AuthErrorKind::UnknownKey`]. The layer uses the refreshing path.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] saying why the token is not accepted.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Claims<C>, AuthError> {
        let inner = &*self.inner;
        let (parts, header_b64) = inner.split(token)?;
        let header_bytes = decode_b64(header_b64)?;
        let header = inner.header(&header_bytes)?;
        let keys = inner
            .source
            .current()
            .ok_or(AuthErrorKind::KeysUnavailable)?;
        inner.verify_with(&parts, header.alg, header.kid.as_deref(), &keys)
    }

    /// The keys in memory now.
    pub(crate) fn current_keys(&self) -> Option<Arc<KeySet>> {
        self.inner.source.current()
    }

    /// The clock-skew leeway, in seconds.
    pub(crate) fn leeway(&self) -> u64 {
        self.inner.leeway
    }

    /// Verify with `current` (the keys in memory), or start one refresh of the key source on a
    /// miss.
    pub(crate) fn start<C>(&self, token: &str, current: Option<Arc<KeySet>>) -> Verification<C>
    where
        C: DeserializeOwned + Send + 'static,
    {
        let inner = &*self.inner;
        let parsed = inner.split(token).and_then(|(parts, header_b64)| {
            let bytes = decode_b64(header_b64)?;
            Ok((parts, bytes))
        });
        let (parts, header_bytes) = match parsed {
            Ok(p) => p,
            Err(e) => return Verification::Done(Err(e)),
        };
        let header = match inner.header(&header_bytes) {
            Ok(h) => h,
            Err(e) => return Verification::Done(Err(e)),
        };
        let (alg, kid) = (header.alg, header.kid.as_deref());
        if let Some(keys) = &current
            && keys.select(alg, kid).is_some()
        {
            return Verification::Done(inner.verify_with(&parts, alg, kid, keys));
        }
        let Some(refresh) = inner.source.refresh(kid) else {
            return Verification::Done(match current {
                Some(keys) => inner.verify_with(&parts, alg, kid, &keys),
                None => Err(AuthErrorKind::KeysUnavailable.into()),
            });
        };
        // The slow path owns what it needs.
        let this = self.clone();
        let token = token.to_owned();
        let kid = kid.map(ToOwned::to_owned);
        Verification::Pending(Box::pin(async move {
            let Some(keys) = refresh.await.or(current) else {
                return Err(AuthErrorKind::KeysUnavailable.into());
            };
            let (parts, _) = this.inner.split(&token)?;
            this.inner.verify_with(&parts, alg, kid.as_deref(), &keys)
        }))
    }
}

fn decode_b64(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthErrorKind::Malformed.into())
}

impl Inner {
    /// Length and shape, before any decoding.
    fn split<'t>(&self, token: &'t str) -> Result<(Parts<'t>, &'t str), AuthError> {
        if token.len() > self.max_token_len {
            return Err(AuthErrorKind::TokenTooLong.into());
        }
        Parts::split(token).ok_or_else(|| AuthErrorKind::Malformed.into())
    }

    /// The header checks that need no key: JSON shape, `alg`, `crit`, `typ`.
    fn header<'h>(&self, bytes: &'h [u8]) -> Result<JoseHeader<'h>, AuthError> {
        let header: JoseHeader<'h> =
            serde_json::from_slice(bytes).map_err(|_| AuthErrorKind::Malformed)?;
        if header.crit.is_some() {
            return Err(AuthErrorKind::UnsupportedAlgorithm.into());
        }
        if let Some(required) = &self.typ {
            let typ = header.typ.as_deref().map(strip_application);
            if !typ.is_some_and(|t| t.eq_ignore_ascii_case(required)) {
                return Err(AuthErrorKind::InvalidType.into());
            }
        }
        Ok(header)
    }

    fn verify_with<C: DeserializeOwned>(
        &self,
        parts: &Parts<'_>,
        alg: Algorithm,
        kid: Option<&str>,
        keys: &KeySet,
    ) -> Result<Claims<C>, AuthError> {
        let Some(key) = keys.select(alg, kid) else {
            return Err(if keys.has_algorithm(alg) {
                AuthErrorKind::UnknownKey
            } else {
                AuthErrorKind::UnsupportedAlgorithm
            }
            .into());
        };
        // The key's own algorithm, never the token's: they are equal here, by selection.
        let valid = jsonwebtoken::crypto::verify(
            parts.signature,
            parts.message.as_bytes(),
            key.decoding_key(),
            key.algorithm(),
        )
        .map_err(|_| AuthErrorKind::InvalidSignature)?;
        if !valid {
            return Err(AuthErrorKind::InvalidSignature.into());
        }
        // Signed, so from here on the payload is what the issuer wrote.
        let payload = decode_b64(parts.payload)?;
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return Err(AuthErrorKind::InvalidClaim.into());
        }
        let registered: RegisteredClaims =
            serde_json::from_slice(&payload).map_err(|_| AuthErrorKind::InvalidClaim)?;
        self.validate(&registered)?;
        if !self.required_custom.is_empty() {
            let object: HashMap<String, IgnoredAny> =
                serde_json::from_slice(&payload).map_err(|_| AuthErrorKind::InvalidClaim)?;
            if !self.required_custom.iter().all(|n| object.contains_key(n)) {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        }
        let custom: C =
            serde_json::from_slice(&payload).map_err(|_| AuthErrorKind::InvalidClaim)?;
        Ok(Claims::new(custom, registered))
    }

    /// Time, issuer, audience and required registered claims.
    fn validate(&self, claims: &RegisteredClaims) -> Result<(), AuthError> {
        let now = unix_now();
        let exp = claims.exp.ok_or(AuthErrorKind::MissingClaim)?;
        if exp < now.saturating_sub(self.leeway) {
            return Err(AuthErrorKind::Expired.into());
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(AuthErrorKind::NotYetValid.into());
        }
        if !self.issuers.is_empty() {
            match &claims.iss {
                None => return Err(AuthErrorKind::MissingClaim.into()),
                Some(iss) if !self.issuers.contains(iss) => {
                    return Err(AuthErrorKind::InvalidIssuer.into());
                }
                Some(_) => {}
            }
        }
        if self.audiences.is_empty() {
            // RFC 7519 §4.1.3: a token for an audience we do not claim to be must be rejected.
            if !claims.aud.is_empty() {
                return Err(AuthErrorKind::InvalidAudience.into());
            }
        } else if claims.aud.is_empty() {
            return Err(AuthErrorKind::MissingClaim.into());
        } else if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthErrorKind::InvalidAudience.into());
        }
        for name in &self.required_registered {
            if claims.has(name) != Some(true) {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        }
        Ok(())
    }
}

/// `application/at+jwt` and `at+jwt` name the same type (RFC 7515 §4.1.9).
fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Option<Vec<_>> = self.inner.source.current().map(|set| {
            set.iter()
                .map(|k| (k.kid().map(ToOwned::to_owned), k.algorithm()))
                .collect()
        });
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("max_token_len", &self.inner.max_token_len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;
    use crate::{JwksService, SigningKey, VerifyingKey};

    const A: [u8; 32] = [b'a'; 32];
    const B: [u8; 32] = [b'b'; 32];

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn sign(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
        crate::install_crypto_provider().unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(ToOwned::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn claims() -> Value {
        json!({"sub": "s", "exp": now() + 60})
    }

    fn hs(secret: [u8; 32]) -> VerifyingKey {
        VerifyingKey::from_secret(Algorithm::HS256, secret).unwrap()
    }

    fn kind(r: Result<Claims<Value>, AuthError>) -> AuthErrorKind {
        r.unwrap_err().kind()
    }

    #[test]
    fn empty_key_set_is_a_config_error() {
        let err = Verifier::new(KeySet::new(), Validation::new()).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::NoKeys);
    }

    #[test]
    fn kid_selects_among_keys_of_one_algorithm() {
        let keys = KeySet::new()
            .with_key(hs(A).with_kid("a"))
            .with_key(hs(B).with_kid("b"));
        let v = Verifier::new(keys, Validation::new()).unwrap();
        assert!(v.verify::<Value>(&sign(&A, Some("a"), &claims())).is_ok());
        assert!(v.verify::<Value>(&sign(&B, Some("b"), &claims())).is_ok());
        assert_eq!(
            kind(v.verify(&sign(&A, Some("b"), &claims()))),
            AuthErrorKind::InvalidSignature
        );
        assert_eq!(
            kind(v.verify(&sign(&A, Some("c"), &claims()))),
            AuthErrorKind::UnknownKey
        );
    }

    #[test]
    fn token_without_kid_needs_exactly_one_candidate() {
        let two = KeySet::new()
            .with_key(hs(A).with_kid("a"))
            .with_key(hs(B).with_kid("b"));
        let v = Verifier::new(two, Validation::new()).unwrap();
        assert_eq!(
            kind(v.verify(&sign(&A, None, &claims()))),
            AuthErrorKind::UnknownKey
        );
        let one = KeySet::from(hs(A).with_kid("a"));
        let v = Verifier::new(one, Validation::new()).unwrap();
        assert!(v.verify::<Value>(&sign(&A, None, &claims())).is_ok());
    }

    #[test]
    fn key_without_kid_accepts_any_kid() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
        assert!(
            v.verify::<Value>(&sign(&A, Some("whatever"), &claims()))
                .is_ok()
        );
    }

    #[test]
    fn algorithm_without_a_key_is_unsupported() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(&[b'a'; 64]),
        )
        .unwrap();
        assert_eq!(kind(v.verify(&token)), AuthErrorKind::UnsupportedAlgorithm);
    }

    #[test]
    fn token_over_the_cap_is_not_decoded() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new().max_token_len(64)).unwrap();
        assert_eq!(
            kind(v.verify(&sign(&A, None, &claims()))),
            AuthErrorKind::TokenTooLong
        );
    }

    #[test]
    fn required_claims_are_enforced() {
        let validation = Validation::new().require_claim("jti").require_claim("role");
        let v = Verifier::new(KeySet::from(hs(A)), validation).unwrap();
        let full = json!({"exp": now() + 60, "jti": "x", "role": "admin"});
        assert!(v.verify::<Value>(&sign(&A, None, &full)).is_ok());
        let no_jti = json!({"exp": now() + 60, "role": "admin"});
        assert_eq!(
            kind(v.verify(&sign(&A, None, &no_jti))),
            AuthErrorKind::MissingClaim
        );
        let no_role = json!({"exp": now() + 60, "jti": "x"});
        assert_eq!(
            kind(v.verify(&sign(&A, None, &no_role))),
            AuthErrorKind::MissingClaim
        );
    }

    #[test]
    fn leeway_is_applied_to_exp_and_nbf() {
        let v = Verifier::new(
            KeySet::from(hs(A)),
            Validation::new().leeway(Duration::from_secs(30)),
        )
        .unwrap();
        let ok = json!({"exp": now() - 10, "nbf": now() + 10});
        assert!(v.verify::<Value>(&sign(&A, None, &ok)).is_ok());
        let expired = json!({"exp": now() - 100});
        assert_eq!(
            kind(v.verify(&sign(&A, None, &expired))),
            AuthErrorKind::Expired
        );
        let early = json!({"exp": now() + 600, "nbf": now() + 100});
        assert_eq!(
            kind(v.verify(&sign(&A, None, &early))),
            AuthErrorKind::NotYetValid
        );
    }

    #[test]
    fn mistyped_registered_claims_are_rejected() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
        for bad in [
            json!({"exp": now() + 60, "iat": "yesterday"}),
            json!({"exp": now() + 60, "jti": 7}),
            json!({"exp": now() + 60, "sub": ["a"]}),
            json!({"exp": now() + 60, "nbf": {}}),
        ] {
            assert_eq!(
                kind(v.verify(&sign(&A, None, &bad))),
                AuthErrorKind::InvalidClaim,
                "{bad}"
            );
        }
    }

    #[test]
    fn typ_is_checked_when_configured() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new().typ("at+jwt")).unwrap();
        let with_typ = |typ: Option<&str>| {
            let mut header = Header::new(Algorithm::HS256);
            header.typ = typ.map(ToOwned::to_owned);
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&A)).unwrap()
        };
        assert!(v.verify::<Value>(&with_typ(Some("at+jwt"))).is_ok());
        assert!(
            v.verify::<Value>(&with_typ(Some("application/AT+JWT")))
                .is_ok()
        );
        assert_eq!(
            kind(v.verify(&with_typ(Some("JWT")))),
            AuthErrorKind::InvalidType
        );
        assert_eq!(kind(v.verify(&with_typ(None))), AuthErrorKind::InvalidType);
    }

    #[test]
    fn crit_header_is_rejected() {
        let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".into()]);
        let token =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&A)).unwrap();
        assert_eq!(kind(v.verify(&token)), AuthErrorKind::UnsupportedAlgorithm);
    }

    #[test]
    fn published_jwks_verifies_the_issuers_tokens() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/ec256_private.pem"
        ))
        .unwrap();
        let signing = SigningKey::from_pem(Algorithm::ES256, &pem).unwrap();
        let published = JwksService::new(&KeySet::from(signing.verifying_key().unwrap())).unwrap();
        let keys = KeySet::new()
            .with_jwks(published.document().unwrap())
            .unwrap();
        let v = Verifier::new(keys, Validation::new()).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = signing.kid().map(ToOwned::to_owned);
        assert!(header.kid.is_some());
        let token =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ec_pem(&pem).unwrap())
                .unwrap();
        let verified = v.verify::<Value>(&token).unwrap();
        assert_eq!(verified.registered().sub.as_deref(), Some("s"));
    }
}
