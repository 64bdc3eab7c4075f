//! Unit tests of `refresh`.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use super::*;
use crate::claims::RegisteredClaims;
use crate::keys::KeySet;
use crate::keys::SigningKey;
use crate::login::Authenticate;
use crate::login::{BoxError, LoginService};
use crate::session::{LoginThrottle, MemoryStore, PeerAddr};
use crate::validation::Validation;
use crate::verifier::Verifier;
use jsonwebtoken::Algorithm;

/// Counts password checks; user "u" with password "p" is `sub` "1".
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Authenticate for Counting {
    type Claims = serde_json::Value;

    async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<Self::Claims>, BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok((user == "u" && password == "p").then(|| serde_json::json!({"sub": "1"})))
    }
}

impl Reissue for Counting {
    async fn claims_for(&self, sub: &str) -> Result<Option<Self::Claims>, BoxError> {
        Ok((sub == "1").then(|| serde_json::json!({"sub": "1", "fresh": true})))
    }
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::from_secret(Algorithm::HS256, [9u8; 32]).unwrap())
}

fn post(body: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post("/")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    req.extensions_mut()
        .insert(PeerAddr("192.0.2.7:1234".parse().unwrap()));
    req
}

async fn json(res: Response<JsonBody>) -> (StatusCode, serde_json::Value) {
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn claims_of(token: &str) -> RegisteredClaims {
    let keys = KeySet::from(issuer().signing_key().verifying_key().unwrap());
    let verifier = Verifier::new(keys, Validation::new()).unwrap();
    verifier
        .verify::<serde_json::Value>(token)
        .unwrap()
        .registered()
        .clone()
}

#[tokio::test]
async fn login_opens_a_session_and_refresh_rotates_it() {
    let sessions = Sessions::in_memory();
    let auth = Counting::default();
    let login = LoginService::new(auth.clone(), issuer()).sessions(sessions.clone());
    let (status, body) = json(
        login
            .oneshot(post(r#"{"username":"u","password":"p"}"#))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims.generation, Some(0));
    let sid = claims.sid.clone().unwrap();

    let refresh = RefreshService::new(auth, issuer(), sessions);
    let token = body["refresh_token"].as_str().unwrap();
    let (status, next) = json(
        refresh
            .clone()
            .oneshot(post(
                &serde_json::json!({"refresh_token": token}).to_string(),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next["token_type"], "Bearer");
    let refreshed = claims_of(next["access_token"].as_str().unwrap());
    assert_eq!(refreshed.sid.as_deref(), Some(sid.as_str()));
    // The login's auth_time survives the refresh (step-up checks see the real login).
    assert!(claims.auth_time.is_some());
    assert_eq!(refreshed.auth_time, claims.auth_time);
    // The claims come from `claims_for`: the user as they are now.
    let custom = Verifier::new(
        KeySet::from(issuer().signing_key().verifying_key().unwrap()),
        Validation::new(),
    )
    .unwrap()
    .verify::<serde_json::Value>(next["access_token"].as_str().unwrap())
    .unwrap();
    assert_eq!(custom.custom()["fresh"], true);
    let (status, body) = json(refresh.oneshot(post("[]")).await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn a_throttled_attempt_never_runs_the_password_check() {
    let auth = Counting::default();
    let throttle = LoginThrottle::new(MemoryStore::new()).per_user(Some("2/60".parse().unwrap()));
    let login = LoginService::new(auth.clone(), issuer()).throttle(throttle);
    for _ in 0..2 {
        let res = login
            .clone()
            .oneshot(post(r#"{"username":"u","password":"x"}"#))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login
        .clone()
        .oneshot(post(r#"{"username":"u","password":"p"}"#))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        auth.0.load(Ordering::SeqCst),
        2,
        "the third check never ran"
    );
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry));
}

#[tokio::test]
async fn a_successful_login_gives_its_unit_back() {
    let throttle = LoginThrottle::new(MemoryStore::new()).per_user(Some("1/60".parse().unwrap()));
    let login = LoginService::new(Counting::default(), issuer()).throttle(throttle);
    for _ in 0..3 {
        let res = login
            .clone()
            .oneshot(post(r#"{"username":"u","password":"p"}"#))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

fn with_claims(json: serde_json::Value) -> Request<()> {
    let mut req = Request::post("/logout").body(()).unwrap();
    let registered: RegisteredClaims = serde_json::from_value(json.clone()).unwrap();
    req.extensions_mut().insert(Claims::new(json, registered));
    req
}

#[tokio::test]
async fn logout_ends_the_session_or_revokes_the_token() {
    let sessions = Sessions::in_memory();
    let opened = sessions.open("1").await.unwrap();
    let logout = LogoutService::<serde_json::Value>::new(sessions.clone());
    let res = logout
        .clone()
        .oneshot(with_claims(
            serde_json::json!({"sub": "1", "sid": opened.sid()}),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(sessions.refresh(opened.refresh_token()).await.is_err());

    // No session: the token itself is revoked by its jti.
    let jti = serde_json::json!({"sub": "1", "jti": "j-1"});
    let res = logout
        .clone()
        .oneshot(with_claims(jti.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let registered: RegisteredClaims = serde_json::from_value(jti).unwrap();
    assert!(sessions.revocations().is_revoked(&registered));

    // Nothing to revoke, no claims, a GET.
    let res = logout
        .clone()
        .oneshot(with_claims(serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = logout
        .clone()
        .oneshot(Request::post("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = logout
        .oneshot(Request::get("/").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}
