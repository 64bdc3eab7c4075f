//! The token source and the layer against a scripted token endpoint (a tower service); the
//! round trips with a real server are in `tests/oauth_client.rs`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};

use super::{ClientAuth, ClientCredentials};

/// A token endpoint answering `answers` in turn (the last one forever), recording requests.
#[derive(Clone)]
struct Endpoint {
    answers: Arc<Mutex<Vec<(StatusCode, &'static str)>>>,
    seen: Arc<Mutex<Vec<Request<String>>>>,
    calls: Arc<AtomicUsize>,
}

impl Endpoint {
    fn new(answers: &[(StatusCode, &'static str)]) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers.iter().rev().copied().collect())),
            seen: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn client(
        &self,
    ) -> impl tower::Service<
        Request<String>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        let this = self.clone();
        tower::service_fn(move |req: Request<String>| {
            let this = this.clone();
            async move {
                this.calls.fetch_add(1, Ordering::SeqCst);
                // Slow enough that concurrent callers overlap.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let (status, body) = {
                    let mut answers = this.answers.lock().unwrap();
                    if answers.len() > 1 {
                        answers.pop().unwrap()
                    } else {
                        answers[0]
                    }
                };
                this.seen.lock().unwrap().push(req);
                let mut res = Response::new(Full::new(Bytes::from(body)));
                *res.status_mut() = status;
                Ok(res)
            }
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

const GOOD: (StatusCode, &str) = (
    StatusCode::OK,
    r#"{"access_token":"t1","token_type":"Bearer","expires_in":900,"scope":"a"}"#,
);

fn builder(endpoint: &Endpoint) -> super::ClientCredentialsBuilder {
    ClientCredentials::builder("http://127.0.0.1:1/token", "my client", "s:cr t")
        .client(endpoint.client())
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let endpoint = Endpoint::new(&[GOOD]);
    let credentials = builder(&endpoint).build().unwrap();
    let calls = (0..20).map(|_| {
        let c = credentials.clone();
        tokio::spawn(async move { c.token().await.map(|t| t.value().to_owned()) })
    });
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "t1");
    }
    assert_eq!(endpoint.calls(), 1);
    // Kept: no request for the next call either.
    credentials.token().await.unwrap();
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test]
async fn basic_credentials_are_form_encoded_and_post_goes_in_the_body() {
    let endpoint = Endpoint::new(&[GOOD]);
    builder(&endpoint)
        .scope("a b")
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    let req = endpoint.seen.lock().unwrap().pop().unwrap();
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(
        req.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let basic = req.headers()["authorization"].to_str().unwrap();
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        basic.strip_prefix("Basic ").unwrap(),
    )
    .unwrap();
    assert_eq!(decoded, b"my+client:s%3Acr+t");
    assert_eq!(req.body(), "grant_type=client_credentials&scope=a+b");

    let endpoint = Endpoint::new(&[GOOD]);
    builder(&endpoint)
        .client_auth(ClientAuth::Post)
        .build()
        .unwrap()
        .token()
        .await
        .unwrap();
    let req = endpoint.seen.lock().unwrap().pop().unwrap();
    assert!(!req.headers().contains_key("authorization"));
    assert_eq!(
        req.body(),
        "grant_type=client_credentials&client_id=my+client&client_secret=s%3Acr+t"
    );
}

#[tokio::test]
async fn a_due_token_is_renewed_and_kept_while_the_endpoint_fails() {
    let short = (
        StatusCode::OK,
        r#"{"access_token":"t1","token_type":"Bearer","expires_in":1}"#,
    );
    let down = (
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"temporarily_unavailable"}"#,
    );
    let endpoint = Endpoint::new(&[short, down]);
    let credentials = builder(&endpoint).build().unwrap();
    assert_eq!(credentials.token().await.unwrap().value(), "t1");
    // Past half its lifetime: due. The renewal fails, the valid token is kept.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(credentials.token().await.unwrap().value(), "t1");
    assert_eq!(endpoint.calls(), 2);
    // And not asked again at once (at most once a second after a failure).
    assert_eq!(credentials.token().await.unwrap().value(), "t1");
    assert_eq!(endpoint.calls(), 2);
    // Expired: the failure is the caller's.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let err = credentials.token().await.unwrap_err();
    assert_eq!(err.code(), Some("temporarily_unavailable"));
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn refusals_and_odd_answers_are_errors() {
    for (answer, code) in [
        (
            (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#),
            Some("invalid_client"),
        ),
        (
            (StatusCode::OK, r#"{"access_token":"t","token_type":"mac"}"#),
            None,
        ),
        ((StatusCode::OK, "not json"), None),
    ] {
        let endpoint = Endpoint::new(&[answer]);
        let err = builder(&endpoint)
            .build()
            .unwrap()
            .token()
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }
}

#[tokio::test]
async fn the_layer_sends_the_token_and_nothing_without_one() {
    let endpoint = Endpoint::new(&[(
        StatusCode::OK,
        r#"{"access_token":"bound","token_type":"DPoP","expires_in":900}"#,
    )]);
    let credentials = builder(&endpoint).build().unwrap();
    let echo = tower::service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(req.headers()["authorization"].to_str().unwrap().to_owned())
    });
    let svc = credentials.layer().layer(echo);
    let sent = svc.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(sent, "DPoP bound");

    let endpoint = Endpoint::new(&[(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#)]);
    let reached = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reached);
    let inner = tower::service_fn(move |_req: Request<()>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(()) }
    });
    let svc = builder(&endpoint).build().unwrap().layer().layer(inner);
    let err = svc.oneshot(Request::new(())).await.unwrap_err();
    assert!(err.is::<super::TokenError>(), "{err}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing sent without a token"
    );
}

#[test]
fn plain_http_only_on_this_machine() {
    let endpoint = Endpoint::new(&[GOOD]);
    let err = ClientCredentials::builder("http://auth.example/token", "c", "s")
        .client(endpoint.client())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), crate::ConfigErrorKind::InvalidUrl);
    ClientCredentials::builder("http://auth.example/token", "c", "s")
        .client(endpoint.client())
        .allow_insecure_http()
        .build()
        .unwrap();
}
