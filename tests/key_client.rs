//! The default key client on a company network: a private CA, the operating system's
//! certificate store (`SSL_CERT_FILE`), and an HTTP proxy given in code or by
//! `HTTPS_PROXY`/`NO_PROXY`. The key endpoint is the test kit's fake provider behind a TLS
//! front whose certificate comes from a test CA; the proxy is a small `CONNECT` proxy that
//! records what it was asked.
//!
//! The tests that need environment variables run themselves again as a child process with
//! those variables set (never `set_var` in a threaded test binary).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{key_path, read_key};
use jsonwebtoken::Algorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower_jwt_auth::remote::{KeyClient, Proxy, RemoteJwks};
use tower_jwt_auth::testkit::FakeProvider;
use tower_jwt_auth::{SigningKey, Validation, Verifier};

/// Set in a child run of this binary: the test does the child's part.
const CHILD: &str = "KEY_CLIENT_TEST_CHILD_URL";

async fn provider() -> FakeProvider {
    let key = SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_private.pem"))
        .unwrap()
        .with_kid("k1");
    FakeProvider::start(key).await.unwrap()
}

/// A TLS front for `target` with the test CA's `localhost` certificate; returns its port.
async fn tls_front(target: SocketAddr) -> u16 {
    let certs = CertificateDer::pem_file_iter(key_path("tls_server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key_path("tls_server_key.pem")).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA aborts the handshake: nothing to forward.
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut upstream) = TcpStream::connect(target).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                }
            });
        }
    });
    port
}

/// What the proxy was asked: one `(CONNECT target, Proxy-Authorization)` per tunnel.
type Requests = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A `CONNECT`-only HTTP proxy on 127.0.0.1; returns its address and its request log.
async fn connect_proxy() -> (SocketAddr, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Requests::default();
    let requests = log.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or_default();
                let auth = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
                    .map(|(_, value)| value.trim().to_owned());
                let mut parts = request_line.split(' ');
                let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                };
                log.lock().unwrap().push((target.to_owned(), auth));
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (addr, requests)
}

