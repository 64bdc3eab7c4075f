//! The client side: [`DpopKey`] makes proofs, [`DpopClientLayer`] adds them to outgoing
//! requests.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{DPOP, DPOP_NONCE};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::keys::SigningKey;
use jsonwebtoken::AlgorithmFamily;

/// A client's DPoP key: makes the proofs that go with its requests (RFC 9449 §4).
///
/// ```
/// use tower_jwt_auth::dpop::DpopKey;
/// use tower_jwt_auth::{Algorithm, SigningKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ec256_private.pem"))?;
/// let key = DpopKey::new(SigningKey::from_pem(Algorithm::ES256, &pem)?)?;
/// let proof = key.proof(&http::Method::POST, "https://auth.example.com/login", None, None)?;
/// assert_eq!(proof.split('.').count(), 3);
/// assert_eq!(key.jkt().len(), 43); // base64url SHA-256
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DpopKey {
    key: SigningKey,
    /// The public JWK, as the proof header carries it.
    jwk: Value,
    jkt: Arc<str>,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.key.algorithm())
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// A proof could not be made (the signer or the system's random generator failed).
#[derive(Debug)]
pub struct ProofError(&'static str);

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ProofError {}

impl DpopKey {
    /// A DPoP key from an asymmetric signing key (EC, Ed25519 or RSA).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::AlgorithmMismatch`] for an HMAC key; [`ConfigErrorKind::InvalidKey`]
    /// when the public key cannot be derived.
    pub fn new(key: SigningKey) -> Result<Self, ConfigError> {
        if key.algorithm().family() == AlgorithmFamily::Hmac {
            return Err(ConfigError::new(
                ConfigErrorKind::AlgorithmMismatch,
                "a DPoP key must be asymmetric (EC, Ed25519 or RSA): the server checks proofs \
                 with the public key in them",
            ));
        }
        let public = key.verifying_key()?.public_jwk()?.ok_or_else(|| {
            ConfigError::new(ConfigErrorKind::InvalidKey, "no public key for this key")
        })?;
        let jkt = public
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .map_err(|e| {
                ConfigError::with_source(
                    ConfigErrorKind::InvalidKey,
                    "could not compute the key's thumbprint",
                    e,
                )
            })?;
        let mut jwk = serde_json::to_value(&public).map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidKey, "could not encode the JWK", e)
        })?;
        if let Value::Object(members) = &mut jwk {
            // Only the public key: no key ID or use, which mean nothing here.
            members
                .retain(|name, _| matches!(name.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
        }
        Ok(Self {
            key,
            jwk,
            jkt: jkt.into(),
        })
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key: the `cnf.jkt` of tokens bound to it.
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// A fresh proof for `method` on `url` (query and fragment are left out of `htu`), with
    /// `ath` when it goes with `access_token`, and the server's `nonce` when it asked for one.
    ///
    /// # Errors
    ///
    /// When signing fails or no random `jti` can be drawn.
    pub fn proof(
        &self,
        method: &Method,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, ProofError> {
        let htu = url.split(['?', '#']).next().unwrap_or_default();
        let jti = crate::text::random_hex::<16>()
            .ok_or(ProofError("the system's random generator failed"))?;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = json!({"jti": jti, "htm": method.as_str(), "htu": htu, "iat": iat});
        if let Some(token) = access_token {
            claims["ath"] = Value::from(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::from(nonce);
        }
        let header = json!({
            "typ": "dpop+jwt",
            "alg": format!("{:?}", self.key.algorithm()),
            "jwk": self.jwk,
        });
        self.sign(&header, &claims)
    }

    /// Sign any header and claims: for tests that need a proof breaking one rule.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> Result<String, ProofError> {
        let encode = |v: &Value| {
            serde_json::to_vec(v)
                .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .map_err(|_| ProofError("could not encode the proof"))
        };
        let message = format!("{}.{}", encode(header)?, encode(claims)?);
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            self.key.encoding_key(),
            self.key.algorithm(),
        )
        .map_err(|_| ProofError("could not sign the proof"))?;
        Ok(format!("{message}.{signature}"))
    }

    /// The public JWK as proofs carry it.
    #[cfg(test)]
    pub(crate) fn jwk(&self) -> &Value {
        &self.jwk
    }
}

/// A layer for outgoing requests (a tower HTTP client): every request gets a fresh DPoP
/// proof for its method and URL, and a request that carries `Authorization: DPoP <token>` gets
/// `ath` for that token. When a server hands out a nonce (`DPoP-Nonce`), the next proofs carry
/// it; a `use_dpop_nonce` answer still reaches the caller, who retries (the body of a request
/// cannot be replayed in general).
///
/// The request's URI must be absolute (`https://host/path`), as for any HTTP client.
#[derive(Clone, Debug)]
pub struct DpopClientLayer {
    key: DpopKey,
    nonce: Arc<Mutex<Option<String>>>,
}

impl DpopClientLayer {
    /// Proofs made with `key`.
    #[must_use]
    pub fn new(key: DpopKey) -> Self {
        Self {
            key,
            nonce: Arc::default(),
        }
    }
}

impl<S> tower_layer::Layer<S> for DpopClientLayer {
    type Service = DpopClient<S>;

    fn layer(&self, inner: S) -> DpopClient<S> {
        DpopClient {
            inner,
            key: self.key.clone(),
            nonce: Arc::clone(&self.nonce),
        }
    }
}

/// The service of [`DpopClientLayer`].
#[derive(Clone, Debug)]
pub struct DpopClient<S> {
    inner: S,
    key: DpopKey,
    nonce: Arc<Mutex<Option<String>>>,
}

impl<S, B, RB> tower_service::Service<Request<B>> for DpopClient<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<RB>, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("dpop"))
            .map(|(_, token)| token.trim().to_owned());
        let nonce = self.nonce.lock().ok().and_then(|n| n.clone());
        let proof = self
            .key
            .proof(
                request.method(),
                &request.uri().to_string(),
                token.as_deref(),
                nonce.as_deref(),
            )
            .map_err(Into::into)
            .and_then(|p| HeaderValue::from_str(&p).map_err(Into::into));
        let proof: HeaderValue = match proof {
            Ok(proof) => proof,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        request.headers_mut().insert(DPOP, proof);
        let future = self.inner.call(request);
        let nonces = Arc::clone(&self.nonce);
        Box::pin(async move {
            let response = future.await.map_err(Into::into)?;
            if let Some(nonce) = response
                .headers()
                .get(DPOP_NONCE)
                .and_then(|v| v.to_str().ok())
                && let Ok(mut slot) = nonces.lock()
            {
                *slot = Some(nonce.to_owned());
            }
            Ok(response)
        })
    }
}
