//! JWS algorithm names as tokens, key sets and DPoP proofs write them: RFC 7518's, and RFC
//! 9864's fully-specified `Ed25519`, which is EdDSA on an Ed25519 key. Ed25519 is the only
//! EdDSA curve this crate (and jsonwebtoken) verifies, so `Ed25519` maps to
//! [`Algorithm::EdDSA`] and is pinned to Ed25519 keys like `EdDSA` is: a JWK that names
//! `Ed25519` for any other key is refused.

use std::borrow::Cow;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::{Map, Value};

/// RFC 9864's name for EdDSA with Ed25519.
pub(crate) const ED25519: &str = "Ed25519";

/// The algorithm a JWS `alg` names, `Ed25519` included; `None` for anything else.
pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
    if name == ED25519 {
        Some(Algorithm::EdDSA)
    } else {
        name.parse().ok()
    }
}

/// Deserialize an `alg` member (`#[serde(deserialize_with = …)]`).
pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
    let name = Cow::<'de, str>::deserialize(d)?;
    from_name(&name)
        .ok_or_else(|| serde::de::Error::custom("not a supported JWS signature algorithm"))
}

/// The names under which `alg` is advertised (`algs`, `*_alg_values_supported`): EdDSA also as
/// `Ed25519`, so clients that sign with the fully-specified name know it is accepted.
#[cfg_attr(not(feature = "dpop"), allow(dead_code))]
pub(crate) fn advertised(alg: Algorithm) -> impl Iterator<Item = String> {
    let fully_specified = (alg == Algorithm::EdDSA).then(|| ED25519.to_owned());
    std::iter::once(format!("{alg:?}")).chain(fully_specified)
}

/// A JWK from its JSON members, reading `"alg": "Ed25519"` as `EdDSA` when the key is an
/// Ed25519 key (`kty` `OKP`, `crv` `Ed25519`); on any other key it stays an unknown algorithm,
/// which loading the key refuses.
pub(crate) fn jwk(mut members: Map<String, Value>) -> Result<Jwk, serde_json::Error> {
    let is_ed25519 = members.get("kty").and_then(Value::as_str) == Some("OKP")
        && members.get("crv").and_then(Value::as_str) == Some(ED25519);
    if is_ed25519 && members.get("alg").and_then(Value::as_str) == Some(ED25519) {
        members.insert("alg".to_owned(), Value::from("EdDSA"));
    }
    serde_json::from_value(Value::Object(members))
}

/// [`jwk`] from JSON text.
pub(crate) fn jwk_from_slice(json: &[u8]) -> Result<Jwk, serde_json::Error> {
    jwk(serde_json::from_slice(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn ed25519_is_eddsa_and_nothing_else_is_new() {
        assert_eq!(from_name("Ed25519"), Some(Algorithm::EdDSA));
        assert_eq!(from_name("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(from_name("RS256"), Some(Algorithm::RS256));
        for bad in ["ed25519", "Ed448", "none", "", "ES256K"] {
            assert_eq!(from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_jwk_naming_ed25519_is_pinned_to_ed25519_keys() {
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "Ed25519", "x": X});
        let jwk = jwk(ed.as_object().unwrap().clone()).unwrap();
        assert_eq!(
            jwk.common.key_algorithm,
            Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA)
        );
        // The fully-specified name on another key stays unknown to jsonwebtoken, and the key
        // is refused when it is loaded.
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "Ed25519", "x": X, "y": X});
        let parsed = super::jwk(ec.as_object().unwrap().clone()).unwrap();
        assert_eq!(
            parsed.common.key_algorithm,
            Some(jsonwebtoken::jwk::KeyAlgorithm::UNKNOWN_ALGORITHM)
        );
        assert!(crate::keys::VerifyingKey::from_jwk(ec.to_string()).is_err());
        assert!(crate::keys::VerifyingKey::from_jwk(ed.to_string()).is_ok());
    }

    #[test]
    fn eddsa_is_advertised_under_both_names() {
        let names = |alg| advertised(alg).collect::<Vec<_>>();
        assert_eq!(names(Algorithm::EdDSA), ["EdDSA", "Ed25519"]);
        assert_eq!(names(Algorithm::ES256), ["ES256"]);
    }
}
