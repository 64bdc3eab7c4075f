//! The connection to a server or a cluster, and what is checked when it is made.

use std::time::Duration;

use redis::Client;
use redis::aio::ConnectionManager;

use super::RedisOptions;
use crate::session::store::StoreError;

/// One connection to a server, or to a whole cluster (requests routed by key slot).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The node URLs of `redis+cluster://[user:pass@]host:port,host:port[/]`, as `redis://` URLs.
pub(super) fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix("redis+cluster://")?;
    let rest = rest.trim_end_matches('/');
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("redis://{auth}{h}/"))
        .collect();
    (!nodes.is_empty()).then_some(nodes)
}

/// Refuse a Redis that may evict keys: an evicted revocation index, generation or family would
/// let logged-out tokens back in. Each node named in the URL is asked for its
/// `maxmemory-policy`; where `CONFIG` is refused (managed services often hide it) a warning is
/// logged instead (feature `tracing`), since the policy cannot be known.
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

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn warn_policy_unknown(why: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        "{why}: make sure the Redis server's maxmemory-policy is noeviction (an evicted \
         revocation lets a logged-out token back in)"
    );
}

/// The error's kind and detail (`redis: Connection refused (os error 111)`, not just `Io`).
pub(super) fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::new(format_args!("redis: {e}"))
}

#[cfg(feature = "redis-cluster")]
pub(super) async fn connect_cluster(
    nodes: &[String],
    options: &RedisOptions,
) -> Result<(Conn, Vec<Client>), StoreError> {
    let invalid = |e: redis::RedisError| StoreError::new(format_args!("invalid Redis URL: {e}"));
    let clients = nodes
        .iter()
        .map(|n| Client::open(n.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let cluster = redis::cluster::ClusterClient::builder(nodes.iter().map(String::as_str))
        .connection_timeout(options.timeout)
        .response_timeout(options.timeout)
        .retries(2)
        .build()
        .map_err(invalid)?;
    let conn = tokio::time::timeout(
        options.timeout.saturating_mul(5),
        cluster.get_async_connection(),
    )
    .await
    .map_err(|_| StoreError::new("redis: timed out"))?
    .map_err(|e| unavailable(&e))?;
    Ok((Conn::Cluster(conn), clients))
}

#[cfg(not(feature = "redis-cluster"))]
#[allow(clippy::unused_async)]
pub(super) async fn connect_cluster(
    _nodes: &[String],
    _options: &RedisOptions,
) -> Result<(Conn, Vec<Client>), StoreError> {
    Err(StoreError::new(
        "redis+cluster:// URLs need the crate feature `redis-cluster`",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_store_error_says_what_redis_met() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = super::unavailable(&redis::RedisError::from(io)).to_string();
        assert!(error.contains("connection refused"), "{error}");
    }
}
