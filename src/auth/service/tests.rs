//! Unit tests of `service`.

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_test::mock;

use super::*;
use crate::claims::Claims;
use crate::error::AuthError;
use crate::keys::KeySet;
use crate::keys::VerifyingKey;
use crate::validation::Validation;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[derive(Deserialize, Debug)]
struct TestClaims {
    sub: String,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn verifier() -> Verifier {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    Verifier::new(keys, Validation::new()).unwrap()
}

fn token(claims: &serde_json::Value) -> String {
    crate::crypto::install_crypto_provider().unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn request(token: &str) -> Request<()> {
    Request::builder()
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap()
}

async fn echo(req: Request<()>) -> Result<Response<String>, Infallible> {
    let sub = req
        .extensions()
        .get::<Claims<TestClaims>>()
        .map(|c| c.sub.clone())
        .unwrap_or_default();
    Ok(Response::new(sub))
}

fn service() -> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible> {
    ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier()))
        .service_fn(echo)
}

#[tokio::test]
async fn claims_are_inserted_into_extensions() {
    let t = token(&serde_json::json!({"sub": "alice", "exp": now() + 60}));
    let res = service().oneshot(request(&t)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "alice");
}

#[tokio::test]
async fn missing_token_is_rejected_with_bare_challenge() {
    let res = service().oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer realm=\"api\"");
    assert_eq!(res.body(), "");
}

#[tokio::test]
async fn expired_token_is_rejected_with_401() {
    let t = token(&serde_json::json!({"sub": "alice", "exp": now() - 3600}));
    let res = service().oneshot(request(&t)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("expired"), "{challenge}");
}

#[tokio::test]
async fn claims_that_do_not_fit_the_type_are_rejected() {
    let t = token(&serde_json::json!({"sub": 5, "exp": now() + 60}));
    let res = service().oneshot(request(&t)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn closure_rejection_replaces_the_default() {
    let layer = JwtAuthLayer::<TestClaims>::new(verifier()).on_rejection(
        |e: &AuthError, _: &http::request::Parts| {
            let mut res = Response::new(format!("nope: {e}"));
            *res.status_mut() = StatusCode::IM_A_TEAPOT;
            res
        },
    );
    let res = ServiceBuilder::new()
        .layer(layer)
        .service_fn(echo)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(res.body(), "nope: no bearer token in the request");
}

fn optional_service()
-> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible> {
    ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier()).optional())
        .service_fn(echo)
}

#[tokio::test]
async fn optional_mode_lets_a_request_without_token_through_without_claims() {
    let res = optional_service().oneshot(Request::new(())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "");
}

