//! Cookie mode through the composition root, rule by rule over plain requests (no browser):
//! the cookies a login and a refresh set, the session-bound CSRF value, the origin checks of
//! the login and the refresh, and the logouts that end the session and clear the cookies.

use std::collections::HashMap;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

use super::AuthServer;
use crate::JsonBody;
use crate::keys::SigningKey;
use crate::login::{InMemoryUsers, LoginCookies};
use crate::session::Sessions;
use jsonwebtoken::Algorithm;

const ACCESS: &str = LoginCookies::DEFAULT_ACCESS_COOKIE;
const REFRESH: &str = LoginCookies::DEFAULT_REFRESH_COOKIE;
const CSRF: &str = LoginCookies::DEFAULT_CSRF_COOKIE;

type Server = AuthServer<InMemoryUsers<serde_json::Value>>;

async fn server(public_url: Option<&str>) -> Server {
    let users = InMemoryUsers::new()
        .unwrap()
        .with_user("u", "p", serde_json::json!({"sub": "1", "username": "u"}))
        .unwrap();
    let mut builder = AuthServer::builder(
        users,
        SigningKey::from_secret(Algorithm::HS256, [3u8; 32]).unwrap(),
    )
    .cookies(LoginCookies::new());
    if let Some(url) = public_url {
        builder = builder.public_url(url);
    }
    builder.build().await.unwrap()
}

/// The cookies a response sets: name → (value, attributes).
fn set_cookies(res: &Response<JsonBody>) -> HashMap<String, (String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), (value.to_owned(), attributes.to_owned())))
        })
        .collect()
}

async fn body(res: Response<JsonBody>) -> serde_json::Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// A request from the page at `http://app.example` (the same origin as the server).
fn from_page(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.example")
        .header("origin", "http://app.example")
        .header("sec-fetch-site", "same-origin")
}

fn login_request(req: http::request::Builder) -> Request<Full<Bytes>> {
    req.header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"username":"u","password":"p"}"#,
        )))
        .unwrap()
}

struct Browser {
    access: String,
    refresh: String,
    csrf: String,
}

impl Browser {
    fn cookie_header(&self) -> String {
        format!(
            "{ACCESS}={}; {REFRESH}={}; {CSRF}={}",
            self.access, self.refresh, self.csrf
        )
    }
}

