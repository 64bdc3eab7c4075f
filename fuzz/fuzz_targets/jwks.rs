//! JWK and JWK Set parsing: arbitrary bytes. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{KeySet, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    let _ = VerifyingKey::from_jwk(data);
    if let Ok(keys) = KeySet::new().with_jwks(data) {
        // A parsed set must be publishable and usable.
        let _ = tower_jwt_auth::JwksService::new(&keys);
    }
});
