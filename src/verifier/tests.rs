//! Unit tests of `verifier`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::jwks::JwksService;
use crate::keys::SigningKey;
use crate::keys::VerifyingKey;

const A: [u8; 32] = [b'a'; 32];
const B: [u8; 32] = [b'b'; 32];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    crate::crypto::install_crypto_provider().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(ToOwned::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims() -> Value {
    json!({"sub": "s", "exp": now() + 60})
}

fn hs(secret: [u8; 32]) -> VerifyingKey {
    VerifyingKey::from_secret(Algorithm::HS256, secret).unwrap()
}

fn kind(r: Result<Claims<Value>, AuthError>) -> AuthErrorKind {
    r.unwrap_err().kind()
}

#[test]
fn empty_key_set_is_a_config_error() {
    let err = Verifier::new(KeySet::new(), Validation::new()).unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::NoKeys);
}

#[test]
fn kid_selects_among_keys_of_one_algorithm() {
    let keys = KeySet::new()
        .with_key(hs(A).with_kid("a"))
        .with_key(hs(B).with_kid("b"));
    let v = Verifier::new(keys, Validation::new()).unwrap();
    assert!(v.verify::<Value>(&sign(&A, Some("a"), &claims())).is_ok());
    assert!(v.verify::<Value>(&sign(&B, Some("b"), &claims())).is_ok());
    assert_eq!(
        kind(v.verify(&sign(&A, Some("b"), &claims()))),
        AuthErrorKind::InvalidSignature
    );
    assert_eq!(
        kind(v.verify(&sign(&A, Some("c"), &claims()))),
        AuthErrorKind::UnknownKey
    );
}

#[test]
fn token_without_kid_needs_exactly_one_candidate() {
    let two = KeySet::new()
        .with_key(hs(A).with_kid("a"))
        .with_key(hs(B).with_kid("b"));
    let v = Verifier::new(two, Validation::new()).unwrap();
    assert_eq!(
        kind(v.verify(&sign(&A, None, &claims()))),
        AuthErrorKind::UnknownKey
    );
    let one = KeySet::from(hs(A).with_kid("a"));
    let v = Verifier::new(one, Validation::new()).unwrap();
    assert!(v.verify::<Value>(&sign(&A, None, &claims())).is_ok());
}

#[test]
fn key_without_kid_accepts_any_kid() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    assert!(
        v.verify::<Value>(&sign(&A, Some("whatever"), &claims()))
            .is_ok()
    );
}

#[test]
fn algorithm_without_a_key_is_unsupported() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(),
        &EncodingKey::from_secret(&[b'a'; 64]),
    )
    .unwrap();
    assert_eq!(kind(v.verify(&token)), AuthErrorKind::UnsupportedAlgorithm);
}

#[test]
fn token_over_the_cap_is_not_decoded() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new().max_token_len(64)).unwrap();
    assert_eq!(
        kind(v.verify(&sign(&A, None, &claims()))),
        AuthErrorKind::TokenTooLong
    );
}

#[test]
fn required_claims_are_enforced() {
    let validation = Validation::new().require_claim("jti").require_claim("role");
    let v = Verifier::new(KeySet::from(hs(A)), validation).unwrap();
    let full = json!({"exp": now() + 60, "jti": "x", "role": "admin"});
    assert!(v.verify::<Value>(&sign(&A, None, &full)).is_ok());
    let no_jti = json!({"exp": now() + 60, "role": "admin"});
    assert_eq!(
        kind(v.verify(&sign(&A, None, &no_jti))),
        AuthErrorKind::MissingClaim
    );
    let no_role = json!({"exp": now() + 60, "jti": "x"});
    assert_eq!(
        kind(v.verify(&sign(&A, None, &no_role))),
        AuthErrorKind::MissingClaim
    );
}

#[test]
fn leeway_is_applied_to_exp_and_nbf() {
    let v = Verifier::new(
        KeySet::from(hs(A)),
        Validation::new().leeway(Duration::from_secs(30)),
    )
    .unwrap();
    let ok = json!({"exp": now() - 10, "nbf": now() + 10});
    assert!(v.verify::<Value>(&sign(&A, None, &ok)).is_ok());
    let expired = json!({"exp": now() - 100});
    assert_eq!(
        kind(v.verify(&sign(&A, None, &expired))),
        AuthErrorKind::Expired
    );
    let early = json!({"exp": now() + 600, "nbf": now() + 100});
    assert_eq!(
        kind(v.verify(&sign(&A, None, &early))),
        AuthErrorKind::NotYetValid
    );
}

