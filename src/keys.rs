//! Keys: [`VerifyingKey`] and [`KeySet`] for the verifying side, [`SigningKey`] for the issuer.
//!
//! Every key is pinned to exactly one [`Algorithm`] when it is loaded. The algorithm named in a
//! token header only *selects* among the configured keys; it never widens what a key accepts, so
//! algorithm-confusion attacks (an HMAC token "signed" with an RSA public key) and `alg: none`
//! cannot verify.
//!
//! # Example
//!
//! ```
//! use tower_jwt_auth::{Algorithm, KeySet, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::new()
//!     .with_key(VerifyingKey::from_secret(Algorithm::HS256, b"a long random secret of 32+ bytes")?.with_kid("hs-1"))
//!     .with_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed-1",
//!                  "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)?;
//! assert_eq!(keys.len(), 2);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::crypto::install_crypto_provider;
use crate::error::{ConfigError, ConfigErrorKind};

/// Shortest HMAC secret accepted: RFC 7518 §3.2 requires at least the hash output size
/// (32 bytes for HS256, 48 for HS384, 64 for HS512).
fn min_secret_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn invalid_key(message: &'static str, e: jsonwebtoken::errors::Error) -> ConfigError {
    ConfigError::with_source(ConfigErrorKind::InvalidKey, message, e)
}

fn read_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::with_source(
            ConfigErrorKind::Io,
            "could not read the key file: check the path and its permissions",
            e,
        )
    })
}

fn check_secret(alg: Algorithm, secret: &[u8]) -> Result<(), ConfigError> {
    if alg.family() != AlgorithmFamily::Hmac {
        return Err(ConfigError::new(
            ConfigErrorKind::AlgorithmMismatch,
            "a shared secret can only be used with HS256, HS384 or HS512",
        ));
    }
    if secret.len() < min_secret_len(alg) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidKey,
            "the HMAC secret is too short: RFC 7518 requires at least 32 random bytes for HS256, \
             48 for HS384 and 64 for HS512",
        ));
    }
    Ok(())
}

/// The EC curve length check: a P-256 point is 65 bytes uncompressed, a P-384 point 97.
fn check_ec_point(alg: Algorithm, point: &[u8]) -> Result<(), ConfigError> {
    let fits = matches!(
        (alg, point.len()),
        (Algorithm::ES256, 65) | (Algorithm::ES384, 97)
    );
    if fits {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::AlgorithmMismatch,
            "the EC key's curve does not fit the algorithm: ES256 needs P-256, ES384 needs P-384",
        ))
    }
}

// ===== VerifyingKey =====

