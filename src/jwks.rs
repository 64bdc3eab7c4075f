//! [`JwksService`]: publishes public keys as a JWK Set (RFC 7517 §5).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use tower_service::Service;

use crate::body::JsonBody;
use crate::error::ConfigError;
use crate::keys::{KeyRing, KeySet};

/// Serves the public half of a key set as `{"keys": [...]}`, for other services to verify with.
///
/// Only public keys are published: HMAC secrets and private parts never are. A set with no
/// public key (HMAC only) answers 404. `GET` and `HEAD` only; other methods get 405. The JSON is
/// built once, at construction.
///
/// ```
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// use tower_jwt_auth::{Algorithm, JwksService, KeySet, VerifyingKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keys = KeySet::new().with_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)?;
/// let res = JwksService::new(&keys)?.oneshot(Request::new(())).await?;
/// assert_eq!(res.status(), StatusCode::OK);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct JwksService {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    Fixed(Option<Bytes>),
    Ring(KeyRing),
}

impl JwksService {
    /// Publish the public keys of `keys`.
    ///
    /// # Errors
    ///
    /// When a public key cannot be exported as a JWK.
    pub fn new(keys: &KeySet) -> Result<Self, ConfigError> {
        Ok(Self {
            source: Source::Fixed(keys.jwks_document()?),
        })
    }

    /// Publish the keys of a [`KeyRing`] as they are at each request: keys waiting to sign,
    /// the signer, and replaced keys within their retention. The document is the ring's
    /// snapshot, serialized once per rotation.
    #[must_use]
    pub fn from_key_ring(ring: KeyRing) -> Self {
        Self {
            source: Source::Ring(ring),
        }
    }

    /// The JWK Set document now, or `None` when there is no public key to publish.
    #[must_use]
    pub fn document(&self) -> Option<Bytes> {
        match &self.source {
            Source::Fixed(doc) => doc.clone(),
            Source::Ring(ring) => ring.jwks_document(),
        }
    }

    fn respond(&self, method: &Method) -> Response<JsonBody> {
        crate::body::document(
            method,
            self.document(),
            "application/jwk-set+json",
            "public, max-age=300",
        )
    }
}

impl<B> Service<Request<B>> for JwksService {
    type Response = Response<JsonBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<JsonBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(req.method())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::VerifyingKey;
    use http::StatusCode;
    use jsonwebtoken::Algorithm;

    #[test]
    fn hmac_only_set_is_not_published() {
        let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32]).unwrap());
        let svc = JwksService::new(&keys).unwrap();
        assert!(svc.document().is_none());
        assert_eq!(svc.respond(&Method::GET).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn post_is_not_allowed() {
        let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32]).unwrap());
        let res = JwksService::new(&keys).unwrap().respond(&Method::POST);
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn secret_is_never_published_next_to_public_keys() {
        let keys = KeySet::new()
            .with_key(VerifyingKey::from_secret(Algorithm::HS256, [b'q'; 32]).unwrap())
            .with_jwks(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)
            .unwrap();
        let doc = JwksService::new(&keys)
            .unwrap()
            .document()
            .unwrap()
            .to_vec();
        let doc = String::from_utf8(doc).unwrap();
        assert!(doc.contains("Ed25519"));
        assert!(!doc.contains("\"oct\""));
        assert!(!doc.contains("\"k\""));
    }
}
