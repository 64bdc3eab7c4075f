//! OpenID Connect discovery: from an issuer URL to its key set's URL.

use http::StatusCode;

use super::client::Fetcher;
use super::{DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, RemoteJwks, RemoteJwksBuilder, parse_url};
use crate::error::{ConfigError, ConfigErrorKind};

/// The two members of the discovery document that matter here.
#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

fn discovery_error(message: &'static str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Discovery, message)
}

/// Fetch `{issuer}/.well-known/openid-configuration`, check that it names `issuer`, and return a
/// builder for its `jwks_uri` that fetches with the same client.
pub(crate) async fn discover(
    issuer: &str,
    fetcher: Fetcher,
) -> Result<RemoteJwksBuilder, ConfigError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let uri = parse_url(&url)?;
    super::require_https(&uri, false)?;
    let response = tokio::time::timeout(DEFAULT_TIMEOUT, fetcher(uri, DEFAULT_MAX_SIZE))
        .await
        .map_err(|_| discovery_error("the OpenID configuration request timed out"))?
        .map_err(|_| discovery_error("the OpenID configuration could not be fetched"))?;
    if response.status() != StatusCode::OK {
        return Err(discovery_error(
            "the OpenID configuration endpoint did not answer 200",
        ));
    }
    let doc: Discovery = serde_json::from_slice(response.body()).map_err(|e| {
        ConfigError::with_source(
            ConfigErrorKind::Discovery,
            "the OpenID configuration is not valid JSON with `issuer` and `jwks_uri`",
            e,
        )
    })?;
    if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(discovery_error(
            "the OpenID configuration names another issuer",
        ));
    }
    Ok(RemoteJwks::builder(&doc.jwks_uri)?
        .fetcher(fetcher)
        .issuer(&doc.issuer))
}
