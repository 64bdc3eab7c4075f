//! The demos' cookie mode (`LOGIN_COOKIES=1`) over plain HTTP, no browser: the page and its
//! headers, the three cookies and their attributes, bodies without tokens, the CSRF value bound
//! to the session, the `Origin` and `Sec-Fetch-Site` rules on every unsafe request (the token
//! endpoint's refresh from the cookie included), and logout and logout-all ending sessions on
//! the server. `tests/browser.rs` drives the same demos in Chromium.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::{Reply, SECRET, SERVERS, Server, decode_payload};
use cookie::Cookie;
use http::{Method, Request, StatusCode};
use http_body_util::Full;

const ACCESS: &str = "__Host-access_token";
const REFRESH: &str = "__Host-refresh_token";
const CSRF: &str = "__Host-csrf_token";

fn start(name: &str) -> Server {
    let env = [
        ("JWT_SECRET", SECRET),
        ("LOGIN_COOKIES", "1"),
        ("LOGIN_IP_LIMIT", "1000/60"),
    ];
    Server::start(name, &env.map(|(k, v)| (k.to_owned(), v.to_owned())))
}

/// The cookies a reply sets, parsed: name → cookie with its attributes.
fn set_cookies(reply: &Reply) -> HashMap<String, Cookie<'static>> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| Cookie::parse(v.to_owned()).expect("a well-formed Set-Cookie"))
        .map(|c| (c.name().to_owned(), c))
        .collect()
}

/// What a browser holds for the demo: its cookies, updated from every reply.
#[derive(Clone, Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, reply: &Reply) {
        for (name, cookie) in set_cookies(reply) {
            if cookie.value().is_empty() {
                self.0.remove(&name);
            } else {
                self.0.insert(name, cookie.value().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("; ")
    }

    fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// An unsafe request as the demo's own page sends it: cookies, `X-CSRF-Token`, and
/// `Origin`/`Sec-Fetch-Site` of the page (replaced or dropped through `headers`).
async fn post(
    server: &Server,
    path: &str,
    jar: &Jar,
    headers: &[(&str, Option<&str>)],
    body: &str,
) -> Reply {
    let origin = format!("http://{}", server.addr);
    let mut wanted: Vec<(&str, Option<&str>)> = vec![
        ("origin", Some(&origin)),
        ("sec-fetch-site", Some("same-origin")),
        ("x-csrf-token", Some(jar.get(CSRF))),
        ("cookie", None),
        ("content-type", Some("application/json")),
    ];
    let cookies = jar.header();
    wanted[3].1 = Some(&cookies);
    for (name, value) in headers {
        match wanted.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = *value,
            None => wanted.push((name, *value)),
        }
    }
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(server.url(path));
    for (name, value) in wanted {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            req = req.header(name, value);
        }
    }
    server
        .send(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
}

async fn log_in(server: &Server, jar: &mut Jar, password: &str) -> Reply {
    let body = serde_json::json!({ "username": "user1", "password": password }).to_string();
    let reply = post(server, "/login", jar, &[], &body).await;
    jar.take(&reply);
    reply
}

/// A demo in cookie mode and a browser signed in to it as user1.
async fn signed_in(name: &str) -> (Server, Jar) {
    let server = start(name);
    let mut jar = Jar::default();
    let reply = log_in(&server, &mut jar, "password1").await;
    assert_status(&reply, StatusCode::OK, name);
    (server, jar)
}

async fn whoami(server: &Server, jar: &Jar) -> Reply {
    server.get("/protected", &[("cookie", &jar.header())]).await
}

#[track_caller]
fn assert_status(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text());
}

/// A refresh from the cookies at `path` (`/refresh`, or the token endpoint's grant): new
/// cookies, a rotated refresh token, no token in the body.
async fn renew(server: &Server, jar: &mut Jar, path: &str, name: &str) {
    let old_refresh = jar.get(REFRESH).to_owned();
    let body = if path == "/token" { REFRESH_GRANT } else { "" };
    let reply = post(server, path, jar, &[content_type(path)], body).await;
    assert_status(&reply, StatusCode::OK, &format!("{name} {path}"));
    assert_no_token(&reply, name);
    jar.take(&reply);
    assert_ne!(jar.get(REFRESH), old_refresh, "{name} {path}: not rotated");
}

/// A forgery refused: 403, and no cookie set or removed (another origin cannot sign a user
/// out).
#[track_caller]
fn assert_refused(reply: &Reply, what: &str) {
    assert_status(reply, StatusCode::FORBIDDEN, what);
    assert!(set_cookies(reply).is_empty(), "{what}: cookies changed");
}

