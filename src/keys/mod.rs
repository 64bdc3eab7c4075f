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
//!
//! Where the keys live:
//!
//! - [`VerifyingKey`] and [`KeySet`]: what a verifier accepts;
//! - [`SigningKey`] and [`KeyRing`]: what an issuer signs with, and its rotation;
//! - [`KeySource`]: where a verifier gets its [`KeySet`] on each request (a static set, a
//!   [`KeyRing`], or a remote JWK Set with the `remote-jwks` feature).

use std::path::Path;

use jsonwebtoken::jwk::EllipticCurve;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use crate::error::{ConfigError, ConfigErrorKind};

pub(crate) mod alg;
mod ring;
mod set;
mod signing;
mod source;
mod verifying;

pub use ring::{DEFAULT_RETENTION, DEFAULT_ROTATION_DELAY, KeyRing};
pub use set::KeySet;
pub use signing::SigningKey;
pub(crate) use source::StaticKeys;
pub use source::{KeyFuture, KeySource};
pub use verifying::VerifyingKey;

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
        let detail = format!("{}: {e}", path.display());
        ConfigError::with_source(
            ConfigErrorKind::Io,
            "could not read the key file (check the path and its permissions)",
            e,
        )
        .with_detail(detail)
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

/// The shortest RSA modulus accepted, in bits (NIST SP 800-131A; RFC 7518 §3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;

/// The RSA size check, for every way an RSA key is loaded and on every crypto backend (the
/// RustCrypto backend checks none): `n` is the modulus, base64url as in a JWK.
fn check_rsa_modulus(n: &str) -> Result<(), ConfigError> {
    use base64::Engine;
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .map_err(|e| {
            ConfigError::with_source(ConfigErrorKind::InvalidKey, "the RSA modulus is invalid", e)
        })?;
    let significant = modulus
        .iter()
        .position(|b| *b != 0)
        .map_or(&[][..], |i| &modulus[i..]);
    let bits = significant.first().map_or(0, |top| {
        significant.len() * 8 - top.leading_zeros() as usize
    });
    if bits < MIN_RSA_BITS {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidKey,
            "the RSA key is too short: use a modulus of at least 2048 bits",
        ));
    }
    Ok(())
}

/// The RSA size check on a loaded key, through its public JWK form.
fn check_rsa_jwk(jwk: &jsonwebtoken::jwk::Jwk) -> Result<(), ConfigError> {
    match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => check_rsa_modulus(&rsa.n),
        _ => Ok(()),
    }
}

/// The length of each EC coordinate in a JWK, as the PEM path checks the point: 32 bytes for
/// P-256, 48 for P-384.
fn check_ec_coordinates(
    params: &jsonwebtoken::jwk::EllipticCurveKeyParameters,
) -> Result<(), ConfigError> {
    use base64::Engine;
    let expected = match params.curve {
        EllipticCurve::P256 => 32,
        EllipticCurve::P384 => 48,
        _ => return Ok(()),
    };
    let fits = |c: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .is_ok_and(|bytes| bytes.len() == expected)
    };
    if fits(&params.x) && fits(&params.y) {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::InvalidJwk,
            "the EC JWK's coordinates do not fit its curve: x and y must be 32 bytes for P-256 \
             and 48 for P-384",
        ))
    }
}

/// The JWS algorithm of an EC curve: ES256 for P-256, ES384 for P-384; `None` for others.
fn ec_algorithm(curve: &EllipticCurve) -> Option<Algorithm> {
    match curve {
        EllipticCurve::P256 => Some(Algorithm::ES256),
        EllipticCurve::P384 => Some(Algorithm::ES384),
        _ => None,
    }
}

/// The curve of an uncompressed EC point by its length: 65 bytes for P-256, 97 for P-384.
fn curve_of_point(point: &[u8]) -> Option<EllipticCurve> {
    match point.len() {
        65 => Some(EllipticCurve::P256),
        97 => Some(EllipticCurve::P384),
        _ => None,
    }
}

