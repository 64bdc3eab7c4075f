//! The login request body: arbitrary bytes as a JSON login request. Must never panic, and must
//! answer 200, 400, 401 or 413.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use tower::Service;
use tower_jwt_auth::login::{InMemoryUsers, LoginService, TokenIssuer};
use tower_jwt_auth::{Algorithm, SigningKey};

fn service() -> &'static LoginService<InMemoryUsers<serde_json::Value>> {
    static S: OnceLock<LoginService<InMemoryUsers<serde_json::Value>>> = OnceLock::new();
    S.get_or_init(|| {
        // Cheap argon2 parameters: the fuzzer explores parsing, not hashing.
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        let users = InMemoryUsers::with_params(params)
            .unwrap()
            .with_user("user1", "password1", serde_json::json!({"sub": "1"}))
            .unwrap();
        let issuer =
            TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [3u8; 32]).unwrap());
        LoginService::new(users, issuer)
    })
}

fuzz_target!(|data: &[u8]| {
    let req = Request::post("/login")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(data)))
        .unwrap();
    let mut svc = service().clone();
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(res) = fut.as_mut().poll(&mut cx) {
            let status = res.unwrap().status().as_u16();
            assert!(matches!(status, 200 | 400 | 401 | 413), "{status}");
            break;
        }
    }
});