#[tokio::test]
async fn optional_mode_still_rejects_a_bad_token() {
    let res = optional_service()
        .oneshot(request("bad.to.ken"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn optional_mode_inserts_claims_for_a_good_token() {
    let t = token(&serde_json::json!({"sub": "carol", "exp": now() + 60}));
    let res = optional_service().oneshot(request(&t)).await.unwrap();
    assert_eq!(res.body(), "carol");
}

#[tokio::test]
async fn claims_set_elsewhere_are_removed_in_optional_mode() {
    let mut req = Request::new(());
    req.extensions_mut().insert(Claims::new(
        TestClaims {
            sub: "forged".into(),
        },
        crate::claims::RegisteredClaims::default(),
    ));
    let res = optional_service().oneshot(req).await.unwrap();
    assert_eq!(res.body(), "");
}

#[tokio::test]
async fn cors_preflight_passes_only_when_allowed() {
    let preflight = || {
        Request::builder()
            .method(http::Method::OPTIONS)
            .header(http::header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(())
            .unwrap()
    };
    let res = service().oneshot(preflight()).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let allowed = ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier()).allow_cors_preflight())
        .service_fn(echo);
    let res = allowed.clone().oneshot(preflight()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A plain OPTIONS (not a preflight) still needs a token.
    let plain = Request::builder()
        .method(http::Method::OPTIONS)
        .body(())
        .unwrap();
    assert_eq!(
        allowed.oneshot(plain).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn poll_ready_is_forwarded_to_inner() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<()>, Response<String>, _>(
        JwtAuthLayer::<TestClaims>::new(verifier()),
    );
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let t = token(&serde_json::json!({"sub": "bob", "exp": now() + 60}));
    let fut = svc.call(request(&t));
    let (req, send) = handle.next_request().await.unwrap();
    assert!(req.extensions().get::<Claims<TestClaims>>().is_some());
    send.send_response(Response::new("ok".to_owned()));
    assert_eq!(fut.await.unwrap().body(), "ok");
}

#[tokio::test]
async fn rejection_does_not_call_inner() {
    let (mut svc, mut handle) = mock::spawn_layer::<Request<()>, Response<String>, _>(
        JwtAuthLayer::<TestClaims>::new(verifier()),
    );
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let res = svc.call(Request::new(())).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The reserved slot was not used: the next authenticated call reaches the inner service.
    let t = token(&serde_json::json!({"sub": "bob", "exp": now() + 60}));
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call(request(&t));
    let (req, send) = handle.next_request().await.unwrap();
    assert!(req.extensions().get::<Claims<TestClaims>>().is_some());
    send.send_response(Response::new(String::new()));
    assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
}

type Recording =
    JwtAuth<tower::util::BoxCloneService<Request<()>, Response<String>, Infallible>, TestClaims>;
type Seen = Arc<std::sync::Mutex<Vec<Claims<TestClaims>>>>;

/// Calls the layer over a handler that records the claims it receives.
async fn call_recording(svc: &mut Recording, token: &str) -> StatusCode {
    let ready = tower::ServiceExt::ready(&mut *svc).await.unwrap();
    ready.call(request(token)).await.unwrap().status()
}

fn recording_service(verifier: Verifier, seen: Seen) -> Recording {
    let inner = tower::service_fn(move |req: Request<()>| {
        if let Some(c) = req.extensions().get::<Claims<TestClaims>>() {
            seen.lock().unwrap().push(c.clone());
        }
        std::future::ready(Ok(Response::new(String::new())))
    });
    JwtAuth::new(tower::util::BoxCloneService::new(inner), verifier)
}

#[tokio::test]
async fn a_repeated_token_is_served_from_the_cache() {
    let seen: Seen = Arc::default();
    let mut svc = recording_service(verifier(), Arc::clone(&seen));
    let t = token(&serde_json::json!({"sub": "frank", "exp": now() + 60}));
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::OK);
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::OK);
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].same_as(&seen[1]),
        "the second request reused the cached claims"
    );
}

#[tokio::test]
async fn distinct_tokens_never_share_an_entry_and_tampered_ones_never_hit() {
    let seen: Seen = Arc::default();
    let mut svc = recording_service(verifier(), Arc::clone(&seen));
    let a = token(&serde_json::json!({"sub": "a", "exp": now() + 60}));
    let b = token(&serde_json::json!({"sub": "b", "exp": now() + 60}));
    assert_eq!(call_recording(&mut svc, &a).await, StatusCode::OK);
    assert_eq!(call_recording(&mut svc, &b).await, StatusCode::OK);
    let mut tampered = a.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        call_recording(&mut svc, &tampered).await,
        StatusCode::UNAUTHORIZED
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].sub, "a");
    assert_eq!(seen[1].sub, "b");
    assert_eq!(
        svc.shared.auth.cached_tokens(),
        2,
        "the tampered token was not cached"
    );
}

#[tokio::test]
async fn invalid_and_expired_tokens_are_not_cached() {
    let seen: Seen = Arc::default();
    let mut svc = recording_service(verifier(), Arc::clone(&seen));
    let expired = token(&serde_json::json!({"sub": "a", "exp": now() - 3600}));
    assert_eq!(
        call_recording(&mut svc, &expired).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call_recording(&mut svc, "x.y.z").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(svc.shared.auth.cached_tokens(), 0);
}

#[tokio::test]
async fn a_cached_token_expires_with_its_exp() {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let no_leeway = Validation::new().leeway(std::time::Duration::ZERO);
    let seen: Seen = Arc::default();
    let mut svc = recording_service(Verifier::new(keys, no_leeway).unwrap(), Arc::clone(&seen));
    let t = token(&serde_json::json!({"sub": "g", "exp": now() + 1}));
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::UNAUTHORIZED);
}

/// A source whose key set can be replaced (a rotation that drops the old key).
#[derive(Clone)]
struct Swappable(Arc<std::sync::Mutex<Arc<KeySet>>>);

impl crate::keys::KeySource for Swappable {
    fn current(&self) -> Option<Arc<KeySet>> {
        Some(Arc::clone(&self.0.lock().unwrap()))
    }

    fn refresh(
        &self,
        _alg: jsonwebtoken::Algorithm,
        _kid: Option<&str>,
    ) -> Option<crate::keys::KeyFuture> {
        None
    }
}

