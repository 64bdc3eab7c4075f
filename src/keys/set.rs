use bytes::Bytes;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;

use super::{VerifyingKey, alg};
use crate::crypto::install_crypto_provider;
use crate::error::{ConfigError, ConfigErrorKind};

/// A JWK Set read key by key, so one key of an unknown kind or algorithm is skipped, not fatal.
#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// The static set of keys a verifier accepts.
///
/// A token is verified with the key whose `kid` and algorithm match its header. A token without
/// `kid` (or with a `kid` no key has) is verified with the single key of its algorithm that has no
/// `kid`, if there is exactly one. See the [module docs](crate::keys) for an example.
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
    /// This is for documents you configure yourself; a key set fetched from a URL is read more
    /// strictly (no symmetric or private keys).
    ///
    /// # Errors
    ///
    /// When the document is not a JWK Set, or no key in it is usable.
    pub fn with_jwks(mut self, json: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        install_crypto_provider()?;
        let set: RawSet = serde_json::from_slice(json.as_ref()).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidJwk, "not a valid JWK Set", e)
        })?;
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter_map(|jwk| alg::jwk(jwk).ok())
            .collect();
        self.add_parsed(keys.iter())?;
        Ok(self)
    }

    /// A key set fetched from a URL (a JWKS endpoint): as [`KeySet::with_jwks`], and a public
    /// URL must never supply a MAC secret or a private key, so symmetric (`oct`) keys and any
    /// JWK carrying private parameters (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) are refused
    /// (skipped, and logged at `warn` with the `tracing` feature).
    #[cfg(any(feature = "remote-jwks", test))]
    pub(crate) fn from_remote_jwks(json: &[u8]) -> Result<Self, ConfigError> {
        const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        install_crypto_provider()?;
        let set: RawSet = serde_json::from_slice(json).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidJwk, "not a valid JWK Set", e)
        })?;
        let public: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter(|jwk| {
                let symmetric = jwk.get("kty").and_then(|k| k.as_str()) == Some("oct");
                let private = PRIVATE.iter().any(|p| jwk.contains_key(*p));
                if symmetric || private {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(
                        target: "tower_jwt_auth",
                        kid = jwk.get("kid").and_then(|k| k.as_str()).unwrap_or("-"),
                        "a symmetric or private key in a fetched JWK Set was refused"
                    );
                    return false;
                }
                true
            })
            .filter_map(|jwk| alg::jwk(jwk).ok())
            .collect();
        let mut this = Self::new();
        this.add_parsed(public.iter())?;
        Ok(this)
    }

    /// Add the usable keys among `jwks`; an error when none is.
    fn add_parsed<'j>(&mut self, jwks: impl Iterator<Item = &'j Jwk>) -> Result<(), ConfigError> {
        let before = self.keys.len();
        self.keys.extend(jwks.filter_map(|jwk| {
            VerifyingKey::from_parsed_jwk(jwk)
                .inspect_err(|_e| {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(
                        target: "tower_jwt_auth",
                        kid = jwk.common.key_id.as_deref().unwrap_or("-"),
                        reason = %_e,
                        "JWK skipped"
                    );
                })
                .ok()
        }));
        if self.keys.len() == before {
            return Err(ConfigError::new(
                ConfigErrorKind::NoKeys,
                "the JWK Set holds no usable signature key",
            ));
        }
        Ok(())
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

    /// The JWK Set document (`{"keys": [...]}`) of the public keys in this set, or `None` when
    /// there is none (HMAC secrets are never published).
    pub(crate) fn jwks_document(&self) -> Result<Option<Bytes>, ConfigError> {
        let mut jwks = Vec::new();
        for key in &self.keys {
            if let Some(jwk) = key.public_jwk()? {
                jwks.push(jwk);
            }
        }
        if jwks.is_empty() {
            return Ok(None);
        }
        let json = serde_json::to_vec(&serde_json::json!({ "keys": jwks })).map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::InvalidJwk,
                "could not serialize the JWK Set",
                e,
            )
        })?;
        Ok(Some(Bytes::from(json)))
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
