//! [`RevocationFeed`]: a node's revocation list kept in step with Redis.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::RedisStore;
use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth::session::{RevocationEntry, StoreError};

impl RedisStore {
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
}

#[derive(Default)]
struct FeedStats {
    events: AtomicU64,
    reloads: AtomicU64,
    write_backs: AtomicU64,
}

/// The running revocation feed of [`RedisStore::follow`]. Dropping it stops the feed (and the
/// list stays as it was, trusted until its last bound): keep it for as long as the server runs.
#[must_use = "dropping the feed stops it: the revocation list goes stale, and after the \
              staleness bound every authenticated request gets 503; keep it alive"]
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
            .trust_until(Some(crate::later(self.max_staleness)));
    }

    /// Load the full list from Redis, merged into the node's own: entries are only ever added
    /// here (each expires on its own), so nothing this node knows is revoked comes back. When
    /// Redis lost its data (its epoch changed or is gone: a restart without persistence, a
    /// flush, a failover that lost writes), the node first writes back everything it holds.
    async fn reload(&mut self) -> Result<(), StoreError> {
        let (mut epoch, mut seq, mut items) = self.store.snapshot().await?;
        if epoch.is_empty() || self.epoch.as_ref().is_some_and(|known| *known != epoch) {
            let held = self.revocations.entries();
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
