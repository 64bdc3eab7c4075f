//! The shared revocation index: its full snapshot, its state (epoch and sequence number), and
//! the write-back after Redis lost its data.

use std::time::UNIX_EPOCH;

use crate::{EPOCH_SECS, RedisStore, epoch_candidate};
use tower_jwt_auth::session::{RevocationEntry, StoreError};

impl RedisStore {
    /// The epoch (`""` if Redis has none), the sequence number and every live entry.
    pub(super) async fn snapshot(&self) -> Result<(String, u64, Vec<(String, u64)>), StoreError> {
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
    pub(super) async fn state(&self) -> Result<(String, u64), StoreError> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.epoch_key()).arg(self.sequence_key());
        let (epoch, seq): (Option<String>, Option<u64>) = self.command(&cmd).await?;
        Ok((epoch.unwrap_or_default(), seq.unwrap_or_default()))
    }

    /// Write `entries` back after Redis lost its data (merging: nothing there is lowered),
    /// with the users' generations; returns the epoch, new if Redis had none.
    pub(super) async fn write_back(
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
        let now = crate::unix_now();
        for (entry, until) in entries {
            if let RevocationEntry::User { sub, generation } = entry {
                let keep_ms = secs(until).saturating_sub(now).saturating_add(1) * 1000;
                let _: i64 = self
                    .run(
                        self.scripts
                            .raise_generation
                            .key(self.generation_key(&tower_jwt_auth::session::user_tag(sub)))
                            .arg(*generation)
                            .arg(keep_ms),
                    )
                    .await?;
            }
        }
        Ok(epoch)
    }
}
