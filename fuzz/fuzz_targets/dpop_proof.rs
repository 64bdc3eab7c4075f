//! DPoP proof checks: arbitrary bytes as the `DPoP` header of a request with a DPoP access
//! token. Must never panic; whatever passes must name a key thumbprint.
#![no_main]

use http::{HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::dpop::Dpop;

const TOKEN: &[u8] = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("dpop", value);
    let Ok(dpop) = Dpop::new("http://api.example.com") else {
        return;
    };
    // Any time: the checks must hold whatever the clock says.
    for now in [0, 1_800_000_000, u64::MAX] {
        if let Ok(proof) = dpop.check(
            &Method::GET,
            &Uri::from_static("/protected"),
            &headers,
            Some(TOKEN),
            now,
        ) {
            assert_eq!(proof.jkt().len(), 43);
        }
    }
});