#[tokio::test]
async fn a_key_set_change_invalidates_cached_tokens() {
    let old = Arc::new(KeySet::from(
        VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap(),
    ));
    let source = Swappable(Arc::new(std::sync::Mutex::new(old)));
    let verifier = Verifier::from_source(source.clone(), Validation::new()).unwrap();
    let seen: Seen = Arc::default();
    let mut svc = recording_service(verifier, Arc::clone(&seen));
    let t = token(&serde_json::json!({"sub": "h", "exp": now() + 60}));
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::OK);
    let other = VerifyingKey::from_secret(Algorithm::HS256, [9u8; 32]).unwrap();
    *source.0.lock().unwrap() = Arc::new(KeySet::from(other));
    assert_eq!(call_recording(&mut svc, &t).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn types_are_send_and_sync_and_the_future_is_send() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<JwtAuthLayer<TestClaims>>();
    assert_send_sync::<
        JwtAuth<
            tower::util::BoxCloneSyncService<Request<()>, Response<String>, Infallible>,
            TestClaims,
        >,
    >();
    assert_send_sync::<Claims<TestClaims>>();
    // Futures need to be `Send` (not `Sync`) for multi-threaded executors.
    fn assert_send<T: Send>() {}
    assert_send::<
        ResponseFuture<
            tower::util::BoxCloneService<Request<()>, Response<String>, Infallible>,
            (),
            TestClaims,
            DefaultOnRejection,
        >,
    >();
}

/// An inner service that is neither `Send`, `Sync` nor `Clone` (it holds an `Rc`), with
/// futures that are not `Send` either: in the never-refresh mode nothing beyond `Service` is
/// asked of it.
#[tokio::test(flavor = "current_thread")]
async fn a_service_that_is_not_send_can_be_wrapped() {
    use std::rc::Rc;

    // Neither `Send` nor `Clone`.
    struct Local {
        greeting: Rc<str>,
    }

    impl tower::Service<Request<()>> for Local {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Response<String>, Infallible>>>,
        >;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<()>) -> Self::Future {
            let greeting = Rc::clone(&self.greeting);
            Box::pin(async move {
                let sub = req
                    .extensions()
                    .get::<Claims<TestClaims>>()
                    .map(|c| c.sub.clone())
                    .unwrap_or_default();
                Ok(Response::new(format!("{greeting} {sub}")))
            })
        }
    }

    let layer = JwtAuthLayer::<TestClaims>::new(verifier()).never_wait();
    let local = || Local {
        greeting: Rc::from("hello"),
    };
    let t = token(&serde_json::json!({"sub": "ivy", "exp": now() + 60}));
    let res = layer.layer(local()).oneshot(request(&t)).await.unwrap();
    assert_eq!(res.body(), "hello ivy");
    let res = layer
        .layer(local())
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A source that knows no key until its refresh brings one.
#[derive(Clone)]
struct Refreshing {
    keys: Arc<std::sync::Mutex<Option<Arc<KeySet>>>>,
    refreshes: Arc<std::sync::atomic::AtomicUsize>,
}

impl crate::keys::KeySource for Refreshing {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.lock().unwrap().clone()
    }

    fn refresh(
        &self,
        _alg: jsonwebtoken::Algorithm,
        _kid: Option<&str>,
    ) -> Option<crate::keys::KeyFuture> {
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let keys = Arc::new(KeySet::from(
            VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap(),
        ));
        *self.keys.lock().unwrap() = Some(Arc::clone(&keys));
        Some(Box::pin(async move {
            tokio::task::yield_now().await;
            Some(keys)
        }))
    }
}

