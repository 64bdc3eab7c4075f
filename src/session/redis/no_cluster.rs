//! Without the feature `redis-cluster`: `redis+cluster://` URLs are refused with a clear error.

use redis::Client;

use super::RedisOptions;
use super::conn::Conn;
use crate::session::store::StoreError;

#[allow(clippy::unused_async)]
pub(super) async fn connect_cluster(
    _nodes: &[String],
    _options: &RedisOptions,
) -> Result<(Conn, Vec<Client>), StoreError> {
    Err(StoreError::new(
        "redis+cluster:// URLs need the crate feature `redis-cluster`",
    ))
}
