//! [`FakeProvider`]: an OpenID provider in the test process.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::TokenMinter;
use crate::keys::{KeySet, SigningKey};

/// What the JWKS endpoint does, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer 200 with a body that is not a JWK Set.
    Garbage,
    /// Answer normally, after this delay.
    Slow(Duration),
}

struct State {
    /// Published keys, newest last; the newest signs.
    keys: Vec<SigningKey>,
    fault: Fault,
}

/// An OpenID provider on `127.0.0.1` in the test process: `/.well-known/openid-configuration`
/// (naming itself as `issuer`, and its `jwks_uri`) and `/jwks`, with key rotation and fault
/// injection, and a [`TokenMinter`] for its current key. It stops when dropped.
///
/// Point [`RemoteJwks::discover`](crate::remote::RemoteJwks::discover) (feature `remote-jwks`)
/// at [`issuer`](Self::issuer): plain `http` is allowed there because the address is loopback.
/// The keys must be asymmetric (a provider never publishes HMAC secrets).
///
/// ```
/// use tower_jwt_auth::testkit::{Fault, FakeProvider};
/// use tower_jwt_auth::{Algorithm, SigningKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/ed25519_private.pem"))?;
/// let key = SigningKey::from_pem(Algorithm::EdDSA, pem)?.with_kid("k1");
/// let provider = FakeProvider::start(key).await?;
/// let token = provider.minter().valid(&serde_json::json!({"sub": "42"}));
/// provider.set_fault(Fault::Status(500)); // the next key fetches fail
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
pub struct FakeProvider {
    addr: SocketAddr,
    issuer: String,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeProvider {
    /// Start serving on a free port with `key` published and signing.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start(key: SigningKey) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            keys: vec![key],
            fault: Fault::None,
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let served = Served {
            issuer: issuer.clone(),
            state: Arc::clone(&state),
            fetches: Arc::clone(&fetches),
        };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let served = served.clone();
                        async move { Ok::<_, Infallible>(served.answer(req.uri().path()).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            issuer,
            state,
            fetches,
            task,
        })
    }

    /// The issuer URL (`http://127.0.0.1:<port>`), also the `iss` of minted tokens.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWK Set URL.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A minter signing with the current key, with this provider as `iss`.
    ///
    /// # Panics
    ///
    /// Never: the provider always has a key.
    #[must_use]
    pub fn minter(&self) -> TokenMinter {
        let key = self
            .state()
            .keys
            .last()
            .cloned()
            .expect("a provider always has a key");
        TokenMinter::new(key).issuer(self.issuer.clone())
    }

    /// Publish `key` and sign with it from now on; the previous keys stay published until
    /// [`retire_old_keys`](Self::retire_old_keys).
    pub fn rotate(&self, key: SigningKey) {
        self.state().keys.push(key);
    }

    /// Publish only the current key.
    pub fn retire_old_keys(&self) {
        let mut state = self.state();
        let len = state.keys.len();
        state.keys.drain(..len.saturating_sub(1));
    }

    /// Make the JWKS endpoint misbehave (or, with [`Fault::None`], behave again).
    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = fault;
    }

    /// How many times the JWK Set was asked for.
    #[must_use]
    pub fn jwks_fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Served {
    issuer: String,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicUsize>,
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

impl Served {
    async fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        match path {
            "/.well-known/openid-configuration" => {
                let doc = serde_json::json!({
                    "issuer": self.issuer,
                    "jwks_uri": format!("{}/jwks", self.issuer),
                });
                respond(StatusCode::OK, doc.to_string())
            }
            "/jwks" => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                let (fault, document) = {
                    let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    let keys = state
                        .keys
                        .iter()
                        .filter_map(|k| k.verifying_key().ok())
                        .fold(KeySet::new(), KeySet::with_key);
                    let document = crate::jwks::JwksService::new(&keys)
                        .ok()
                        .and_then(|s| s.document())
                        .unwrap_or_else(|| Bytes::from_static(br#"{"keys":[]}"#));
                    (state.fault, document)
                };
                match fault {
                    Fault::None => respond(StatusCode::OK, document),
                    Fault::Status(code) => respond(
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        Bytes::new(),
                    ),
                    Fault::Garbage => respond(StatusCode::OK, "<html>not a key set</html>"),
                    Fault::Slow(delay) => {
                        tokio::time::sleep(delay).await;
                        respond(StatusCode::OK, document)
                    }
                }
            }
            _ => respond(StatusCode::NOT_FOUND, "{}"),
        }
    }
}
