//! DPoP: sender-constrained tokens (RFC 9449), feature `dpop`.
//!
//! A bearer token works for whoever holds it. With DPoP the client keeps a key pair, and every
//! request carries a fresh proof, a small JWT signed with that key, in the `DPoP` header; the
//! access token names the key (`cnf.jkt`, its RFC 7638 thumbprint), so a stolen token is
//! useless without the private key.
//!
//! - **Verifying side**: [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop) accepts
//!   `Authorization: DPoP <token>` with a proof, checks the proof against the request (method,
//!   URI, time, `jti` never seen before, `ath` = hash of the token) and its key against the
//!   token's `cnf.jkt`. A bound token sent as `Bearer` is refused (no downgrade), as is an
//!   unbound token sent as `DPoP`; with [`Dpop::required`], bearer tokens are refused
//!   altogether. Failures are 401 with a `WWW-Authenticate: DPoP algs="…"` challenge (beside the
//!   `Bearer` one while bearer tokens are accepted too); gRPC requests get `UNAUTHENTICATED`.
//! - **Issuing side**: the login and refresh services bind the tokens they issue when the
//!   request carries a proof (`cnf.jkt` in the token, `"token_type": "DPoP"` in the answer).
//!
//! # Example
//!
//! ```
//! use tower_jwt_auth::dpop::Dpop;
//! use tower_jwt_auth::{Algorithm, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [7u8; 32])?);
//! let layer = JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new())?)
//!     // The URL clients use to reach this server (behind a proxy, its public one): proofs
//!     // name it in `htu`, so a proof made for another server never passes here.
//!     .dpop(Dpop::new("https://api.example.com")?);
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, Method, Uri};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};
use jsonwebtoken::Algorithm;

mod binding;
mod client;
mod htu;
mod replay;

pub use client::{DpopClient, DpopClientLayer, DpopKey, ProofError};
#[cfg(feature = "sessions")]
pub use replay::StoreReplayCache;
pub use replay::{MemoryReplayCache, ReplayCache, ReplayCheck, ReplayEntry, ReplayFuture};

/// The `DPoP` request header.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The longest proof read (a proof with an RSA-4096 key is about 1.5 KB).
const MAX_PROOF_LEN: usize = 8192;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// The DPoP settings of a layer or an issuing service. Cheap to clone. See the
/// [module docs](self).
#[derive(Clone)]
pub struct Dpop {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    required: bool,
    algorithms: Vec<Algorithm>,
    /// `ES256 EdDSA …`, for the challenge's `algs`.
    algs: Arc<str>,
    max_age: u64,
    max_skew: u64,
    replay: Arc<dyn ReplayCache>,
    /// Whether the application chose the replay cache (a composition root leaves it alone).
    replay_chosen: bool,
    /// Where the expected `htu` comes from: the public URL, or (opted into) the request.
    /// `None`: the request's own authority.
    base: Option<htu::Base>,
    nonces: Option<Nonces>,
}

/// Stateless server nonces (RFC 9449 §8, §9): the HMAC-SHA256, under a secret every node
/// shares, of the current time step. A nonce is good for its step and the next one.
#[derive(Clone)]
struct Nonces {
    key: jsonwebtoken::EncodingKey,
    step: u64,
}

impl Nonces {
    /// The nonce of time step `index` (base64url), or `None` if signing fails.
    fn of(&self, index: u64) -> Option<String> {
        let message = format!("tower-jwt-auth dpop nonce {index}");
        jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::HS256).ok()
    }

    /// The nonce to hand out at `now`.
    fn current(&self, now: u64) -> Option<String> {
        self.of(now / self.step)
    }

    /// Whether `nonce` is this step's or the previous one's.
    fn accepts(&self, nonce: &str, now: u64) -> bool {
        let index = now / self.step;
        [Some(index), index.checked_sub(1)]
            .into_iter()
            .flatten()
            .any(|i| self.of(i).is_some_and(|n| n == nonce))
    }
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("required", &self.inner.required)
            .field("algorithms", &self.inner.algorithms)
            .field("proof_max_age_secs", &self.inner.max_age)
            .field("public_url", &self.inner.base)
            .field("nonces", &self.inner.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// The algorithms accepted by default: every asymmetric one jsonwebtoken verifies that is in
/// common use for DPoP.
const DEFAULT_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
    Algorithm::PS384,
];

