use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{Method, Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::layer::Settings;
use super::{JwtAuthLayer, ResponseFuture};
use crate::cache::{Cache, TokenCache};
use crate::claims::Claims;
use crate::error::{AuthError, AuthErrorKind};
use crate::rejection::{DefaultOnRejection, OnRejection, trace_rejection};
use crate::token::find_token;
use crate::validation::{Verification, Verifier};

/// Middleware that authenticates requests with a JWT bearer token.
///
/// Built by [`JwtAuthLayer`]. Verification is synchronous, so `poll_ready` forwards to the inner
/// service and `call` uses that same, ready instance (no clone).
///
/// See the [module docs](crate::auth) for an example.
pub struct JwtAuth<S, C, R = DefaultOnRejection> {
    inner: S,
    /// Everything but the inner service, behind one `Arc`: routers such as axum's clone the
    /// middleware for every request, so a clone is one reference-count increment.
    shared: Arc<Shared<C, R>>,
}

struct Shared<C, R> {
    verifier: Verifier,
    settings: Arc<Settings>,
    cache: Option<Arc<Cache<C>>>,
    on_rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> JwtAuth<S, C> {
    /// Wrap `inner`, verifying with `verifier` and rejecting with [`DefaultOnRejection`].
    pub fn new(inner: S, verifier: Verifier) -> Self {
        let cache = TokenCache::new().build(verifier.leeway()).map(Arc::new);
        Self::from_parts(
            inner,
            verifier,
            Arc::default(),
            cache,
            DefaultOnRejection::new(),
        )
    }

    /// A [`JwtAuthLayer`] for this middleware.
    pub fn layer(verifier: Verifier) -> JwtAuthLayer<C> {
        JwtAuthLayer::new(verifier)
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    pub(crate) fn from_parts(
        inner: S,
        verifier: Verifier,
        settings: Arc<Settings>,
        cache: Option<Arc<Cache<C>>>,
        on_rejection: R,
    ) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                verifier,
                settings,
                cache,
                on_rejection,
                _claims: PhantomData,
            }),
        }
    }

    define_inner_service_accessors!();
}

impl<S, C, R> JwtAuth<S, C, R>
where
    C: DeserializeOwned,
{
    /// `Done(Ok(None))`: let the request through without claims (optional mode without a token,
    /// or a CORS preflight when allowed).
    fn authenticate<B>(&self, req: &Request<B>) -> Outcome<C>
    where
        C: Send + 'static,
    {
        let Shared {
            verifier,
            settings,
            cache,
            ..
        } = &*self.shared;
        if settings.cors_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Outcome::Done(Ok(None));
        }
        match find_token(&settings.sources, req.headers(), req.uri()) {
            Err(e) => Outcome::Done(Err(e)),
            Ok(Some(token)) => {
                let keys = verifier.current_keys();
                if let Some(cache) = cache
                    && let Some(claims) = cache.get(&token, keys.as_ref())
                {
                    return Outcome::Done(Ok(Some(claims)));
                }
                match verifier.start(&token, keys.clone()) {
                    Verification::Done(Ok(claims)) => {
                        if let (Some(cache), Some(keys)) = (cache, keys) {
                            cache.insert(&token, &claims, keys);
                        }
                        Outcome::Done(Ok(Some(claims)))
                    }
                    Verification::Done(Err(e)) => Outcome::Done(Err(e)),
                    Verification::Pending(future) => Outcome::Pending(future),
                }
            }
            Ok(None) if settings.optional => Outcome::Done(Ok(None)),
            Ok(None) => Outcome::Done(Err(AuthErrorKind::MissingToken.into())),
        }
    }
}

enum Outcome<C> {
    Done(Result<Option<Claims<C>>, AuthError>),
    Pending(ClaimsFuture<C>),
}

type ClaimsFuture<C> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Claims<C>, AuthError>> + Send>>;

impl<S, C, R, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        match self.authenticate(&req) {
            Outcome::Done(Ok(claims)) => {
                // Always set (or clear) the claims, so none can come from elsewhere.
                match claims {
                    Some(claims) => req.extensions_mut().insert(claims),
                    None => req.extensions_mut().remove::<Claims<C>>(),
                };
                ResponseFuture::inner(self.inner.call(req))
            }
            Outcome::Pending(verification) => {
                // The inner service is called later, from the future: move the instance that
                // `poll_ready` made ready into it and leave a clone in its place. See "Be careful
                // when cloning inner services" in the `tower::Service` docs.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let on_rejection = self.shared.on_rejection.clone();
                ResponseFuture::refreshing(Box::pin(async move {
                    match verification.await {
                        Ok(claims) => {
                            req.extensions_mut().insert(claims);
                            inner.call(req).await
                        }
                        Err(error) => {
                            trace_rejection(&error);
                            let (parts, _body) = req.into_parts();
                            Ok(on_rejection.on_rejection(&error, &parts))
                        }
                    }
                }))
            }
            Outcome::Done(Err(error)) => {
                trace_rejection(&error);
                // The inner service is not called; whatever its `poll_ready` reserved stays with
                // it until its next call or drop, as the `Service` contract allows.
                let (parts, _body) = req.into_parts();
                ResponseFuture::rejected(self.shared.on_rejection.on_rejection(&error, &parts))
            }
        }
    }
}

impl<S: Clone, C, R> Clone for JwtAuth<S, C, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for JwtAuth<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("verifier", &self.shared.verifier)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::{SystemTime, UNIX_EPOCH};

    use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use http::{Request, Response, StatusCode};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde::Deserialize;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_test::mock;

    use super::*;
    use crate::{KeySet, Validation, VerifyingKey};

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
        crate::install_crypto_provider().unwrap();
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

    fn service() -> impl tower::Service<Request<()>, Response = Response<String>, Error = Infallible>
    {
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
            crate::RegisteredClaims::default(),
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

    type Recording = JwtAuth<
        tower::util::BoxCloneService<Request<()>, Response<String>, Infallible>,
        TestClaims,
    >;
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
            svc.shared.cache.as_ref().unwrap().len(),
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
        assert_eq!(svc.shared.cache.as_ref().unwrap().len(), 0);
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

    impl crate::KeySource for Swappable {
        fn current(&self) -> Option<Arc<KeySet>> {
            Some(Arc::clone(&self.0.lock().unwrap()))
        }

        fn refresh(&self, _kid: Option<&str>) -> Option<crate::source::KeyFuture> {
            None
        }
    }

    #[tokio::test]
    async fn a_key_set_change_invalidates_cached_tokens() {
        let old = Arc::new(KeySet::from(
            VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap(),
        ));
        let source = Swappable(Arc::new(std::sync::Mutex::new(old)));
        let verifier = Verifier::with_source(source.clone(), Validation::new()).unwrap();
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
                std::future::Ready<Result<Response<String>, Infallible>>,
                String,
                Infallible,
            >,
        >();
    }
}
