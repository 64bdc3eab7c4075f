//! Token extraction and verification: arbitrary header values and tokens against a layer with
//! real keys (HS256, RS256, ES256, EdDSA) and every token source. Must never panic, and must
//! answer 200, 400 or 401.
#![no_main]

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{
    Algorithm, JwtAuthLayer, KeySet, TokenSource, Validation, Verifier, VerifyingKey,
};

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let keys = KeySet::new()
            .with_key(VerifyingKey::from_secret(Algorithm::HS256, [7u8; 32]).unwrap())
            .with_key(
                VerifyingKey::from_pem(Algorithm::RS256, key("rsa_public.pem"))
                    .unwrap()
                    .with_kid("rsa"),
            )
            .with_key(VerifyingKey::from_pem(Algorithm::ES256, key("ec256_public.pem")).unwrap())
            .with_key(VerifyingKey::from_pem(Algorithm::EdDSA, key("ed25519_public.pem")).unwrap());
        Verifier::new(keys, Validation::new().issuer("fuzz").require_claim("sub")).unwrap()
    })
}

fn noop(_req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

fuzz_target!(|data: &[u8]| {
    // Split the input into an Authorization value, a cookie value and a query string.
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let authorization = parts.next().unwrap_or_default();
    let cookie = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();

    let layer = JwtAuthLayer::<serde_json::Value>::new(verifier().clone()).token_sources([
        TokenSource::bearer(),
        TokenSource::authorization_scheme("JWT").unwrap(),
        TokenSource::cookie("access_token"),
        TokenSource::query("access_token"),
    ]);
    let mut svc = layer.layer(service_fn(noop));

    let mut req = Request::builder();
    if let Ok(v) = HeaderValue::from_bytes(authorization) {
        req = req.header("authorization", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(cookie) {
        req = req.header("cookie", v);
    }
    let uri = format!("/?{}", String::from_utf8_lossy(query));
    let req = match req.uri(uri.as_str()).body(()) {
        Ok(r) => r,
        Err(_) => return,
    };
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(res)) => assert!(matches!(res.status().as_u16(), 200 | 400 | 401)),
        _ => panic!("a static key set answers at once"),
    }

    // The token alone, through the verifier.
    if let Ok(token) = std::str::from_utf8(authorization) {
        let _ = verifier().verify::<serde_json::Value>(token);
    }
});
