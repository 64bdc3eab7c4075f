//! [`RedisStore`] (feature `redis`): sessions, limiters and revocations shared by every node
//! that names the same Redis, and [`RevocationFeed`], which keeps a node's revocation list in
//! step with it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::store::{
    NewFamily, Rate, RevocationEntry, Rotated, Rotation, RotationCheck, SessionStore, StoreError,
    StoreFuture, Throttle, ThrottleOp,
};
use crate::revocation::Revocations;

/// Lua: open a family. KEYS: family, generation. ARGV: sub, token hash, lifetime ms, idle ms,
/// generation ttl ms, auth time, DPoP key thumbprint (empty: unbound), lowest generation.
/// Returns the user's generation (raised to the lowest one if the store had less).
const OPEN: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[8]) > gen then
  gen = tonumber(ARGV[8])
  redis.call('SET', KEYS[2], string.format('%.0f', gen), 'PX', ARGV[5])
elseif gen > 0 and redis.call('PTTL', KEYS[2]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local exp = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'sub', ARGV[1], 'gen', string.format('%.0f', gen), 'cur', ARGV[2], 'exp', exp,
  'last', now, 'idle', ARGV[4], 'auth', ARGV[6], 'jkt', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], math.min(exp, now + tonumber(ARGV[4])))
return gen
";

/// Lua: rotate. KEYS: family, generation. ARGV: presented hash, successor hash, sealed
/// successor, grace ms, idle ms, DPoP key thumbprint of the request (empty: none).
const ROTATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'sub', 'gen', 'cur', 'prev', 'prev_until', 'sealed',
  'exp', 'last', 'idle', 'auth', 'jkt')
if not f[1] then return {'invalid'} end
local exp = tonumber(f[7])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if now >= exp or now >= tonumber(f[8]) + tonumber(f[9]) or tonumber(f[2]) < current then
  redis.call('DEL', KEYS[1])
  return {'invalid'}
end
if f[11] and f[11] ~= '' and f[11] ~= ARGV[6] then return {'wrong_key'} end
if f[3] == ARGV[1] then
  local idle = tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1],
    'prev_until', now + tonumber(ARGV[4]), 'sealed', ARGV[3], 'last', now, 'idle', idle)
  redis.call('PEXPIREAT', KEYS[1], math.min(exp, now + idle))
  return {'rotated', f[1], f[2], f[10] or '0', f[11] or ''}
end
if f[4] == ARGV[1] and now < tonumber(f[5]) then
  return {'repeat', f[1], f[2], f[6], f[10] or '0', f[11] or ''}
end
redis.call('DEL', KEYS[1])
return {'reused'}
";

/// Lua: whether ROTATE would hand out a token, changing nothing. KEYS: family, generation.
/// ARGV: presented hash, DPoP key thumbprint of the request (empty: none). Returns 1 or 0.
const CAN_ROTATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'prev', 'prev_until', 'exp', 'last',
  'idle', 'jkt')
if not f[1] then return 0 end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if now >= tonumber(f[5]) or now >= tonumber(f[6]) + tonumber(f[7]) or tonumber(f[1]) < current then
  return 0
end
if f[8] and f[8] ~= '' and f[8] ~= ARGV[2] then return 0 end
if f[2] == ARGV[1] then return 1 end
if f[3] == ARGV[1] and now < tonumber(f[4]) then return 1 end
return 0
";

/// Lua: log out everywhere. KEYS: generation. ARGV: keep ms. Returns the new generation: the
/// larger of the old one plus one and Redis time in ms, so it only ever grows, even after
/// Redis lost the old value.
const END_ALL: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
if g < now then g = now end
local keep = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > keep then keep = ttl end
redis.call('SET', KEYS[1], string.format('%.0f', g), 'PX', keep)
return g
";

/// How long the epoch and the sequence number live without a revocation or a write-back (30
/// days). An epoch that expired reads like a loss: the nodes write back what they hold, which
/// is harmless.
const EPOCH_SECS: u64 = 30 * 24 * 3600;

