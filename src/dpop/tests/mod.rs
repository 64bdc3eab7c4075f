//! The proof checks RFC 9449 lists in its section 4.3: one proof per check, each breaking
//! exactly that one.

use http::{HeaderMap, HeaderValue, Method, Uri};
use serde_json::{Value, json};

use super::*;
use crate::keys::SigningKey;
use crate::time::unix_now;

const URL: &str = "https://api.example.com/protected";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";

fn load(alg: Algorithm, file: &str) -> DpopKey {
    let pem = std::fs::read(format!("{}/tests/keys/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    DpopKey::new(SigningKey::from_pem(alg, pem).unwrap()).unwrap()
}

fn es256() -> DpopKey {
    load(Algorithm::ES256, "ec256_private.pem")
}

fn dpop() -> Dpop {
    Dpop::new("https://api.example.com").unwrap()
}

fn headers(proof: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(DPOP, HeaderValue::from_str(proof).unwrap());
    h
}

fn good_header(key: &DpopKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk()})
}

fn good_claims() -> Value {
    json!({
        "jti": "e1j3V_bKic8-LAEB",
        "htm": "GET",
        "htu": URL,
        "iat": unix_now(),
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(TOKEN.as_bytes())),
    })
}

fn check_with(dpop: &Dpop, h: &HeaderMap) -> Result<DpopProof, AuthErrorKind> {
    dpop.check(
        &Method::GET,
        &Uri::from_static("/protected?x=1"),
        h,
        Some(TOKEN.as_bytes()),
        unix_now(),
    )
    .map_err(|e| e.kind())
}

fn check(proof: &str) -> Result<DpopProof, AuthErrorKind> {
    check_with(&dpop(), &headers(proof))
}

/// A proof from `key` with `header` and `claims` changed by `edit`.
fn proof_with(key: &DpopKey, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
    let (mut header, mut claims) = (good_header(key), good_claims());
    edit(&mut header, &mut claims);
    key.sign(&header, &claims).unwrap()
}

fn refused(proof: &str) {
    assert_eq!(
        check(proof).map(|p| p.jkt().to_owned()),
        Err(AuthErrorKind::InvalidDpopProof)
    );
}

#[test]
fn a_good_proof_passes_and_names_its_key() {
    let key = es256();
    let proof = check(&proof_with(&key, |_, _| {})).unwrap();
    assert_eq!(proof.jkt(), key.jkt());
    // The client helper's proofs pass too.
    let made = key
        .proof(&Method::GET, &format!("{URL}?q=1"), Some(TOKEN), None)
        .unwrap();
    assert_eq!(check(&made).unwrap().jkt(), key.jkt());
}

#[test]
fn every_accepted_key_type_works() {
    for (alg, file) in [
        (Algorithm::ES256, "ec256_private.pem"),
        (Algorithm::ES384, "ec384_private.pem"),
        (Algorithm::EdDSA, "ed25519_private.pem"),
        (Algorithm::PS256, "rsa_private.pem"),
        (Algorithm::RS256, "rsa_private.pem"),
    ] {
        let key = load(alg, file);
        let proof = key.proof(&Method::GET, URL, Some(TOKEN), None).unwrap();
        assert_eq!(check(&proof).unwrap().jkt(), key.jkt(), "{alg:?}");
    }
}

/// RFC 9864's `Ed25519` (what oauth4webapi and oidc-provider write for Ed25519 keys), in the
/// proof's `alg` and in its key's `alg`; pinned to Ed25519 keys.
#[test]
fn proofs_may_name_ed25519_fully_specified() {
    let key = load(Algorithm::EdDSA, "ed25519_private.pem");
    for (alg, key_alg) in [
        ("Ed25519", None),
        ("Ed25519", Some("Ed25519")),
        ("EdDSA", Some("Ed25519")),
    ] {
        let proof = proof_with(&key, |h, _| {
            h["alg"] = json!(alg);
            if let Some(key_alg) = key_alg {
                h["jwk"]["alg"] = json!(key_alg);
            }
        });
        assert_eq!(check(&proof).unwrap().jkt(), key.jkt(), "{alg} {key_alg:?}");
    }
    // The name on an EC key is refused.
    refused(&proof_with(&es256(), |h, _| h["alg"] = json!("Ed25519")));
    // The challenge names it.
    assert!(dpop().algs().contains("EdDSA Ed25519"), "{}", dpop().algs());
}

