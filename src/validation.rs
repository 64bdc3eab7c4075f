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

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, Header};
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

    fn for_algorithm(&self, alg: Algorithm) -> jsonwebtoken::Validation {
        let mut v = jsonwebtoken::Validation::new(alg);
        v.leeway = self.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        let mut required = vec!["exp"];
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        if !self.audiences.is_empty() {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

// ===== Verifier =====

/// Every JWS algorithm, in a fixed order: the index into the per-algorithm validation table.
const ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

struct Inner {
    source: Box<dyn KeySource>,
    /// jsonwebtoken's settings for each algorithm (same order as [`ALGORITHMS`]), built once.
    validations: Vec<jsonwebtoken::Validation>,
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
        let validations = ALGORITHMS
            .iter()
            .map(|alg| validation.for_algorithm(*alg))
            .collect();
        let probe = RegisteredClaims::default();
        let (required_registered, required_custom) = validation
            .required
            .into_iter()
            .partition(|name| probe.has(name).is_some());
        Ok(Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                validations,
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
        let header = self.inner.header(token)?;
        let keys = self.inner.source.current();
        let keys = keys.as_deref().ok_or(AuthErrorKind::KeysUnavailable)?;
        self.inner.verify_with(token, &header, keys)
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
        let header = match inner.header(token) {
            Ok(h) => h,
            Err(e) => return Verification::Done(Err(e)),
        };
        if let Some(keys) = &current
            && keys.select(header.alg, header.kid.as_deref()).is_some()
        {
            return Verification::Done(inner.verify_with(token, &header, keys));
        }
        let Some(refresh) = inner.source.refresh(header.kid.as_deref()) else {
            return Verification::Done(match current {
                Some(keys) => inner.verify_with(token, &header, &keys),
                None => Err(AuthErrorKind::KeysUnavailable.into()),
            });
        };
        let this = self.clone();
        let token = token.to_owned();
        Verification::Pending(Box::pin(async move {
            match refresh.await.or(current) {
                Some(keys) => this.inner.verify_with(&token, &header, &keys),
                None => Err(AuthErrorKind::KeysUnavailable.into()),
            }
        }))
    }
}

impl Inner {
    /// The checks that need no key: length, shape, header, `crit`, `typ`.
    fn header(&self, token: &str) -> Result<Header, AuthError> {
        if token.len() > self.max_token_len {
            return Err(AuthErrorKind::TokenTooLong.into());
        }
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(AuthErrorKind::Malformed.into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthErrorKind::Malformed)?;
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
        token: &str,
        header: &Header,
        keys: &KeySet,
    ) -> Result<Claims<C>, AuthError> {
        let Some(key) = keys.select(header.alg, header.kid.as_deref()) else {
            return Err(if keys.has_algorithm(header.alg) {
                AuthErrorKind::UnknownKey
            } else {
                AuthErrorKind::UnsupportedAlgorithm
            }
            .into());
        };
        let alg = key.algorithm();
        let validation = ALGORITHMS
            .iter()
            .position(|a| *a == alg)
            .and_then(|i| self.validations.get(i))
            .ok_or(AuthErrorKind::UnsupportedAlgorithm)?;
        let data = jsonwebtoken::decode::<RegisteredClaims>(token, key.decoding_key(), validation)
            .map_err(|e| map_jwt_error(&e))?;
        let registered = data.claims;
        for name in &self.required_registered {
            if registered.has(name) != Some(true) {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        }
        if !self.required_custom.is_empty() {
            let object: HashMap<String, IgnoredAny> =
                jsonwebtoken::dangerous::insecure_decode_claims(token)
                    .map_err(|_| AuthErrorKind::InvalidClaim)?;
            if !self.required_custom.iter().all(|n| object.contains_key(n)) {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        }
        // The signature over these exact bytes was verified above, so reading the payload again
        // without verification is sound.
        let custom: C = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| AuthErrorKind::InvalidClaim)?;
        Ok(Claims::new(custom, registered))
    }
}

/// `application/at+jwt` and `at+jwt` name the same type (RFC 7515 §4.1.9).
fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    let kind = match e.kind() {
        JwtErrorKind::InvalidSignature
        | JwtErrorKind::InvalidEcdsaKey
        | JwtErrorKind::InvalidEddsaKey
        | JwtErrorKind::InvalidRsaKey(_)
        | JwtErrorKind::InvalidKeyFormat
        | JwtErrorKind::Provider(_) => AuthErrorKind::InvalidSignature,
        JwtErrorKind::ExpiredSignature => AuthErrorKind::Expired,
        JwtErrorKind::ImmatureSignature => AuthErrorKind::NotYetValid,
        JwtErrorKind::InvalidIssuer => AuthErrorKind::InvalidIssuer,
        JwtErrorKind::InvalidAudience => AuthErrorKind::InvalidAudience,
        JwtErrorKind::MissingRequiredClaim(_) => AuthErrorKind::MissingClaim,
        JwtErrorKind::InvalidClaimFormat(_)
        | JwtErrorKind::InvalidSubject
        | JwtErrorKind::Json(_) => AuthErrorKind::InvalidClaim,
        JwtErrorKind::InvalidAlgorithm | JwtErrorKind::UnsupportedAlgorithm => {
            AuthErrorKind::UnsupportedAlgorithm
        }
        _ => AuthErrorKind::Malformed,
    };
    AuthError::new(kind)
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

    use jsonwebtoken::EncodingKey;
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