/// Lua: record and publish a revocation. KEYS: index, sequence, epoch. ARGV: entry, keep secs,
/// channel, a new epoch (used if Redis has none: it lost its data, or never had any; the
/// sequence then starts again in the new epoch). The index keeps each entry until Redis time +
/// keep and expires with the last entry. Publishes `epoch\nseq\nuntil\nentry`.
const REVOKE: &str = r"
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], epoch, 'EX', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local till = now + tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old and tonumber(old) > till then till = tonumber(old) end
redis.call('ZADD', KEYS[1], till, ARGV[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], (tonumber(last[2]) - now + 1) * 1000)
redis.call('PUBLISH', ARGV[3], epoch .. '\n' .. seq .. '\n' .. till .. '\n' .. ARGV[1])
return seq
";

/// Lua: write back what a node holds after Redis lost its data, merged into what is there
/// (each entry keeps the later of its two times). KEYS: index, sequence, epoch. ARGV: a new
/// epoch (used if Redis has none), epoch secs, then entry and until (Unix secs) pairs. Raises
/// the sequence number, so every node reloads. Returns the epoch.
const WRITE_BACK: &str = r"
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[3], epoch, 'EX', ARGV[2])
for i = 3, #ARGV - 1, 2 do
  local till = tonumber(ARGV[i + 1])
  if till > now then
    local old = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if not old or tonumber(old) < till then redis.call('ZADD', KEYS[1], till, ARGV[i]) end
  end
end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIRE', KEYS[1], (tonumber(last[2]) - now + 1) * 1000) end
return epoch
";

/// Lua: raise a user's generation to at least ARGV[1], kept for ARGV[2] ms (a write-back of
/// a "log out everywhere" that Redis lost). KEYS: generation.
const RAISE_GENERATION: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
";

/// Lua: the epoch ('' if none), the sequence number the index is current as of, and
/// everything still revoked.
const SNAPSHOT: &str = r"
local now = tonumber(redis.call('TIME')[1])
local epoch = redis.call('GET', KEYS[3]) or ''
local seq = redis.call('GET', KEYS[2]) or '0'
return {epoch, seq, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')}
";

/// Lua: one GCRA step. KEYS: limiter. ARGV: interval ms, period ms, 'take' or 'give'.
/// Returns {allowed (1/0), retry after ms}.
const THROTTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
if ARGV[3] == 'take' then
  local nxt = tat + interval
  local ahead = nxt - now
  if ahead > tonumber(ARGV[2]) then return {0, ahead - tonumber(ARGV[2])} end
  redis.call('SET', KEYS[1], nxt, 'PX', ahead)
  return {1, 0}
end
local nxt = tat - interval
if nxt <= now then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], nxt, 'PX', nxt - now) end
return {1, 0}
";

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

struct Scripts {
    open: Script,
    rotate: Script,
    can_rotate: Script,
    end_all: Script,
    revoke: Script,
    write_back: Script,
    raise_generation: Script,
    snapshot: Script,
    throttle: Script,
}

/// A [`SessionStore`] in Redis, shared by every node that names it.
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