#[test]
fn exactly_one_dpop_header() {
    let key = es256();
    let proof = proof_with(&key, |_, _| {});
    assert_eq!(
        check_with(&dpop(), &HeaderMap::new()).err(),
        Some(AuthErrorKind::InvalidDpopProof)
    );
    let mut two = headers(&proof);
    two.append(DPOP, HeaderValue::from_str(&proof).unwrap());
    assert_eq!(
        check_with(&dpop(), &two).err(),
        Some(AuthErrorKind::InvalidDpopProof)
    );
}

#[test]
fn typ_must_be_dpop_jwt() {
    let key = es256();
    refused(&proof_with(&key, |h, _| h["typ"] = json!("JWT")));
    refused(&proof_with(&key, |h, _| {
        h.as_object_mut().unwrap().remove("typ");
    }));
}

#[test]
fn alg_must_be_accepted_and_asymmetric() {
    let key = es256();
    // `none` with no signature.
    let header = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()})).unwrap(),
    );
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good_claims()).unwrap());
    refused(&format!("{header}.{claims}."));
    // HS256 with the public key's bytes as a secret.
    refused(&proof_with(&key, |h, _| h["alg"] = json!("HS256")));
    // An algorithm this server does not accept.
    let only_eddsa = dpop().algorithms([Algorithm::EdDSA]).unwrap();
    assert_eq!(
        check_with(&only_eddsa, &headers(&proof_with(&key, |_, _| {}))).err(),
        Some(AuthErrorKind::InvalidDpopProof)
    );
    assert!(dpop().algorithms([Algorithm::HS256]).is_err());
    assert!(dpop().algorithms([]).is_err());
}

#[test]
fn the_jwk_must_be_public_and_fit_the_alg() {
    let key = es256();
    refused(&proof_with(&key, |h, _| h["jwk"]["d"] = json!("AAAA")));
    refused(&proof_with(&key, |h, _| {
        h.as_object_mut().unwrap().remove("jwk");
    }));
    refused(&proof_with(&key, |h, _| {
        h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"})
    }));
    // The header says ES384 but the key is P-256.
    refused(&proof_with(&key, |h, _| h["alg"] = json!("ES384")));
    // A JWK `alg` that disagrees with the header.
    refused(&proof_with(&key, |h, _| h["jwk"]["alg"] = json!("ES384")));
    // Critical extensions are not understood.
    refused(&proof_with(&key, |h, _| h["crit"] = json!(["exp"])));
}

#[test]
fn the_signature_must_be_by_the_jwk() {
    let key = es256();
    // The header carries another key than the one that signed.
    let foreign = load(Algorithm::EdDSA, "ed25519_private.pem");
    refused(&proof_with(&key, |h, _| {
        h["jwk"] = foreign.jwk().clone();
        h["alg"] = json!("EdDSA");
    }));
    // A tampered payload.
    let proof = proof_with(&key, |_, _| {});
    let mut parts: Vec<&str> = proof.split('.').collect();
    let changed = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&json!({"jti": "x", "htm": "GET", "htu": URL, "iat": unix_now()}))
            .unwrap(),
    );
    parts[1] = &changed;
    refused(&parts.join("."));
}

#[test]
fn htm_must_be_the_method() {
    refused(&proof_with(&es256(), |_, c| c["htm"] = json!("POST")));
    refused(&proof_with(&es256(), |_, c| c["htm"] = json!("get")));
}

#[test]
fn htu_must_be_the_request_url() {
    let key = es256();
    refused(&proof_with(&key, |_, c| {
        c["htu"] = json!("https://api.example.com/other")
    }));
    refused(&proof_with(&key, |_, c| {
        c["htu"] = json!("http://api.example.com/protected")
    }));
    refused(&proof_with(&key, |_, c| {
        c["htu"] = json!("https://evil.example/protected")
    }));
    // Normalised forms and a query are fine.
    for htu in [
        "HTTPS://API.EXAMPLE.COM:443/protected",
        "https://api.example.com/./protected?a=b",
    ] {
        let proof = proof_with(&key, |_, c| c["htu"] = json!(htu));
        assert!(check(&proof).is_ok(), "{htu}");
    }
}