/// A key that verifies tokens signed with exactly one algorithm.
///
/// Built from a shared secret, a PEM public key or a JWK. See the [module docs](self) for an
/// example.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl VerifyingKey {
    /// An HMAC key (`HS256`, `HS384` or `HS512`) from a shared secret at least as long as the
    /// hash output (32, 48 or 64 bytes; RFC 7518 §3.2).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, VerifyingKey};
    /// let key = VerifyingKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::HS256);
    /// assert!(VerifyingKey::from_secret(Algorithm::RS256, [7u8; 32]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// When `alg` is not an HMAC algorithm, the secret is too short for it, or no crypto backend
    /// is available.
    pub fn from_secret(alg: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        check_secret(alg, secret.as_ref())?;
        Ok(Self {
            kid: None,
            alg,
            key: DecodingKey::from_secret(secret.as_ref()),
        })
    }

    /// A public key in PEM form (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`) for an RSA
    /// (`RS*`, `PS*`), EC (`ES256`, `ES384`) or Ed25519 (`EdDSA`) algorithm.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, VerifyingKey};
    /// let pem = "-----BEGIN PUBLIC KEY-----\n\
    ///            MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
    ///            -----END PUBLIC KEY-----\n";
    /// let key = VerifyingKey::from_pem(Algorithm::EdDSA, pem).unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::EdDSA);
    /// ```
    ///
    /// # Errors
    ///
    /// When the PEM does not hold a public key of the algorithm's type (for an HMAC algorithm,
    /// use [`VerifyingKey::from_secret`]), or no crypto backend is available.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        let pem = pem.as_ref();
        let key = match alg.family() {
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem)
                .map_err(|e| invalid_key("not an RSA public key in PEM form", e))?,
            AlgorithmFamily::Ec => {
                let key = DecodingKey::from_ec_pem(pem)
                    .map_err(|e| invalid_key("not an EC public key in PEM form", e))?;
                check_ec_point(alg, key.try_get_as_bytes().unwrap_or_default())?;
                key
            }
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem)
                .map_err(|e| invalid_key("not an Ed25519 public key in PEM form", e))?,
            AlgorithmFamily::Hmac => {
                return Err(ConfigError::new(
                    ConfigErrorKind::AlgorithmMismatch,
                    "HMAC algorithms take a secret, not a PEM key: use VerifyingKey::from_secret",
                ));
            }
        };
        Ok(Self {
            kid: None,
            alg,
            key,
        })
    }

    /// Like [`VerifyingKey::from_pem`], reading the PEM from a file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, or as [`VerifyingKey::from_pem`].
    pub fn from_pem_file(alg: Algorithm, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::from_pem(alg, read_file(path.as_ref())?)
    }

    /// A key from one JWK (RFC 7517) in JSON form. Its `kid` is kept.
    ///
    /// The algorithm comes from the JWK's `alg`; without it, EC keys take `ES256`/`ES384` from
    /// their curve, Ed25519 keys take `EdDSA` and RSA keys take `RS256`. Symmetric (`oct`) keys
    /// must name their `alg`.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, VerifyingKey};
    /// let key = VerifyingKey::from_jwk(
    ///     r#"{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    /// ).unwrap();
    /// assert_eq!((key.algorithm(), key.kid()), (Algorithm::EdDSA, Some("k1")));
    /// ```
    ///
    /// # Errors
    ///
    /// When the JSON is not a JWK, the key type or algorithm is unsupported, its `use` is not
    /// `sig`, or the algorithm does not fit the key.
    pub fn from_jwk(json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        let jwk: Jwk = serde_json::from_slice(json.as_ref()).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidJwk, "not a valid JWK", e)
        })?;
        Self::from_parsed_jwk(&jwk)
    }

    fn from_parsed_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidJwk,
                "the JWK is not meant for signatures (its `use` is not `sig`)",
            ));
        }
        let named = match jwk.common.key_algorithm {
            Some(a) => Some(Algorithm::try_from(a).map_err(|e| {
                ConfigError::with_source(
                    ConfigErrorKind::InvalidJwk,
                    "the JWK names an algorithm that is not a JWS signature algorithm",
                    e,
                )
            })?),
            None => None,
        };
        let alg = match (&jwk.algorithm, named) {
            (AlgorithmParameters::EllipticCurve(p), alg) => {
                let by_curve = match p.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => {
                        return Err(ConfigError::new(
                            ConfigErrorKind::InvalidJwk,
                            "unsupported EC curve: use P-256 or P-384",
                        ));
                    }
                };
                if alg.is_some_and(|a| a != by_curve) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::AlgorithmMismatch,
                        "the JWK's `alg` does not fit its curve",
                    ));
                }
                by_curve
            }
            (AlgorithmParameters::OctetKeyPair(p), alg) => {
                if p.curve != EllipticCurve::Ed25519 || alg.is_some_and(|a| a != Algorithm::EdDSA) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::AlgorithmMismatch,
                        "OKP keys must be Ed25519 with alg EdDSA",
                    ));
                }
                Algorithm::EdDSA
            }
            (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
            (AlgorithmParameters::RSA(_), Some(a)) if a.family() == AlgorithmFamily::Rsa => a,
            (AlgorithmParameters::OctetKey(_), Some(a)) if a.family() == AlgorithmFamily::Hmac => a,
            (AlgorithmParameters::OctetKey(_), None) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidJwk,
                    "a symmetric (oct) JWK must name its `alg`",
                ));
            }
            (AlgorithmParameters::RSA(_) | AlgorithmParameters::OctetKey(_), Some(_)) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::AlgorithmMismatch,
                    "the JWK's `alg` does not fit its key type",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidJwk,
                    "unsupported JWK key type: use RSA, EC, OKP (Ed25519) or oct",
                ));
            }
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| invalid_key("the JWK's key parameters are invalid", e))?;
        if alg.family() == AlgorithmFamily::Hmac {
            check_secret(alg, key.try_get_as_bytes().unwrap_or_default())?;
        }
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            alg,
            key,
        })
    }

    /// Set the key ID that tokens name in their `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// The public JWK of this key; `None` for HMAC keys, which are secret.
    pub(crate) fn public_jwk(&self) -> Result<Option<Jwk>, ConfigError> {
        if self.alg.family() == AlgorithmFamily::Hmac {
            return Ok(None);
        }
        let mut jwk = Jwk::from_decoding_key(&self.key, Some(self.alg))
            .map_err(|e| invalid_key("could not export the public key as a JWK", e))?;
        jwk.common.key_id.clone_from(&self.kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Some(jwk))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

// ===== KeySet =====

/// The static set of keys a verifier accepts.
///
/// A token is verified with the key whose `kid` and algorithm match its header. A token without
/// `kid` (or with a `kid` no key has) is verified with the single key of its algorithm that has no
/// `kid`, if there is exactly one. See the [module docs](self) for an example.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a key.
    #[must_use]
    pub fn with_key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Add the signature keys of a JWK Set document (`{"keys": [...]}`).
    ///
    /// Keys whose `use` is not `sig`, and keys of unsupported types or algorithms, are skipped.
    ///
    /// # Errors
    ///
    /// When the document is not a JWK Set, or no key in it is usable.
    pub fn with_jwks(mut self, json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        let set: JwkSet = serde_json::from_slice(json.as_ref()).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidJwk, "not a valid JWK Set", e)
        })?;
        let before = self.keys.len();
        self.keys.extend(set.keys.iter().filter_map(|jwk| {
            match VerifyingKey::from_parsed_jwk(jwk) {
                Ok(key) => Some(key),
                Err(_e) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(
                        target: "tower_jwt_auth",
                        kid = jwk.common.key_id.as_deref().unwrap_or("-"),
                        reason = %_e,
                        "JWK skipped"
                    );
                    None
                }
            }
        }));
        if self.keys.len() == before {
            return Err(ConfigError::new(
                ConfigErrorKind::NoKeys,
                "the JWK Set holds no usable signature key",
            ));
        }
        Ok(self)
    }

    /// How many keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }

    /// Whether any key verifies `alg`.
    pub(crate) fn has_algorithm(&self, alg: Algorithm) -> bool {
        self.keys.iter().any(|k| k.alg == alg)
    }

    /// Pick the key for a token: by `kid` and `alg`; without a matching `kid`, the single key of
    /// that algorithm that could match (any key when the token names no `kid`, only keys without
    /// a `kid` otherwise). The algorithm is only a selector: each key verifies with the one
    /// algorithm it was loaded for.
    pub(crate) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Option<&VerifyingKey> {
        if let Some(kid) = kid
            && let Some(k) = self
                .keys
                .iter()
                .find(|k| k.alg == alg && k.kid.as_deref() == Some(kid))
        {
            return Some(k);
        }
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.alg == alg && (kid.is_none() || k.kid.is_none()));
        match (candidates.next(), candidates.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }
}

