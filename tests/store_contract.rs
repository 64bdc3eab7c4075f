//! The store contract (`testkit::store_contract`) against `MemoryStore`. The Redis store's
//! crate runs the same contract against a Redis server and a Redis Cluster.

use tower_jwt_auth::session::MemoryStore;
use tower_jwt_auth::testkit::store_contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_in_memory() {
    store_contract::check(|| async { MemoryStore::new() }).await;
}
