//! [`Verifier`]: the verifying pipeline for one token.
//!
//! For a token it checks the length, splits the compact JWS, parses the protected header (only
//! `alg`, `kid`, `typ` and `crit` matter; keys never come from the token), selects the key by
//! `kid` and `alg` from its [`KeySource`], checks the signature with that key's own algorithm,
//! and then applies the [`Validation`] to the claims. When the source has no matching key in
//! memory and may refresh, verification hands over to a future that waits for the refresh.
//!
//! # Example
//!
//! ```
//! use tower_jwt_auth::{Algorithm, AuthErrorKind, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [42u8; 32])?);
//! let verifier = Verifier::new(keys, Validation::new())?;
//! let err = verifier.verify::<serde_json::Value>("not-a-token").unwrap_err();
//! assert_eq!(err.kind(), AuthErrorKind::Malformed);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use pin_project_lite::pin_project;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::claims::{Claims, RegisteredClaims};
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};
use crate::keys::{KeyFuture, KeySet, KeySource, StaticKeys};
use crate::validation::Validation;

/// The protected header: only what verification needs. Unknown members (`jwk`, `jku`, `x5u`,
/// `x5c`, …) are ignored: keys never come from the token.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    /// RFC 7518's names and RFC 9864's `Ed25519`.
    #[serde(deserialize_with = "crate::keys::alg::deserialize")]
    alg: Algorithm,
    #[serde(default, borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Present,
}

/// Whether a member is there at all, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Self(true))
    }
}

/// Whether a JSON text is an object: serde would read a struct from an array too.
fn is_json_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

/// A compact JWS split into its parts (exactly three).
struct Parts<'t> {
    header: &'t str,
    /// `header.payload`, the signed bytes.
    message: &'t str,
    payload: &'t str,
    signature: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Self, AuthError> {
        let malformed = || AuthError::from(AuthErrorKind::Malformed);
        let (message, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = message.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') {
            return Err(malformed());
        }
        Ok(Self {
            header,
            message,
            payload,
            signature,
        })
    }
}

fn decode_b64(segment: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthErrorKind::Malformed.into())
}

struct Inner {
    source: Box<dyn KeySource>,
    validation: Validation,
    /// Several issuers ([`Verifier::for_issuers`]): each token goes to its `iss`'s verifier.
    issuers: Option<Issuers>,
}

/// The verifiers of several issuers, by issuer.
struct Issuers {
    by_issuer: std::collections::HashMap<String, Verifier>,
    all: Vec<Verifier>,
    /// A key set that stands for "every issuer's keys as they are now" in the verified-token
    /// cache: replaced whenever one issuer's keys change (it holds the sets it stands for, so
    /// their addresses cannot be reused while it lives).
    identity: arc_swap::ArcSwap<Identity>,
}

struct Identity {
    sets: Vec<Option<Arc<KeySet>>>,
    token: Arc<KeySet>,
}

impl Issuers {
    fn identity(&self) -> Arc<KeySet> {
        let current = self.identity.load();
        let same = self.all.iter().zip(&current.sets).all(|(v, held)| {
            match (v.inner.source.current(), held) {
                (Some(now), Some(held)) => Arc::ptr_eq(&now, held),
                (None, None) => true,
                _ => false,
            }
        });
        if same {
            return Arc::clone(&current.token);
        }
        let next = Identity {
            sets: self.all.iter().map(|v| v.inner.source.current()).collect(),
            token: Arc::new(KeySet::new()),
        };
        let token = Arc::clone(&next.token);
        self.identity.store(Arc::new(next));
        token
    }

    /// The verifier of the token's issuer, read from the unverified payload: only that
    /// issuer's keys can then verify it, and its validation requires that `iss`.
    fn pick(&self, inner: &Inner, token: &str) -> Result<&Verifier, AuthError> {
        #[derive(Deserialize)]
        struct Issuer<'a> {
            #[serde(borrow)]
            iss: Option<Cow<'a, str>>,
        }
        let parts = inner.split(token)?;
        let payload = decode_b64(parts.payload)?;
        if !is_json_object(&payload) || std::str::from_utf8(&payload).is_err() {
            return Err(AuthErrorKind::Malformed.into());
        }
        let issuer: Issuer<'_> =
            serde_json::from_slice(&payload).map_err(|_| AuthErrorKind::InvalidClaim)?;
        let iss = issuer.iss.ok_or(AuthErrorKind::MissingClaim)?;
        self.by_issuer
            .get(iss.as_ref())
            .ok_or_else(|| AuthErrorKind::InvalidIssuer.into())
    }
}