/// One connection to a server, or to a whole cluster (requests routed by key slot).
#[derive(Clone)]
enum Conn {
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
fn cluster_nodes(url: &str) -> Option<Vec<String>> {
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
async fn check_eviction(nodes: &[Client], timeout: Duration) -> Result<(), StoreError> {
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

fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::new(format_args!("redis: {:?}", e.kind()))
}

impl RedisStore {
    /// Connect to `url` (`redis://host:port/db`, `rediss://` for TLS if the redis crate was
    /// built with it; with feature `redis-cluster`, `redis+cluster://host:port,host:port` for a
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
            Some(nodes) => Self::connect_cluster(&nodes, &options).await?,
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
            scripts: Arc::new(Scripts {
                open: Script::new(OPEN),
                rotate: Script::new(ROTATE),
                can_rotate: Script::new(CAN_ROTATE),
                end_all: Script::new(END_ALL),
                revoke: Script::new(REVOKE),
                write_back: Script::new(WRITE_BACK),
                raise_generation: Script::new(RAISE_GENERATION),
                snapshot: Script::new(SNAPSHOT),
                throttle: Script::new(THROTTLE),
            }),
        })
    }

    #[cfg(feature = "redis-cluster")]
    async fn connect_cluster(
        nodes: &[String],
        options: &RedisOptions,
    ) -> Result<(Conn, Vec<Client>), StoreError> {
        let invalid =
            |e: redis::RedisError| StoreError::new(format_args!("invalid Redis URL: {e}"));
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
    async fn connect_cluster(
        _nodes: &[String],
        _options: &RedisOptions,
    ) -> Result<(Conn, Vec<Client>), StoreError> {
        Err(StoreError::new(
            "redis+cluster:// URLs need the crate feature `redis-cluster`",
        ))
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

    /// Keep `revocations` in step with the revocations of every node: the feed loads the full
    /// list, applies each change as it is published (typically within a millisecond), checks
    /// every half second that it has missed nothing (reloading in full if it has, or after any
    /// reconnect, since pub/sub alone loses messages), and marks the list as trustworthy for
    /// `max_staleness` after each successful check. When Redis stays unreachable longer than
    /// that, the layer answers 503 instead of admitting possibly revoked tokens; the feed
    /// catches up by itself when Redis is back.
    ///
    /// Verification-only nodes use this too: they need no sessions, only the feed. The feed
    /// runs on a tokio task until the returned [`RevocationFeed`] is dropped.
    ///
    /// # Errors
    ///
    /// When the first full load does not succeed within a few seconds.
    pub async fn follow(
        &self,
        revocations: Revocations,
        max_staleness: Duration,
    ) -> Result<RevocationFeed, StoreError> {
        let stats = Arc::new(FeedStats::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let feed = Feed {
            store: self.clone(),
            revocations,
            max_staleness,
            stats: Arc::clone(&stats),
            ready: Some(ready_tx),
            epoch: None,
            seq: None,
            attempt: 0,
        };
        let task = tokio::spawn(feed.run());
        match tokio::time::timeout(Duration::from_secs(5), ready_rx).await {
            Ok(Ok(())) => Ok(RevocationFeed { task, stats }),
            _ => {
                task.abort();
                Err(StoreError::new(
                    "the revocation list could not be loaded from Redis",
                ))
            }
        }
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

    /// The epoch (`""` if Redis has none), the sequence number and every live entry.
    async fn snapshot(&self) -> Result<(String, u64, Vec<(String, u64)>), StoreError> {
        let (epoch, seq, items): (String, String, Vec<(String, f64)>) = self
            .run(
                self.scripts
                    .snapshot
                    .key(self.index_key())
                    .key(self.sequence_key())
                    .key(self.epoch_key()),
            )
            .await?;
        let seq = seq
            .parse()
            .map_err(|_| StoreError::new("redis: bad sequence"))?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let items = items.into_iter().map(|(m, s)| (m, s as u64)).collect();
        Ok((epoch, seq, items))
    }

    /// The epoch (`""` if none) and the sequence number.
    async fn state(&self) -> Result<(String, u64), StoreError> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.epoch_key()).arg(self.sequence_key());
        let (epoch, seq): (Option<String>, Option<u64>) = self.command(&cmd).await?;
        Ok((epoch.unwrap_or_default(), seq.unwrap_or_default()))
    }

    /// Write `entries` back after Redis lost its data (merging: nothing there is lowered),
    /// with the users' generations; returns the epoch, new if Redis had none.
    async fn write_back(
        &self,
        entries: &[(RevocationEntry, std::time::SystemTime)],
    ) -> Result<String, StoreError> {
        let candidate = epoch_candidate()?;
        let secs =
            |t: &std::time::SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut epoch = String::new();
        // In slices, so no script call carries an unbounded argument list.
        for chunk in entries
            .chunks(512)
            .chain(entries.is_empty().then_some(&[][..]))
        {
            let mut invocation = self.scripts.write_back.prepare_invoke();
            invocation
                .key(self.index_key())
                .key(self.sequence_key())
                .key(self.epoch_key())
                .arg(&candidate)
                .arg(EPOCH_SECS);
            for (entry, until) in chunk {
                invocation.arg(entry.encode()).arg(secs(until));
            }
            epoch = self.run(&mut invocation).await?;
        }
        let now = crate::validation::unix_now();
        for (entry, until) in entries {
            if let RevocationEntry::User { sub, generation } = entry {
                let keep_ms = secs(until).saturating_sub(now).saturating_add(1) * 1000;
                let _: i64 = self
                    .run(
                        self.scripts
                            .raise_generation
                            .key(self.generation_key(&super::user_tag(sub)))
                            .arg(*generation)
                            .arg(keep_ms),
                    )
                    .await?;
            }
        }
        Ok(epoch)
    }
}

/// A fresh epoch, for a Redis that has none.
fn epoch_candidate() -> Result<String, StoreError> {
    crate::text::random_hex::<16>()
        .ok_or_else(|| StoreError::new("the operating system's random generator failed"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SessionStore for RedisStore {
    fn open<'a>(&'a self, family: &'a NewFamily<'a>) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            self.run(
                self.scripts
                    .open
                    .key(self.family_key(family.user, family.sid))
                    .key(self.generation_key(family.user))
                    .arg(family.sub)
                    .arg(family.token_hash)
                    .arg(millis(family.lifetime))
                    .arg(millis(family.idle))
                    .arg(millis(family.generation_ttl))
                    .arg(family.auth_time)
                    .arg(family.jkt.unwrap_or(""))
                    .arg(family.min_generation),
            )
            .await
        })
    }

    fn rotate<'a>(&'a self, rotation: &'a Rotation<'a>) -> StoreFuture<'a, Rotated> {
        Box::pin(async move {
            let reply: Vec<String> = self
                .run(
                    self.scripts
                        .rotate
                        .key(self.family_key(rotation.user, rotation.sid))
                        .key(self.generation_key(rotation.user))
                        .arg(rotation.presented)
                        .arg(rotation.successor)
                        .arg(rotation.sealed)
                        // Zero stays zero: no grace at all.
                        .arg(u64::try_from(rotation.grace.as_millis()).unwrap_or(u64::MAX))
                        .arg(millis(rotation.idle))
                        .arg(rotation.jkt.unwrap_or("")),
                )
                .await?;
            let number = |g: &str| {
                g.parse::<u64>()
                    .map_err(|_| StoreError::new("redis: bad number in a rotation reply"))
            };
            let bound = |jkt: &String| (!jkt.is_empty()).then(|| jkt.clone());
            match reply.as_slice() {
                [tag] if tag == "invalid" => Ok(Rotated::Invalid),
                [tag, sub, g, auth, jkt] if tag == "rotated" => Ok(Rotated::Rotated {
                    sub: sub.clone(),
                    generation: number(g)?,
                    auth_time: number(auth)?,
                    jkt: bound(jkt),
                }),
                [tag, sub, g, sealed, auth, jkt] if tag == "repeat" => Ok(Rotated::Repeat {
                    sub: sub.clone(),
                    generation: number(g)?,
                    auth_time: number(auth)?,
                    jkt: bound(jkt),
                    sealed: sealed.clone(),
                }),
                [tag] if tag == "reused" => Ok(Rotated::Reused),
                [tag] if tag == "wrong_key" => Ok(Rotated::WrongKey),
                _ => Err(StoreError::new("redis: unexpected rotation reply")),
            }
        })
    }

    fn can_rotate<'a>(&'a self, check: &'a RotationCheck<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let ok: i64 = self
                .run(
                    self.scripts
                        .can_rotate
                        .key(self.family_key(check.user, check.sid))
                        .key(self.generation_key(check.user))
                        .arg(check.presented)
                        .arg(check.jkt.unwrap_or("")),
                )
                .await?;
            Ok(ok == 1)
        })
    }

    fn end_session<'a>(&'a self, user: &'a str, sid: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.family_key(user, sid));
            self.command(&cmd).await
        })
    }

    fn end_all<'a>(&'a self, user: &'a str, keep: Duration) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            self.run(
                self.scripts
                    .end_all
                    .key(self.generation_key(user))
                    .arg(millis(keep)),
            )
            .await
        })
    }

    fn revoke<'a>(&'a self, entry: &'a RevocationEntry, keep: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let _seq: u64 = self
                .run(
                    self.scripts
                        .revoke
                        .key(self.index_key())
                        .key(self.sequence_key())
                        .key(self.epoch_key())
                        .arg(entry.encode())
                        .arg(keep.as_secs().max(1))
                        .arg(self.channel())
                        .arg(epoch_candidate()?)
                        .arg(EPOCH_SECS),
                )
                .await?;
            Ok(())
        })
    }

    fn throttle<'a>(
        &'a self,
        key: &'a str,
        rate: Rate,
        op: ThrottleOp,
    ) -> StoreFuture<'a, Throttle> {
        Box::pin(async move {
            let (allowed, wait): (i64, i64) = self
                .run(
                    self.scripts
                        .throttle
                        .key(format!("{}{{l:{key}}}", self.prefix))
                        .arg(rate.interval_ms())
                        .arg(rate.period_ms())
                        .arg(match op {
                            ThrottleOp::Take => "take",
                            ThrottleOp::Give => "give",
                        }),
                )
                .await?;
            Ok(if allowed == 1 {
                Throttle::Allowed
            } else {
                Throttle::Limited {
                    retry_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                }
            })
        })
    }

    fn first_use<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            // SET NX: atomic on the key's one slot. A reply lost to a dropped connection and
            // retried reads as a replay: the proof is refused, never accepted twice.
            let set: Option<String> = self
                .command(
                    redis::cmd("SET")
                        .arg(format!("{}{{p:{key}}}", self.prefix))
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl)),
                )
                .await?;
            Ok(set.is_some())
        })
    }
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

