//! A verify-only node that checks the revocations a shared store's nodes publish.

use std::time::Duration;

use super::RevocationStore;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::resource::{FeedStart, ResourceServerBuilder};
use crate::revocation::Revocations;

impl ResourceServerBuilder {
    /// Refuse the tokens that the nodes sharing `store` revoked (a logout, "log out
    /// everywhere"), at the cost of a hash lookup per request (feature `sessions`).
    /// [`build`](Self::build) loads the list and starts the store's feed, which runs for as long
    /// as a layer of the server lives; after `max_staleness` without news from the store, the
    /// layers answer 503 instead of trusting an old list.
    pub fn follow_revocations(
        mut self,
        store: impl RevocationStore,
        max_staleness: Duration,
    ) -> Self {
        let revocations = Revocations::new();
        let list = revocations.clone();
        let start: FeedStart = Box::pin(async move {
            store
                .follow_revocations(&list, max_staleness)
                .await
                .map_err(|e| {
                    ConfigError::with_source(
                        ConfigErrorKind::StoreUnavailable,
                        "the session store's revocations could not be loaded",
                        e,
                    )
                })
        });
        self.revocations = Some((revocations, start));
        self
    }
}
