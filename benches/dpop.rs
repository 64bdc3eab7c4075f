//! What DPoP costs per request: checking one proof (`Dpop::check`: parse, the signature with
//! the key from its header, the claims, the key's thumbprint) for ES256 and EdDSA proofs, next
//! to the bare signature verification of the same proof with the same backend (what no proof
//! check can go below), and
//! one request through `JwtAuth` with a DPoP-bound HS256 token (verified-token cache hot, a
//! fresh proof each time, the in-memory replay cache) next to the same token as a bearer token.
//!
//! ```not_rust
//! cargo bench --bench dpop
//! ```

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_main};
use http::{Method, Request, Response, Uri};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::dpop::{Dpop, DpopKey, MemoryReplayCache, ReplayCache, ReplayEntry};
use tower_jwt_auth::{
    Algorithm, JwtAuthLayer, KeySet, SigningKey, Validation, Verifier, VerifyingKey,
};

const SECRET: [u8; 32] = [7u8; 32];
const URL: &str = "http://api.example.com/protected";

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn dpop_key(alg: Algorithm) -> DpopKey {
    let file = match alg {
        Algorithm::ES256 => "ec256_private.pem",
        _ => "ed25519_private.pem",
    };
    DpopKey::new(SigningKey::from_pem(alg, key_file(file)).unwrap()).unwrap()
}

fn token(jkt: Option<&str>) -> String {
    let mut claims = serde_json::json!({"sub": "1", "exp": 4_000_000_000u64});
    if let Some(jkt) = jkt {
        claims["cnf"] = serde_json::json!({ "jkt": jkt });
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&SECRET),
    )
    .unwrap()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn noop(_req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

/// One request through the layer. Not inlined, so that callgrind can count its instructions.
#[inline(never)]
fn through_layer<S>(svc: &mut S, req: Request<()>, cx: &mut Context<'_>)
where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    assert!(svc.poll_ready(cx).is_ready());
    let fut = pin!(svc.call(req));
    match fut.poll(cx) {
        Poll::Ready(Ok(res)) => assert_eq!(res.status(), 200),
        _ => panic!("the no-op service answers at once"),
    }
}

fn request(authorization: &str, proof: Option<String>) -> Request<()> {
    let mut req = Request::builder()
        .uri("/protected")
        .header("host", "api.example.com")
        .header(http::header::AUTHORIZATION, authorization);
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    req.body(()).unwrap()
}

fn bench(c: &mut Criterion) {
    tower_jwt_auth::install_crypto_provider().unwrap();
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let verifier = Verifier::new(keys, Validation::new()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());

    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = dpop_key(alg);
        let bound = token(Some(key.jkt()));
        let mut group = c.benchmark_group(format!("DPoP {alg:?} proof"));

        // The proof check alone (the replay cache is not asked, so one proof serves).
        let dpop = Dpop::new("http://api.example.com").unwrap();
        let proof = key.proof(&Method::GET, URL, Some(&bound), None).unwrap();
        let headers = request("", Some(proof)).headers().clone();
        let uri = Uri::from_static("/protected");
        let now = now_secs();
        group.bench_function("Dpop::check", |b| {
            b.iter(|| {
                dpop.check(&Method::GET, &uri, &headers, Some(bound.as_bytes()), now)
                    .unwrap()
            });
        });

        // The floor: the proof's signature alone, verified by jsonwebtoken's backend with the
        // public key already parsed.
        let public = key_file(match alg {
            Algorithm::ES256 => "ec256_public.pem",
            _ => "ed25519_public.pem",
        });
        let public = match alg {
            Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(&public),
            _ => jsonwebtoken::DecodingKey::from_ed_pem(&public),
        }
        .unwrap();
        let signed = key.proof(&Method::GET, URL, Some(&bound), None).unwrap();
        let (message, signature) = signed.rsplit_once('.').unwrap();
        group.bench_function("bare signature verification", |b| {
            b.iter(|| {
                assert!(
                    jsonwebtoken::crypto::verify(signature, message.as_bytes(), &public, alg)
                        .unwrap()
                );
            });
        });

        // One request, a fresh proof each time (made outside the measurement). One key makes
        // every proof here: lift its share of the replay cache (the default would refuse it
        // past 125,000 proofs a minute).
        let replay = MemoryReplayCache::new().per_key_limit(u32::MAX);
        let mut svc = JwtAuthLayer::<serde_json::Value>::new(verifier.clone())
            .dpop(
                Dpop::new("http://api.example.com")
                    .unwrap()
                    .replay_cache(replay),
            )
            .layer(service_fn(noop));
        let authorization = format!("DPoP {bound}");
        group.bench_function("request, bound token (cache hot) + proof", |b| {
            b.iter_batched(
                || {
                    let proof = key.proof(&Method::GET, URL, Some(&bound), None).unwrap();
                    request(&authorization, Some(proof))
                },
                |req| through_layer(&mut svc, req, &mut cx),
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }

    // The replay cache under a flood: an insert costs the same with room and when full (no
    // sweep), and one key cannot take everyone's room.
    let mut group = c.benchmark_group("DPoP replay cache");
    let expires = now_secs() + 60;
    let entry = |i: u64, key: u8| {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&i.to_be_bytes());
        ReplayEntry::new(id, [key; 16], expires)
    };
    for (name, held, capacity) in [
        ("insert, 100,000 held (room)", 100_000u64, 50_000_000),
        (
            "insert, 1,000,000 held (full: refused)",
            1_000_000,
            1_000_000,
        ),
    ] {
        let cache = MemoryReplayCache::with_capacity(capacity).per_key_limit(u32::MAX);
        for i in 0..held {
            let _ = cache.first_use(&entry(i, (i % 251) as u8));
        }
        let mut next = held;
        group.bench_function(name, |b| {
            b.iter(|| {
                next += 1;
                cache.first_use(&entry(next, (next % 251) as u8))
            });
        });
    }
    group.finish();

    // What accepting DPoP costs a bearer request.
    let mut group = c.benchmark_group("DPoP baseline");
    let plain = token(None);
    let authorization = format!("Bearer {plain}");
    let layer = JwtAuthLayer::<serde_json::Value>::new(verifier);
    for (name, layer) in [
        ("request, bearer token (cache hot), no DPoP", layer.clone()),
        (
            "request, bearer token (cache hot), DPoP allowed",
            layer.dpop(Dpop::new("http://api.example.com").unwrap()),
        ),
    ] {
        let mut svc = layer.layer(service_fn(noop));
        group.bench_function(name, |b| {
            b.iter_batched(
                || request(&authorization, None),
                |req| through_layer(&mut svc, req, &mut cx),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