/// The challenge's `algs`: every name a proof may use (`EdDSA` also as RFC 9864's `Ed25519`).
fn algs_text(algorithms: &[Algorithm]) -> Arc<str> {
    algorithms
        .iter()
        .flat_map(|a| crate::keys::alg::advertised(*a))
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

impl Dpop {
    /// Every name a proof may use for its algorithm (`dpop_signing_alg_values_supported`).
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn alg_names(&self) -> impl Iterator<Item = &str> {
        self.inner.algs.split(' ')
    }

    /// DPoP accepted beside bearer tokens at the server clients reach as `public_url`
    /// (`https://host[:port][/prefix]`; behind a reverse proxy or TLS terminator, the URL
    /// outside it): a proof's `htu` must be this URL followed by the request's path. Proofs
    /// with ES256, ES384, EdDSA, PS256, PS384 or RS256 keys (RSA keys of at least 2048 bits),
    /// at most 60 s old and 5 s ahead of this server's clock, each accepted once
    /// ([`MemoryReplayCache`]).
    ///
    /// The request's `Host` header is never used: it is the client's to choose, so a proof made
    /// for another server could name it. A single server that cannot know its URL may opt into
    /// that with [`from_request_authority`](Self::from_request_authority).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] when `public_url` is not an absolute http(s) URL without
    /// user info, query or fragment.
    pub fn new(public_url: &str) -> Result<Self, ConfigError> {
        Ok(Self::with_base(Some(parse_base(public_url)?)))
    }

    /// Like [`new`](Self::new), but the expected `htu` is built from the request itself: its
    /// scheme (`http` when the request does not say) and its authority or `Host` header.
    ///
    /// **For a single server reached under one name only.** The `Host` header is chosen by the
    /// client: where several servers accept the same tokens (several nodes, several services
    /// sharing an issuer), a proof made for one of them passes at every other one whose
    /// requests say that `Host`. Use [`new`](Self::new) with the public URL there.
    #[must_use]
    pub fn from_request_authority() -> Self {
        Self::with_base(None)
    }

    fn with_base(base: Option<htu::Base>) -> Self {
        // Proofs are verified with jsonwebtoken: make sure it has its crypto backend.
        let _ = crate::crypto::install_crypto_provider();
        Self {
            inner: Arc::new(Inner {
                required: false,
                algorithms: DEFAULT_ALGORITHMS.to_vec(),
                algs: algs_text(&DEFAULT_ALGORITHMS),
                max_age: 60,
                max_skew: 5,
                replay: Arc::new(MemoryReplayCache::new()),
                replay_chosen: false,
                base,
                nonces: None,
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        change(Arc::make_mut(&mut self.inner));
        self
    }

    /// Accept only DPoP-bound tokens: a bearer token gets 401 with a DPoP challenge.
    #[must_use]
    pub fn required(self) -> Self {
        self.with(|i| i.required = true)
    }

    /// Whether only DPoP-bound tokens are accepted.
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.inner.required
    }

    /// The proof algorithms to accept (named in the challenge's `algs`).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::AlgorithmMismatch`] for an empty list or a symmetric (`HS*`)
    /// algorithm: a proof must be signed with a private key only the client holds.
    pub fn algorithms(
        self,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> Result<Self, ConfigError> {
        let algorithms: Vec<Algorithm> = algorithms.into_iter().collect();
        if algorithms.is_empty()
            || algorithms
                .iter()
                .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(ConfigError::new(
                ConfigErrorKind::AlgorithmMismatch,
                "DPoP proofs need asymmetric algorithms (ES256, EdDSA, PS256, …), at least one",
            ));
        }
        let algs = algs_text(&algorithms);
        Ok(self.with(|i| {
            i.algorithms = algorithms;
            i.algs = algs;
        }))
    }

    /// The oldest proof accepted, by its `iat` (default 60 s). Replayed proofs are remembered
    /// this long.
    #[must_use]
    pub fn proof_max_age(self, age: Duration) -> Self {
        self.with(|i| i.max_age = age.as_secs().max(1))
    }

    /// How far ahead of this server's clock a proof's `iat` may be (default 5 s).
    #[must_use]
    pub fn clock_skew(self, skew: Duration) -> Self {
        self.with(|i| i.max_skew = skew.as_secs())
    }

    /// Require server nonces (RFC 9449 §8, §9): a proof must carry a nonce this server handed
    /// out (in the `DPoP-Nonce` header of a 401 `use_dpop_nonce`, or of a 400 `use_dpop_nonce`
    /// from the login and refresh services). That bounds how long a proof made in advance, on a
    /// machine with a wrong clock or by malware, stays usable. Nonces are stateless, the
    /// HMAC-SHA256 of the current time step under `secret`: every node with the same secret
    /// agrees on them without sharing state. A nonce is good for `lifetime` to twice that.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKey`] for a secret shorter than 32 bytes.
    pub fn nonces(self, secret: impl AsRef<[u8]>, lifetime: Duration) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        if secret.len() < 32 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidKey,
                "the DPoP nonce secret must be at least 32 random bytes, the same on every node",
            ));
        }
        let nonces = Nonces {
            key: jsonwebtoken::EncodingKey::from_secret(secret),
            step: lifetime.as_secs().max(1),
        };
        Ok(self.with(|i| i.nonces = Some(nonces)))
    }

    /// Where accepted proofs are remembered (default: a [`MemoryReplayCache`] of this
    /// `Dpop`, shared by its clones; under an [`AuthServer`](crate::login::AuthServer) with a
    /// shared store, that store). Give every node the same shared store so a proof replayed
    /// against another node is refused too.
    #[must_use]
    pub fn replay_cache(self, cache: impl ReplayCache) -> Self {
        let cache: Arc<dyn ReplayCache> = Arc::new(cache);
        self.with(|i| {
            i.replay = cache;
            i.replay_chosen = true;
        })
    }

    /// Keep proofs in `cache` unless the application chose a replay cache itself: what a
    /// composition root with a shared store does.
    #[must_use]
    #[cfg_attr(not(feature = "login"), allow(dead_code))]
    pub(crate) fn replays_by_default_in(
        self,
        cache: impl FnOnce() -> Arc<dyn ReplayCache>,
    ) -> Self {
        if self.inner.replay_chosen {
            return self;
        }
        let cache = cache();
        self.with(|i| i.replay = cache)
    }

    /// The accepted algorithms as the challenge names them (`ES256 ES384 EdDSA Ed25519 …`:
    /// EdDSA also under RFC 9864's name).
    #[must_use]
    pub fn algs(&self) -> &str {
        &self.inner.algs
    }

    pub(crate) fn algs_shared(&self) -> Arc<str> {
        Arc::clone(&self.inner.algs)
    }

    /// Check the request's DPoP proof (RFC 9449 §4.3): exactly one `DPoP` header holding a
    /// `dpop+jwt` signed by the public `jwk` in its header with an accepted algorithm; `htm`
    /// the request's method, `htu` its URL (see [`new`](Self::new)), `iat`
    /// recent, and with `access_token`, `ath` its hash. The `jti` is not yet recorded: that is
    /// [`DpopProof::claim`]'s job, once everything else has passed.
    ///
    /// # Errors
    ///
    /// [`AuthErrorKind::InvalidDpopProof`] for any failed check.
    pub fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        access_token: Option<&[u8]>,
        now: u64,
    ) -> Result<DpopProof, AuthError> {
        let invalid = || AuthError::from(AuthErrorKind::InvalidDpopProof);
        let mut values = headers.get_all(DPOP).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(invalid());
        };
        let proof = value.to_str().map_err(|_| invalid())?.trim();
        if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
            return Err(invalid());
        }

        // The header: typ, an accepted alg, a public jwk, nothing critical.
        let mut parts = proof.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| invalid())?;
        let header: ProofHeader = serde_json::from_slice(&header_json).map_err(|_| invalid())?;
        if !header.typ.eq_ignore_ascii_case("dpop+jwt") || header.crit.is_some() {
            return Err(invalid());
        }
        let alg = crate::keys::alg::from_name(&header.alg).ok_or_else(invalid)?;
        if !self.inner.algorithms.contains(&alg) {
            return Err(invalid());
        }
        const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        if PRIVATE.iter().any(|m| header.jwk.contains_key(*m)) {
            return Err(invalid());
        }
        // The key's own `alg`, if it names one, is the proof's (`EdDSA` and `Ed25519` alike).
        if header
            .jwk
            .get("alg")
            .is_some_and(|a| a.as_str().and_then(crate::keys::alg::from_name) != Some(alg))
        {
            return Err(invalid());
        }
        if let Some(n) = header.jwk.get("n") {
            // RSA: at least 2048 bits (256 bytes, 342 base64url characters).
            if n.as_str().is_none_or(|n| n.len() < 342) {
                return Err(invalid());
            }
        }
        let jwk: Jwk = crate::keys::alg::jwk(header.jwk).map_err(|_| invalid())?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| invalid())?;

        // The signature, by that key with that algorithm (jsonwebtoken refuses a key of
        // another family), over `header.claims`; only then the claims. The header is parsed
        // once, above: a proof check is one signature verification and little else.
        let message = &proof[..header_b64.len() + 1 + claims_b64.len()];
        if !jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg)
            .map_err(|_| invalid())?
        {
            return Err(invalid());
        }
        let claims_json = URL_SAFE_NO_PAD.decode(claims_b64).map_err(|_| invalid())?;
        // A JSON object (serde would also read a struct from an array, by position).
        if claims_json.first() != Some(&b'{') {
            return Err(invalid());
        }
        let claims: ProofClaims = serde_json::from_slice(&claims_json).map_err(|_| invalid())?;

        // The claims against the request.
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(invalid());
        }
        if claims.htm != method.as_str() {
            return Err(invalid());
        }
        let expected = htu::expected(self.inner.base.as_ref(), uri, headers).ok_or_else(invalid)?;
        if htu::normalize(&claims.htu).as_deref() != Some(expected.as_str()) {
            return Err(invalid());
        }
        if claims.iat.saturating_add(self.inner.max_age) < now
            || claims.iat > now.saturating_add(self.inner.max_skew)
        {
            return Err(invalid());
        }
        if let Some(token) = access_token {
            let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token));
            if claims.ath.as_deref() != Some(ath.as_str()) {
                return Err(invalid());
            }
        }
        if let Some(nonces) = &self.inner.nonces
            && !claims
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now))
        {
            let error = AuthError::from(AuthErrorKind::UseDpopNonce);
            return Err(match nonces.current(now) {
                Some(nonce) => error.with_dpop_nonce(nonce.into()),
                None => error,
            });
        }
        let jkt = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| invalid())?;

        let mut hasher = Sha256::new();
        hasher.update(b"tower-jwt-auth dpop jti\0");
        hasher.update(jkt.as_bytes());
        hasher.update([0]);
        hasher.update(claims.jti.as_bytes());
        let digest = hasher.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        // The thumbprint is a SHA-256 already: its first half names the client key.
        let mut key = [0u8; 16];
        let thumbprint = URL_SAFE_NO_PAD.decode(&jkt).map_err(|_| invalid())?;
        key.copy_from_slice(thumbprint.get(..16).ok_or_else(invalid)?);
        Ok(DpopProof {
            jkt,
            entry: ReplayEntry {
                id,
                key,
                expires_at: claims
                    .iat
                    .saturating_add(self.inner.max_age)
                    .saturating_add(1),
            },
            replay: Arc::clone(&self.inner.replay),
        })
    }
}

