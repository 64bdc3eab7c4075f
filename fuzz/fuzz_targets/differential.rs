//! Differential: the same token to this crate's `Verifier` and to `jsonwebtoken::decode` with
//! equivalent settings (HS256, `exp` required, `nbf` checked, 60 s leeway, no audience, no
//! issuer). The verifier parses header and payload itself for speed, so any accept/reject
//! disagreement is a finding, unless it is one of the documented, deliberate differences (this
//! crate is stricter):
//!
//! - the header or the claims are not a JSON object (serde reads a struct from an array);
//! - the header has `crit` (no extension is implemented);
//! - a registered claim has the wrong JSON type, or appears twice;
//! - `iat` is in the future beyond the leeway;
//! - the token is longer than 8 KiB.
//!
//! The input is `header JSON 0xFF payload JSON [0xFF tail]`: both are signed with the key inside
//! the target, so the fuzzer explores what the parsers accept rather than fighting HMAC; a
//! non-empty tail replaces the signature, to cover mangled tokens too.
#![no_main]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{
    Algorithm, KeySet, RegisteredClaims, Validation, Verifier, VerifyingKey,
};

const SECRET: [u8; 32] = [7u8; 32];
const LEEWAY: u64 = 60;

fn ours() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap();
        Verifier::new(KeySet::from(key), Validation::new()).unwrap()
    })
}

fn theirs() -> &'static (jsonwebtoken::DecodingKey, jsonwebtoken::Validation) {
    static T: OnceLock<(jsonwebtoken::DecodingKey, jsonwebtoken::Validation)> = OnceLock::new();
    T.get_or_init(|| {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp"]);
        (jsonwebtoken::DecodingKey::from_secret(&SECRET), validation)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a deliberate difference explains a token this crate rejects and jsonwebtoken
/// accepts.
fn stricter_by_design(token: &str, header: &[u8], payload: &[u8]) -> bool {
    let is_object = |json: &[u8]| json.trim_ascii_start().first() == Some(&b'{');
    if token.len() > 8 * 1024 || !is_object(header) || !is_object(payload) {
        return true;
    }
    let header: serde_json::Value = match serde_json::from_slice(header) {
        Ok(h) => h,
        Err(_) => return true,
    };
    if header.get("crit").is_some() {
        return true;
    }
    match serde_json::from_slice::<RegisteredClaims>(payload) {
        Err(_) => true,
        Ok(claims) => claims.iat.is_some_and(|iat| iat > now() + LEEWAY),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let tail = parts.next().unwrap_or_default();
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = if tail.is_empty() {
        jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(&SECRET),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap()
    } else {
        String::from_utf8_lossy(tail).into_owned()
    };
    let token = format!("{message}.{signature}");

    let ours_ok = ours().verify::<serde_json::Value>(&token).is_ok();
    let (key, validation) = theirs();
    let theirs_ok = jsonwebtoken::decode::<serde_json::Value>(&token, key, validation).is_ok();
    if ours_ok == theirs_ok {
        return;
    }
    if !ours_ok && stricter_by_design(&token, header, payload) {
        return;
    }
    panic!(
        "disagreement: tower-jwt-auth {}, jsonwebtoken {} for header {:?} payload {:?} tail {:?}",
        if ours_ok { "accepts" } else { "rejects" },
        if theirs_ok { "accepts" } else { "rejects" },
        String::from_utf8_lossy(header),
        String::from_utf8_lossy(payload),
        String::from_utf8_lossy(tail),
    );
});
