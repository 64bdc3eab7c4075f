//! Headless Chromium for the browser tests, through the system's `chromedriver` (Debian's
//! `chromium` and `chromium-driver`). Where either is missing a test says so loudly and skips,
//! except in CI (`CI=true`), where that is a failure.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The Chromium binary, if installed.
fn chromium() -> Option<&'static str> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One `chromedriver`; each [`session`](Self::session) is a fresh browser with its own
/// profile (its own cookies).
pub struct Driver {
    child: Child,
    url: String,
    chromium: &'static str,
}

impl Driver {
    /// A driver, or `None` (after a loud message) where Chromium is missing outside CI.
    pub fn start(test: &str) -> Option<Self> {
        let chromium = chromium();
        if chromium.is_none() || !installed("chromedriver") {
            assert!(
                !in_ci(),
                "chromium or chromedriver is not installed, and CI=true: the browser tests must \
                 run in CI (apt-get install -y chromium chromium-driver)"
            );
            eprintln!(
                "\n*** SKIPPED {test}: chromium or chromedriver is not installed (apt-get \
                 install -y chromium chromium-driver); the browser tests did not run ***\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Shown in CI (`--nocapture`) as proof that the browser tests ran rather than skipped.
        eprintln!("chromedriver started on 127.0.0.1:{port} for {test}");
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium: chromium.unwrap_or_default(),
        })
    }

    /// A new headless browser.
    pub async fn session(&self) -> Browser {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-extensions",
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser, driven.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    pub async fn text(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .expect("the element")
            .text()
            .await
            .expect("its text")
    }

    /// Wait until `#id` reads `expected` (10 s at most).
    pub async fn wait_text(&self, id: &str, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(id).await;
            if text == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "#{id} reads {text:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Click `#id` after emptying `#status`, then wait for the action's status.
    pub async fn act(&self, id: &str, status: &str) {
        self.client
            .execute("document.getElementById('status').textContent = ''", vec![])
            .await
            .expect("script");
        self.client
            .find(Locator::Id(id))
            .await
            .expect("the button")
            .click()
            .await
            .expect("a click");
        self.wait_text("status", status).await;
    }

    /// Type the credentials and press `#login`, expecting `status`.
    pub async fn log_in(&self, username: &str, password: &str, status: &str) {
        for (id, value) in [("username", username), ("password", password)] {
            let field = self
                .client
                .wait()
                .for_element(Locator::Id(id))
                .await
                .expect("the field");
            field.clear().await.expect("cleared");
            field.send_keys(value).await.expect("typed");
        }
        self.act("login", status).await;
    }

    /// A cookie's value as the browser holds it (WebDriver sees `HttpOnly` ones too).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_owned())
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
