//! What the demo servers share: the tutorial's claims type, the `/protected` answer, logging
//! and metrics. Their configuration comes from the environment (`env`).

// Each demo uses a different part of this module (the gRPC demo serves no /login, say).
#![allow(dead_code)]

mod env;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

#[allow(unused_imports)] // each demo uses some of them
pub(crate) use env::{Demo, dpop_from_env, secs, var};

/// The claims the demo issues and expects (besides the registered ones).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DemoClaims {
    pub(crate) sub: String,
    pub(crate) username: String,
}

/// The crate's counters (feature `metrics`) in Prometheus text. Installed before anything is
/// counted; one recorder per process.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, BoxError> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}").into())
}

/// 405 with `Allow: POST` and a JSON body, as the session services answer it: for the
/// endpoints behind the layer, whose method is checked before the credentials.
pub(crate) fn post_only() -> http::Response<String> {
    let mut res = http::Response::new(
        serde_json::json!({"error": "method_not_allowed", "error_description": "use POST"})
            .to_string(),
    );
    *res.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    let headers = res.headers_mut();
    headers.insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// The `/metrics` answer.
pub(crate) fn metrics_response(handle: &PrometheusHandle) -> http::Response<String> {
    let mut res = http::Response::new(handle.render());
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `/protected` answer: the caller's id (a number when `sub` is one) and username.
/// Serialized straight from the claims, with no intermediate JSON tree.
#[derive(Serialize)]
pub(crate) struct Identity<'a> {
    id: Id<'a>,
    username: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Id<'a> {
    Number(u64),
    Text(&'a str),
}

pub(crate) fn identity(claims: &DemoClaims) -> Identity<'_> {
    let id = match claims.sub.parse::<u64>() {
        Ok(n) => Id::Number(n),
        Err(_) => Id::Text(&claims.sub),
    };
    Identity {
        id,
        username: &claims.username,
    }
}

/// Log to stderr; `RUST_LOG` overrides the default `info` level.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal, so logs written to files and pipes stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
