//! What the demo servers share: the tutorial's claims type, the `/protected` answer, logging
//! and metrics. Their configuration comes from the environment (`env`).

// Each demo uses a different part of this module (the gRPC demo serves no /login, say).
#![allow(dead_code)]

mod env;
pub(crate) mod page;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

#[allow(unused_imports)] // each demo uses some of them
pub(crate) use env::{Demo, dpop_from_env, secs, var};

/// What a token must carry for `resource_server`, which takes any standard issuer's tokens:
/// `sub`; the tutorial's `username` on users' tokens, `client_id` and `scope` on RFC 9068 access
/// tokens (a machine client's), none of them required.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CallerClaims {
    pub(crate) sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

/// The claims the issuing demos issue and expect: a user's (`username`) or a machine client's
/// (`client_id`); a token with neither is refused, naming `username`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "CallerClaims", into = "CallerClaims")]
pub(crate) struct DemoClaims(pub(crate) CallerClaims);

impl DemoClaims {
    /// A tutorial user's claims.
    pub(crate) fn user(sub: &str, username: &str) -> Self {
        Self(CallerClaims {
            sub: sub.to_owned(),
            username: Some(username.to_owned()),
            client_id: None,
            scope: None,
        })
    }
}

impl TryFrom<CallerClaims> for DemoClaims {
    type Error = &'static str;

    fn try_from(claims: CallerClaims) -> Result<Self, Self::Error> {
        if claims.username.is_none() && claims.client_id.is_none() {
            // In serde's words, so the rejection names the claim.
            return Err("missing field `username`");
        }
        Ok(Self(claims))
    }
}

impl From<DemoClaims> for CallerClaims {
    fn from(claims: DemoClaims) -> Self {
        claims.0
    }
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

/// The `/protected` answer: the caller's id (a number when `sub` is one) and what else the
/// token says of them (`username`; `client_id` and `scope` for a client's token). Serialized
/// straight from the claims, with no intermediate JSON tree.
#[derive(Serialize)]
pub(crate) struct Identity<'a> {
    id: Id<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Id<'a> {
    Number(u64),
    Text(&'a str),
}

pub(crate) fn identity(claims: &CallerClaims) -> Identity<'_> {
    let id = match claims.sub.parse::<u64>() {
        Ok(n) => Id::Number(n),
        Err(_) => Id::Text(&claims.sub),
    };
    Identity {
        id,
        username: claims.username.as_deref(),
        client_id: claims.client_id.as_deref(),
        scope: claims.scope.as_deref(),
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