/// The body of a login or refresh in cookie mode: a lifetime, no token.
#[track_caller]
fn assert_no_token(reply: &Reply, what: &str) {
    let body = reply.json();
    assert!(body["expires_in"].is_u64(), "{what}: {body}");
    for name in ["access_token", "refresh_token", "id_token"] {
        assert!(body.get(name).is_none(), "{what}: {name} in {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_loads_nothing_from_elsewhere_and_forbids_inline_script() {
    for name in SERVERS {
        let server = start(name);
        let page = server.get("/", &[]).await;
        assert_status(&page, StatusCode::OK, name);
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{name}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{name}: {csp}");
        let html = page.text();
        for id in [
            "username",
            "password",
            "login",
            "whoami",
            "refresh",
            "logout",
            "logout-all",
            "status",
        ] {
            assert!(
                html.contains(&format!("id=\"{id}\"")),
                "{name}: #{id} missing"
            );
        }
        assert!(
            !html.contains("://"),
            "{name}: the page names another origin"
        );
        for asset in ["/app.js", "/app.css"] {
            assert!(html.contains(asset), "{name}: {asset} not used");
            assert_status(&server.get(asset, &[]).await, StatusCode::OK, asset);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_refresh_answer_with_cookies_only() {
    for name in SERVERS {
        let server = start(name);
        let mut jar = Jar::default();
        let reply = log_in(&server, &mut jar, "password1").await;
        assert_status(&reply, StatusCode::OK, name);
        assert_no_token(&reply, name);
        let set = set_cookies(&reply);
        for (cookie, http_only) in [(ACCESS, true), (REFRESH, true), (CSRF, false)] {
            let c = &set[cookie];
            assert!(c.secure() == Some(true), "{name} {cookie}: {c}");
            assert_eq!(c.path(), Some("/"), "{name} {cookie}: {c}");
            assert_eq!(c.same_site(), Some(cookie::SameSite::Strict), "{name}: {c}");
            assert_eq!(c.http_only() == Some(true), http_only, "{name}: {c}");
            assert_eq!(c.domain(), None, "{name}: {c}");
        }
        let csrf = jar.get(CSRF).to_owned();
        assert_eq!(
            decode_payload(jar.get(ACCESS))["csrf"],
            csrf.as_str(),
            "{name}"
        );

        let me = whoami(&server, &jar).await;
        assert_status(&me, StatusCode::OK, name);
        assert_eq!(me.json()["username"], "user1", "{name}");
        // The access JWT works in a header as everywhere.
        assert_status(
            &server.protected(jar.get(ACCESS)).await,
            StatusCode::OK,
            name,
        );

        // A refresh with an expired (dropped) access cookie still checks the session's CSRF
        // value, keeps it, and rotates the refresh cookie.
        jar.0.remove(ACCESS);
        renew(&server, &mut jar, "/refresh", name).await;
        assert_eq!(
            jar.get(CSRF),
            csrf,
            "{name}: the session's CSRF value changed"
        );
        assert_eq!(
            decode_payload(jar.get(ACCESS))["csrf"],
            csrf.as_str(),
            "{name}"
        );
        assert_status(&whoami(&server, &jar).await, StatusCode::OK, name);

        // A failed login leaves the session alone.
        let before = jar.clone();
        let reply = log_in(&server, &mut jar, "wrong").await;
        assert_status(&reply, StatusCode::UNAUTHORIZED, name);
        assert_eq!(
            jar.0, before.0,
            "{name}: a failed login touched the cookies"
        );
        assert_status(&whoami(&server, &jar).await, StatusCode::OK, name);
    }
}

const REFRESH_GRANT: &str = "grant_type=refresh_token";

/// The unsafe endpoints a cookie can reach, with a body each would accept.
const ENDPOINTS: [(&str, &str); 5] = [
    ("/login", r#"{"username":"user2","password":"password2"}"#),
    ("/refresh", ""),
    ("/logout", ""),
    ("/logout-all", ""),
    ("/token", REFRESH_GRANT),
];

/// The token endpoint takes a form; the others JSON.
fn content_type(path: &str) -> (&'static str, Option<&'static str>) {
    let form = path == "/token";
    let value = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    ("content-type", Some(value))
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_requests_from_elsewhere_or_without_the_sessions_csrf_value_are_refused() {
    for name in SERVERS {
        let (server, mut jar) = signed_in(name).await;
        let port = server.addr.port();
        let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
        let https = format!("https://{}", server.addr);
        let elsewhere: [(&str, &str); 5] = [
            ("origin", &other_port),
            ("origin", &https),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-site", "cross-site"),
        ];
        for (path, body) in ENDPOINTS {
            for (header, value) in elsewhere {
                let headers = [(header, Some(value)), content_type(path)];
                let reply = post(&server, path, &jar, &headers, body).await;
                assert_refused(&reply, &format!("{name} {path} {header}: {value}"));
            }
        }
        // A plain HTML form post from another origin: refused as such, whatever its body.
        let form = ("content-type", Some("application/x-www-form-urlencoded"));
        for path in ["/login", "/refresh", "/logout", "/logout-all"] {
            let headers = [
                ("origin", Some(other_port.as_str())),
                ("x-csrf-token", None),
                form,
            ];
            let reply = post(&server, path, &jar, &headers, "username=user2&password=x").await;
            assert_refused(&reply, &format!("{name} form {path}"));
        }
        // Refresh and logout need the CSRF value bound to this session: none, a forged one,
        // or a cookie/header pair tossed in by another page are refused.
        let mut tossed = jar.clone();
        tossed.0.insert(CSRF.to_owned(), "tossed".to_owned());
        for (path, body) in &ENDPOINTS[1..] {
            for (what, jar, header) in [
                ("no header", &jar, None),
                ("forged header", &jar, Some("forged")),
                ("tossed pair", &tossed, Some("tossed")),
            ] {
                let headers = [("x-csrf-token", header), content_type(path)];
                let reply = post(&server, path, jar, &headers, body).await;
                assert_refused(&reply, &format!("{name} {path}: {what}"));
            }
        }
        // None of it did anything: the session lives on, and the token endpoint renews it
        // from the cookies like `/refresh`.
        assert_status(&whoami(&server, &jar).await, StatusCode::OK, name);
        let reply = post(&server, "/refresh", &jar, &[], "").await;
        assert_status(&reply, StatusCode::OK, name);
        jar.take(&reply);
        renew(&server, &mut jar, "/token", name).await;
        assert_status(&whoami(&server, &jar).await, StatusCode::OK, name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session_and_logout_all_every_session() {
    for name in SERVERS {
        let (server, mut jar) = signed_in(name).await;
        let before = jar.clone();
        let reply = post(&server, "/logout", &jar, &[], "").await;
        assert!(reply.status.is_success(), "{name}: logout {}", reply.status);
        let cleared = set_cookies(&reply);
        for cookie in [ACCESS, REFRESH, CSRF] {
            assert_eq!(
                cleared.get(cookie).map(Cookie::value),
                Some(""),
                "{name} {cookie}"
            );
        }
        jar.take(&reply);
        assert!(jar.0.is_empty(), "{name}: cookies left {:?}", jar.0.keys());
        // The old cookies, replayed by hand, no longer work: not the access token (also not
        // in a header), not the refresh token.
        server
            .protected(before.get(ACCESS))
            .await
            .assert_unauthorized(name);
        whoami(&server, &before).await.assert_unauthorized(name);
        // A refresh from the dead session is refused and removes its cookies (so the browser
        // stops sending them).
        let reply = post(&server, "/refresh", &before, &[], "").await;
        assert_status(&reply, StatusCode::BAD_REQUEST, name);
        assert_eq!(reply.json()["error"], "invalid_grant", "{name}");
        let cleared = set_cookies(&reply);
        for cookie in [ACCESS, REFRESH, CSRF] {
            assert_eq!(
                cleared.get(cookie).map(Cookie::value),
                Some(""),
                "{name} {cookie} after a refused refresh"
            );
        }

        // Two browsers, one user: logout-all from one ends both.
        let (mut one, mut two) = (Jar::default(), Jar::default());
        log_in(&server, &mut one, "password1").await;
        log_in(&server, &mut two, "password1").await;
        assert_status(&whoami(&server, &two).await, StatusCode::OK, name);
        let reply = post(&server, "/logout-all", &one, &[], "").await;
        assert!(
            reply.status.is_success(),
            "{name}: logout-all {}",
            reply.status
        );
        one.take(&reply);
        assert!(one.0.is_empty(), "{name}: cookies left {:?}", one.0.keys());
        whoami(&server, &two).await.assert_unauthorized(name);
        let reply = post(&server, "/refresh", &two, &[], "").await;
        assert!(reply.status.is_client_error(), "{name}: {}", reply.status);
    }
}
