//! `RemoteJwks` against a local JWKS server with fault injection that counts its fetches.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use common::{now, read_key};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tower::{ServiceBuilder, ServiceExt};
use tower_jwt_auth::remote::RemoteJwks;
use tower_jwt_auth::{
    AuthErrorKind, JwksService, JwtAuthLayer, KeySet, SigningKey, Validation, Verifier,
};

#[derive(Clone)]
enum Mode {
    Serve {
        document: String,
        max_age: Option<u64>,
    },
    Status500,
    Garbage,
    Slow(Duration, String),
    Oversized,
}

#[derive(Clone)]
struct KeyServer {
    mode: Arc<Mutex<Mode>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks(State(server): State<KeyServer>) -> impl IntoResponse {
    server.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = server.mode.lock().unwrap().clone();
    let mut headers = HeaderMap::new();
    match mode {
        Mode::Serve { document, max_age } => {
            if let Some(age) = max_age {
                headers.insert("cache-control", format!("max-age={age}").parse().unwrap());
            }
            (StatusCode::OK, headers, document)
        }
        Mode::Status500 => (StatusCode::INTERNAL_SERVER_ERROR, headers, String::new()),
        Mode::Garbage => (StatusCode::OK, headers, "{\"keys\": [ garbage".to_owned()),
        Mode::Slow(delay, document) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, headers, document)
        }
        Mode::Oversized => {
            let pad = "x".repeat(1024 * 1024);
            (
                StatusCode::OK,
                headers,
                format!("{{\"keys\":[],\"pad\":\"{pad}\"}}"),
            )
        }
    }
}