impl FromIterator<VerifyingKey> for KeySet {
    fn from_iter<T: IntoIterator<Item = VerifyingKey>>(iter: T) -> Self {
        Self {
            keys: iter.into_iter().collect(),
        }
    }
}

impl From<VerifyingKey> for KeySet {
    fn from(key: VerifyingKey) -> Self {
        Self { keys: vec![key] }
    }
}

// ===== SigningKey =====

/// A private key (or HMAC secret) that signs tokens with exactly one algorithm.
///
/// Asymmetric keys get a default `kid`: the RFC 7638 SHA-256 thumbprint of the public key.
///
/// ```
/// use tower_jwt_auth::{Algorithm, SigningKey};
/// let key = SigningKey::from_secret(Algorithm::HS256, [9u8; 32]).unwrap();
/// let verifying = key.verifying_key().unwrap();
/// assert_eq!(verifying.algorithm(), Algorithm::HS256);
/// ```
#[derive(Clone)]
pub struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: EncodingKey,
}

impl SigningKey {
    /// An HMAC signing key from a shared secret at least as long as the hash output (32, 48 or
    /// 64 bytes).
    ///
    /// # Errors
    ///
    /// When `alg` is not an HMAC algorithm, the secret is too short, or no crypto backend is
    /// available.
    pub fn from_secret(alg: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        check_secret(alg, secret.as_ref())?;
        Ok(Self {
            kid: None,
            alg,
            key: EncodingKey::from_secret(secret.as_ref()),
        })
    }

