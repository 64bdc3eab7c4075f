use std::fmt;
use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use super::{VerifyingKey, check_curve, check_rsa_jwk, check_secret, invalid_key, read_file};
use crate::crypto::install_crypto_provider;
use crate::error::{ConfigError, ConfigErrorKind};

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
    /// When `alg` is not an HMAC algorithm, the operating system has no randomness to give,
    /// or no crypto backend is available.
    pub fn generate_secret(alg: Algorithm) -> Result<Self, ConfigError> {
        let mut secret = [0u8; 64];
        getrandom::fill(&mut secret).map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidKey,
                "the operating system's random number generator failed",
                e,
            )
        })?;
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
                check_curve(self.alg, Some(&p.curve))?;
            }
            check_rsa_jwk(&jwk)?;
            DecodingKey::from_jwk(&jwk).map_err(|e| invalid_key("invalid public key", e))?
        };
        Ok(VerifyingKey {
            kid: self.kid.clone(),
            alg: self.alg,
            key,
        })
    }

    #[cfg(any(feature = "login", feature = "test-util", feature = "dpop"))]
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