/// The public URL of [`Dpop::new`], checked.
fn parse_base(url: &str) -> Result<htu::Base, ConfigError> {
    htu::Base::parse(url).ok_or_else(|| {
        ConfigError::new(
            ConfigErrorKind::InvalidUrl,
            "the DPoP public URL must be an absolute http(s) URL without user info, query or \
             fragment, like https://api.example.com",
        )
    })
}

/// A proof that passed [`Dpop::check`]: its key's thumbprint, and its `jti` still to be
/// recorded with [`claim`](Self::claim).
pub struct DpopProof {
    jkt: String,
    entry: ReplayEntry,
    replay: Arc<dyn ReplayCache>,
}

impl fmt::Debug for DpopProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopProof")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl DpopProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key (base64url): what a bound token's
    /// `cnf.jkt` holds.
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// Record the proof's `jti` in the replay cache: [`ReplayCheck::Fresh`] the first time.
    #[must_use]
    pub fn claim(&self) -> ReplayCheck {
        self.replay.first_use(&self.entry)
    }

    /// Record the proof's `jti`, waiting for a shared store if need be.
    ///
    /// # Errors
    ///
    /// [`AuthErrorKind::InvalidDpopProof`] for a replayed proof;
    /// [`AuthErrorKind::DpopReplayUnavailable`] when the replay cache is full or unreachable.
    pub async fn claim_async(&self) -> Result<(), AuthError> {
        replay_outcome(match self.claim() {
            ReplayCheck::Pending(future) => future.await.map_err(|_| ()),
            ReplayCheck::Fresh => Ok(true),
            ReplayCheck::Replayed => Ok(false),
            ReplayCheck::Full => Err(()),
        })
    }
}

/// A replay answer as a rejection or not.
pub(crate) fn replay_outcome(answer: Result<bool, ()>) -> Result<(), AuthError> {
    match answer {
        Ok(true) => Ok(()),
        Ok(false) => Err(AuthErrorKind::InvalidDpopProof.into()),
        Err(()) => Err(AuthErrorKind::DpopReplayUnavailable.into()),
    }
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: String,
    alg: String,
    jwk: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

#[cfg(test)]
mod tests;
