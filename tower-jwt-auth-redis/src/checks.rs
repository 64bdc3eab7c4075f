//! What is checked of a Redis before it is used.

use std::time::Duration;

use redis::Client;

use crate::conn::unavailable;
use tower_jwt_auth::session::StoreError;

/// Refuse a Redis that may evict keys: an evicted revocation index, generation or family would
/// let logged-out tokens back in. Each node named in the URL is asked for its
/// `maxmemory-policy`; where `CONFIG` is refused (managed services often hide it) a warning is
/// logged instead (a `tracing` warning), since the policy cannot be known.
pub(super) async fn check_eviction(nodes: &[Client], timeout: Duration) -> Result<(), StoreError> {
    for node in nodes {
        let policy = tokio::time::timeout(timeout, async {
            let mut conn = node.get_multiplexed_async_connection().await?;
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async::<Vec<String>>(&mut conn)
                .await
        })
        .await
        .map_err(|_| StoreError::new("redis: timed out asking for maxmemory-policy"))?;
        match policy {
            Ok(reply) => match reply.as_slice() {
                [_, policy] if policy == "noeviction" => {}
                [_, policy] => {
                    return Err(StoreError::new(format_args!(
                        "Redis may evict keys (maxmemory-policy is {policy}): evicted \
                         revocations would let logged-out tokens back in; set \
                         maxmemory-policy noeviction on every node"
                    )));
                }
                _ => warn_policy_unknown("CONFIG GET gave no maxmemory-policy"),
            },
            // The server answered, with a refusal (CONFIG disabled or renamed, no permission).
            Err(e)
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
                ) =>
            {
                warn_policy_unknown("CONFIG GET maxmemory-policy was refused");
            }
            Err(e) => return Err(unavailable(&e)),
        }
    }
    Ok(())
}

fn warn_policy_unknown(why: &str) {
    tracing::warn!(
        "{why}: make sure the Redis server's maxmemory-policy is noeviction (an evicted \
         revocation lets a logged-out token back in)"
    );
}