#[derive(Default)]
struct FeedStats {
    events: AtomicU64,
    reloads: AtomicU64,
    write_backs: AtomicU64,
}

/// The running revocation feed of [`RedisStore::follow`]. Dropping it stops the feed (and the
/// list stays as it was, trusted until its last bound).
pub struct RevocationFeed {
    task: JoinHandle<()>,
    stats: Arc<FeedStats>,
}

impl RevocationFeed {
    /// How many published revocations this feed applied one by one.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.stats.events.load(Ordering::Relaxed)
    }

    /// How many times it wrote the node's revocations back to Redis because Redis had lost
    /// its data (or, at the very start, had none yet).
    #[must_use]
    pub fn write_backs(&self) -> u64 {
        self.stats.write_backs.load(Ordering::Relaxed)
    }

    /// How many times it loaded the full list (at start, after every reconnect and whenever it
    /// found it had missed a change).
    #[must_use]
    pub fn reloads(&self) -> u64 {
        self.stats.reloads.load(Ordering::Relaxed)
    }
}

impl Drop for RevocationFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("events", &self.events())
            .field("reloads", &self.reloads())
            .field("write_backs", &self.write_backs())
            .finish()
    }
}

/// How often the feed checks the sequence number (and renews the list's trust).
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long to wait before reconnecting the subscription.
const RECONNECT_AFTER: Duration = Duration::from_millis(200);

