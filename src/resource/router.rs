//! [`ResourceServer::router`] (feature `axum`).

use axum::Router;

use super::ResourceServer;

impl ResourceServer {
    /// The node's own endpoints as an axum [`Router`] to [`merge`](Router::merge) into your
    /// app: the RFC 9728 metadata, when the node has a public URL (else an empty router).
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        match self.resource_metadata() {
            Some((path, metadata)) => Router::new().route_service(&path, metadata),
            None => Router::new(),
        }
    }
}
