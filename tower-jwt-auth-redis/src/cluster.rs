//! A connection to a Redis Cluster (feature `cluster`): `redis+cluster://` URLs.

use redis::Client;

use crate::RedisOptions;
use crate::conn::{Conn, unavailable};
use tower_jwt_auth::session::StoreError;

/// Connect to the cluster of `nodes`; the node clients are kept for the feed's subscription.
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