    /// An HMAC signing key from a secret shorter than RFC 7518 requires (but not empty), for
    /// compatibility with an existing deployment whose secret cannot change at once.
    ///
    /// **Prefer [`SigningKey::from_secret`].** A short HMAC secret can be brute-forced offline
    /// from any token it signed; rotate to a secret of at least 32/48/64 random bytes
    /// (HS256/384/512) as soon as you can.
    ///
    /// # Errors
    ///
    /// When `alg` is not an HMAC algorithm, the secret is empty, or no crypto backend is
    /// available.
    pub fn from_short_secret(
        alg: Algorithm,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        if alg.family() != AlgorithmFamily::Hmac || secret.as_ref().is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidKey,
                "a shared secret must be non-empty and used with HS256, HS384 or HS512",
            ));
        }
        Ok(Self {
            kid: None,
            alg,
            key: EncodingKey::from_secret(secret.as_ref()),
        })
    }

    /// An HMAC signing key with a fresh random 64-byte secret from the operating system, for
    /// single-process set-ups and demos (tokens do not survive a restart).
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, SigningKey};
    /// let key = SigningKey::generate_secret(Algorithm::HS256).unwrap();
    /// assert_eq!(key.algorithm(), Algorithm::HS256);
    /// ```
    ///
    /// # Errors
    ///
    /// When `alg` is not an HMAC algorithm or no crypto backend is available.
    #[cfg(feature = "login")]
    #[cfg_attr(docsrs, doc(cfg(feature = "login")))]
    pub fn generate_secret(alg: Algorithm) -> Result<Self, ConfigError> {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut secret = [0u8; 64];
        OsRng.fill_bytes(&mut secret);
        Self::from_secret(alg, secret)
    }

    /// A private key in PEM form (PKCS#8 `PRIVATE KEY`; PKCS#1 `RSA PRIVATE KEY` is accepted too)
    /// for an RSA, EC or Ed25519 algorithm.
    ///
    /// # Errors
    ///
    /// When the PEM does not hold a private key of the algorithm's type, the curve does not fit,
    /// or no crypto backend is available.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        let pem = pem.as_ref();
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem)
                .map_err(|e| invalid_key("not an RSA private key in PEM form", e))?,
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem)
                .map_err(|e| invalid_key("not an EC private key in PKCS#8 PEM form", e))?,
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem)
                .map_err(|e| invalid_key("not an Ed25519 private key in PKCS#8 PEM form", e))?,
            AlgorithmFamily::Hmac => {
                return Err(ConfigError::new(
                    ConfigErrorKind::AlgorithmMismatch,
                    "HMAC algorithms take a secret, not a PEM key: use SigningKey::from_secret",
                ));
            }
        };
        let mut this = Self {
            kid: None,
            alg,
            key,
        };
        // Deriving the public key checks that the private key fits the algorithm (curve, type).
        let public = this.verifying_key()?;
        let jwk = public.public_jwk()?;
        this.kid = jwk.and_then(|j| j.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).ok());
        Ok(this)
    }

    /// Like [`SigningKey::from_pem`], reading the PEM from a file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, or as [`SigningKey::from_pem`].
    pub fn from_pem_file(alg: Algorithm, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::from_pem(alg, read_file(path.as_ref())?)
    }

    /// Set the key ID written into the `kid` header of every token this key signs.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key ID, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The matching verifying key (the public half, or the same secret for HMAC), with the same
    /// `kid`.
    ///
    /// # Errors
    ///
    /// When the public key cannot be derived (a private key that does not fit its algorithm).
    pub fn verifying_key(&self) -> Result<VerifyingKey, ConfigError> {
        let key = if self.alg.family() == AlgorithmFamily::Hmac {
            DecodingKey::from_secret(self.key.as_bytes())
        } else {
            let jwk = Jwk::from_encoding_key(&self.key, self.alg)
                .map_err(|e| invalid_key("could not derive the public key", e))?;
            if let AlgorithmParameters::EllipticCurve(p) = &jwk.algorithm {
                let fits = matches!(
                    (self.alg, &p.curve),
                    (Algorithm::ES256, EllipticCurve::P256)
                        | (Algorithm::ES384, EllipticCurve::P384)
                );
                if !fits {
                    return Err(ConfigError::new(
                        ConfigErrorKind::AlgorithmMismatch,
                        "the EC key's curve does not fit the algorithm: ES256 needs P-256, ES384 needs P-384",
                    ));
                }
            }
            DecodingKey::from_jwk(&jwk).map_err(|e| invalid_key("invalid public key", e))?
        };
        Ok(VerifyingKey {
            kid: self.kid.clone(),
            alg: self.alg,
            key,
        })
    }

    #[cfg(feature = "login")]
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_PUB_JWK: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn short_hmac_secret_is_refused() {
        let err = VerifyingKey::from_secret(Algorithm::HS256, b"short").unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidKey);
    }

    #[test]
    fn hs512_needs_a_64_byte_secret() {
        assert!(VerifyingKey::from_secret(Algorithm::HS512, [1u8; 63]).is_err());
        assert!(VerifyingKey::from_secret(Algorithm::HS512, [1u8; 64]).is_ok());
        assert!(VerifyingKey::from_secret(Algorithm::HS384, [1u8; 47]).is_err());
    }

    #[test]
    fn short_secret_needs_the_explicit_constructor() {
        assert!(SigningKey::from_secret(Algorithm::HS256, b"short").is_err());
        let key = SigningKey::from_short_secret(Algorithm::HS256, b"short").unwrap();
        assert_eq!(key.verifying_key().unwrap().algorithm(), Algorithm::HS256);
        assert!(SigningKey::from_short_secret(Algorithm::HS256, b"").is_err());
        assert!(SigningKey::from_short_secret(Algorithm::ES256, b"short").is_err());
    }

    #[test]
    fn secret_with_asymmetric_algorithm_is_refused() {
        let err = SigningKey::from_secret(Algorithm::RS256, [1u8; 32]).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::AlgorithmMismatch);
    }

    #[test]
    fn jwk_without_alg_takes_it_from_the_curve() {
        let key = VerifyingKey::from_jwk(ED_PUB_JWK).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDSA);
    }

    #[test]
    fn jwk_with_conflicting_alg_is_refused() {
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(VerifyingKey::from_jwk(jwk).is_err());
    }

    #[test]
    fn jwk_for_encryption_is_refused() {
        let jwk = r#"{"kty":"OKP","crv":"Ed25519","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert!(VerifyingKey::from_jwk(jwk).is_err());
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let set = format!(
            r#"{{"keys":[{{"kty":"XYZ","kid":"weird"}},{{"kty":"OKP","crv":"Ed25519","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},{ED_PUB_JWK}]}}"#
        );
        let keys = KeySet::new().with_jwks(set).unwrap();
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn jwks_without_usable_keys_is_an_error() {
        let err = KeySet::new().with_jwks(r#"{"keys":[]}"#).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::NoKeys);
    }

    #[test]
    fn hmac_keys_have_no_public_jwk() {
        let key = VerifyingKey::from_secret(Algorithm::HS512, [3u8; 64]).unwrap();
        assert!(key.public_jwk().unwrap().is_none());
    }

    #[test]
    fn debug_redacts_key_material() {
        let key = SigningKey::from_secret(Algorithm::HS256, [b'z'; 32]).unwrap();
        let text = format!("{key:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains("zzzz"));
    }
}