struct Feed {
    store: RedisStore,
    revocations: Revocations,
    max_staleness: Duration,
    stats: Arc<FeedStats>,
    ready: Option<oneshot::Sender<()>>,
    /// The epoch of the Redis data the list was loaded from (`None`: never loaded). Another
    /// one, or none, means Redis lost its data since.
    epoch: Option<String>,
    /// The sequence number the list is current as of (`None`: never loaded).
    seq: Option<u64>,
    /// Connection attempts so far (which cluster node to subscribe to next).
    attempt: usize,
}

impl Feed {
    async fn run(mut self) {
        loop {
            self.subscribed().await;
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    fn trust(&self) {
        self.revocations
            .trust_until(Some(super::later(self.max_staleness)));
    }

    /// Load the full list from Redis, merged into the node's own: entries are only ever added
    /// here (each expires on its own), so nothing this node knows is revoked comes back. When
    /// Redis lost its data (its epoch changed or is gone: a restart without persistence, a
    /// flush, a failover that lost writes), the node first writes back everything it holds.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let (mut epoch, mut seq, mut items) = self.store.snapshot().await?;
        if epoch.is_empty() || self.epoch.as_ref().is_some_and(|known| *known != epoch) {
            let held = self.revocations.entries();
            #[cfg(feature = "tracing")]
            if self.epoch.is_some() {
                tracing::warn!(
                    entries = held.len(),
                    "Redis lost its revocation data: writing back what this node holds"
                );
            }
            self.store.write_back(&held).await?;
            self.stats.write_backs.fetch_add(1, Ordering::Relaxed);
            (epoch, seq, items) = self.store.snapshot().await?;
        }
        self.revocations.batch(|b| {
            for (member, until) in &items {
                if let Some(entry) = RevocationEntry::decode(member) {
                    entry.apply_to(b, UNIX_EPOCH + Duration::from_secs(*until));
                }
            }
        });
        self.epoch = Some(epoch);
        self.seq = Some(seq);
        self.stats.reloads.fetch_add(1, Ordering::Relaxed);
        self.trust();
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(());
        }
        Ok(())
    }

