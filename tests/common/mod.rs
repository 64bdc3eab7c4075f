//! Helpers for the integration tests: start the demo servers as real processes on
//! 127.0.0.1:0, talk HTTP to them, and mint tokens independently of the crate's issuer.
//!
//! Before a test starts a demo binary, it has cargo build that example with the features and
//! profile this test was built with (a no-op when `cargo test` already built it), so no test
//! ever runs a stale binary, even under `cargo test --test attacks`.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey};

pub const SERVERS: [&str; 2] = ["axum_server", "hyper_server"];

pub fn key_path(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_path(name)).expect("test key exists")
}

/// The private and public key files for an asymmetric algorithm.
pub fn key_files(alg: Algorithm) -> Option<(&'static str, &'static str)> {
    Some(match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => ("rsa_private.pem", "rsa_public.pem"),
        Algorithm::ES256 => ("ec256_private.pem", "ec256_public.pem"),
        Algorithm::ES384 => ("ec384_private.pem", "ec384_public.pem"),
        Algorithm::EdDSA => ("ed25519_private.pem", "ed25519_public.pem"),
        _ => return None,
    })
}

pub const SECRET: &str = "integration-test-secret-that-is-64-bytes-long-for-hs512-0123456789";

pub const ALL_ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The environment for a demo server using `alg` with the test keys.
pub fn env_for(alg: Algorithm) -> Vec<(String, String)> {
    let mut env = vec![("JWT_ALGORITHM".to_owned(), format!("{alg:?}"))];
    match key_files(alg) {
        Some((private, public)) => {
            env.push(("JWT_PRIVATE_KEY_FILE".to_owned(), key_path(private)));
            env.push(("JWT_PUBLIC_KEY_FILE".to_owned(), key_path(public)));
        }
        None => env.push(("JWT_SECRET".to_owned(), SECRET.to_owned())),
    }
    env
}

/// A demo server process, killed on drop. Dereferences to a [`Client`] for it.
pub struct Server {
    child: Child,
    client: Client,
}

/// An HTTP client for one server; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The crate features this test binary was built with, to build the examples the same way.
fn enabled_features() -> Vec<&'static str> {
    let mut features = Vec::new();
    macro_rules! detect {
        ($($name:literal),*) => {
            $(if cfg!(feature = $name) { features.push($name); })*
        };
    }
    detect!(
        "aws-lc-rs",
        "rust-crypto",
        "login",
        "dpop",
        "sessions",
        "metrics",
        "cookie",
        "tracing",
        "axum",
        "remote-jwks",
        "oauth-client",
        "hyper-client",
        "os-certs",
        "https-proxy"
    );
    features
}

/// Build example `name` (once per test binary) and return the path of its binary.
fn example_path(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>, target
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target directory");
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        let profile = match profile_dir.file_name().and_then(|p| p.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "-p",
                "tower-jwt-auth",
                "--example",
                name,
            ])
            .args(["--profile", profile])
            .arg("--target-dir")
            .arg(target_dir)
            .args(["--no-default-features", "--features"])
            .arg(enabled_features().join(","))
            .stdin(Stdio::null())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo could not build example {name}");
        built.push(name.to_owned());
    }
    path
}

/// Run example `name` (a client) to its end: whether it succeeded, its stdout and stderr.
pub fn run_example(name: &str, env: &[(String, String)]) -> (bool, String, String) {
    let output = Command::new(example_path(name))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        strip_ansi(&String::from_utf8_lossy(&output.stderr)),
    )
}

impl Server {
    /// Start example `name` with the given environment and wait until it listens.
    pub fn start(name: &str, env: &[(String, String)]) -> Self {
        // Tests mint tokens with jsonwebtoken directly: select its crypto backend first (with
        // both backends compiled in, jsonwebtoken alone would panic).
        tower_jwt_auth::install_crypto_provider().unwrap();
        let mut cmd = Command::new(example_path(name));
        cmd.env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("demo server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next().map(|l| l.map(|l| strip_ansi(&l))) else {
                let _ = child.kill();
                panic!("{name} exited before listening");
            };
            if line.contains("listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                break rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.parse().ok())
                    .expect("listening address in the log line");
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            client: Client::new(addr),
        }
    }

    /// Start example `name`, expecting it to refuse the configuration: what it printed before
    /// it exited (a failure if it starts listening instead).
    pub fn refused(name: &str, env: &[(String, String)]) -> String {
        let mut child = Command::new(example_path(name))
            .env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("demo server runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut printed = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if line.contains("listening") {
                let _ = child.kill();
                panic!("{name} started: {printed}{line}");
            }
            printed.push_str(&line);
            printed.push('\n');
        }
        let status = child.wait().expect("demo server exits");
        assert!(!status.success(), "{name} exited cleanly: {printed}");
        printed
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Client {
    /// A client for a server already listening on `addr` (an in-process test server).
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> Reply {
        let res = tokio::time::timeout(Duration::from_secs(30), self.http.request(req))
            .await
            .expect("the server answers in time")
            .expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Full::default()).unwrap()).await
    }

    pub async fn protected(&self, token: &str) -> Reply {
        self.get(
            "/protected",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder().method(Method::POST).uri(self.url(path));
        if let Some(c) = content_type {
            req = req.header("content-type", c);
        }
        self.send(req.body(Full::new(body.into())).unwrap()).await
    }

    /// POST `body` as JSON with extra headers.
    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.url(path))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let body = serde_json::json!({ "username": username, "password": password }).to_string();
        self.post("/login", Some("application/json"), body).await
    }

    /// Log in as user1 and return the access token.
    pub async fn token(&self) -> String {
        let reply = self.login("user1", "password1").await;
        assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.text());
        reply.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }
}

/// Remove terminal colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_escape = false;
    for c in line.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (false, c) => out.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn challenge(&self) -> &str {
        self.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A 401 with an RFC 6750 Bearer challenge.
    #[track_caller]
    pub fn assert_unauthorized(&self, what: &str) {
        assert_eq!(
            self.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            self.text()
        );
        assert!(
            self.challenge().starts_with("Bearer "),
            "{what}: challenge {:?}",
            self.challenge()
        );
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a compact JWS, unverified.
pub fn decode_payload(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

pub fn b64_json(value: &serde_json::Value) -> String {
    b64(value.to_string().as_bytes())
}

/// The signing key for `alg` from the test keys.
pub fn encoding_key(alg: Algorithm) -> EncodingKey {
    tower_jwt_auth::install_crypto_provider().unwrap();
    match key_files(alg) {
        None => EncodingKey::from_secret(SECRET.as_bytes()),
        Some((private, _)) => {
            let pem = read_key(private);
            match alg {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
                _ => EncodingKey::from_rsa_pem(&pem),
            }
            .unwrap()
        }
    }
}

/// A token built by hand: our own JSON header and payload, base64url-encoded here, signed with
/// the raw signature primitive. Nothing of the crate's issuer is involved.
pub fn hand_token(
    header: &serde_json::Value,
    payload: &serde_json::Value,
    key: &EncodingKey,
    alg: Algorithm,
) -> String {
    let message = format!("{}.{}", b64_json(header), b64_json(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// The standard claims another library would mint: `{sub, username, iat, exp}`.
pub fn standard_claims() -> serde_json::Value {
    serde_json::json!({ "sub": "1", "username": "user1", "iat": now(), "exp": now() + 600 })
}