#[test]
fn iat_must_be_recent() {
    let key = es256();
    refused(&proof_with(&key, |_, c| c["iat"] = json!(unix_now() - 120)));
    refused(&proof_with(&key, |_, c| c["iat"] = json!(unix_now() + 60)));
    refused(&proof_with(&key, |_, c| c["iat"] = json!("now")));
    refused(&proof_with(&key, |_, c| {
        c.as_object_mut().unwrap().remove("iat");
    }));
    // Within the window and the skew: fine.
    assert!(check(&proof_with(&key, |_, c| c["iat"] = json!(unix_now() - 50))).is_ok());
    assert!(check(&proof_with(&key, |_, c| c["iat"] = json!(unix_now() + 3))).is_ok());
}

#[test]
fn jti_must_be_present_and_short() {
    let key = es256();
    refused(&proof_with(&key, |_, c| {
        c.as_object_mut().unwrap().remove("jti");
    }));
    refused(&proof_with(&key, |_, c| c["jti"] = json!("")));
    refused(&proof_with(&key, |_, c| c["jti"] = json!("j".repeat(300))));
}

#[test]
fn a_jti_is_accepted_once() {
    let key = es256();
    let proof = proof_with(&key, |_, _| {});
    let dpop = dpop();
    let first = check_with(&dpop, &headers(&proof)).unwrap();
    assert!(matches!(first.claim(), ReplayCheck::Fresh));
    // The same proof again: it verifies, but its jti was seen (clones share the cache).
    let clone = dpop.clone();
    drop(dpop);
    let again = check_with(&clone, &headers(&proof)).unwrap();
    assert!(matches!(again.claim(), ReplayCheck::Replayed));
}

