//! What depends on other features: the DPoP proof of a token request (`dpop`) and the default
//! HTTP client (`hyper-client`).

use http::Request;

use super::TokenError;
use crate::error::ConfigError;
use crate::remote::client::Sender;

/// The client's DPoP key (nothing can be one without the `dpop` feature).
#[cfg(feature = "dpop")]
pub(super) type Key = crate::dpop::DpopKey;
#[cfg(not(feature = "dpop"))]
pub(super) type Key = std::convert::Infallible;

/// Put a proof of `key` for the token request in its `DPoP` header, with the server's `nonce`.
pub(super) fn add_proof(
    key: &Key,
    request: &mut Request<String>,
    nonce: Option<&str>,
) -> Result<(), TokenError> {
    #[cfg(feature = "dpop")]
    {
        let proof = key
            .proof(request.method(), &request.uri().to_string(), None, nonce)
            .map_err(|e| TokenError::new(format!("no DPoP proof could be made: {e}")))?;
        let value = http::HeaderValue::from_str(&proof)
            .map_err(|_| TokenError::new("the DPoP proof cannot go in a header"))?;
        request.headers_mut().insert(crate::dpop::DPOP, value);
        Ok(())
    }
    #[cfg(not(feature = "dpop"))]
    {
        let _ = (request, nonce);
        match *key {}
    }
}

/// The default client: hyper-util with rustls (feature `hyper-client`).
pub(super) fn default_sender() -> Result<Sender, ConfigError> {
    #[cfg(feature = "hyper-client")]
    {
        Ok(crate::remote::client::sender(
            crate::remote::KeyClient::builder().build()?,
        ))
    }
    #[cfg(not(feature = "hyper-client"))]
    {
        Err(ConfigError::new(
            crate::error::ConfigErrorKind::NoHttpClient,
            "no HTTP client for the token endpoint: give one with ClientCredentialsBuilder::client, \
             or enable the `hyper-client` feature of tower-jwt-auth for the default one",
        ))
    }
}