#[test]
fn mistyped_registered_claims_are_rejected() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    for bad in [
        json!({"exp": now() + 60, "iat": "yesterday"}),
        json!({"exp": now() + 60, "jti": 7}),
        json!({"exp": now() + 60, "sub": ["a"]}),
        json!({"exp": now() + 60, "nbf": {}}),
    ] {
        assert_eq!(
            kind(v.verify(&sign(&A, None, &bad))),
            AuthErrorKind::InvalidClaim,
            "{bad}"
        );
    }
}

#[test]
fn typ_is_checked_when_configured() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new().typ("at+jwt")).unwrap();
    let with_typ = |typ: Option<&str>| {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = typ.map(ToOwned::to_owned);
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&A)).unwrap()
    };
    assert!(v.verify::<Value>(&with_typ(Some("at+jwt"))).is_ok());
    assert!(
        v.verify::<Value>(&with_typ(Some("application/AT+JWT")))
            .is_ok()
    );
    assert_eq!(
        kind(v.verify(&with_typ(Some("JWT")))),
        AuthErrorKind::InvalidType
    );
    assert_eq!(kind(v.verify(&with_typ(None))), AuthErrorKind::InvalidType);
}

#[test]
fn crit_header_is_rejected() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["b64".into()]);
    let token = jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&A)).unwrap();
    assert_eq!(kind(v.verify(&token)), AuthErrorKind::UnsupportedAlgorithm);
}

