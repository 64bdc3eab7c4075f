//! The cookie mode in a real browser: headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` with fantoccini) against both HTTP demos with `LOGIN_COOKIES=1`: login,
//! reload, refresh, logout (the old token then refused over plain HTTP), logout-all across two
//! browsers, an expired access cookie renewed on reload, and pages on another port and another
//! host name trying to read or act with the user's cookies.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use browser::Driver;
use bytes::Bytes;
use common::{SECRET, SERVERS, Server};
use http::StatusCode;
use http_body_util::Full;

const ACCESS: &str = "__Host-access_token";
const REFRESH: &str = "__Host-refresh_token";

fn env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("JWT_SECRET".to_owned(), SECRET.to_owned()),
        ("LOGIN_COOKIES".to_owned(), "1".to_owned()),
        ("LOGIN_IP_LIMIT".to_owned(), "1000/60".to_owned()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// The page's URL: `localhost`, which Chromium treats as a secure context (so the `Secure`,
/// `__Host-` cookies work without TLS).
fn page(server: &Server) -> String {
    format!("http://localhost:{}/", server.addr.port())
}

#[tokio::test(flavor = "multi_thread")]
async fn login_reload_refresh_and_logout_in_a_browser() {
    let Some(driver) = Driver::start("login_reload_refresh_and_logout_in_a_browser") else {
        return;
    };
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let b = driver.session().await;
        b.goto(&page(&server)).await;
        b.wait_text("whoami", "").await;
        b.log_in("user1", "wrong", "401").await;
        b.log_in("user1", "password1", "200").await;
        b.wait_text("whoami", "user1").await;
        // The page never sees a token: the body carries none, and script reads no HttpOnly
        // cookie.
        let visible = b
            .client
            .execute("return document.cookie", vec![])
            .await
            .unwrap();
        let visible = visible.as_str().unwrap_or_default();
        assert!(visible.contains("__Host-csrf_token="), "{name}: {visible}");
        assert!(
            !visible.contains(ACCESS) && !visible.contains(REFRESH),
            "{name}: {visible}"
        );
        // `BROWSER_SCREENSHOT=docs/browser-page.png` keeps the README's picture current.
        if let Ok(path) = std::env::var("BROWSER_SCREENSHOT")
            && name == "axum_server"
        {
            b.client.set_window_size(640, 560).await.unwrap();
            std::fs::write(path, b.client.screenshot().await.unwrap()).unwrap();
        }

        // A reload keeps the user signed in.
        b.goto(&page(&server)).await;
        b.wait_text("whoami", "user1").await;
        let before = b.cookie(REFRESH).await.expect("refresh cookie");
        b.act("refresh", "200").await;
        b.wait_text("whoami", "user1").await;
        assert_ne!(b.cookie(REFRESH).await.unwrap(), before, "{name}: rotated");

        // A failed login leaves the session alone.
        b.log_in("user1", "nope", "401").await;
        b.goto(&page(&server)).await;
        b.wait_text("whoami", "user1").await;

        // Logout: the session ends on the server; the old access token is refused over plain
        // HTTP too, and the cookies are gone.
        let access = b.cookie(ACCESS).await.expect("access cookie");
        assert_eq!(server.protected(&access).await.status, StatusCode::OK);
        b.act("logout", "204").await;
        b.wait_text("whoami", "").await;
        server
            .protected(&access)
            .await
            .assert_unauthorized("a logged-out token");
        assert_eq!(b.cookie(ACCESS).await, None, "{name}");
        assert_eq!(b.cookie(REFRESH).await, None, "{name}");
        b.goto(&page(&server)).await;
        b.wait_text("whoami", "").await;
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_access_cookie_is_renewed_on_reload() {
    let Some(driver) = Driver::start("an_expired_access_cookie_is_renewed_on_reload") else {
        return;
    };
    let server = Server::start(
        "axum_server",
        &env(&[("JWT_TTL_SECS", "2"), ("JWT_LEEWAY_SECS", "0")]),
    );
    let b = driver.session().await;
    b.goto(&page(&server)).await;
    b.log_in("user1", "password1", "200").await;
    b.wait_text("whoami", "user1").await;
    let first = b.cookie(ACCESS).await.expect("access cookie");
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.goto(&page(&server)).await;
    b.wait_text("whoami", "user1").await;
    assert_ne!(b.cookie(ACCESS).await.as_deref(), Some(first.as_str()));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_everywhere_reaches_another_browser() {
    let Some(driver) = Driver::start("logout_everywhere_reaches_another_browser") else {
        return;
    };
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let (a, b) = (driver.session().await, driver.session().await);
        for browser in [&a, &b] {
            browser.goto(&page(&server)).await;
            browser.log_in("user1", "password1", "200").await;
            browser.wait_text("whoami", "user1").await;
        }
        a.act("logout-all", "204").await;
        a.wait_text("whoami", "").await;
        b.goto(&page(&server)).await;
        b.wait_text("whoami", "").await;
        a.close().await;
        b.close().await;
    }
}

/// A page of another origin that tries, with the user's cookies, to read `/protected` and to
/// make `/logout-all`, `/refresh`, `/login` and `/logout` act: by `fetch` with credentials and
/// by plain form posts. It writes what its script could see into `#result`.
fn attacker_page(target: &str) -> String {
    format!(
        r#"<!doctype html><html><body><div id="result">running</div>
<form id="refresh" method="POST" action="{target}/refresh" target="sink1"><input name="x" value="1"></form>
<form id="logout-all" method="POST" action="{target}/logout-all" target="sink2"><input name="x" value="1"></form>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<script>
(async () => {{
  const out = {{}};
  for (const path of ['/logout-all', '/refresh', '/logout']) {{
    try {{
      const r = await fetch('{target}' + path, {{ method: 'POST', credentials: 'include' }});
      out[path] = r.status;
    }} catch (e) {{ out[path] = 'blocked'; }}
  }}
  try {{
    const r = await fetch('{target}/login', {{ method: 'POST', credentials: 'include',
      headers: {{ 'Content-Type': 'text/plain' }},
      body: JSON.stringify({{ username: 'user2', password: 'password2' }}) }});
    out['/login'] = r.status;
  }} catch (e) {{ out['/login'] = 'blocked'; }}
  try {{
    const r = await fetch('{target}/protected', {{ credentials: 'include' }});
    out.read = await r.text();
  }} catch (e) {{ out.read = 'blocked'; }}
  document.getElementById('refresh').submit();
  document.getElementById('logout-all').submit();
  setTimeout(() => {{ document.getElementById('result').textContent = JSON.stringify(out); }}, 1500);
}})();
</script></body></html>"#
    )
}

/// Serve `html` on a port of its own (on every address of 127.0.0.1, so both `localhost` and
/// `127.0.0.1` name it).
async fn serve_attacker(html: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = Bytes::from(html);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let html = html.clone();
                    async move {
                        let mut res = http::Response::new(Full::new(html));
                        res.headers_mut()
                            .insert("content-type", "text/html".parse().unwrap());
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_another_origin_or_site_can_neither_read_nor_act() {
    let Some(driver) = Driver::start("pages_of_another_origin_or_site_can_neither_read_nor_act")
    else {
        return;
    };
    for name in SERVERS {
        let server = Server::start(name, &env(&[]));
        let target = format!("http://localhost:{}", server.addr.port());
        let attacker = serve_attacker(attacker_page(&target)).await;
        // Another port of the same host (same site, another origin), then another host name
        // (another site).
        for origin in [
            format!("http://localhost:{}/", attacker.port()),
            format!("http://127.0.0.1:{}/", attacker.port()),
        ] {
            let b = driver.session().await;
            b.goto(&page(&server)).await;
            b.log_in("user1", "password1", "200").await;
            b.wait_text("whoami", "user1").await;
            let refresh = b.cookie(REFRESH).await.expect("refresh cookie");

            b.goto(&origin).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            let result = loop {
                let text = b.text("result").await;
                if text != "running" {
                    break text;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the attack never finished"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let result: serde_json::Value = serde_json::from_str(&result).unwrap();
            assert_eq!(result["read"], "blocked", "{name} from {origin}: {result}");

            // Nothing acted: the same session, the same refresh token, still signed in.
            b.goto(&page(&server)).await;
            b.wait_text("whoami", "user1").await;
            assert_eq!(
                b.cookie(REFRESH).await.as_deref(),
                Some(refresh.as_str()),
                "{name} from {origin}: the refresh token was rotated or removed"
            );
            b.close().await;
        }
    }
}
