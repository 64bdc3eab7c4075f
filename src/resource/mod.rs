//! [`ResourceServer`]: a verify-only node built once, handing out its layer already wired.
//!
//! The counterpart of [`AuthServer`](crate::login::AuthServer) for a node that only verifies
//! tokens (from this crate's issuer, or any other, through a
//! [`RemoteJwks`](crate::remote::RemoteJwks)): the layers it hands out carry its RFC 9728
//! challenge and its checks, and, when it follows a shared store's revocations (feature
//! `sessions`, [`ResourceServerBuilder::follow_revocations`]), they check that list and keep its
//! feed running for as long as one of them lives.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::auth::JwtAuthLayer;
use crate::auth::check::Mounted;
use crate::error::ConfigError;
use crate::metadata::{MetadataService, ProtectedResourceMetadata};
use crate::rejection::DefaultOnRejection;
use crate::revocation::{FeedGuard, Revocations, Watched};
use crate::verifier::Verifier;

#[cfg(feature = "axum")]
mod router;
#[cfg(all(test, feature = "dpop"))]
mod tests;

/// Starts following a store's revocations, in [`ResourceServerBuilder::build`].
pub(crate) type FeedStart =
    Pin<Box<dyn Future<Output = Result<Option<FeedGuard>, ConfigError>> + Send>>;

/// A verify-only node in one value: the verifier, the resource's metadata and the checks,
/// handed out as layers already wired. Cheap to clone.
///
/// ```
/// use tower_jwt_auth::resource::ResourceServer;
/// use tower_jwt_auth::{Algorithm, KeySet, Validation, Verifier, VerifyingKey};
///
/// # async fn run() -> Result<(), tower_jwt_auth::ConfigError> {
/// // In production: a `RemoteJwks` discovered from the issuer.
/// let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [7u8; 32])?);
/// let api = ResourceServer::builder(Verifier::new(keys, Validation::new())?)
///     .public_url("https://api.example")
///     .authorization_server("https://login.example")
///     .build()
///     .await?;
/// let layer = api.layer::<serde_json::Value>();
/// let (path, metadata) = api.resource_metadata().expect("a public URL was given");
/// assert_eq!(path, "/.well-known/oauth-protected-resource");
/// # let _ = (layer, metadata);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ResourceServer {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    revocations: Option<Watched>,
    checks: Vec<Arc<dyn Mounted>>,
    on_rejection: DefaultOnRejection,
    metadata: Option<ProtectedResourceMetadata>,
}

/// Builds a [`ResourceServer`]; see [`ResourceServer::builder`].
#[must_use = "a ResourceServerBuilder does nothing until `build` is awaited"]
pub struct ResourceServerBuilder {
    verifier: Verifier,
    public_url: Option<String>,
    authorization_servers: Vec<String>,
    pub(crate) revocations: Option<(Revocations, FeedStart)>,
    pub(crate) checks: Vec<Arc<dyn Mounted>>,
}

impl ResourceServer {
    /// A builder for a node verifying with `verifier` (its keys and its validation policy).
    pub fn builder(verifier: Verifier) -> ResourceServerBuilder {
        ResourceServerBuilder {
            verifier,
            public_url: None,
            authorization_servers: Vec::new(),
            revocations: None,
            checks: Vec::new(),
        }
    }

    /// The verifying layer, decoding the claims as `C`, with this node's checks and challenge.
    pub fn layer<C>(&self) -> JwtAuthLayer<C> {
        let inner = &self.inner;
        let mut layer = JwtAuthLayer::new(inner.verifier.clone());
        if let Some(watched) = &inner.revocations {
            layer = layer.watch(watched.clone());
        }
        for check in &inner.checks {
            layer = layer.mount(Arc::clone(check));
        }
        layer.on_rejection(inner.on_rejection.clone())
    }

    /// RFC 9728 metadata: its path and service, with a
    /// [`public_url`](ResourceServerBuilder::public_url).
    #[must_use]
    pub fn resource_metadata(&self) -> Option<(String, MetadataService)> {
        let metadata = self.inner.metadata.as_ref()?;
        Some((metadata.well_known_path(), metadata.service().ok()?))
    }

    /// The verifier.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }
}

impl ResourceServerBuilder {
    /// This resource's URL: its RFC 9728 metadata is served, and named in every 401 and 403
    /// challenge (`resource_metadata="…"`).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// An issuer the metadata names as an authorization server for this resource.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Build: start following a store's revocations, if asked to, and wire everything.
    ///
    /// # Errors
    ///
    /// When the store's revocations cannot be loaded, or the public URL cannot go in a
    /// challenge.
    pub async fn build(self) -> Result<ResourceServer, ConfigError> {
        let revocations = match self.revocations {
            Some((list, start)) => Some(Watched {
                list,
                feed: start.await?.map(Arc::new),
            }),
            None => None,
        };
        let metadata = self.public_url.map(|url| {
            self.authorization_servers
                .into_iter()
                .fold(ProtectedResourceMetadata::new(url), |m, iss| {
                    m.authorization_server(iss)
                })
        });
        let on_rejection = ProtectedResourceMetadata::challenge_of(metadata.as_ref())?;
        Ok(ResourceServer {
            inner: Arc::new(Inner {
                verifier: self.verifier,
                revocations,
                checks: self.checks,
                on_rejection,
                metadata,
            }),
        })
    }
}

impl fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceServer")
            .field("verifier", &self.inner.verifier)
            .field(
                "resource",
                &self
                    .inner
                    .metadata
                    .as_ref()
                    .map(ProtectedResourceMetadata::resource),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ResourceServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceServerBuilder")
            .field("verifier", &self.verifier)
            .field("public_url", &self.public_url)
            .field("authorization_servers", &self.authorization_servers)
            .field("follows_revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}