/// Verifies tokens against a [`KeySource`] and a [`Validation`]. Cheap to clone (one `Arc`).
///
/// See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// How a verification started: finished at once, or waiting for the key source to refresh.
pub(crate) enum Step<C> {
    Done(Result<Claims<C>, AuthError>),
    /// Boxed: the rare path, kept out of the size of what the common path moves.
    Pending(Pin<Box<PendingVerification<C>>>),
}

impl Verifier {
    /// A verifier for a static key set.
    ///
    /// # Errors
    ///
    /// When the key set is empty, or no crypto backend is available.
    pub fn new(keys: KeySet, validation: Validation) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::NoKeys,
                "the key set is empty: add at least one verifying key",
            ));
        }
        Self::from_source(StaticKeys(Arc::new(keys)), validation)
    }

    /// A verifier for any [`KeySource`]: a [`KeyRing`](crate::keys::KeyRing), a remote JWK Set, or
    /// your own.
    /// A source that knows its issuer ([`KeySource::issuer`], as a discovered remote key set
    /// does) binds it: without a configured issuer, tokens must carry that `iss`.
    ///
    /// # Errors
    ///
    /// When no crypto backend is available, or the source's issuer is not among the issuers
    /// the validation accepts ([`ConfigErrorKind::Discovery`]).
    pub fn from_source(
        source: impl KeySource,
        mut validation: Validation,
    ) -> Result<Self, ConfigError> {
        crate::crypto::install_crypto_provider()?;
        if let Some(issuer) = source.issuer() {
            validation = validation.bind_issuer(issuer)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                validation,
                issuers: None,
            }),
        })
    }

    /// A verifier that trusts several issuers, each with its own keys and policy: a token goes
    /// to the verifier of its `iss` (read before the signature is checked, to choose), which
    /// then verifies it with that issuer's keys only and requires that `iss`. A token signed
    /// by B that claims to be from A is checked with A's keys and fails, even when the two
    /// issuers use the same `kid`s. A token without `iss` gets
    /// [`AuthErrorKind::MissingClaim`], one from an issuer not listed
    /// [`AuthErrorKind::InvalidIssuer`].
    ///
    /// Each verifier names its issuer(s) in its [`Validation::issuer`] (or gets it from its key
    /// source, as a discovered [`RemoteJwks`](crate::remote::RemoteJwks) does), and carries its
    /// own audience, leeway and other rules.
    ///
    /// ```
    /// use tower_jwt_auth::{Algorithm, KeySet, Validation, Verifier, VerifyingKey};
    ///
    /// # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// let a = Verifier::new(
    ///     KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32])?.with_kid("k1")),
    ///     Validation::new().issuer("https://a.example").audience("api"),
    /// )?;
    /// let b = Verifier::new(
    ///     KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [2u8; 32])?.with_kid("k1")),
    ///     Validation::new().issuer("https://b.example"),
    /// )?;
    /// let verifier = Verifier::for_issuers([a, b])?;
    /// # let _ = verifier;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the list is empty, a verifier names no issuer, two name the same one, or one of
    /// them already trusts several issuers.
    pub fn for_issuers(verifiers: impl IntoIterator<Item = Self>) -> Result<Self, ConfigError> {
        let bad = |message| ConfigError::new(ConfigErrorKind::InvalidKey, message);
        let mut by_issuer = std::collections::HashMap::new();
        let mut all = Vec::new();
        let mut leeway = 0;
        let mut max_length = 0;
        let mut clock = None;
        for verifier in verifiers {
            if verifier.inner.issuers.is_some() {
                return Err(bad(
                    "a verifier for several issuers cannot be nested in another",
                ));
            }
            let names = verifier.inner.validation.issuers();
            if names.is_empty() {
                return Err(bad(
                    "each verifier of Verifier::for_issuers must name its issuer \
                     (Validation::issuer, or a discovered key source)",
                ));
            }
            for name in names {
                if by_issuer.insert(name.clone(), verifier.clone()).is_some() {
                    return Err(bad("two verifiers name the same issuer"));
                }
            }
            leeway = leeway.max(verifier.inner.validation.leeway_secs());
            if clock.is_none() {
                clock = verifier.inner.validation.clock_ref().cloned();
            }
            max_length = max_length.max(verifier.inner.validation.max_token_length());
            all.push(verifier);
        }
        if all.is_empty() {
            return Err(bad("Verifier::for_issuers needs at least one verifier"));
        }
        let identity = Identity {
            sets: all.iter().map(|v| v.inner.source.current()).collect(),
            token: Arc::new(KeySet::new()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                source: Box::new(StaticKeys(Arc::new(KeySet::new()))),
                // Only what applies before the issuer is known, and the longest leeway for the
                // verified-token cache; each issuer's own validation does the rest.
                validation: Validation::new()
                    .leeway(std::time::Duration::from_secs(leeway))
                    .max_token_len(max_length)
                    .with_clock(clock),
                issuers: Some(Issuers {
                    by_issuer,
                    all,
                    identity: arc_swap::ArcSwap::from_pointee(identity),
                }),
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
        if let Some(issuers) = &inner.issuers {
            return issuers.pick(inner, token)?.verify(token);
        }
        let parts = inner.split(token)?;
        let header_bytes = decode_b64(parts.header)?;
        let header = inner.header(&header_bytes)?;
        let keys = inner
            .source
            .current()
            .ok_or(AuthErrorKind::KeysUnavailable)?;
        inner.verify_with(&parts, header.alg, header.kid.as_deref(), &keys)
    }

    /// The validation policy.
    pub fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// The keys in memory now.
    pub(crate) fn current_keys(&self) -> Option<Arc<KeySet>> {
        match &self.inner.issuers {
            None => self.inner.source.current(),
            Some(issuers) => Some(issuers.identity()),
        }
    }

    /// Verify with `current` (the keys in memory, read once by the caller), or start one
    /// refresh of the key source when no key in it matches.
    ///
    /// With `may_refresh` false, a token whose key is not in memory is rejected at once (the
    /// source is not asked to refresh).
    pub(crate) fn start<C: DeserializeOwned>(
        &self,
        token: &str,
        current: Option<Arc<KeySet>>,
        may_refresh: bool,
    ) -> Step<C> {
        let inner = &*self.inner;
        if let Some(issuers) = &inner.issuers {
            return match issuers.pick(inner, token) {
                Ok(verifier) => verifier.start(token, verifier.inner.source.current(), may_refresh),
                Err(e) => Step::Done(Err(e)),
            };
        }
        let header_bytes = match inner.split(token).and_then(|p| decode_b64(p.header)) {
            Ok(bytes) => bytes,
            Err(e) => return Step::Done(Err(e)),
        };
        let header = match inner.header(&header_bytes) {
            Ok(h) => h,
            Err(e) => return Step::Done(Err(e)),
        };
        let (alg, kid) = (header.alg, header.kid.as_deref());
        if let Some(keys) = &current
            && keys.select(alg, kid).is_some()
        {
            let parts = inner.split(token);
            return Step::Done(parts.and_then(|p| inner.verify_with(&p, alg, kid, keys)));
        }
        let refresh = if may_refresh {
            inner.source.refresh(alg, kid)
        } else {
            None
        };
        let Some(refresh) = refresh else {
            return Step::Done(match current {
                Some(keys) => inner
                    .split(token)
                    .and_then(|p| inner.verify_with(&p, alg, kid, &keys)),
                None => Err(AuthErrorKind::KeysUnavailable.into()),
            });
        };
        Step::Pending(Box::pin(PendingVerification {
            refresh,
            state: Some(Waiting {
                verifier: self.clone(),
                token: token.into(),
                alg,
                kid: kid.map(Into::into),
                current,
            }),
            _claims: PhantomData,
        }))
    }
}

impl Inner {
    /// Length and shape, before any decoding.
    fn split<'t>(&self, token: &'t str) -> Result<Parts<'t>, AuthError> {
        self.validation.check_length(token)?;
        Parts::split(token)
    }

    /// The header checks that need no key: a JSON object (RFC 7515 §4), `alg`, `crit`, `typ`.
    fn header<'h>(&self, bytes: &'h [u8]) -> Result<JoseHeader<'h>, AuthError> {
        if !is_json_object(bytes) {
            return Err(AuthErrorKind::Malformed.into());
        }
        // JSON text is UTF-8 (RFC 8259 §8.1): serde_json skips the members it ignores without
        // checking them, so check the whole header first.
        let text = std::str::from_utf8(bytes).map_err(|_| AuthErrorKind::Malformed)?;
        let header: JoseHeader<'h> =
            serde_json::from_str(text).map_err(|_| AuthErrorKind::Malformed)?;
        // RFC 7515 §4.1.11: `crit` lists extensions the recipient must understand, or reject
        // the token. This crate implements none, so `crit` in any form (even `null` or `[]`,
        // which are themselves invalid) is rejected.
        if header.crit.0 {
            return Err(AuthErrorKind::UnsupportedAlgorithm.into());
        }
        self.validation.check_typ(header.typ.as_deref())?;
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
        // RFC 7519 §7.2: the claims are a JSON object (serde would read a struct from an array),
        // in UTF-8 (serde_json does not check the members it skips).
        if !is_json_object(&payload) {
            return Err(AuthErrorKind::InvalidClaim.into());
        }
        if std::str::from_utf8(&payload).is_err() {
            return Err(AuthErrorKind::Malformed.into());
        }
        let registered: RegisteredClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::invalid_claim(claim_problem::<RegisteredClaims>(&payload)))?;
        self.validation
            .check_claims(&registered, self.validation.unix_now())?;
        self.validation.check_custom_claims(&payload)?;
        let custom: C = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::invalid_claim(claim_problem::<C>(&payload)))?;
        Ok(Claims::new(custom, registered))
    }
}