    /// One subscription, from connect to its loss.
    async fn subscribed(&mut self) {
        let timeout = self.store.timeout;
        // Pub/sub reaches every node of a cluster: any one will do; take the next after a loss.
        let clients = &self.store.subscribe_to;
        self.attempt = self.attempt.wrapping_add(1);
        let client = &clients[self.attempt % clients.len()];
        let Ok(Ok(mut pubsub)) = tokio::time::timeout(timeout, client.get_async_pubsub()).await
        else {
            return;
        };
        let channel = self.store.channel();
        if !matches!(
            tokio::time::timeout(timeout, pubsub.subscribe(&channel)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        // Subscribed first, then loaded: nothing published in between is missed.
        if self.reload().await.is_err() {
            return;
        }
        let mut messages = pubsub.into_on_message();
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        // The connection is gone (killed, Redis restarted): reconnect, reload.
                        return;
                    };
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    if self.apply(&payload).is_err() && self.reload().await.is_err() {
                        return;
                    }
                }
                _ = check.tick() => {
                    match self.store.state().await {
                        Ok((epoch, seq))
                            if Some(seq) == self.seq && self.epoch.as_ref() == Some(&epoch) =>
                        {
                            self.trust();
                        }
                        Ok(_) => {
                            if self.reload().await.is_err() {
                                return;
                            }
                        }
                        // Unreachable: the trust runs out unless the next check succeeds.
                        Err(_) => {}
                    }
                }
            }
        }
    }

    /// Apply one published change; `Err` if it is not the next in sequence (reload instead).
    fn apply(&mut self, payload: &str) -> Result<(), ()> {
        let mut parts = payload.splitn(4, '\n');
        let (Some(epoch), Some(seq), Some(until), Some(member)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        // Another epoch: Redis lost its data (or this node never loaded): reload.
        if self.epoch.as_deref() != Some(epoch) {
            return Err(());
        }
        let seq: u64 = seq.parse().map_err(|_| ())?;
        let until: u64 = until.parse().map_err(|_| ())?;
        match self.seq {
            Some(current) if seq <= current => return Ok(()),
            Some(current) if seq == current + 1 => {}
            _ => return Err(()),
        }
        let entry = RevocationEntry::decode(member).ok_or(())?;
        entry.apply(&self.revocations, UNIX_EPOCH + Duration::from_secs(until));
        self.seq = Some(seq);
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
