//! [`SessionStore`] for [`RedisStore`]: each operation is one script.

use std::time::Duration;

use crate::{EPOCH_SECS, RedisStore, epoch_candidate, millis};
use tower_jwt_auth::revocation::{FeedGuard, Revocations};
use tower_jwt_auth::session::{
    NewFamily, OneTimeStore, Rate, RevocationEntry, RevocationStore, Rotated, Rotation,
    RotationCheck, SessionStore, StoreError, StoreFuture, Throttle, ThrottleOp, ThrottleStore,
};

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
                        .arg(check.jkt.unwrap_or(""))
                        .arg(if check.any_key { "1" } else { "0" }),
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
}

impl RevocationStore for RedisStore {
    fn follow_revocations<'a>(
        &'a self,
        revocations: &'a Revocations,
        max_staleness: Duration,
    ) -> StoreFuture<'a, Option<FeedGuard>> {
        Box::pin(async move {
            let feed = self.follow(revocations.clone(), max_staleness).await?;
            Ok(Some(FeedGuard::new(feed)))
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
}

impl ThrottleStore for RedisStore {
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
}

impl OneTimeStore for RedisStore {
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