/// Which claim `payload` fails to deserialise as `T` on, and how (`` `username` is missing ``,
/// `` `exp` has the wrong type or value ``); never the value. Read again only after a failure,
/// with the path tracked. A name that is long or unusual (a map key the token chose) is not
/// repeated: "a claim".
fn claim_problem<T: DeserializeOwned>(payload: &[u8]) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let error = serde_path_to_error::deserialize::<_, T>(&mut de).err()?;
    let path = error.path().to_string();
    let message = error.inner().to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field);
    let (name, how) = match missing {
        Some(field) if path == "." => (field.to_owned(), "is missing"),
        Some(field) => (format!("{path}.{field}"), "is missing"),
        None => (path, "has the wrong type or value"),
    };
    let plain = name.len() <= 64
        && name != "."
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b));
    Some(if plain {
        format!("`{name}` {how}")
    } else {
        format!("a claim {how}")
    })
}

/// What the refresh path owns while it waits for the keys.
struct Waiting {
    verifier: Verifier,
    token: Box<str>,
    alg: Algorithm,
    kid: Option<Box<str>>,
    /// The keys in memory when the refresh started, used if the refresh brings none.
    current: Option<Arc<KeySet>>,
}

pin_project! {
    /// A verification waiting for its key source to refresh (the token named a key that was
    /// not in memory). Resolves to the verified claims or the rejection.
    pub(crate) struct PendingVerification<C> {
        #[pin]
        refresh: KeyFuture,
        state: Option<Waiting>,
        _claims: PhantomData<fn() -> C>,
    }
}

impl<C: DeserializeOwned> Future for PendingVerification<C> {
    type Output = Result<Claims<C>, AuthError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.state.is_none() {
            // Polled again after it completed: answer as for missing keys rather than panic
            // (and never poll the finished refresh again).
            return Poll::Ready(Err(AuthErrorKind::KeysUnavailable.into()));
        }
        let fresh = ready!(this.refresh.poll(cx));
        let Some(waiting) = this.state.take() else {
            return Poll::Ready(Err(AuthErrorKind::KeysUnavailable.into()));
        };
        let Some(keys) = fresh.or(waiting.current) else {
            return Poll::Ready(Err(AuthErrorKind::KeysUnavailable.into()));
        };
        let inner = &*waiting.verifier.inner;
        Poll::Ready(
            inner
                .split(&waiting.token)
                .and_then(|p| inner.verify_with(&p, waiting.alg, waiting.kid.as_deref(), &keys)),
        )
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
            .field("validation", &self.inner.validation)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
