//! RFC 8414 discovery: from an issuer to its token endpoint and the client authentication
//! methods it supports.

use http::{Request, StatusCode};
use serde::Deserialize;

use super::{ClientAuth, ClientCredentials, ClientCredentialsBuilder, MAX_RESPONSE, TIMEOUT};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::remote::HttpClient;
use crate::remote::client::Sender;

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

fn discovery_error(message: &'static str) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Discovery, message)
}

/// The metadata URLs of `issuer`, in the order RFC 8414 §5 asks: the authorization-server
/// document with the issuer's path inserted after the well-known part, then the OpenID one.
fn metadata_urls(issuer: &str) -> [String; 2] {
    let (origin, path) = crate::text::split_url(issuer);
    [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
    ]
}

async fn fetch(send: &Sender, url: &str) -> Result<Option<Metadata>, ConfigError> {
    let uri = crate::remote::parse_url(url)?;
    let mut request = Request::new(String::new());
    *request.uri_mut() = uri;
    request.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    let response = tokio::time::timeout(TIMEOUT, send(request, MAX_RESPONSE))
        .await
        .map_err(|_| discovery_error("the authorization server's metadata request timed out"))?
        .map_err(|_| discovery_error("the authorization server's metadata could not be fetched"))?;
    if response.status() != StatusCode::OK {
        return Ok(None);
    }
    serde_json::from_slice(response.body())
        .map(Some)
        .map_err(|e| {
            ConfigError::with_source(
                ConfigErrorKind::Discovery,
                "the authorization server's metadata is not a JSON object with `issuer`",
                e,
            )
        })
}

pub(super) async fn discover(
    issuer: &str,
    client_id: String,
    secret: String,
    send: Sender,
) -> Result<ClientCredentialsBuilder, ConfigError> {
    let mut found = None;
    for url in metadata_urls(issuer) {
        if let Some(metadata) = fetch(&send, &url).await? {
            found = Some(metadata);
            break;
        }
    }
    let metadata = found.ok_or_else(|| {
        discovery_error(
            "the issuer publishes no RFC 8414 or OpenID metadata (both answered non-200)",
        )
    })?;
    // RFC 8414 §3.3: the document must name the issuer it was fetched for.
    if metadata.issuer != issuer {
        return Err(discovery_error(
            "the authorization server's metadata names another issuer",
        ));
    }
    let endpoint = metadata.token_endpoint.ok_or_else(|| {
        discovery_error("the authorization server's metadata has no token_endpoint")
    })?;
    // RFC 8414: without the member, client_secret_basic is the default.
    let auth = match metadata.token_endpoint_auth_methods_supported {
        Some(methods)
            if !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post") =>
        {
            ClientAuth::Post
        }
        _ => ClientAuth::Basic,
    };
    Ok(ClientCredentials::builder(endpoint, client_id, secret)
        .client_auth(auth)
        .sender(send))
}

impl ClientCredentials {
    /// RFC 8414 discovery with the default client (feature `hyper-client`): fetch `issuer`'s
    /// authorization-server metadata (else its OpenID configuration), check that it names
    /// `issuer`, and return a builder for its token endpoint, with `client_secret_post` when
    /// the server supports only that.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Discovery`] when no metadata could be fetched, or it names another
    /// issuer or no token endpoint; [`ConfigErrorKind::InvalidUrl`] for an issuer that is not
    /// an absolute http(s) URL.
    #[cfg(feature = "hyper-client")]
    pub async fn discover(
        issuer: &str,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<ClientCredentialsBuilder, ConfigError> {
        discover(
            issuer,
            client_id.into(),
            secret.into(),
            super::support::default_sender()?,
        )
        .await
    }

    /// As [`discover`](Self::discover), fetching with `client` (which the builder keeps for
    /// the token requests).
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover).
    pub async fn discover_with_client<S, B>(
        issuer: &str,
        client_id: impl Into<String>,
        secret: impl Into<String>,
        client: S,
    ) -> Result<ClientCredentialsBuilder, ConfigError>
    where
        S: HttpClient<B>,
        B: From<String> + Send + 'static,
    {
        let send = crate::remote::client::sender(client);
        discover(issuer, client_id.into(), secret.into(), send).await
    }
}

#[cfg(test)]
mod tests {
    use super::metadata_urls;

    #[test]
    fn rfc_8414_inserts_the_issuer_path() {
        assert_eq!(
            metadata_urls("https://auth.example/tenant/"),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant".to_owned(),
                "https://auth.example/tenant/.well-known/openid-configuration".to_owned(),
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:3000")[0],
            "http://127.0.0.1:3000/.well-known/oauth-authorization-server"
        );
    }
}