/// A token over hand-made JSON segments, correctly signed with `A`.
fn signed(header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    crate::crypto::install_crypto_provider().unwrap();
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(&A),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[test]
fn a_header_that_is_not_a_json_object_is_malformed() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let payload = claims().to_string();
    assert!(
        v.verify::<Value>(&signed(r#"{"alg":"HS256"}"#, &payload))
            .is_ok()
    );
    for header in [
        r#"["HS256"]"#,
        r#"["HS256", null, null, null]"#,
        r#" ["HS256"]"#,
    ] {
        assert_eq!(
            kind(v.verify(&signed(header, &payload))),
            AuthErrorKind::Malformed,
            "{header}"
        );
    }
}

#[test]
fn crit_in_any_form_is_rejected() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let payload = claims().to_string();
    for crit in ["null", "[]", r#"["exp"]"#, r#""exp""#, "{}", "0"] {
        let header = format!(r#"{{"alg":"HS256","crit":{crit}}}"#);
        assert_eq!(
            kind(v.verify(&signed(&header, &payload))),
            AuthErrorKind::UnsupportedAlgorithm,
            "crit {crit}"
        );
    }
}

#[test]
fn claims_that_are_not_a_json_object_are_invalid() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let exp = now() + 60;
    for payload in [
        format!("[null,\"s\",[],{exp}]"),
        format!(" [{exp}]"),
        "5".into(),
    ] {
        assert_eq!(
            kind(v.verify(&signed(r#"{"alg":"HS256"}"#, &payload))),
            AuthErrorKind::InvalidClaim,
            "{payload}"
        );
    }
}

#[test]
fn json_that_is_not_utf8_is_malformed_even_in_ignored_members() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let exp = now() + 60;
    let mut header = br#"{"alg":"HS256","x":"#.to_vec();
    header.extend_from_slice(b"\"\xff\xfe\"}");
    let mut payload = format!(r#"{{"exp":{exp},"x":"#).into_bytes();
    payload.extend_from_slice(b"\"\xc3\x28\"}");
    let good_payload = format!(r#"{{"exp":{exp}}}"#).into_bytes();
    for (h, p) in [
        (&header[..], &good_payload[..]),
        (br#"{"alg":"HS256"}"#, &payload[..]),
    ] {
        let token = signed(h, p);
        assert_eq!(kind(v.verify(&token)), AuthErrorKind::Malformed);
    }
}

#[test]
fn a_duplicate_header_member_is_malformed() {
    let v = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let header = r#"{"alg":"HS256","alg":"none"}"#;
    assert_eq!(
        kind(v.verify(&signed(header, claims().to_string()))),
        AuthErrorKind::Malformed
    );
}

#[test]
fn published_jwks_verifies_the_issuers_tokens() {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/keys/ec256_private.pem"
    ))
    .unwrap();
    let signing = SigningKey::from_pem(Algorithm::ES256, &pem).unwrap();
    let published = JwksService::new(&KeySet::from(signing.verifying_key().unwrap())).unwrap();
    let keys = KeySet::new()
        .with_jwks(published.document().unwrap())
        .unwrap();
    let v = Verifier::new(keys, Validation::new()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = signing.kid().map(ToOwned::to_owned);
    assert!(header.kid.is_some());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap();
    let verified = v.verify::<Value>(&token).unwrap();
    assert_eq!(verified.registered().sub.as_deref(), Some("s"));
}

mod several_issuers {
    use super::*;

    fn token(secret: u8, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(&[secret; 32]),
        )
        .unwrap()
    }

    fn verifier() -> Verifier {
        let key = |secret: u8| {
            KeySet::from(
                crate::keys::VerifyingKey::from_secret(Algorithm::HS256, [secret; 32])
                    .unwrap()
                    .with_kid("k1"),
            )
        };
        let a = Verifier::new(
            key(1),
            Validation::new().issuer("https://a").audience("api"),
        );
        let b = Verifier::new(key(2), Validation::new().issuer("https://b"));
        Verifier::for_issuers([a.unwrap(), b.unwrap()]).unwrap()
    }

    fn kind(result: Result<Claims<serde_json::Value>, AuthError>) -> Option<AuthErrorKind> {
        result.err().map(|e| e.kind())
    }

    #[test]
    fn each_issuer_verifies_with_its_own_keys_only() {
        crate::crypto::install_crypto_provider().unwrap();
        let v = verifier();
        let exp = crate::time::unix_now() + 600;
        let a = serde_json::json!({"iss": "https://a", "aud": "api", "exp": exp});
        let b = serde_json::json!({"iss": "https://b", "exp": exp});
        assert_eq!(kind(v.verify(&token(1, &a))), None);
        assert_eq!(kind(v.verify(&token(2, &b))), None);
        // Same kid, B's key, claiming A: checked with A's key.
        assert_eq!(
            kind(v.verify(&token(2, &a))),
            Some(AuthErrorKind::InvalidSignature)
        );
        assert_eq!(
            kind(v.verify(&token(1, &b))),
            Some(AuthErrorKind::InvalidSignature)
        );
        // A's own rules: its audience.
        let a_without_aud = serde_json::json!({"iss": "https://a", "aud": "other", "exp": exp});
        assert_eq!(
            kind(v.verify(&token(1, &a_without_aud))),
            Some(AuthErrorKind::InvalidAudience)
        );
        let nobody = serde_json::json!({"iss": "https://c", "exp": exp});
        assert_eq!(
            kind(v.verify(&token(1, &nobody))),
            Some(AuthErrorKind::InvalidIssuer)
        );
        let anonymous = serde_json::json!({"exp": exp});
        assert_eq!(
            kind(v.verify(&token(1, &anonymous))),
            Some(AuthErrorKind::MissingClaim)
        );
        let typed = serde_json::json!({"iss": 5, "exp": exp});
        assert_eq!(
            kind(v.verify(&token(1, &typed))),
            Some(AuthErrorKind::InvalidClaim)
        );
        assert_eq!(kind(v.verify("a.b.c")), Some(AuthErrorKind::Malformed));
    }

    #[test]
    fn the_cache_identity_stays_until_a_key_set_changes() {
        let ring = crate::keys::KeyRing::new(
            crate::keys::SigningKey::from_secret(Algorithm::HS256, [3u8; 32]).unwrap(),
        );
        let a = Verifier::from_source(ring.clone(), Validation::new().issuer("https://a"));
        let b = Verifier::new(
            KeySet::from(
                crate::keys::VerifyingKey::from_secret(Algorithm::HS256, [2u8; 32]).unwrap(),
            ),
            Validation::new().issuer("https://b"),
        );
        let v = Verifier::for_issuers([a.unwrap(), b.unwrap()]).unwrap();
        let first = v.current_keys().unwrap();
        assert!(Arc::ptr_eq(&first, &v.current_keys().unwrap()));
        ring.rotate(crate::keys::SigningKey::from_secret(Algorithm::HS256, [4u8; 32]).unwrap());
        assert!(!Arc::ptr_eq(&first, &v.current_keys().unwrap()));
    }

    #[test]
    fn misconfigurations_are_refused() {
        let keys = || {
            KeySet::from(
                crate::keys::VerifyingKey::from_secret(Algorithm::HS256, [1u8; 32]).unwrap(),
            )
        };
        let named = |iss: &str| Verifier::new(keys(), Validation::new().issuer(iss)).unwrap();
        let unnamed = Verifier::new(keys(), Validation::new()).unwrap();
        assert!(Verifier::for_issuers([]).is_err());
        assert!(Verifier::for_issuers([unnamed]).is_err());
        assert!(Verifier::for_issuers([named("x"), named("x")]).is_err());
        let multi = Verifier::for_issuers([named("x")]).unwrap();
        assert!(Verifier::for_issuers([multi, named("y")]).is_err());
    }
}

/// A token signed by hand with `header` (JSON) and `key` under `alg`.
fn sign_raw(header: &Value, claims: &Value, key: &SigningKey, alg: Algorithm) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key.encoding_key(), alg).unwrap();
    format!("{message}.{signature}")
}

/// RFC 9864: `Ed25519` is EdDSA on an Ed25519 key, in a token's header and in a JWK's `alg`,
/// and nothing else: an `Ed25519` token never verifies with a key of another algorithm.
#[test]
fn the_fully_specified_ed25519_name_is_eddsa_on_ed25519_keys() {
    let key = SigningKey::from_pem(
        Algorithm::EdDSA,
        include_bytes!("../../tests/keys/ed25519_private.pem"),
    )
    .unwrap();
    let public = key.verifying_key().unwrap();
    let token = |alg: &str| {
        sign_raw(
            &json!({"alg": alg, "typ": "JWT"}),
            &claims(),
            &key,
            Algorithm::EdDSA,
        )
    };
    let verifier = Verifier::new(KeySet::from(public.clone()), Validation::new()).unwrap();
    for alg in ["EdDSA", "Ed25519"] {
        assert!(verifier.verify::<Value>(&token(alg)).is_ok(), "{alg}");
    }
    // A key published as `Ed25519`.
    let document = JwksService::new(&KeySet::from(public))
        .unwrap()
        .document()
        .unwrap();
    let mut jwk: Value = serde_json::from_slice(&document).unwrap();
    jwk["keys"][0]["alg"] = "Ed25519".into();
    let published = KeySet::new().with_jwks(jwk.to_string()).unwrap();
    let verifier = Verifier::new(published, Validation::new()).unwrap();
    for alg in ["EdDSA", "Ed25519"] {
        assert!(
            verifier.verify::<Value>(&token(alg)).is_ok(),
            "published: {alg}"
        );
    }
    // Another algorithm's keys: refused, as for `EdDSA`.
    let verifier = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    assert_eq!(
        kind(verifier.verify(&token("Ed25519"))),
        AuthErrorKind::UnsupportedAlgorithm
    );
    // Any other spelling is not a name.
    assert_eq!(
        kind(verifier.verify(&token("ed25519"))),
        AuthErrorKind::Malformed
    );
}

/// A token whose claims do not fit the claims type is refused naming the claim and what is
/// wrong, never the value.
#[test]
fn a_claim_that_does_not_fit_is_named() {
    #[derive(Debug, serde::Deserialize)]
    struct Demo {
        #[allow(dead_code)]
        username: String,
        #[allow(dead_code)]
        #[serde(default)]
        level: Option<u8>,
    }
    let verifier = Verifier::new(KeySet::from(hs(A)), Validation::new()).unwrap();
    let refused = |claims: Value| {
        let mut claims = claims;
        claims["exp"] = json!(now() + 300);
        verifier
            .verify::<Demo>(&sign(&A, None, &claims))
            .unwrap_err()
    };
    let missing = refused(json!({"sub": "client-1", "scope": "api.read"}));
    assert_eq!(missing.kind(), AuthErrorKind::InvalidClaim);
    assert_eq!(missing.claim_problem(), Some("`username` is missing"));
    assert_eq!(
        missing.to_string(),
        "the token claims are invalid: `username` is missing"
    );
    let wrong = refused(json!({"username": "u", "level": "secret-value-9"}));
    assert_eq!(
        wrong.claim_problem(),
        Some("`level` has the wrong type or value")
    );
    assert!(!wrong.to_string().contains("secret-value-9"));
    // A registered claim of the wrong type is named too.
    let exp = verifier
        .verify::<Value>(&sign(&A, None, &json!({"exp": "tomorrow"})))
        .unwrap_err();
    assert_eq!(
        exp.claim_problem(),
        Some("`exp` has the wrong type or value")
    );
}
