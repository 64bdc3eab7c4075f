//! The layer's own overhead: bare `jsonwebtoken::decode` next to one request through `JwtAuth`
//! over a no-op service (verified-token cache off, and with a hot cache), for HS256, RS256,
//! ES256 and EdDSA; and the cost of one login check (argon2id with the default parameters).
//!
//! ```not_rust
//! cargo bench --bench verify
//! ```

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_main};
use http::{Request, Response};
use serde::Deserialize;
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::login::TokenIssuer;
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::{
    Algorithm, CacheSettings, JwtAuthLayer, KeySet, SigningKey, Validation, Verifier, VerifyingKey,
};

#[derive(Deserialize)]
#[allow(dead_code)]
struct BenchClaims {
    sub: String,
    username: String,
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn signing_key(alg: Algorithm) -> SigningKey {
    match alg {
        Algorithm::HS256 => SigningKey::from_secret(alg, [7u8; 32]),
        Algorithm::RS256 => SigningKey::from_pem(alg, key_file("rsa_private.pem")),
        Algorithm::ES256 => SigningKey::from_pem(alg, key_file("ec256_private.pem")),
        _ => SigningKey::from_pem(alg, key_file("ed25519_private.pem")),
    }
    .unwrap()
}

fn noop(_req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
    ready(Ok(Response::new(())))
}

/// One request through the layer, answered at once by the no-op service. Not inlined, so that
/// `scripts/count-instructions.sh` can attribute instructions to it.
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

/// Measure `through_layer` on `svc` with a fresh request carrying `authorization` each time
/// (building the request is outside the measurement).
fn bench_request<S>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut svc: S,
    authorization: &str,
) where
    S: Service<Request<()>, Response = Response<()>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                Request::builder()
                    .header(http::header::AUTHORIZATION, authorization)
                    .body(())
                    .unwrap()
            },
            |req| through_layer(&mut svc, req, &mut cx),
            BatchSize::SmallInput,
        );
    });
}

fn bench(c: &mut Criterion) {
    // BENCH_METRICS=prometheus: count with a real recorder installed (feature `metrics`), to
    // measure what the counters cost on the hot path.
    if std::env::var("BENCH_METRICS").as_deref() == Ok("prometheus") {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the recorder installs once");
    }
    for alg in [
        Algorithm::HS256,
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let signing = signing_key(alg);
        // The same key material on both sides: a PEM public key (or the secret).
        let verifying = match alg {
            Algorithm::HS256 => signing.verifying_key().unwrap(),
            Algorithm::RS256 => VerifyingKey::from_pem(alg, key_file("rsa_public.pem")).unwrap(),
            Algorithm::ES256 => VerifyingKey::from_pem(alg, key_file("ec256_public.pem")).unwrap(),
            _ => VerifyingKey::from_pem(alg, key_file("ed25519_public.pem")).unwrap(),
        };
        let token = TokenIssuer::new(signing.clone())
            .issue(&serde_json::json!({"sub": "1", "username": "user1"}))
            .unwrap()
            .access_token()
            .to_owned();

        let mut group = c.benchmark_group(format!("{alg:?}"));

        // Bare jsonwebtoken with an equivalent key and validation.
        let decoding = match alg {
            Algorithm::HS256 => jsonwebtoken::DecodingKey::from_secret(&[7u8; 32]),
            Algorithm::RS256 => {
                jsonwebtoken::DecodingKey::from_rsa_pem(&key_file("rsa_public.pem")).unwrap()
            }
            Algorithm::ES256 => {
                jsonwebtoken::DecodingKey::from_ec_pem(&key_file("ec256_public.pem")).unwrap()
            }
            _ => jsonwebtoken::DecodingKey::from_ed_pem(&key_file("ed25519_public.pem")).unwrap(),
        };
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_nbf = true;
        group.bench_function("bare jsonwebtoken::decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<BenchClaims>(black_box(&token), &decoding, &validation)
                    .unwrap()
            });
        });

        // One request through the layer; building the request is outside the measurement.
        let verifier = Verifier::new(KeySet::from(verifying), Validation::new()).unwrap();
        let header = format!("Bearer {token}");
        let mut cases = vec![
            (
                "JwtAuth request, cache off",
                verifier.clone(),
                CacheSettings::disabled(),
            ),
            ("JwtAuth request, hot cache", verifier, CacheSettings::new()),
        ];
        if alg == Algorithm::RS256 {
            // A key that arrives as a JWK (n, e), as from a JWKS endpoint: jsonwebtoken keeps
            // the components, this crate re-encodes them as DER.
            let private = jsonwebtoken::EncodingKey::from_rsa_pem(&key_file("rsa_private.pem"));
            let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&private.unwrap(), alg).unwrap();
            let components = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            group.bench_function("bare jsonwebtoken::decode, key from a JWK", |b| {
                b.iter(|| {
                    jsonwebtoken::decode::<BenchClaims>(black_box(&token), &components, &validation)
                        .unwrap()
                });
            });
            let from_jwk = VerifyingKey::from_jwk(serde_json::to_vec(&jwk).unwrap());
            let verifier = Verifier::new(KeySet::from(from_jwk.unwrap()), Validation::new());
            cases.push((
                "JwtAuth request, cache off, key from a JWK",
                verifier.unwrap(),
                CacheSettings::disabled(),
            ));
        }
        // The baseline: the same request to the no-op service with no layer at all.
        bench_request(&mut group, "no authentication", service_fn(noop), &header);
        let hot = cases[1].1.clone();
        for (name, verifier, cache) in cases {
            let layer = JwtAuthLayer::<BenchClaims>::new(verifier).token_cache(cache);
            bench_request(&mut group, name, layer.layer(service_fn(noop)), &header);
        }
        // The same hot request with 10,000 revoked sessions (none of them this token's): the
        // revocation check on the hit path.
        let revocations = Revocations::new();
        let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        revocations.batch(|b| {
            for i in 0..10_000 {
                b.revoke_session(&format!("session-{i}"), until);
            }
        });
        let layer = JwtAuthLayer::<BenchClaims>::new(hot).revocations(revocations.clone());
        bench_request(
            &mut group,
            "JwtAuth request, hot cache, 10000 revocations",
            layer.layer(service_fn(noop)),
            &header,
        );
        // As a node fed from Redis sees it: the list is trusted until a bound, read per request.
        revocations.trust_until(Some(until));
        bench_request(
            &mut group,
            "JwtAuth request, hot cache, 10000 revocations, trust bound",
            layer.layer(service_fn(noop)),
            &header,
        );
        group.finish();
    }
}

fn login(c: &mut Criterion) {
    use tower_jwt_auth::login::{Authenticate, InMemoryUsers};
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user("user1", "password1", ())
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("login (argon2id m=19456 KiB, t=2, p=1)");
    group.sample_size(20);
    group.bench_function("right password", |b| {
        b.iter(|| {
            runtime
                .block_on(users.authenticate("user1", "password1"))
                .unwrap()
        });
    });
    group.bench_function("unknown user", |b| {
        b.iter(|| {
            runtime
                .block_on(users.authenticate("nobody", "password1"))
                .unwrap()
        });
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench, super::login);
}
criterion_main!(group::benches);
