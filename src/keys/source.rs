use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jsonwebtoken::Algorithm;

use crate::keys::KeySet;

/// A future resolving to a fresh key set, or `None` when no keys could be had.
pub type KeyFuture = Pin<Box<dyn Future<Output = Option<Arc<KeySet>>> + Send + 'static>>;

/// A source of verifying keys, with a synchronous fast path and an asynchronous path taken only
/// on a miss.
///
/// A key source answers from memory on every request ([`KeySource::current`]: no lock, no I/O,
/// no allocation beyond an `Arc` clone). Only when the token names a key that is not in memory
/// does the verifier ask [`KeySource::refresh`], which may go to the network; the request then
/// waits for that one refresh. A static [`KeySet`] never refreshes.
///
/// # The contract the verified-token cache relies on
///
/// [`current`](KeySource::current) returns **the same `Arc`** for as long as the set is
/// unchanged, and a new `Arc` whenever it changes (a rotation, a refresh that brought other
/// keys). The layer's token cache remembers which `Arc` a token was verified with and
/// re-verifies when it differs, so a source that returns a new `Arc` on every call makes the
/// cache useless, and one that mutates a set in place behind the same `Arc` would let a token
/// of a removed key be served from the cache.
///
/// Implemented by the static key set (through [`Verifier::new`](crate::Verifier::new)), by
/// [`KeyRing`](crate::keys::KeyRing) and, with the `remote-jwks` feature, by the remote JWKS source.
pub trait KeySource: Send + Sync + 'static {
    /// The keys in memory now, or `None` when there are none yet (a remote set not fetched yet:
    /// requests then get 503 unless a refresh brings keys).
    ///
    /// Called on every request: it must not block, lock or do I/O.
    fn current(&self) -> Option<Arc<KeySet>>;

    /// No key in [`current`](KeySource::current) matches the token (its `alg` and `kid` are
    /// given). Return a future for a fresh set when a refresh is allowed now (sources should
    /// rate-limit this, share one fetch between concurrent callers and remember lookups that a
    /// refresh did not answer), or `None` to reject at once.
    ///
    /// `alg` and `kid` come from an unverified token: never put them into a URL or a log line.
    fn refresh(&self, alg: Algorithm, kid: Option<&str>) -> Option<KeyFuture>;

    /// The issuer this source's keys belong to, when the source knows it (a key set found by
    /// OpenID Connect discovery does). A [`Verifier`](crate::verifier::Verifier) built on the source then
    /// accepts only tokens whose `iss` is that issuer: keys shared between tenants must not
    /// let one tenant's tokens pass as another's.
    fn issuer(&self) -> Option<&str> {
        None
    }
}

/// A fixed key set: always current, never refreshed.
#[derive(Debug)]
pub(crate) struct StaticKeys(pub(crate) Arc<KeySet>);

impl KeySource for StaticKeys {
    fn current(&self) -> Option<Arc<KeySet>> {
        Some(Arc::clone(&self.0))
    }

    fn refresh(&self, _alg: Algorithm, _kid: Option<&str>) -> Option<KeyFuture> {
        None
    }
}
