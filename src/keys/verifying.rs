use std::fmt;
use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::{
    check_curve, check_ec_coordinates, check_rsa_jwk, check_rsa_modulus, check_secret,
    curve_of_point, ec_algorithm, invalid_key, read_file,
};
use crate::crypto::install_crypto_provider;
use crate::error::{ConfigError, ConfigErrorKind};

/// A key that verifies tokens signed with exactly one algorithm.
///
/// Built from a shared secret, a PEM public key or a JWK. See the [module docs](crate::keys) for an
/// example.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
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
            AlgorithmFamily::Rsa => {
                let key = DecodingKey::from_rsa_pem(pem)
                    .map_err(|e| invalid_key("not an RSA public key in PEM form", e))?;
                let jwk = Jwk::from_decoding_key(&key, Some(alg))
                    .map_err(|e| invalid_key("not an RSA public key in PEM form", e))?;
                check_rsa_jwk(&jwk)?;
                key
            }
            AlgorithmFamily::Ec => {
                let key = DecodingKey::from_ec_pem(pem)
                    .map_err(|e| invalid_key("not an EC public key in PEM form", e))?;
                let point = key.try_get_as_bytes().unwrap_or_default();
                check_curve(alg, curve_of_point(point).as_ref())?;
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
        let jwk: Jwk = super::alg::jwk_from_slice(json.as_ref()).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidJwk, "not a valid JWK", e)
        })?;
        Self::from_parsed_jwk(&jwk)
    }

    pub(super) fn from_parsed_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
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
            (AlgorithmParameters::EllipticCurve(p), named) => {
                let Some(by_curve) = ec_algorithm(&p.curve) else {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidJwk,
                        "unsupported EC curve: use P-256 or P-384",
                    ));
                };
                if let Some(named) = named {
                    check_curve(named, Some(&p.curve))?;
                }
                check_ec_coordinates(p)?;
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
            (AlgorithmParameters::RSA(p), None) => {
                check_rsa_modulus(&p.n)?;
                Algorithm::RS256
            }
            (AlgorithmParameters::RSA(p), Some(a)) if a.family() == AlgorithmFamily::Rsa => {
                check_rsa_modulus(&p.n)?;
                a
            }
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
