//! Feature `tracing`: one debug event per rejection, with its kind and never the token or a
//! claim value; one warning per refresh-token reuse, without the tokens; one debug event per
//! cookie-mode request refused as a forgery, without the credentials. Its own test binary,
//! because it installs a global subscriber.

mod common;

use std::sync::{Arc, Mutex};

use common::{SECRET, now};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::login::{InMemoryUsers, LoginCookies, LoginService, TokenIssuer};
use tower_jwt_auth::{JwtAuthLayer, KeySet, SigningKey, Validation, Verifier, VerifyingKey};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_rejection_is_one_debug_event_without_secrets() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    let layer =
        JwtAuthLayer::<serde_json::Value>::new(Verifier::new(keys, Validation::new()).unwrap());
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
    let claims = serde_json::json!({"sub": "secret-subject", "exp": now() - 3600});
    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let with_token = http::Request::builder()
        .header("authorization", format!("Bearer {expired}"))
        .body(())
        .unwrap();
    assert_eq!(svc.clone().oneshot(with_token).await.unwrap().status(), 401);
    assert_eq!(
        svc.oneshot(http::Request::new(())).await.unwrap().status(),
        401
    );

    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("tower_jwt_auth"))
        .collect();
    assert_eq!(events.len(), 2, "{output}");
    assert!(events.iter().all(|l| l.contains("DEBUG")), "{output}");
    assert!(events[0].contains("kind=\"expired\""), "{output}");
    assert!(events[1].contains("kind=\"missing_token\""), "{output}");
    assert!(
        !output.contains(&expired) && !output.contains("secret-subject"),
        "{output}"
    );
    assert!(
        !output.contains(" INFO ") && !output.contains(" WARN "),
        "{output}"
    );

    // Refresh-token reuse: one warning naming the session, never a token.
    buffer.0.lock().unwrap().clear();
    let sessions = tower_jwt_auth::session::Sessions::in_memory();
    let first = sessions.open("1").await.unwrap();
    let second = sessions.refresh(first.refresh_token()).await.unwrap();
    let third = sessions.refresh(second.refresh_token()).await.unwrap();
    assert!(sessions.refresh(first.refresh_token()).await.is_err());
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = output.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{output}");
    assert!(
        warnings[0].contains("reuse") && warnings[0].contains(first.sid()),
        "{output}"
    );
    for token in [&first, &second, &third] {
        assert!(!output.contains(token.refresh_token()), "{output}");
    }

    // Cookie mode: a login from another origin is one debug event, without the credentials.
    buffer.0.lock().unwrap().clear();
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user("alice", "hunter2-secret", serde_json::json!({"sub": "1"}))
        .unwrap();
    let key = SigningKey::from_secret(Algorithm::HS256, SECRET.as_bytes()).unwrap();
    let login = LoginService::new(users, TokenIssuer::new(key)).cookies(LoginCookies::new());
    let forged = http::Request::post("http://app.example/login")
        .header("host", "app.example")
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"username":"alice","password":"hunter2-secret"}"#,
        )))
        .unwrap();
    assert_eq!(login.oneshot(forged).await.unwrap().status(), 403);
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let events: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("tower_jwt_auth"))
        .collect();
    assert_eq!(events.len(), 1, "{output}");
    assert!(
        events[0].contains("DEBUG") && events[0].contains("endpoint=\"login\""),
        "{output}"
    );
    assert!(
        !output.contains("alice") && !output.contains("hunter2"),
        "{output}"
    );
}
