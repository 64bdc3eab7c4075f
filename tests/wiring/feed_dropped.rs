// Following a store's revocations and dropping the feed at once: the list goes stale, and
// after the staleness bound every request gets 503. The feed is `#[must_use]`.
#![deny(unused_must_use)]

use std::time::Duration;

use tower_jwt_auth::revocation::Revocations;
use tower_jwt_auth_redis::RedisStore;

async fn start(store: RedisStore) -> Result<(), Box<dyn std::error::Error>> {
    store.follow(Revocations::new(), Duration::from_secs(60)).await?;
    Ok(())
}

fn main() {
    let _ = start;
}