#[tokio::test]
async fn the_refresh_path_calls_the_instance_that_was_made_ready() {
    let source = Refreshing {
        keys: Arc::default(),
        refreshes: Arc::default(),
    };
    let verifier = Verifier::from_source(source.clone(), Validation::new()).unwrap();
    // tower-test's mock: a clone is not ready, so calling an unpolled clone would fail.
    let (mut svc, mut handle) = mock::spawn_layer::<Request<()>, Response<String>, _>(
        JwtAuthLayer::<TestClaims>::new(verifier),
    );
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let t = token(&serde_json::json!({"sub": "kim", "exp": now() + 60}));
    let fut = svc.call(request(&t));
    let answer = async {
        let (req, send) = handle.next_request().await.unwrap();
        assert_eq!(
            req.extensions().get::<Claims<TestClaims>>().unwrap().sub,
            "kim"
        );
        send.send_response(Response::new("ok".to_owned()));
    };
    let (res, ()) = tokio::join!(fut, answer);
    assert_eq!(res.unwrap().body(), "ok");
    assert_eq!(
        source.refreshes.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn the_never_wait_mode_rejects_an_unknown_key_without_asking_the_source() {
    let source = Refreshing {
        keys: Arc::default(),
        refreshes: Arc::default(),
    };
    let verifier = Verifier::from_source(source.clone(), Validation::new()).unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier).never_wait())
        .service_fn(echo);
    let t = token(&serde_json::json!({"sub": "kim", "exp": now() + 60}));
    let res = svc.oneshot(request(&t)).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "no keys in memory"
    );
    assert_eq!(
        source.refreshes.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn a_refresh_that_brings_no_key_is_a_401_without_calling_inner() {
    #[derive(Clone)]
    struct Empty;
    impl crate::keys::KeySource for Empty {
        fn current(&self) -> Option<Arc<KeySet>> {
            Some(Arc::new(KeySet::from(
                VerifyingKey::from_secret(Algorithm::HS256, [7u8; 32])
                    .unwrap()
                    .with_kid("other"),
            )))
        }
        fn refresh(
            &self,
            _alg: jsonwebtoken::Algorithm,
            _kid: Option<&str>,
        ) -> Option<crate::keys::KeyFuture> {
            Some(Box::pin(async { None }))
        }
    }
    let verifier = Verifier::from_source(Empty, Validation::new()).unwrap();
    let (mut svc, mut handle) = mock::spawn_layer::<Request<()>, Response<String>, _>(
        JwtAuthLayer::<TestClaims>::new(verifier),
    );
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let t = token(&serde_json::json!({"sub": "kim", "exp": now() + 60}));
    let res = svc.call(request(&t)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The CSRF claim check runs on the refresh path too (the token is verified only after the
/// key source has refreshed).
#[cfg(feature = "cookie")]
#[tokio::test]
async fn the_csrf_claim_is_checked_after_a_key_refresh() {
    let t = token(&serde_json::json!({"sub": "kim", "exp": now() + 60, "csrf": "right"}));
    for (submitted, expected) in [("right", StatusCode::OK), ("wrong", StatusCode::FORBIDDEN)] {
        let source = Refreshing {
            keys: Arc::default(),
            refreshes: Arc::default(),
        };
        let verifier = Verifier::from_source(source, Validation::new()).unwrap();
        let layer = JwtAuthLayer::<TestClaims>::new(verifier)
            .token_sources([crate::token::TokenSource::cookie("at")]);
        let req = Request::post("/")
            .header(http::header::COOKIE, format!("at={t}"))
            .header("x-csrf-token", submitted)
            .body(())
            .unwrap();
        let res = ServiceBuilder::new()
            .layer(layer)
            .service_fn(echo)
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "{submitted}");
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_as_soon_as_its_session_is_revoked() {
    let revocations = crate::revocation::Revocations::new();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier()).revocations(revocations.clone()))
        .service_fn(echo);
    let t = token(&serde_json::json!({"sub": "lee", "sid": "s-1", "exp": now() + 60}));
    let other = token(&serde_json::json!({"sub": "lee", "sid": "s-2", "exp": now() + 60}));
    for t in [&t, &t, &other] {
        let res = svc.clone().oneshot(request(t)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "cached and fresh both pass");
    }
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    revocations.revoke_session("s-1", until);
    let res = svc.clone().oneshot(request(&t)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()[WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.contains("invalid_token") && challenge.contains("revoked"),
        "{challenge}"
    );
    // Another session of the same user is untouched.
    let res = svc.oneshot(request(&other)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn revocation_is_checked_after_a_key_refresh_too() {
    let revocations = crate::revocation::Revocations::new();
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    revocations.revoke_user_before("lee", 2, until);
    let source = Refreshing {
        keys: Arc::default(),
        refreshes: Arc::default(),
    };
    let verifier = Verifier::from_source(source, Validation::new()).unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<TestClaims>::new(verifier).revocations(revocations))
        .service_fn(echo);
    let old = token(&serde_json::json!({"sub": "lee", "gen": 1, "exp": now() + 60}));
    let res = svc.clone().oneshot(request(&old)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let new = token(&serde_json::json!({"sub": "lee", "gen": 2, "exp": now() + 60}));
    let res = svc.oneshot(request(&new)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
