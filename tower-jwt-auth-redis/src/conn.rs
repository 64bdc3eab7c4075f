//! The connection to a server or a whole cluster, as one type.

use redis::aio::ConnectionManager;

use tower_jwt_auth::session::StoreError;

/// One connection to a server, or to a whole cluster (requests routed by key slot).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
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
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
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

/// The error's kind and detail (`redis: Connection refused (os error 111)`, not just `Io`).
pub(super) fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::new(format_args!("redis: {e}"))
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