async fn log_in(auth: &Server) -> Browser {
    let res = auth
        .login()
        .oneshot(login_request(from_page("POST", "/login")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    Browser {
        access: cookies[ACCESS].0.clone(),
        refresh: cookies[REFRESH].0.clone(),
        csrf: cookies[CSRF].0.clone(),
    }
}

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_login_sets_three_cookies_and_no_token_in_the_body() {
    let auth = server(None).await;
    let res = auth
        .login()
        .oneshot(login_request(from_page("POST", "/login")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    for (name, http_only) in [(ACCESS, true), (REFRESH, true), (CSRF, false)] {
        let (value, attributes) = &cookies[name];
        assert!(!value.is_empty(), "{name}");
        for attribute in ["Secure", "Path=/", "SameSite=Strict"] {
            assert!(attributes.contains(attribute), "{name}: {attributes}");
        }
        assert_eq!(
            attributes.contains("HttpOnly"),
            http_only,
            "{name}: {attributes}"
        );
        assert!(!attributes.contains("Domain"), "{name}: {attributes}");
    }
    // The CSRF value is the session's, and the access token carries it.
    let csrf = &cookies[CSRF].0;
    assert_eq!(Sessions::csrf_of(&cookies[REFRESH].0).as_ref(), Some(csrf));
    assert_eq!(claims(&cookies[ACCESS].0)["csrf"], csrf.as_str());
    let body = body(res).await;
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["expires_in"].is_u64(), "{body}");
}

#[tokio::test]
async fn a_login_from_another_origin_is_refused() {
    let auth = server(None).await;
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "https://app.example"),
        ("origin", "http://app.example:8080"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let req = Request::post("/login")
            .header("host", "app.example")
            .header(header, value);
        let res = auth.login().oneshot(login_request(req)).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(set_cookies(&res).is_empty());
    }
    // A plain HTML form post is refused as such, before its body is read (not a 415).
    let form = Request::post("/login")
        .header("host", "app.example")
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"username=u&password=p")))
        .unwrap();
    let res = auth.login().oneshot(form).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // The public URL is the origin when there is one.
    let public = server(Some("https://app.example")).await;
    let https = Request::post("/login")
        .header("host", "internal:8080")
        .header("origin", "https://app.example");
    let res = public.login().oneshot(login_request(https)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn refresh(auth: &Server, req: http::request::Builder) -> Response<JsonBody> {
    auth.refresh()
        .oneshot(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refresh_from_the_cookie_needs_the_sessions_csrf_value() {
    let auth = server(None).await;
    let browser = log_in(&auth).await;
    // Only the refresh cookie (the access cookie expired): what a refresh needs.
    let only_refresh = format!("{REFRESH}={}", browser.refresh);
    let cases = [
        (None, "same-origin", StatusCode::FORBIDDEN),
        (Some("forged"), "same-origin", StatusCode::FORBIDDEN),
        (
            Some(browser.csrf.as_str()),
            "cross-site",
            StatusCode::FORBIDDEN,
        ),
    ];
    for (csrf, site, status) in cases {
        let mut req = Request::post("/refresh")
            .header("host", "app.example")
            .header("sec-fetch-site", site)
            .header("cookie", &only_refresh);
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        let res = refresh(&auth, req).await;
        assert_eq!(res.status(), status, "{csrf:?} {site}");
        assert!(set_cookies(&res).is_empty());
    }
    // Another session's cookie/header pair does not fit this session.
    let other = log_in(&auth).await;
    let res = refresh(
        &auth,
        from_page("POST", "/refresh")
            .header("cookie", &only_refresh)
            .header("x-csrf-token", &other.csrf),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = refresh(
        &auth,
        from_page("POST", "/refresh")
            .header("cookie", &only_refresh)
            .header("x-csrf-token", &browser.csrf),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    assert_ne!(cookies[REFRESH].0, browser.refresh, "rotated");
    assert_eq!(
        cookies[CSRF].0, browser.csrf,
        "the session's value, unchanged"
    );
    assert_eq!(claims(&cookies[ACCESS].0)["csrf"], browser.csrf.as_str());
    let body = body(res).await;
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());

    // No cookie: nothing to refresh.
    let res = refresh(&auth, from_page("POST", "/refresh")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logging_out_ends_the_session_and_clears_every_cookie() {
    let auth = server(None).await;
    for all in [false, true] {
        let browser = log_in(&auth).await;
        let req = from_page("POST", "/logout")
            .header("cookie", browser.cookie_header())
            .header("x-csrf-token", &browser.csrf)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = if all {
            auth.layer().layer(auth.logout_all()).oneshot(req).await
        } else {
            auth.layer().layer(auth.logout()).oneshot(req).await
        }
        .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "all: {all}");
        let cleared = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter(|v| v.to_str().unwrap().contains("Max-Age=0"))
            .count();
        assert_eq!(cleared, 3, "all: {all}");
        // The session is over on the server: its refresh cookie renews nothing, and the
        // refusal removes the dead cookies.
        let res = refresh(
            &auth,
            from_page("POST", "/refresh")
                .header("cookie", format!("{REFRESH}={}", browser.refresh))
                .header("x-csrf-token", &browser.csrf),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "all: {all}");
        let cookies = set_cookies(&res);
        for name in [ACCESS, REFRESH, CSRF] {
            assert_eq!(cookies[name].0, "", "all: {all}: {name}");
        }
    }
}

#[tokio::test]
async fn the_token_endpoint_refreshes_from_the_cookie_with_the_same_checks() {
    let auth = server(None).await;
    let browser = log_in(&auth).await;
    let refresh_cookie = browser.refresh.clone();
    let token = |req: http::request::Builder| {
        let auth = auth.clone();
        let refresh_cookie = refresh_cookie.clone();
        async move {
            auth.token()
                .oneshot(
                    req.header("content-type", "application/x-www-form-urlencoded")
                        .header("cookie", format!("{REFRESH}={refresh_cookie}"))
                        .body(Full::new(Bytes::from_static(b"grant_type=refresh_token")))
                        .unwrap(),
                )
                .await
                .unwrap()
        }
    };
    // Refused requests rotate nothing: each case sends the same refresh cookie.
    for req in [
        from_page("POST", "/token"),
        from_page("POST", "/token").header("x-csrf-token", "forged"),
        Request::post("/token")
            .header("host", "app.example")
            .header("origin", "http://evil.example")
            .header("x-csrf-token", browser.csrf.as_str()),
    ] {
        let res = token(req).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(set_cookies(&res).is_empty());
    }
    let res =
        token(from_page("POST", "/token").header("x-csrf-token", browser.csrf.as_str())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let cookies = set_cookies(&res);
    assert_ne!(cookies[REFRESH].0, browser.refresh);
    let body = body(res).await;
    assert!(
        body.get("access_token").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn a_refresh_with_the_token_in_the_body_still_works_in_cookie_mode() {
    let auth = server(None).await;
    let browser = log_in(&auth).await;
    let req = Request::post("/refresh")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "refresh_token": browser.refresh }).to_string(),
        )))
        .unwrap();
    let res = auth.refresh().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Answered the cookie mode's way: cookies, no token in the body.
    assert!(set_cookies(&res).contains_key(ACCESS));
    let body = body(res).await;
    assert!(body.get("access_token").is_none(), "{body}");
}
