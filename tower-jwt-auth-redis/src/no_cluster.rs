//! Without the feature `cluster`: `redis+cluster://` URLs are refused with a clear error.

use redis::Client;

use crate::RedisOptions;
use crate::conn::Conn;
use tower_jwt_auth::session::StoreError;

#[allow(clippy::unused_async)]
pub(super) async fn connect_cluster(
    _nodes: &[String],
    _options: &RedisOptions,
) -> Result<(Conn, Vec<Client>), StoreError> {
    Err(StoreError::new(
        "redis+cluster:// URLs need the feature `cluster` of tower-jwt-auth-redis",
    ))
}
