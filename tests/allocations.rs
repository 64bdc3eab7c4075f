//! Heap allocations per request through `JwtAuth`, counted with a counting global allocator (its
//! own test binary). Counts, not timings: a regression in the hot path shows up here.
//!
//! `cargo test --all-features --test allocations -- --nocapture` prints the figures.

// The counting allocator is the only unsafe code in the project (a `GlobalAlloc` impl).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::{CacheSettings, JwtAuthLayer, KeySet, Validation, Verifier, VerifyingKey};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    username: String,
}

fn noop(_req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

const SECRET: &[u8] = b"allocation-test-secret-of-32-bytes!!";

/// Allocations made by one request through the layer (request construction excluded).
fn allocations_per_request(cache: CacheSettings) -> usize {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let verifier = Verifier::new(keys, Validation::new()).unwrap();
    let mut svc = JwtAuthLayer::<Claims>::new(verifier)
        .token_cache(cache)
        .layer(service_fn(noop));
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let claims = serde_json::json!({"sub": "1", "username": "user1", "exp": exp});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let header = format!("Bearer {token}");
    let mut cx = Context::from_waker(Waker::noop());
    let mut one = || {
        let req = Request::builder()
            .header("authorization", &header)
            .body(())
            .unwrap();
        let before = ALLOCATIONS.with(Cell::get);
        assert!(svc.poll_ready(&mut cx).is_ready());
        let fut = pin!(svc.call(req));
        let Poll::Ready(Ok(res)) = fut.poll(&mut cx) else {
            panic!("the no-op service answers at once")
        };
        assert_eq!(res.status(), 200);
        drop(res);
        ALLOCATIONS.with(Cell::get) - before
    };
    one(); // warm up (the first request fills the cache)
    one()
}

#[test]
fn allocations_per_request_are_few_and_a_cache_hit_needs_the_fewest() {
    let uncached = allocations_per_request(CacheSettings::disabled());
    let hit = allocations_per_request(CacheSettings::new());
    println!("allocations per HS256 request: cache off {uncached}, cache hit {hit}");
    // A hit: the extensions map and its boxed entry (the claims are shared, not copied).
    assert!(hit <= 3, "cache hit: {hit} allocations");
    assert!(hit < uncached, "cache hit {hit} vs cache off {uncached}");
    // Verification: decoded header and payload, the claims, the signature check's buffers.
    assert!(uncached <= 20, "cache off: {uncached} allocations");
}
