//! `/metrics` on the demo servers (feature `metrics`, Prometheus text): requests by outcome and
//! reason, cache hits and misses, logins by outcome, throttled attempts; never a token, secret
//! or username.

mod common;

use common::{Client, SECRET, SERVERS, Server};
use http::StatusCode;

/// The value of the sample whose line starts with `name{` and has all of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_outcomes_without_secrets() {
    for name in SERVERS {
        let server = Server::start(
            name,
            &[
                ("JWT_SECRET".to_owned(), SECRET.to_owned()),
                ("LOGIN_USER_LIMIT".to_owned(), "2/60".to_owned()),
            ],
        );
        let c: &Client = &server;
        let token = c.token().await;
        for _ in 0..3 {
            assert_eq!(c.protected(&token).await.status, StatusCode::OK);
        }
        c.get("/protected", &[])
            .await
            .assert_unauthorized("no token");
        c.protected("not.a.token")
            .await
            .assert_unauthorized("garbage");
        for _ in 0..2 {
            assert_eq!(
                c.login("user2", "wrong").await.status,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            c.login("user2", "password2").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );

        let res = c.get("/metrics", &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{name}");
        assert!(
            res.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{name}"
        );
        let text = res.text();
        let requests = "tower_jwt_auth_requests_total";
        assert_eq!(
            sample(&text, requests, &["outcome=\"accepted\""]),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, requests, &["reason=\"missing_token\""]),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, requests, &["reason=\"malformed\""]),
            Some(1.0),
            "{text}"
        );
        // The first request verified the token, the next two found it in the cache.
        let cache = "tower_jwt_auth_cache_total";
        assert_eq!(
            sample(&text, cache, &["result=\"hit\""]),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, cache, &["result=\"miss\""]),
            Some(2.0),
            "{text}"
        );
        let logins = "tower_jwt_auth_logins_total";
        assert_eq!(
            sample(&text, logins, &["outcome=\"success\""]),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, logins, &["outcome=\"invalid_credentials\""]),
            Some(2.0)
        );
        assert_eq!(sample(&text, logins, &["outcome=\"throttled\""]), Some(1.0));
        let throttled = "tower_jwt_auth_login_throttled_total";
        assert_eq!(
            sample(&text, throttled, &["limit=\"username\""]),
            Some(1.0),
            "{text}"
        );
        for secret in [
            token.as_str(),
            "user1",
            "user2",
            "password",
            SECRET,
            "127.0.0.1",
        ] {
            assert!(!text.contains(secret), "{name}: {secret} in\n{text}");
        }
        assert_eq!(
            c.post("/metrics", None, "").await.status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

/// Cookie mode: forgeries are counted apart from bad requests: a login from another origin, a
/// refresh without the session's CSRF value, an unsafe API call without it.
#[tokio::test]
async fn cookie_mode_counts_forgeries() {
    for name in SERVERS {
        let server = Server::start(
            name,
            &[
                ("JWT_SECRET".to_owned(), SECRET.to_owned()),
                ("LOGIN_COOKIES".to_owned(), "1".to_owned()),
            ],
        );
        let c: &Client = &server;
        let credentials = r#"{"username":"user1","password":"password1"}"#;
        let elsewhere = [("origin", "http://evil.example")];
        let reply = c.post_json("/login", &elsewhere, credentials).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}");
        let reply = c.post_json("/login", &[], credentials).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        let cookies: Vec<String> = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let cookies = [("cookie", cookies.join("; "))];
        let cookies = cookies.each_ref().map(|(k, v)| (*k, v.as_str()));
        // No X-CSRF-Token: the refresh and the logout (behind the layer) are refused.
        for path in ["/refresh", "/logout"] {
            let reply = c.post_json(path, &cookies, "").await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name} {path}");
        }

        let text = c.get("/metrics", &[]).await.text();
        for (metric, label) in [
            ("tower_jwt_auth_logins_total", "outcome=\"forbidden\""),
            ("tower_jwt_auth_logins_total", "outcome=\"success\""),
            ("tower_jwt_auth_refreshes_total", "outcome=\"forbidden\""),
            ("tower_jwt_auth_requests_total", "reason=\"csrf_rejected\""),
        ] {
            assert_eq!(
                sample(&text, metric, &[label]),
                Some(1.0),
                "{name} {metric} {label}\n{text}"
            );
        }
        assert_eq!(
            sample(
                &text,
                "tower_jwt_auth_logins_total",
                &["outcome=\"invalid_request\""]
            ),
            None,
            "{name}\n{text}"
        );
    }
}
