//! axum integration over real HTTP: the extractors, optional mode, authorization on a
//! sub-router and a single route, token sources, JSON rejections and CORS preflight.

mod common;

use axum::routing::{get, post};
use axum::{Json, Router};
use common::{Client, Reply, SECRET, now};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use tower_jwt_auth::authorize::{authorize, require_any_role, require_scope};
use tower_jwt_auth::{
    Claims, JsonOnRejection, JwtAuthLayer, KeySet, TokenSource, Validation, Verifier, VerifyingKey,
};

#[derive(Deserialize)]
struct MyClaims {
    sub: String,
}

#[derive(Deserialize)]
struct OtherClaims {
    #[allow(dead_code)]
    tenant: String,
}

fn verifier() -> Verifier {
    let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, SECRET).unwrap());
    Verifier::new(keys, Validation::new()).unwrap()
}

fn token(extra: serde_json::Value) -> String {
    tower_jwt_auth::install_crypto_provider().unwrap();
    let mut claims = serde_json::json!({"sub": "42", "exp": now() + 300});
    if let serde_json::Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// The test kit's minter for the key of `verifier()`.
fn minter() -> tower_jwt_auth::testkit::TokenMinter {
    let key = tower_jwt_auth::SigningKey::from_secret(Algorithm::HS256, SECRET).unwrap();
    tower_jwt_auth::testkit::TokenMinter::new(key)
}

async fn me(claims: Claims<MyClaims>) -> String {
    claims.sub.clone()
}

async fn maybe(claims: Option<Claims<MyClaims>>) -> String {
    claims.map_or_else(|| "anonymous".to_owned(), |c| c.sub.clone())
}

async fn wrong_type(_claims: Claims<OtherClaims>) -> &'static str {
    "unreachable"
}

async fn serve(app: Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Client::new(addr)
}