#[test]
fn ath_must_be_the_hash_of_the_access_token() {
    let key = es256();
    refused(&proof_with(&key, |_, c| {
        c.as_object_mut().unwrap().remove("ath");
    }));
    refused(&proof_with(&key, |_, c| {
        c["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(b"another token")))
    }));
}

#[test]
fn short_rsa_keys_are_refused() {
    let key = load(Algorithm::RS256, "rsa_private.pem");
    let mut short = key.jwk().clone();
    let n = short["n"].as_str().unwrap()[..200].to_owned();
    short["n"] = json!(n);
    refused(&proof_with(&key, |h, _| {
        h["jwk"] = short;
        h["alg"] = json!("RS256");
    }));
}

#[test]
fn garbage_is_refused_without_panicking() {
    for proof in ["", "a", "a.b.c", "....", "e30.e30.", &"x".repeat(10_000)] {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(proof) {
            h.insert(DPOP, v);
        }
        assert_eq!(
            check_with(&dpop(), &h).err(),
            Some(AuthErrorKind::InvalidDpopProof),
            "{proof}"
        );
    }
}

/// The headers of a GET with a proof for `url` and `Host: host`.
fn proof_for_host(url: &str, host: &'static str) -> HeaderMap {
    let proof = es256().proof(&Method::GET, url, Some(TOKEN), None).unwrap();
    let mut h = headers(&proof);
    h.insert(http::header::HOST, HeaderValue::from_static(host));
    h
}

#[test]
fn from_the_request_authority_the_host_header_names_the_server() {
    let plain = Dpop::from_request_authority();
    let url = "http://127.0.0.1:3000/protected";
    assert!(check_with(&plain, &proof_for_host(url, "127.0.0.1:3000")).is_ok());
    assert_eq!(
        check_with(&plain, &proof_for_host(url, "127.0.0.1:4000")).err(),
        Some(AuthErrorKind::InvalidDpopProof)
    );
}

#[test]
fn with_a_public_url_the_host_header_is_ignored() {
    // A proof made for another server, sent here with that server's name in `Host` (or as
    // the request's absolute URI).
    let url = "https://other.example.com/protected";
    let h = proof_for_host(url, "other.example.com");
    assert_eq!(
        check_with(&dpop(), &h).err(),
        Some(AuthErrorKind::InvalidDpopProof)
    );
    let absolute = Uri::from_static("https://other.example.com/protected");
    let checked = dpop().check(
        &Method::GET,
        &absolute,
        &h,
        Some(TOKEN.as_bytes()),
        unix_now(),
    );
    assert_eq!(
        checked.err().map(|e| e.kind()),
        Some(AuthErrorKind::InvalidDpopProof)
    );
}

#[test]
fn a_bad_public_url_fails_at_start() {
    for url in [
        "",
        "/api",
        "ftp://x.example",
        "https://u:p@x.example",
        "https://x.example/?q",
    ] {
        assert_eq!(
            Dpop::new(url).unwrap_err().kind(),
            crate::error::ConfigErrorKind::InvalidUrl,
            "{url}"
        );
    }
}

mod layer;

mod nonces {
    use super::*;

    const SECRET: [u8; 32] = [b'n'; 32];

    fn with_nonces() -> Dpop {
        dpop()
            .nonces(SECRET, std::time::Duration::from_secs(300))
            .unwrap()
    }

    fn check_at(dpop: &Dpop, proof: &str, now: u64) -> Result<DpopProof, AuthError> {
        dpop.check(
            &Method::GET,
            &Uri::from_static("/protected"),
            &headers(proof),
            Some(TOKEN.as_bytes()),
            now,
        )
    }

    #[test]
    fn a_proof_without_the_nonce_is_asked_for_it() {
        let dpop = with_nonces();
        let key = es256();
        let now = unix_now();
        let error = check_at(&dpop, &proof_with(&key, |_, _| {}), now).unwrap_err();
        assert_eq!(error.kind(), AuthErrorKind::UseDpopNonce);
        let nonce = error.dpop_nonce().unwrap().to_owned();
        // With it: accepted. A made-up one: asked again.
        let good = proof_with(&key, |_, c| c["nonce"] = json!(nonce));
        assert!(check_at(&dpop, &good, now).is_ok());
        let forged = proof_with(&key, |_, c| c["nonce"] = json!("AAAA"));
        assert_eq!(
            check_at(&dpop, &forged, now).unwrap_err().kind(),
            AuthErrorKind::UseDpopNonce
        );
        // Another node with the same secret agrees; one with another secret does not.
        assert!(check_at(&with_nonces(), &good, now).is_ok());
        let other = dpop_other_secret();
        assert_eq!(
            check_at(&other, &good, now).unwrap_err().kind(),
            AuthErrorKind::UseDpopNonce
        );
        // A bad proof is still a bad proof, nonce or not.
        let bad = proof_with(&key, |_, c| c["htm"] = json!("POST"));
        assert_eq!(
            check_at(&dpop, &bad, now).unwrap_err().kind(),
            AuthErrorKind::InvalidDpopProof
        );
    }

    fn dpop_other_secret() -> Dpop {
        dpop()
            .nonces([b'o'; 32], std::time::Duration::from_secs(300))
            .unwrap()
    }

    #[test]
    fn a_nonce_is_good_for_its_step_and_the_next() {
        let dpop = with_nonces();
        let key = es256();
        // The start of a 300 s step.
        let start = 1_800_000_000;
        let asking = proof_with(&key, |_, c| c["iat"] = json!(start));
        let error = check_at(&dpop, &asking, start).unwrap_err();
        let nonce = error.dpop_nonce().unwrap().to_owned();
        let proof_at = |now: u64| {
            proof_with(&key, |_, c| {
                c["nonce"] = json!(nonce);
                c["iat"] = json!(now);
            })
        };
        assert!(check_at(&dpop, &proof_at(start + 299), start + 299).is_ok());
        assert!(check_at(&dpop, &proof_at(start + 599), start + 599).is_ok());
        assert_eq!(
            check_at(&dpop, &proof_at(start + 600), start + 600)
                .unwrap_err()
                .kind(),
            AuthErrorKind::UseDpopNonce
        );
        assert!(
            super::dpop()
                .nonces([1; 16], std::time::Duration::from_secs(60))
                .is_err()
        );
    }
}

/// Proofs made by PyJWT (the fuzzing seeds, for the request the fuzz target makes) pass, and
/// name the thumbprint this crate computes for the same key.
#[test]
fn proofs_made_by_pyjwt_pass() {
    let token = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    for (file, key) in [
        ("es256", es256()),
        ("eddsa", load(Algorithm::EdDSA, "ed25519_private.pem")),
    ] {
        let path = format!(
            "{}/fuzz/seeds/dpop_proof/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let proof = std::fs::read_to_string(path).unwrap();
        let mut h = headers(proof.trim());
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("api.example.com"),
        );
        let checked = Dpop::new("http://api.example.com")
            .unwrap()
            .check(
                &Method::GET,
                &Uri::from_static("/protected"),
                &h,
                Some(token),
                1_800_000_000,
            )
            .unwrap();
        assert_eq!(checked.jkt(), key.jkt(), "{file}");
    }
}