impl KeyServer {
    async fn start(mode: Mode) -> (Self, String, tokio::task::JoinHandle<()>) {
        let server = Self {
            mode: Arc::new(Mutex::new(mode)),
            fetches: Arc::default(),
        };
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, url, task)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A signing key from a test PEM, with its kid.
struct Key {
    encoding: EncodingKey,
    signing: SigningKey,
}

fn key(file: &str) -> Key {
    let pem = read_key(file);
    let signing = SigningKey::from_pem(Algorithm::EdDSA, &pem).unwrap();
    Key {
        encoding: EncodingKey::from_ed_pem(&pem).unwrap(),
        signing,
    }
}

fn document(keys: &[&Key]) -> String {
    let set: KeySet = keys
        .iter()
        .map(|k| k.signing.verifying_key().unwrap())
        .collect();
    String::from_utf8(JwksService::new(&set).unwrap().document().unwrap().to_vec()).unwrap()
}

fn token(key: &Key, kid: Option<&str>) -> String {
    token_with(
        key,
        kid,
        &serde_json::json!({"sub": "1", "exp": now() + 300}),
    )
}

/// A token from `issuer` (the `iss` a discovered key set requires).
fn token_from(key: &Key, issuer: &str) -> String {
    token_with(
        key,
        None,
        &serde_json::json!({"sub": "1", "iss": issuer, "exp": now() + 300}),
    )
}

fn token_with(key: &Key, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid
        .map(ToOwned::to_owned)
        .or_else(|| key.signing.kid().map(ToOwned::to_owned));
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn serve(document: String) -> Mode {
    Mode::Serve {
        document,
        max_age: None,
    }
}

async fn status(verifier: &Verifier, token: &str) -> StatusCode {
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<serde_json::Value>::new(verifier.clone()))
        .service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
    let req = http::Request::builder()
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap().status()
}

const COOLDOWN: Duration = Duration::from_millis(300);

async fn source(url: &str) -> RemoteJwks {
    RemoteJwks::builder(url)
        .unwrap()
        .refresh_cooldown(COOLDOWN)
        .fetch_timeout(Duration::from_millis(500))
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_on_the_first_token_that_names_it() {
    let (a, b) = (key("ed25519_private.pem"), key("ed25519_b_private.pem"));
    let (server, url, _task) = KeyServer::start(serve(document(&[&a]))).await;
    let verifier = Verifier::from_source(source(&url).await, Validation::new()).unwrap();
    assert_eq!(status(&verifier, &token(&a, None)).await, StatusCode::OK);
    assert_eq!(server.fetches(), 1);

    server.set(serve(document(&[&a, &b])));
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    assert_eq!(status(&verifier, &token(&b, None)).await, StatusCode::OK);
    assert_eq!(server.fetches(), 2);
    // Served from memory afterwards.
    assert_eq!(status(&verifier, &token(&b, None)).await, StatusCode::OK);
    assert_eq!(server.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_kids_costs_at_most_one_fetch_per_cooldown() {
    let a = key("ed25519_private.pem");
    let (server, url, _task) = KeyServer::start(serve(document(&[&a]))).await;
    let verifier = Verifier::from_source(source(&url).await, Validation::new()).unwrap();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let verifier = verifier.clone();
        let t = token(&a, Some(&format!("random-kid-{i}")));
        tasks.push(tokio::spawn(async move { status(&verifier, &t).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let windows = started.elapsed().as_millis() / COOLDOWN.as_millis() + 1;
    let fetches = server.fetches() - 1;
    assert!(
        fetches as u128 <= windows,
        "{fetches} fetches for 1000 random kids in {windows} cooldown windows"
    );
    // The genuine key still works.
    assert_eq!(status(&verifier, &token(&a, None)).await, StatusCode::OK);
}

#[tokio::test]
async fn verification_continues_when_the_key_endpoint_fails_or_stops() {
    let a = key("ed25519_private.pem");
    let (server, url, task) = KeyServer::start(serve(document(&[&a]))).await;
    let verifier = Verifier::from_source(source(&url).await, Validation::new()).unwrap();
    let good = token(&a, None);
    for (i, mode) in [
        Mode::Status500,
        Mode::Garbage,
        Mode::Oversized,
        Mode::Slow(Duration::from_secs(2), r#"{"keys":[]}"#.to_owned()),
    ]
    .into_iter()
    .enumerate()
    {
        server.set(mode);
        tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
        let before = server.fetches();
        // An unknown kid triggers a refresh, which fails: the last good set stays.
        let unknown = token(&a, Some(&format!("new-kid-{i}")));
        assert_eq!(status(&verifier, &unknown).await, StatusCode::UNAUTHORIZED);
        assert_eq!(server.fetches(), before + 1, "mode {i}: one fetch");
        assert_eq!(status(&verifier, &good).await, StatusCode::OK, "mode {i}");
    }
    task.abort();
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    assert_eq!(
        status(&verifier, &token(&a, Some("other-kid"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(&verifier, &good).await, StatusCode::OK);
}

#[tokio::test]
async fn starting_while_the_endpoint_is_down_gives_503_then_recovers() {
    let a = key("ed25519_private.pem");
    let (server, url, _task) = KeyServer::start(Mode::Status500).await;
    let jwks = RemoteJwks::builder(&url)
        .unwrap()
        .refresh_cooldown(COOLDOWN)
        .build()
        .unwrap();
    let verifier = Verifier::from_source(jwks, Validation::new()).unwrap();
    let good = token(&a, None);
    assert_eq!(
        status(&verifier, &good).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let err = verifier.verify::<serde_json::Value>(&good).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::KeysUnavailable);

    server.set(serve(document(&[&a])));
    tokio::time::sleep(COOLDOWN + Duration::from_millis(50)).await;
    assert_eq!(status(&verifier, &good).await, StatusCode::OK);
}

#[tokio::test]
async fn waiting_for_the_first_set_times_out_when_the_endpoint_is_down() {
    let (_server, url, _task) = KeyServer::start(Mode::Status500).await;
    let err = RemoteJwks::builder(&url)
        .unwrap()
        .build_and_wait(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tower_jwt_auth::ConfigErrorKind::KeysUnavailable);
    // What the last fetch met is the error's source.
    let source = std::error::Error::source(&err)
        .expect("the last fetch error")
        .to_string();
    assert!(source.contains("500"), "{source}");
}

#[tokio::test]
async fn background_refresh_follows_max_age_within_bounds() {
    let a = key("ed25519_private.pem");
    let mode = Mode::Serve {
        document: document(&[&a]),
        max_age: Some(0),
    };
    let (server, url, _task) = KeyServer::start(mode).await;
    let _jwks = RemoteJwks::builder(&url)
        .unwrap()
        .refresh_interval_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // max-age=0 is clamped up to the 100 ms lower bound: several refreshes, not hundreds.
    let fetches = server.fetches();
    assert!((3..=15).contains(&fetches), "{fetches} fetches in 1 s");
}

#[tokio::test]
async fn openid_discovery_finds_the_jwks_uri() {
    let a = key("ed25519_private.pem");
    let (_server, url, _task) = KeyServer::start(serve(document(&[&a]))).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = serde_json::json!({"issuer": issuer, "jwks_uri": url}).to_string();
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || async move { config }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let jwks = RemoteJwks::discover(&issuer)
        .await
        .unwrap()
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap();
    let verifier = Verifier::from_source(jwks.clone(), Validation::new()).unwrap();
    assert_eq!(
        status(&verifier, &token_from(&a, &issuer)).await,
        StatusCode::OK
    );
    // The discovered issuer is bound: the same keys, another (or no) issuer, is refused.
    assert_eq!(
        status(&verifier, &token_from(&a, "https://other-tenant.example")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&verifier, &token(&a, None)).await,
        StatusCode::UNAUTHORIZED
    );
    // A configured issuer that is not the discovered one is a set-up error.
    let err =
        Verifier::from_source(jwks, Validation::new().issuer("https://b.example")).unwrap_err();
    assert_eq!(err.kind(), tower_jwt_auth::ConfigErrorKind::Discovery);
    assert!(
        RemoteJwks::discover("http://127.0.0.1:1/nowhere")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_custom_client_fetches_discovery_and_keys() {
    // An in-memory tower service instead of the default hyper client: no socket at all.
    let a = key("ed25519_private.pem");
    let jwks = document(&[&a]);
    let config = serde_json::json!({
        "issuer": "https://issuer.example",
        "jwks_uri": "https://issuer.example/keys",
    })
    .to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = {
        let seen = Arc::clone(&seen);
        tower::service_fn(move |req: http::Request<String>| {
            let accept = req.headers().get("accept").cloned();
            seen.lock().unwrap().push((req.uri().to_string(), accept));
            let body = match req.uri().path() {
                "/.well-known/openid-configuration" => config.clone(),
                "/keys" => jwks.clone(),
                _ => return std::future::ready(Err("no such path")),
            };
            std::future::ready(Ok(http::Response::new(body)))
        })
    };
    let source = RemoteJwks::discover_with_client("https://issuer.example", client.clone())
        .await
        .unwrap()
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap();
    let verifier = Verifier::from_source(source, Validation::new()).unwrap();
    assert_eq!(
        status(&verifier, &token_from(&a, "https://issuer.example")).await,
        StatusCode::OK
    );
    let seen = seen.lock().unwrap().clone();
    let uris: Vec<&str> = seen.iter().map(|(uri, _)| uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "https://issuer.example/.well-known/openid-configuration",
            "https://issuer.example/keys"
        ]
    );
    assert!(
        seen[1]
            .1
            .as_ref()
            .is_some_and(|v| v.to_str().unwrap().contains("application/jwk-set+json"))
    );

    // The same client through the builder: its error for an unknown path means no key set.
    let failing = RemoteJwks::builder("https://issuer.example/missing")
        .unwrap()
        .client(client)
        .build_and_wait(Duration::from_millis(300))
        .await;
    assert!(failing.is_err());
}

/// The test kit's fake OpenID provider, found by discovery: rotation is followed, a failing or
/// garbage key endpoint keeps the last good set, and recovery is picked up.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_provider_drives_discovery_rotation_and_faults() {
    use tower_jwt_auth::testkit::{FakeProvider, Fault};

    let key = |file: &str, kid: &str| {
        tower_jwt_auth::SigningKey::from_pem(Algorithm::EdDSA, read_key(file))
            .unwrap()
            .with_kid(kid)
    };
    let provider = FakeProvider::start(key("ed25519_private.pem", "k1"))
        .await
        .unwrap();
    let jwks = RemoteJwks::discover(provider.issuer())
        .await
        .unwrap()
        .refresh_cooldown(Duration::from_millis(100))
        .fetch_timeout(Duration::from_millis(300))
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap();
    let layer = tower_jwt_auth::JwtAuthLayer::<serde_json::Value>::new(
        tower_jwt_auth::Verifier::from_source(jwks, tower_jwt_auth::Validation::new()).unwrap(),
    );
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        });
    let status = |token: String| {
        let svc = svc.clone();
        async move {
            let req = http::Request::builder()
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
            svc.oneshot(req).await.unwrap().status()
        }
    };
    let claims = serde_json::json!({"sub": "1"});
    let first = provider.minter().valid(&claims);
    assert_eq!(status(first.clone()).await, StatusCode::OK);
    // The discovered issuer is bound: the same key under another iss is refused.
    assert_eq!(
        status(provider.minter().wrong_issuer(&claims)).await,
        StatusCode::UNAUTHORIZED
    );

    // Rotation: a token with the new kid makes the source refresh once (past the cooldown
    // since the first fetch).
    tokio::time::sleep(Duration::from_millis(150)).await;
    provider.rotate(key("ed25519_b_private.pem", "k2"));
    let fetches = provider.jwks_fetches();
    assert_eq!(
        status(provider.minter().valid(&claims)).await,
        StatusCode::OK
    );
    assert_eq!(provider.jwks_fetches(), fetches + 1);

    // The key endpoint fails (500, garbage, slower than the fetch timeout, which the slow
    // document would otherwise deliver): tokens of known keys still pass, a new kid cannot be
    // fetched.
    for (fault, kid) in [
        (Fault::Status(500), "k3"),
        (Fault::Garbage, "k4"),
        (Fault::Slow(Duration::from_secs(3)), "k5"),
    ] {
        provider.set_fault(fault);
        provider.rotate(key("ed25519_private.pem", kid));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(status(first.clone()).await, StatusCode::OK, "{fault:?}");
        assert_eq!(
            status(provider.minter().valid(&claims)).await,
            StatusCode::UNAUTHORIZED,
            "{fault:?}"
        );
    }
    // Healed: after the cooldown and the negative cache, the new kid is fetched.
    provider.set_fault(Fault::None);
    let mut healed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status(provider.minter().valid(&claims)).await == StatusCode::OK {
            healed = true;
            break;
        }
    }
    assert!(
        healed,
        "the new key was never fetched after the endpoint recovered"
    );
}

/// The reqwest adapter (feature `reqwest`) fetches discovery and keys like the default client.
#[tokio::test(flavor = "multi_thread")]
async fn a_reqwest_client_fetches_the_keys() {
    use tower_jwt_auth::remote::ReqwestClient;
    use tower_jwt_auth::testkit::FakeProvider;

    let key =
        tower_jwt_auth::SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_private.pem"))
            .unwrap()
            .with_kid("r1");
    let provider = FakeProvider::start(key).await.unwrap();
    let client = ReqwestClient::new(reqwest::Client::new());
    let jwks = RemoteJwks::discover_with_client(provider.issuer(), client)
        .await
        .unwrap()
        .build_and_wait(Duration::from_secs(5))
        .await
        .unwrap();
    let verifier =
        tower_jwt_auth::Verifier::from_source(jwks, tower_jwt_auth::Validation::new()).unwrap();
    let token = provider.minter().valid(&serde_json::json!({"sub": "1"}));
    let claims = verifier.verify::<serde_json::Value>(&token).unwrap();
    assert_eq!(claims.registered().sub.as_deref(), Some("1"));
    assert!(provider.jwks_fetches() >= 1);
    // The system-settings constructor builds (OS trust store, proxy variables).
    assert!(ReqwestClient::with_system_settings().is_ok());
}