/// The one curve check, for every way an EC key is loaded: `alg` must be the curve's algorithm.
fn check_curve(alg: Algorithm, curve: Option<&EllipticCurve>) -> Result<(), ConfigError> {
    if curve.and_then(ec_algorithm) == Some(alg) {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::AlgorithmMismatch,
            "the EC key's curve does not fit the algorithm: ES256 needs P-256, ES384 needs P-384",
        ))
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
    fn a_missing_key_file_is_named_with_the_os_error() {
        let path = "/nonexistent/tower-jwt-auth/key.pem";
        let err = VerifyingKey::from_pem_file(Algorithm::RS256, path).unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::Io);
        let text = err.to_string();
        assert!(text.contains(path), "{text}");
        assert!(text.contains("os error 2"), "{text}");
        assert!(std::error::Error::source(&err).is_some());
    }

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn an_rsa_key_under_2048_bits_is_refused_however_it_is_loaded() {
        for alg in [Algorithm::RS256, Algorithm::PS256] {
            let err = VerifyingKey::from_pem(alg, key_file("rsa1024_public.pem")).unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::InvalidKey);
            assert!(err.to_string().contains("2048"), "{err}");
            let err = SigningKey::from_pem(alg, key_file("rsa1024_private.pem")).unwrap_err();
            assert_eq!(err.kind(), ConfigErrorKind::InvalidKey);
        }
        // As a JWK (n, e), and inside a JWK Set (skipped, so the set is empty).
        let public =
            jsonwebtoken::DecodingKey::from_rsa_pem(&key_file("rsa1024_public.pem")).unwrap();
        let jwk =
            jsonwebtoken::jwk::Jwk::from_decoding_key(&public, Some(Algorithm::RS256)).unwrap();
        let json = serde_json::to_string(&jwk).unwrap();
        assert_eq!(
            VerifyingKey::from_jwk(&json).unwrap_err().kind(),
            ConfigErrorKind::InvalidKey
        );
        let set = format!(r#"{{"keys":[{json}]}}"#);
        assert_eq!(
            KeySet::new().with_jwks(set).unwrap_err().kind(),
            ConfigErrorKind::NoKeys
        );
        // 2048 bits is fine.
        assert!(VerifyingKey::from_pem(Algorithm::RS256, key_file("rsa_public.pem")).is_ok());
    }

    #[test]
    fn ec_jwk_coordinates_must_fit_the_curve() {
        let pem = key_file("ec256_private.pem");
        let private = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&private, Algorithm::ES256).unwrap();
        let good = serde_json::to_value(&jwk).unwrap();
        assert!(VerifyingKey::from_jwk(good.to_string()).is_ok());
        let x = good["x"].as_str().unwrap().to_owned();
        for bad_x in [format!("AA{x}"), x[4..].to_owned()] {
            let mut bad = good.clone();
            bad["x"] = serde_json::Value::String(bad_x);
            assert!(VerifyingKey::from_jwk(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fetched_key_set_never_supplies_a_secret_or_a_private_key() {
        let ec = key_file("ec256_private.pem");
        let private = jsonwebtoken::EncodingKey::from_ec_pem(&ec).unwrap();
        let public = jsonwebtoken::jwk::Jwk::from_encoding_key(&private, Algorithm::ES256).unwrap();
        let public = serde_json::to_value(&public).unwrap();
        let mut with_d = public.clone();
        with_d["d"] = serde_json::json!("AAAA");
        with_d["kid"] = serde_json::json!("leaked");
        let oct = serde_json::json!({"kty": "oct", "alg": "HS256", "kid": "mac",
            "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA"});
        let doc = serde_json::json!({"keys": [oct, with_d, public]}).to_string();
        // A document you configure yourself may hold a MAC key…
        assert_eq!(KeySet::new().with_jwks(&doc).unwrap().len(), 3);
        // …one fetched from a URL keeps only the public key.
        let fetched = KeySet::from_remote_jwks(doc.as_bytes()).unwrap();
        assert_eq!(fetched.len(), 1);
        assert!(
            fetched
                .iter()
                .all(|k| k.algorithm() == Algorithm::ES256 && k.kid() != Some("leaked"))
        );
        let only_secrets = serde_json::json!({"keys": [oct]}).to_string();
        assert_eq!(
            KeySet::from_remote_jwks(only_secrets.as_bytes())
                .unwrap_err()
                .kind(),
            ConfigErrorKind::NoKeys
        );
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
