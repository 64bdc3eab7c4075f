//! Unit tests of `service`.

use http::Method;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use super::*;
use crate::keys::SigningKey;
use crate::login::InMemoryUsers;
use jsonwebtoken::Algorithm;

fn service() -> LoginService<InMemoryUsers<serde_json::Value>> {
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let users = InMemoryUsers::with_params(params)
        .unwrap()
        .with_user("u", "p", serde_json::json!({"sub": "1"}))
        .unwrap();
    let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [4u8; 32]).unwrap());
    LoginService::new(users, issuer)
}

async fn send(method: Method, ctype: Option<&str>, body: &str) -> (StatusCode, String) {
    let mut req = Request::builder().method(method);
    if let Some(c) = ctype {
        req = req.header(CONTENT_TYPE, c);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = service().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const GOOD: &str = r#"{"username":"u","password":"p"}"#;

#[tokio::test]
async fn good_credentials_get_a_token() {
    let (status, body) = send(Method::POST, Some("application/json"), GOOD).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    assert!(v["access_token"].is_string());
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let (status, _) = send(Method::POST, Some("Application/JSON; charset=utf-8"), GOOD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_is_405() {
    assert_eq!(
        send(Method::GET, None, "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn form_body_is_415() {
    let (status, body) = send(
        Method::POST,
        Some("application/x-www-form-urlencoded"),
        "a=b",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body.contains("\"error\""));
}

#[tokio::test]
async fn missing_content_type_is_415() {
    assert_eq!(
        send(Method::POST, None, GOOD).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let big = format!(r#"{{"username":"u","password":"{}"}}"#, "x".repeat(20_000));
    assert_eq!(
        send(Method::POST, Some("application/json"), &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// A body of `left` 1 KiB chunks with no declared length.
struct Chunks {
    left: usize,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b'x';
            1024
        ])))))
    }
}

#[tokio::test]
async fn oversized_streamed_body_is_drained_and_413() {
    let req = Request::post("/")
        .header(CONTENT_TYPE, "application/json")
        .body(Chunks { left: 40 })
        .unwrap();
    let res = service().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn endless_body_stops_at_the_drain_limit() {
    let req = Request::post("/")
        .header(CONTENT_TYPE, "application/json")
        .body(Chunks { left: usize::MAX })
        .unwrap();
    let res = service().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400() {
    for body in [
        "{",
        "[]",
        "null",
        r#"{"username":"u"}"#,
        r#"{"username":1,"password":"p"}"#,
        "",
    ] {
        let (status, _) = send(Method::POST, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let a = send(
        Method::POST,
        Some("application/json"),
        r#"{"username":"u","password":"x"}"#,
    )
    .await;
    let b = send(
        Method::POST,
        Some("application/json"),
        r#"{"username":"zz","password":"p"}"#,
    )
    .await;
    assert_eq!(a.0, StatusCode::UNAUTHORIZED);
    assert_eq!(a, b);
}

/// A hook that always fails with `error`.
struct Failing(fn() -> BoxError);

impl Authenticate for Failing {
    type Claims = serde_json::Value;

    async fn authenticate(&self, _: &str, _: &str) -> Result<Option<Self::Claims>, BoxError> {
        Err((self.0)())
    }
}

async fn failing_login(error: fn() -> BoxError) -> Response<JsonBody> {
    let issuer = TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [4u8; 32]).unwrap());
    let req = Request::post("/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(GOOD)))
        .unwrap();
    LoginService::new(Failing(error), issuer)
        .oneshot(req)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failing_hook_is_503_with_retry_after() {
    let res = failing_login(|| "the directory is down".into()).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[RETRY_AFTER], "1");
}

#[tokio::test]
async fn an_overloaded_table_is_503_with_its_retry_after() {
    let res = failing_login(|| {
        Box::new(Overloaded {
            retry_after: Duration::from_secs(3),
        })
    })
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[RETRY_AFTER], "3");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("too many logins"));
}
