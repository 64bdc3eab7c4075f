//! A Redis store for [tower-jwt-auth](tower_jwt_auth): sessions, login limiters, one-time DPoP
//! proof ids and revocations shared by every node that names the same Redis (standalone, or a
//! Redis Cluster with the feature `cluster`), and [`RevocationFeed`], which keeps each node's
//! revocation list in step with it.
//!
//! [`RedisStore`] implements the store traits of `tower_jwt_auth::session`
//! ([`SessionStore`], [`RevocationStore`], [`ThrottleStore`], [`OneTimeStore`]) on the
//! crate's public API alone, and passes the same contract as the in-memory store
//! (`tower_jwt_auth::testkit::store_contract`). Hand it to the issuing side's composition root:
//!
//! ```no_run
//! use tower_jwt_auth::login::{AuthServer, InMemoryUsers};
//! use tower_jwt_auth::{Algorithm, SigningKey};
//! use tower_jwt_auth_redis::RedisStore;
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct User {
//!     sub: String,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let users = InMemoryUsers::new()?.with_user("alice", "correct horse", User { sub: "1".into() })?;
//! let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
//! // Sessions, limiters and revocations in Redis; `build` starts the revocation feed, which
//! // runs for as long as a layer of the server lives.
//! let auth = AuthServer::builder(users, SigningKey::generate_secret(Algorithm::HS256)?)
//!     .store(store)
//!     .build()
//!     .await?;
//! # let _ = auth;
//! # Ok(())
//! # }
//! ```
//!
//! Each module has one job: the connection (`conn`, `cluster`, and the start-up `checks`), the
//! Lua scripts (`scripts/*.lua`, one per operation), the store traits (`store`), the shared
//! revocation index (`index`) and the feed (`feed`).
//!
//! [`SessionStore`]: tower_jwt_auth::session::SessionStore
//! [`RevocationStore`]: tower_jwt_auth::session::RevocationStore
//! [`ThrottleStore`]: tower_jwt_auth::session::ThrottleStore
//! [`OneTimeStore`]: tower_jwt_auth::session::OneTimeStore

mod checks;
#[cfg(feature = "cluster")]
mod cluster;
#[cfg(not(feature = "cluster"))]
#[path = "no_cluster.rs"]
mod cluster;
mod conn;
mod feed;
mod index;
mod scripts;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use feed::RevocationFeed;

use checks::check_eviction;
use cluster::connect_cluster;
use conn::{Conn, cluster_nodes, unavailable};
use scripts::Scripts;
use tower_jwt_auth::session::StoreError;

/// Settings of a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisOptions {
    prefix: String,
    timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "tja:".to_owned(),
            timeout: Duration::from_secs(1),
        }
    }
}

impl RedisOptions {
    /// The defaults: key prefix `tja:`, one-second timeouts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start every key (and the revocation channel) with `prefix` (default `tja:`), so several
    /// applications can share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for Redis to connect or answer before the operation fails with a
    /// [`StoreError`] (503 to the client). Default: one second.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// The store traits of `tower_jwt_auth::session` in Redis, shared by every node that names it.
///
/// Every key starts with the prefix (default `tja:`) and expires on its own. The keys of one
/// user share one hash tag (`{u:<hash of sub>}`), so each operation is one Lua script on one
/// slot, with the time taken from Redis (`TIME`): nodes with skewed clocks agree. Keys hold
/// hashes, never a token, password or username: a family holds the user's id (`sub`), the
/// hashes of its current and previous refresh tokens and the sealed successor.
///
/// Revocations go into a sorted set (`<prefix>{rev}:index`, one entry per revoked session,
/// user generation or token, each until the last access token it could match has expired)
/// and onto a pub/sub channel; [`follow`](Self::follow) keeps a node's list in step.
///
/// Connections are re-established on their own; an operation that cannot reach Redis within
/// the timeout fails with a [`StoreError`] (503 with `Retry-After` from the services).
#[derive(Clone)]
pub struct RedisStore {
    /// Where the revocation feed subscribes: the server, or each cluster node in turn.
    subscribe_to: Arc<[Client]>,
    conn: Conn,
    prefix: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

impl RedisStore {
    /// Connect to `url` (`redis://host:port/db`, `rediss://` for TLS if the redis crate was
    /// built with it; with feature `cluster`, `redis+cluster://host:port,host:port` for a
    /// Redis Cluster) with the default options.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connect with `options`.
    ///
    /// # Errors
    ///
    /// When the URL is invalid or Redis cannot be reached.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        if options.prefix.contains(['{', '}']) {
            return Err(StoreError::new(
                "the key prefix must not contain braces (they would change the hash tags)",
            ));
        }
        let invalid =
            |e: redis::RedisError| StoreError::new(format_args!("invalid Redis URL: {e}"));
        let (conn, subscribe_to) = match cluster_nodes(url) {
            Some(nodes) => connect_cluster(&nodes, &options).await?,
            None => {
                let client = Client::open(url).map_err(invalid)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(options.timeout))
                    .set_response_timeout(Some(options.timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let conn = ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map_err(|e| unavailable(&e))?;
                (Conn::Single(conn), vec![client])
            }
        };
        check_eviction(&subscribe_to, options.timeout).await?;
        Ok(Self {
            subscribe_to: subscribe_to.into(),
            conn,
            prefix: options.prefix.into(),
            timeout: options.timeout,
            scripts: Arc::new(Scripts::load()),
        })
    }

    fn family_key(&self, user: &str, sid: &str) -> String {
        format!("{}{{u:{user}}}:f:{sid}", self.prefix)
    }

    fn generation_key(&self, user: &str) -> String {
        format!("{}{{u:{user}}}:gen", self.prefix)
    }

    fn index_key(&self) -> String {
        format!("{}{{rev}}:index", self.prefix)
    }

    fn sequence_key(&self) -> String {
        format!("{}{{rev}}:seq", self.prefix)
    }

    fn epoch_key(&self) -> String {
        format!("{}{{rev}}:epoch", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}revocations", self.prefix)
    }

    /// One request to Redis within the timeout, sent once more if the connection turned out
    /// to be dropped (the connection manager reconnects meanwhile). Every request made here is
    /// safe to repeat: a rotation whose reply was lost is answered the second time from the
    /// grace window, with the same successor.
    async fn request<T, F, Fut>(&self, mut send: F) -> Result<T, StoreError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut retried = false;
        loop {
            match tokio::time::timeout(self.timeout, send(self.conn.clone())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e))
                    if !retried
                        && (e.is_connection_dropped() || e.is_io_error())
                        && !e.is_connection_refusal() =>
                {
                    retried = true;
                }
                Ok(Err(e)) => return Err(unavailable(&e)),
                Err(_) => return Err(StoreError::new("redis: timed out")),
            }
        }
    }

    /// Run a script (see [`request`](Self::request)).
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let invocation = &*invocation;
        self.request(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Send one command (see [`request`](Self::request)).
    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.request(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }
}

/// How long the epoch and the sequence number live without a revocation or a write-back (30
/// days). An epoch that expired reads like a loss: the nodes write back what they hold, which
/// is harmless.
const EPOCH_SECS: u64 = 30 * 24 * 3600;

/// A fresh epoch, for a Redis that has none.
fn epoch_candidate() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| StoreError::new("the operating system's random generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Now, in Unix seconds (0 before 1970).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `d` from now, saturating far in the future.
fn later(d: Duration) -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: not shown.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