fn app() -> Router {
    let auth = || JwtAuthLayer::<MyClaims>::new(verifier());
    let admin = Router::new()
        .route("/admin/report", get(me))
        .route_layer(require_scope::<MyClaims>("reports:read"))
        .route_layer(auth());
    Router::new()
        .route("/me", get(me))
        .route("/wrong-type", get(wrong_type))
        .route(
            "/ops",
            get(me).route_layer(require_any_role::<MyClaims, _>(["ops", "sre"])),
        )
        .route(
            "/tenant-42",
            get(me).route_layer(authorize(|c: &Claims<MyClaims>| c.sub == "42")),
        )
        .route_layer(auth())
        .merge(admin)
        .route("/maybe", get(maybe).route_layer(auth().optional()))
        .route(
            "/json",
            get(me).route_layer(auth().on_rejection(JsonOnRejection::new())),
        )
        .route(
            "/sources",
            get(me).route_layer(auth().token_sources([
                TokenSource::bearer(),
                TokenSource::authorization_scheme("JWT").unwrap(),
                TokenSource::header("x-auth-token").unwrap(),
                TokenSource::cookie("access_token"),
                TokenSource::query("access_token"),
            ])),
        )
        .route(
            "/cors",
            post(|| async { Json(serde_json::json!({"ok": true})) })
                .options(|| async { "preflight answered" })
                .route_layer(auth().allow_cors_preflight()),
        )
        .route(
            "/cookie-write",
            post(me).get(me).route_layer(
                auth().token_sources([TokenSource::bearer(), TokenSource::cookie("access_token")]),
            ),
        )
        .route("/no-layer", get(me))
        .route("/open", get(|| async { "open" }))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn extractor_gets_the_claims() {
    let c = serve(app()).await;
    let reply = c
        .get(
            "/me",
            &[("authorization", &bearer(&token(serde_json::json!({}))))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "42");
    c.get("/me", &[]).await.assert_unauthorized("no token");
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_500_that_keeps_the_types_to_the_server() {
    let c = serve(app()).await;
    let reply = c.get("/no-layer", &[]).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The claims type goes to the log (and the rejection's Display), not to the client.
    assert!(!reply.text().contains("MyClaims"), "{}", reply.text());
    assert!(reply.text().contains("misconfigured"), "{}", reply.text());
    let reply = c
        .get(
            "/wrong-type",
            &[("authorization", &bearer(&token(serde_json::json!({}))))],
        )
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.text().contains("OtherClaims"), "{}", reply.text());
}

#[tokio::test]
async fn optional_route_works_with_and_without_token() {
    let c = serve(app()).await;
    assert_eq!(c.get("/maybe", &[]).await.text(), "anonymous");
    let with = c
        .get(
            "/maybe",
            &[("authorization", &bearer(&token(serde_json::json!({}))))],
        )
        .await;
    assert_eq!(with.text(), "42");
    c.get("/maybe", &[("authorization", "Bearer bad.token.here")])
        .await
        .assert_unauthorized("bad token in optional mode");
}

#[tokio::test]
async fn unknown_paths_stay_404_and_open_routes_stay_open() {
    let c = serve(app()).await;
    assert_eq!(c.get("/nope", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/open", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn scope_check_on_a_sub_router() {
    let c = serve(app()).await;
    let ok = token(serde_json::json!({"scope": "reports:read other"}));
    assert_eq!(
        c.get("/admin/report", &[("authorization", &bearer(&ok))])
            .await
            .status,
        StatusCode::OK
    );
    let lacking = token(serde_json::json!({"scope": "other"}));
    let reply = c
        .get("/admin/report", &[("authorization", &bearer(&lacking))])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge().contains(r#"error="insufficient_scope""#));
    assert!(reply.challenge().contains(r#"scope="reports:read""#));
    c.get("/admin/report", &[])
        .await
        .assert_unauthorized("no token on the sub-router");
}

#[tokio::test]
async fn role_and_predicate_checks_on_single_routes() {
    let c = serve(app()).await;
    let ops = token(serde_json::json!({"roles": ["sre"]}));
    assert_eq!(
        c.get("/ops", &[("authorization", &bearer(&ops))])
            .await
            .status,
        StatusCode::OK
    );
    let dev = token(serde_json::json!({"roles": ["dev"]}));
    assert_eq!(
        c.get("/ops", &[("authorization", &bearer(&dev))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get("/tenant-42", &[("authorization", &bearer(&dev))])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn json_rejection_keeps_the_challenge() {
    let c = serve(app()).await;
    let reply = c.get("/json", &[("authorization", "Bearer x.y.z")]).await;
    reply.assert_unauthorized("json");
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json()["error"], "invalid_token");
}

#[tokio::test]
async fn every_token_source_is_read_and_conflicts_are_400() {
    let c = serve(app()).await;
    let t = token(serde_json::json!({}));
    let cookie = format!("theme=dark; access_token={t}");
    let jwt = format!("JWT {t}");
    let query = format!("/sources?access_token={t}");
    for (what, path, headers) in [
        ("bearer", "/sources", vec![("authorization", bearer(&t))]),
        (
            "JWT scheme",
            "/sources",
            vec![("authorization", jwt.clone())],
        ),
        (
            "named header",
            "/sources",
            vec![("x-auth-token", t.clone())],
        ),
        ("cookie", "/sources", vec![("cookie", cookie.clone())]),
        ("query", query.as_str(), vec![]),
        (
            "same token twice",
            "/sources",
            vec![("authorization", bearer(&t)), ("cookie", cookie.clone())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = c.get(path, &headers).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.text());
        assert_eq!(reply.text(), "42", "{what}");
    }
    let other = token(serde_json::json!({"jti": "different"}));
    let reply = c
        .get(
            "/sources",
            &[("authorization", &bearer(&t)), ("x-auth-token", &other)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.challenge().contains("invalid_request"));
    // The bearer-only route ignores the other sources.
    c.get("/me", &[("cookie", &cookie)])
        .await
        .assert_unauthorized("cookie on bearer-only route");
}

#[tokio::test]
async fn cors_preflight_reaches_the_inner_service() {
    let c = serve(app()).await;
    let req = http::Request::builder()
        .method("OPTIONS")
        .uri(format!("http://{}/cors", c.addr))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .body(Default::default())
        .unwrap();
    let reply = c.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "preflight answered");
    let req = http::Request::post(format!("http://{}/cors", c.addr))
        .body(Default::default())
        .unwrap();
    c.send(req).await.assert_unauthorized("POST without token");
}

/// A POST to `/cookie-write` with these headers.
async fn post_with(c: &Client, headers: &[(&str, &str)]) -> Reply {
    post_to(c, "/cookie-write", headers).await
}

#[tokio::test]
async fn a_cookie_token_on_an_unsafe_request_needs_the_csrf_checks() {
    let c = serve(app()).await;
    let bound = token(serde_json::json!({"csrf": "c5rf-value"}));
    let cookie = format!("access_token={bound}");
    let host = c.addr.to_string();
    let origin = format!("http://{host}");
    // A safe method needs no CSRF token.
    let reply = c.get("/cookie-write", &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // The page's own script sends the header: accepted, from the same origin too.
    for headers in [
        vec![("cookie", cookie.as_str()), ("x-csrf-token", "c5rf-value")],
        vec![
            ("cookie", cookie.as_str()),
            ("x-csrf-token", "c5rf-value"),
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    ] {
        let reply = post_with(&c, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{headers:?}: {}",
            reply.text()
        );
    }
    // Everything else is a 403 without an authentication challenge.
    for (what, headers) in [
        ("no CSRF header", vec![("cookie", cookie.as_str())]),
        (
            "the wrong CSRF token",
            vec![("cookie", cookie.as_str()), ("x-csrf-token", "guess")],
        ),
        (
            "a cross-site origin",
            vec![
                ("cookie", cookie.as_str()),
                ("x-csrf-token", "c5rf-value"),
                ("origin", "https://evil.example"),
            ],
        ),
        (
            "a cross-site fetch",
            vec![
                ("cookie", cookie.as_str()),
                ("x-csrf-token", "c5rf-value"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    ] {
        let reply = post_with(&c, &headers).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}");
        assert!(!reply.headers.contains_key("www-authenticate"), "{what}");
    }
    // A cookie token that is not bound to a CSRF token cannot make unsafe requests.
    let unbound = format!("access_token={}", token(serde_json::json!({})));
    let reply = post_with(&c, &[("cookie", &unbound), ("x-csrf-token", "anything")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_stale_cookie_next_to_a_fresh_header_does_not_fail_the_request() {
    let c = serve(app()).await;
    let fresh = token(serde_json::json!({}));
    let stale = minter().expired(&serde_json::json!({"sub": "42"}));
    let cookie = format!("access_token={stale}");
    // The header credential wins (no CSRF checks: the browser did not add it by itself).
    let reply = post_with(
        &c,
        &[("authorization", &bearer(&fresh)), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn cookie_mode_login_then_csrf_checked_writes_then_logout() {
    use tower_jwt_auth::login::{
        ClearCookies, InMemoryUsers, LoginCookies, LoginService, TokenIssuer,
    };
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let users = InMemoryUsers::with_params(params)
        .unwrap()
        .with_user("ada", "pw", serde_json::json!({"sub": "42"}))
        .unwrap();
    let signing = tower_jwt_auth::SigningKey::from_secret(Algorithm::HS256, SECRET).unwrap();
    let login = LoginService::new(users, TokenIssuer::new(signing)).cookies(LoginCookies::new());
    let auth = JwtAuthLayer::<MyClaims>::new(verifier())
        .token_sources([TokenSource::cookie(LoginCookies::DEFAULT_ACCESS_COOKIE)]);
    let app = Router::new()
        .route("/write", post(me))
        .route_service("/logout", ClearCookies::new(LoginCookies::new()))
        .route_layer(auth)
        .route_service("/login", login);
    let c = serve(app).await;

    let reply = c.login("ada", "pw").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert!(
        body.get("access_token").is_none(),
        "script never sees the token"
    );
    let set: Vec<String> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    // No sessions here: the access token and the CSRF value, no refresh token.
    assert_eq!(set.len(), 2);
    assert!(set[0].starts_with("__Host-access_token=") && set[0].contains("HttpOnly"));
    // The page's script reads the CSRF cookie (not HttpOnly).
    let csrf = set[1]
        .strip_prefix("__Host-csrf_token=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_owned();
    assert!(!set[1].contains("HttpOnly"));
    // What the browser sends back: both cookies.
    let cookie: Vec<&str> = set.iter().map(|c| c.split(';').next().unwrap()).collect();
    let cookie = cookie.join("; ");

    let reply = post_to(
        &c,
        "/write",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "42");
    let forged = post_to(&c, "/write", &[("cookie", &cookie)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let out = post_to(
        &c,
        "/logout",
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = out
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cleared.len(), 3);
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

async fn post_to(c: &Client, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http::Request::post(c.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    c.send(req.body(http_body_util::Full::default()).unwrap())
        .await
}

/// The test kit (feature `test-util`) over real HTTP: each kind of token gets the answer its
/// name promises.
#[tokio::test]
async fn the_test_kit_mints_what_the_layer_expects() {
    let c = serve(app()).await;
    let mint = minter();
    let claims = serde_json::json!({"sub": "42"});
    let reply = c
        .get("/me", &[("authorization", &bearer(&mint.valid(&claims)))])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "42");
    for (token, what) in [
        (mint.expired(&claims), "expired"),
        (mint.not_yet_valid(&claims), "not yet valid"),
        (mint.foreign_key(&claims), "foreign key"),
    ] {
        let reply = c.get("/me", &[("authorization", &bearer(&token))]).await;
        reply.assert_unauthorized(what);
        assert!(reply.challenge().contains("invalid_token"), "{what}");
    }
}
