//! The check seam, through the layer: the application's checks beside the crate's own.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::{ServiceBuilder, ServiceExt};

use super::{RequestContext, Verdict};
use crate::auth::JwtAuthLayer;
use crate::claims::{Claims, RegisteredClaims};
use crate::error::{AuthError, AuthErrorKind};
use crate::keys::{KeySet, VerifyingKey};
use crate::revocation::Revocations;
use crate::validation::Validation;
use crate::verifier::Verifier;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn layer() -> JwtAuthLayer<serde_json::Value> {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    JwtAuthLayer::new(Verifier::new(keys, Validation::new()).unwrap())
}

fn request(claims: &serde_json::Value) -> Request<()> {
    crate::crypto::install_crypto_provider().unwrap();
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let mut claims = claims.clone();
    claims["exp"] = exp.into();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    Request::builder()
        .uri("/orders?page=2")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap()
}

/// Answers with the caller's `sub`, counting its calls.
fn inner(
    calls: &Arc<AtomicUsize>,
) -> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible> + Clone {
    let calls = Arc::clone(calls);
    tower::service_fn(move |req: Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let sub = req
            .extensions()
            .get::<Claims<serde_json::Value>>()
            .and_then(|c| c.registered().sub.clone())
            .unwrap_or_default();
        async move { Ok::<_, Infallible>(Response::new(sub)) }
    })
}

fn blocks_mallory(claims: &RegisteredClaims, _: &RequestContext<'_>) -> Verdict {
    if claims.sub.as_deref() == Some("mallory") {
        Verdict::Reject(AuthErrorKind::Revoked.into())
    } else {
        Verdict::Pass
    }
}

#[tokio::test]
async fn an_application_check_refuses_a_good_token_cached_or_not() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new()
        .layer(layer().check(blocks_mallory))
        .service(inner(&calls));
    for _ in 0..2 {
        let res = svc
            .clone()
            .oneshot(request(&serde_json::json!({"sub": "mallory"})))
            .await;
        let res = res.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains("revoked"), "{challenge}");
    }
    let res = svc
        .oneshot(request(&serde_json::json!({"sub": "alice"})))
        .await;
    assert_eq!(res.unwrap().body(), "alice");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "refused requests never reach inner"
    );
}

#[tokio::test]
async fn a_check_reads_the_request_it_is_asked_about() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let check = move |_: &RegisteredClaims, req: &RequestContext<'_>| {
        record.lock().unwrap().push((
            req.method().clone(),
            req.uri().to_string(),
            req.headers().contains_key(AUTHORIZATION),
            req.sent_by_browser(),
            req.may_wait(),
            req.now(),
        ));
        Verdict::Pass
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let res = ServiceBuilder::new()
        .layer(layer().check(check))
        .service(inner(&calls))
        .oneshot(request(&serde_json::json!({"sub": "a"})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = seen.lock().unwrap();
    let (method, uri, auth, browser, may_wait, now) = &seen[0];
    assert_eq!(
        (method, uri.as_str()),
        (&http::Method::GET, "/orders?page=2")
    );
    assert!(*auth && !*browser && *may_wait);
    assert!(now.elapsed().unwrap_or_default() < Duration::from_secs(60));
}

/// A check whose answer comes later, counting its calls.
fn later(answer: Result<(), AuthErrorKind>, calls: &Arc<AtomicUsize>) -> impl super::Check {
    let calls = Arc::clone(calls);
    move |_: &RegisteredClaims, _: &RequestContext<'_>| {
        calls.fetch_add(1, Ordering::SeqCst);
        Verdict::Later(Box::pin(async move {
            tokio::task::yield_now().await;
            answer.map_err(AuthError::from)
        }))
    }
}

#[tokio::test]
async fn later_answers_are_awaited_in_order_and_the_first_refusal_wins() {
    let (checked, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let svc = ServiceBuilder::new()
        .layer(
            layer()
                .check(later(Ok(()), &checked))
                .check(later(Err(AuthErrorKind::Forbidden), &checked))
                .check(later(Err(AuthErrorKind::Revoked), &checked)),
        )
        .service(inner(&calls));
    let res = svc
        .oneshot(request(&serde_json::json!({"sub": "a"})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        checked.load(Ordering::SeqCst),
        3,
        "every check answered first"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let svc = ServiceBuilder::new()
        .layer(
            layer()
                .check(later(Ok(()), &checked))
                .check(later(Ok(()), &checked)),
        )
        .service(inner(&calls));
    let res = svc
        .oneshot(request(&serde_json::json!({"sub": "b"})))
        .await
        .unwrap();
    assert_eq!((res.status(), res.body().as_str()), (StatusCode::OK, "b"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_layer_that_never_waits_refuses_a_later_answer_with_503() {
    let (checked, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let res = ServiceBuilder::new()
        .layer(layer().check(later(Ok(()), &checked)).never_wait())
        .service(inner(&calls))
        .oneshot(request(&serde_json::json!({"sub": "a"})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_crates_own_checks_run_first() {
    let revocations = Revocations::new();
    revocations.revoke_session("s-1", SystemTime::now() + Duration::from_secs(60));
    let (checked, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Mounted before the revocations, the application's check still runs after them.
    let svc = ServiceBuilder::new()
        .layer(
            layer()
                .check(later(Ok(()), &checked))
                .revocations(revocations),
        )
        .service(inner(&calls));
    let res = svc
        .oneshot(request(&serde_json::json!({"sub": "a", "sid": "s-1"})))
        .await;
    let res = res.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(checked.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_bound_token_is_never_taken_as_a_bearer_token_without_a_binding_check() {
    let calls = Arc::new(AtomicUsize::new(0));
    let bound = serde_json::json!({"sub": "a", "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}});
    let res = ServiceBuilder::new()
        .layer(layer())
        .service(inner(&calls))
        .oneshot(request(&bound))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