/// Fetch the keys at `url` with `client`; on success, check that they verify a token of
/// `provider`'s key.
async fn fetch(url: &str, client: KeyClient) -> Result<(), String> {
    let jwks = RemoteJwks::builder(url)
        .unwrap()
        .client(client)
        .fetch_timeout(Duration::from_secs(2))
        .build_and_wait(Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string())?;
    let verifier = Verifier::from_source(jwks, Validation::new()).unwrap();
    let token = tower_jwt_auth::testkit::TokenMinter::new(
        SigningKey::from_pem(Algorithm::EdDSA, read_key("ed25519_private.pem"))
            .unwrap()
            .with_kid("k1"),
    )
    .valid(&serde_json::json!({"sub": "alice"}));
    verifier
        .verify::<serde_json::Value>(&token)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn test_ca() -> Vec<u8> {
    read_key("tls_ca.pem")
}

/// Run the test named `name` of this binary again with `env` set (and the child marker holding
/// `url`); returns whether it passed, with its output for the failure message.
async fn run_child(name: &str, url: &str, env: &[(&str, String)]) -> (bool, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD, url);
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // A filter that matched nothing also exits 0: make sure the test really ran.
    (output.status.success() && text.contains("1 passed"), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_ca_is_trusted_only_once_added() {
    let provider = provider().await;
    let port = tls_front(provider.addr()).await;
    let url = format!("https://localhost:{port}/jwks");

    // The webpki roots alone do not know the test CA: the handshake fails, no keys.
    let plain = KeyClient::builder().proxy(Proxy::none()).build().unwrap();
    let refused = fetch(&url, plain).await;
    assert!(refused.is_err(), "an unknown CA was trusted");
    assert_eq!(provider.jwks_fetches(), 0);

    let with_ca = KeyClient::builder()
        .proxy(Proxy::none())
        .add_root_certificates_pem(&test_ca())
        .unwrap()
        .build()
        .unwrap();
    fetch(&url, with_ca.clone()).await.unwrap();
    // The certificate names 127.0.0.1 too.
    fetch(&format!("https://127.0.0.1:{port}/jwks"), with_ca)
        .await
        .unwrap();
    assert!(provider.jwks_fetches() >= 2);

    // Only the CA: the webpki roots can be dropped.
    let only_ca = KeyClient::builder()
        .proxy(Proxy::none())
        .webpki_roots(false)
        .add_root_certificates_pem(&test_ca())
        .unwrap()
        .build()
        .unwrap();
    fetch(&url, only_ca).await.unwrap();

    // Bad input is a clear configuration error, not a client that trusts nothing.
    assert!(
        KeyClient::builder()
            .add_root_certificates_pem(b"not a certificate")
            .is_err()
    );
    assert!(KeyClient::builder().webpki_roots(false).build().is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_os_store_is_trusted_with_os_roots() {
    let os_only = || {
        KeyClient::builder()
            .proxy(Proxy::none())
            .webpki_roots(false)
            .os_roots(true)
            .build()
    };
    if let Ok(url) = std::env::var(CHILD) {
        // Child: SSL_CERT_FILE is then the whole OS store: the test CA (trusted), or another
        // certificate (the test CA is not trusted).
        let result = fetch(&url, os_only().unwrap()).await;
        if std::env::var("EXPECT_REFUSED").is_ok() {
            assert!(result.is_err(), "a store without the test CA trusted it");
        } else {
            result.unwrap();
        }
        return;
    }
    let provider = provider().await;
    let port = tls_front(provider.addr()).await;
    let url = format!("https://localhost:{port}/jwks");
    // An OS store that does not hold the test CA refuses the server.
    let (passed, output) = run_child(
        "the_os_store_is_trusted_with_os_roots",
        &url,
        &[
            ("SSL_CERT_FILE", key_path("rsa2_attacker_cert.pem")),
            ("EXPECT_REFUSED", "1".to_owned()),
        ],
    )
    .await;
    assert!(passed, "child run failed:\n{output}");
    assert_eq!(provider.jwks_fetches(), 0);
    let (passed, output) = run_child(
        "the_os_store_is_trusted_with_os_roots",
        &url,
        &[("SSL_CERT_FILE", key_path("tls_ca.pem"))],
    )
    .await;
    assert!(passed, "child run failed:\n{output}");
    assert!(provider.jwks_fetches() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_proxy_tunnels_key_requests_except_for_no_proxy_hosts() {
    let provider = provider().await;
    let port = tls_front(provider.addr()).await;
    let url = format!("https://localhost:{port}/jwks");
    let (proxy_addr, requests) = connect_proxy().await;
    let client = |proxy: Proxy| {
        KeyClient::builder()
            .proxy(proxy)
            .add_root_certificates_pem(&test_ca())
            .unwrap()
            .build()
            .unwrap()
    };

    let through = Proxy::through(&format!("http://ops:s3cret@{proxy_addr}")).unwrap();
    fetch(&url, client(through.clone())).await.unwrap();
    {
        let log = requests.lock().unwrap();
        assert!(!log.is_empty(), "the proxy saw no request");
        for (target, auth) in log.iter() {
            assert_eq!(target, &format!("localhost:{port}"));
            // base64("ops:s3cret")
            assert_eq!(auth.as_deref(), Some("Basic b3BzOnMzY3JldA=="));
        }
    }
    // The proxy's credentials never show in Debug output.
    assert!(!format!("{through:?}").contains("s3cret"));

    // NO_PROXY-style exceptions go direct.
    let before = requests.lock().unwrap().len();
    fetch(&url, client(through.no_proxy("localhost,127.0.0.1")))
        .await
        .unwrap();
    assert_eq!(requests.lock().unwrap().len(), before);

    // A proxy that is down is a failed fetch, not a silent direct connection.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let fetches = provider.jwks_fetches();
    assert!(
        fetch(
            &url,
            client(Proxy::through(&format!("http://{dead_addr}")).unwrap())
        )
        .await
        .is_err()
    );
    assert_eq!(provider.jwks_fetches(), fetches);

    assert!(Proxy::through("socks5://127.0.0.1:1080").is_err());
    assert!(Proxy::through("not a url").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_and_no_proxy_are_read_from_the_environment() {
    if let Ok(url) = std::env::var(CHILD) {
        // Child: the default client reads HTTPS_PROXY / NO_PROXY.
        let client = KeyClient::builder()
            .add_root_certificates_pem(&test_ca())
            .unwrap()
            .build()
            .unwrap();
        fetch(&url, client).await.unwrap();
        return;
    }
    let provider = provider().await;
    let port = tls_front(provider.addr()).await;
    let url = format!("https://localhost:{port}/jwks");
    let (proxy_addr, requests) = connect_proxy().await;
    let name = "https_proxy_and_no_proxy_are_read_from_the_environment";

    let proxy = ("HTTPS_PROXY", format!("http://{proxy_addr}"));
    let (passed, output) = run_child(name, &url, std::slice::from_ref(&proxy)).await;
    assert!(passed, "child run failed:\n{output}");
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|(target, _)| target == &format!("localhost:{port}")),
        "HTTPS_PROXY was not used"
    );

    let before = requests.lock().unwrap().len();
    let (passed, output) =
        run_child(name, &url, &[proxy, ("NO_PROXY", "localhost".to_owned())]).await;
    assert!(passed, "child run failed:\n{output}");
    assert_eq!(
        requests.lock().unwrap().len(),
        before,
        "NO_PROXY was not honoured"
    );
}
