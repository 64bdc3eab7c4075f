//! Sessions (feature `sessions`): refresh-token families with rotation and reuse detection,
//! logout and "log out everywhere", login throttling, over a [`SessionStore`] shared by
//! every node that issues tokens.
//!
//! Access tokens stay short-lived and stateless to verify. What has to be remembered lives in a
//! store: [`MemoryStore`] (one process, no set-up) or the Redis store of the crate
//! `tower-jwt-auth-redis` (several nodes sharing one Redis or Redis Cluster). The store is split
//! by what it keeps ([`SessionStore`], [`RevocationStore`], [`ThrottleStore`],
//! [`OneTimeStore`]), so a backend of your own implements what it supports; both stores pass
//! the one contract, which any store can run (`testkit::store_contract`, feature `test-util`).
//!
//! - **A login opens a session** (a refresh *family*) with an id, `sid`, that goes into every
//!   access token of the session with the user's generation `gen`. The refresh token is
//!   opaque, carries 384 bits of randomness, and only its SHA-256 hash is stored.
//! - **Every refresh rotates the refresh token**, in one atomic step. The immediate
//!   predecessor, presented again within the grace window, gets the **same** successor back
//!   (a client that lost the response can retry; 20 concurrent refreshes of one token cannot
//!   fork the family). Any older token of the family, or the predecessor after the window, is
//!   *reuse*: the whole session is revoked, its refresh token and its access tokens.
//! - **A session ends** at its absolute lifetime, after its idle lifetime without a refresh, at
//!   a logout ([`Sessions::end`]) or at "log out everywhere" ([`Sessions::end_all`], which
//!   raises the user's generation: tokens issued before are refused, a login even in the same
//!   second is not).
//! - **Revocations** go into the store, which shares them with the other nodes, and then at
//!   once into the node's [`Revocations`] list (the list
//!   [`JwtAuthLayer::revocations`](crate::JwtAuthLayer::revocations) checks). A store that
//!   cannot take one fails the logout with 503 and leaves the list as it was.
//!
//! The successor kept for the grace window is stored encrypted under a key derived from its
//! predecessor (SHA-256, used as a one-time pad: each predecessor seals one successor), so the
//! store holds nothing that can be presented as a refresh token.
//!
//! ```
//! use tower_jwt_auth::session::{RefreshError, Sessions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sessions = Sessions::in_memory();
//! let opened = sessions.open("42").await?;
//! let refreshed = sessions.refresh(opened.refresh_token()).await?;
//! assert_eq!(refreshed.sid(), opened.sid());
//! // The old token again, within the grace window: the same successor.
//! let again = sessions.refresh(opened.refresh_token()).await?;
//! assert_eq!(again.refresh_token(), refreshed.refresh_token());
//! // Ending the session refuses its refresh token.
//! sessions.end("42", refreshed.sid()).await?;
//! assert!(matches!(
//!     sessions.refresh(refreshed.refresh_token()).await,
//!     Err(RefreshError::Invalid)
//! ));
//! # Ok(())
//! # }
//! ```

mod follow;
mod memory;
mod store;
mod throttle;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::text::hex;

pub use crate::revocation::FeedGuard;
pub use memory::MemoryStore;
pub use store::{
    NewFamily, OneTimeStore, Rate, RevocationEntry, RevocationStore, Rotated, Rotation,
    RotationCheck, SessionStore, StoreError, StoreFuture, Throttle, ThrottleOp, ThrottleStore,
};
pub use throttle::{
    DEFAULT_PER_ADDRESS, DEFAULT_PER_USER, LoginThrottle, PeerAddr, TrustedProxies,
};

use crate::revocation::Revocations;

/// Default absolute lifetime of a session: 30 days.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default idle lifetime of a session: 7 days.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default grace window for the immediate predecessor: 10 seconds.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Default window in which an access token can still be accepted after it was issued: the
/// default access-token lifetime (900 s) plus the default leeway (60 s).
pub const DEFAULT_ACCESS_WINDOW: Duration = Duration::from_secs(960);

/// The length of a refresh token: a 32-character user tag, a 22-character family id and a
/// 43-character secret.
const TOKEN_LEN: usize = 97;

/// Sessions over a [`SessionStore`]: open, refresh, end. Cheap to clone; clones share the
/// store and the revocation list. See the [module docs](self).
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    revocations: Revocations,
    lifetime: Duration,
    idle: Duration,
    grace: Duration,
    access_window: Duration,
}

impl Sessions {
    /// Sessions kept in `store`, with the default lifetimes and a new revocation list.
    #[must_use]
    pub fn new(store: impl SessionStore) -> Self {
        Self {
            store: Arc::new(store),
            revocations: Revocations::new(),
            lifetime: DEFAULT_LIFETIME,
            idle: DEFAULT_IDLE,
            grace: DEFAULT_GRACE,
            access_window: DEFAULT_ACCESS_WINDOW,
        }
    }

    /// Sessions in this process's memory ([`MemoryStore`]).
    #[must_use]
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::new())
    }

    /// Record revocations in this list (give the same list to
    /// [`JwtAuthLayer::revocations`](crate::JwtAuthLayer::revocations)) instead of a new one.
    #[must_use]
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// The absolute lifetime of a session (default 30 days).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long a session may go unused before it expires (default 7 days).
    #[must_use]
    pub fn idle_lifetime(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How long the immediate predecessor of the current refresh token still gets the same
    /// successor (default 10 s).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The access-token lifetime plus the verifiers' leeway (default 960 s): how long a
    /// revocation has to be remembered to outlive every token it could match.
    #[must_use]
    pub fn access_window(mut self, window: Duration) -> Self {
        self.access_window = window;
        self
    }

    /// The absolute lifetime in force (how long a browser keeps the session's cookies).
    #[cfg_attr(not(feature = "cookie"), allow(dead_code))]
    pub(crate) fn current_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The access window in force (see [`access_window`](Self::access_window)).
    #[cfg(test)]
    pub(crate) fn current_access_window(&self) -> Duration {
        self.access_window
    }

    /// The revocation list this node checks (give it to
    /// [`JwtAuthLayer::revocations`](crate::JwtAuthLayer::revocations)).
    #[must_use]
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// Open a session for the user `sub`: a new family with its first refresh token.
    ///
    /// # Errors
    ///
    /// When the store is unavailable (or the system's random generator fails).
    pub async fn open(&self, sub: &str) -> Result<Session, StoreError> {
        self.open_bound(sub, None).await
    }

    /// Like [`open`](Self::open), for a session bound to a DPoP key: `jkt` is the key's
    /// thumbprint, which every refresh of the session hands back so that it needs a proof from
    /// that key.
    ///
    /// # Errors
    ///
    /// When the store is unavailable (or the system's random generator fails).
    pub async fn open_bound(&self, sub: &str, jkt: Option<&str>) -> Result<Session, StoreError> {
        let user = user_tag(sub);
        let mut family = [0u8; 16];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut family)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|_| StoreError::new("the operating system's random generator failed"))?;
        let family = URL_SAFE_NO_PAD.encode(family);
        let sid = sid_of(&family);
        let token = format!("{user}{family}{}", URL_SAFE_NO_PAD.encode(secret));
        let auth_time = crate::time::unix_now();
        let generation = self
            .store
            .open(&NewFamily {
                user: &user,
                sid: &sid,
                sub,
                token_hash: &token_hash(&token),
                auth_time,
                jkt,
                lifetime: self.lifetime,
                idle: self.idle,
                generation_ttl: self.lifetime.saturating_add(self.access_window),
                min_generation: self.revocations.min_generation(sub),
            })
            .await?;
        Ok(Session {
            sub: sub.to_owned(),
            sid,
            generation,
            auth_time,
            jkt: jkt.map(str::to_owned),
            refresh_token: token,
        })
    }

    /// Rotate a refresh token: its successor, in the same session.
    ///
    /// # Errors
    ///
    /// [`RefreshError::Invalid`] for a token that is unknown, malformed, expired, revoked or
    /// reused (reuse also revokes the session), [`RefreshError::Unavailable`] when the store
    /// cannot be reached.
    pub async fn refresh(&self, token: &str) -> Result<Session, RefreshError> {
        self.refresh_bound(token, None).await
    }

    /// Whether [`refresh_bound`](Self::refresh_bound) with `token` and `jkt` would succeed now,
    /// changing nothing (one read of the store). The refresh service asks this before it
    /// records the request's DPoP proof, so that only the holder of a valid refresh token can
    /// make the store remember anything.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    pub async fn can_refresh(&self, token: &str, jkt: Option<&str>) -> Result<bool, StoreError> {
        let Some((user, family)) = parse_token(token) else {
            return Ok(false);
        };
        let sid = sid_of(family);
        self.store
            .can_rotate(&RotationCheck {
                user,
                sid: &sid,
                presented: &token_hash(token),
                jkt,
                any_key: false,
            })
            .await
    }

    /// The CSRF value of the session `refresh_token` belongs to ([`Session::csrf`]), if it has
    /// the shape of a refresh token (whether it is live is the rotation's business).
    #[must_use]
    pub fn csrf_of(refresh_token: &str) -> Option<String> {
        let (_, family) = parse_token(refresh_token)?;
        Some(hex(&digest("tja csrf", family.as_bytes())[..16]))
    }

    /// Whether `token` has the shape of this crate's refresh tokens (and so cannot be an access
    /// token): what a revocation or introspection endpoint asks before anything else.
    #[must_use]
    pub fn is_refresh_token(token: &str) -> bool {
        parse_token(token).is_some()
    }

    /// End the session `token` (a live refresh token, or its predecessor within the grace
    /// window) belongs to, whatever key it is bound to: a revocation (RFC 7009). Its refresh
    /// token and every access token of the session are refused from then on, on every node.
    /// `Ok(false)`, changing nothing, for a token that is not live: a stream of made-up
    /// tokens cannot grow the revocation list.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    pub async fn end_by_refresh_token(&self, token: &str) -> Result<bool, StoreError> {
        let Some((user, family)) = parse_token(token) else {
            return Ok(false);
        };
        let sid = sid_of(family);
        let live = self
            .store
            .can_rotate(&RotationCheck {
                user,
                sid: &sid,
                presented: &token_hash(token),
                jkt: None,
                any_key: true,
            })
            .await?;
        if live {
            self.revoke(&RevocationEntry::Session(sid.clone())).await?;
            self.store.end_session(user, &sid).await?;
        }
        Ok(live)
    }

    /// Like [`refresh`](Self::refresh), for a request that proved it holds the DPoP key `jkt`:
    /// a session bound to a key rotates only for that key.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh), and [`RefreshError::WrongKey`] when the session is bound
    /// to another key, or to one and `jkt` is `None` (nothing changes then).
    pub async fn refresh_bound(
        &self,
        token: &str,
        jkt: Option<&str>,
    ) -> Result<Session, RefreshError> {
        let (user, family) = parse_token(token).ok_or(RefreshError::Invalid)?;
        let sid = sid_of(family);
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| {
            RefreshError::Unavailable(StoreError::new(
                "the operating system's random generator failed",
            ))
        })?;
        let successor = format!("{user}{family}{}", URL_SAFE_NO_PAD.encode(secret));
        let sealed = hex(&xor(&secret, &pad(token)));
        let rotated = self
            .store
            .rotate(&Rotation {
                user,
                sid: &sid,
                presented: &token_hash(token),
                successor: &token_hash(&successor),
                sealed: &sealed,
                grace: self.grace,
                idle: self.idle,
                jkt,
            })
            .await
            .map_err(RefreshError::Unavailable)?;
        let (sub, generation, auth_time, jkt, refresh_token) = match rotated {
            Rotated::Rotated {
                sub,
                generation,
                auth_time,
                jkt,
            } => (sub, generation, auth_time, jkt, successor),
            Rotated::Repeat {
                sub,
                generation,
                auth_time,
                jkt,
                sealed,
            } => {
                let secret = unhex32(&sealed).ok_or(RefreshError::Invalid)?;
                let secret = xor(&secret, &pad(token));
                let successor = format!("{user}{family}{}", URL_SAFE_NO_PAD.encode(secret));
                (sub, generation, auth_time, jkt, successor)
            }
            Rotated::Invalid => return Err(RefreshError::Invalid),
            Rotated::WrongKey => return Err(RefreshError::WrongKey),
            Rotated::Reused => {
                crate::metrics::refresh(crate::metrics::RefreshOutcome::Reuse);
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    sid = %sid,
                    "refresh token reuse: an old refresh token of this session was presented; \
                     the session is revoked"
                );
                // The family is gone from the store; its access tokens go now, on this node
                // even if the store cannot share it.
                let entry = RevocationEntry::Session(sid.clone());
                entry.apply(&self.revocations, crate::time::later(self.access_window));
                let _ = self.store.revoke(&entry, self.access_window).await;
                return Err(RefreshError::Invalid);
            }
        };
        Ok(Session {
            sub,
            sid,
            generation,
            auth_time,
            jkt,
            refresh_token,
        })
    }

    /// End the session `sid` of user `sub` (a logout): its refresh token and every access
    /// token carrying this `sid` are refused from now on, on every node sharing the store.
    ///
    /// # Errors
    ///
    /// When the store is unavailable; the local list has the revocation anyway.
    pub async fn end(&self, sub: &str, sid: &str) -> Result<(), StoreError> {
        let entry = RevocationEntry::Session(sid.to_owned());
        self.revoke(&entry).await?;
        self.store.end_session(&user_tag(sub), sid).await
    }

    /// End every session of user `sub` ("log out everywhere"): the user's generation goes up,
    /// so every token issued before is refused and every refresh family is dead; sessions
    /// opened afterwards (even within the same second) work.
    ///
    /// # Errors
    ///
    /// When the store is unavailable.
    pub async fn end_all(&self, sub: &str) -> Result<(), StoreError> {
        let generation = self
            .store
            .end_all(
                &user_tag(sub),
                self.lifetime.saturating_add(self.access_window),
            )
            .await?;
        self.revoke(&RevocationEntry::User {
            sub: sub.to_owned(),
            generation,
        })
        .await
    }

    /// Revoke one access token by its `jti`, until `exp` (plus the access window).
    ///
    /// # Errors
    ///
    /// When the store is unavailable; the local list has the revocation anyway.
    pub async fn revoke_token(&self, jti: &str) -> Result<(), StoreError> {
        self.revoke(&RevocationEntry::Token(jti.to_owned())).await
    }

    /// Into the store for the other nodes, then into the local list at once. A revocation the
    /// store did not take is answered 503 and changes nothing here either: the caller retries
    /// it whole, and no node holds a revocation the others never heard of (which a write-back
    /// after a loss of Redis's data would otherwise spread).
    async fn revoke(&self, entry: &RevocationEntry) -> Result<(), StoreError> {
        self.store.revoke(entry, self.access_window).await?;
        entry.apply(&self.revocations, crate::time::later(self.access_window));
        Ok(())
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("store", &self.store)
            .field("lifetime", &self.lifetime)
            .field("idle", &self.idle)
            .field("grace", &self.grace)
            .field("access_window", &self.access_window)
            .finish_non_exhaustive()
    }
}

/// A session after [`Sessions::open`] or [`Sessions::refresh`]: what goes into the access
/// token (`sid`, `gen`) and the refresh token to hand to the client.
#[derive(Clone)]
pub struct Session {
    sub: String,
    sid: String,
    generation: u64,
    auth_time: u64,
    jkt: Option<String>,
    refresh_token: String,
}

impl Session {
    /// The user.
    #[must_use]
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// The session id, the `sid` claim of its access tokens.
    #[must_use]
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The user's generation, the `gen` claim of its access tokens.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the user logged in (Unix seconds), the `auth_time` of its access tokens: a refresh
    /// keeps it, so step-up checks ([`require_recent_auth`](crate::authorize::require_recent_auth))
    /// see the real login time.
    #[must_use]
    pub fn auth_time(&self) -> u64 {
        self.auth_time
    }

    /// The thumbprint of the DPoP key the session is bound to (`cnf.jkt` of its access
    /// tokens), if any.
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// The refresh token (secret: give it to the client, never log it).
    #[must_use]
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The session's CSRF value for a browser (cookie mode): the same for the session's whole
    /// life, and known from any of its refresh tokens ([`Sessions::csrf_of`]), so a refresh
    /// can check it after the access token expired. A one-way hash of the family id, which
    /// neither the access tokens nor the session id reveal.
    #[must_use]
    pub fn csrf(&self) -> String {
        Sessions::csrf_of(&self.refresh_token).unwrap_or_default()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("generation", &self.generation)
            .field("refresh_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why a refresh failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RefreshError {
    /// The refresh token is unknown, malformed, expired, revoked or reused (OAuth
    /// `invalid_grant`; which one is not told to the client).
    Invalid,
    /// The session is bound to a DPoP key and the request did not prove it holds that key
    /// (`invalid_dpop_proof`); the refresh token is unchanged.
    WrongKey,
    /// The store could not be reached: try again later (503).
    Unavailable(StoreError),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid => f.pad("the refresh token is invalid, expired or revoked"),
            Self::WrongKey => f.pad("the refresh token is bound to another DPoP key"),
            Self::Unavailable(e) => write!(f, "the session store is unavailable: {e}"),
        }
    }
}

impl std::error::Error for RefreshError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid | Self::WrongKey => None,
            Self::Unavailable(e) => Some(e),
        }
    }
}

/// SHA-256 over a domain label and a value, so hashes made for one purpose never match
/// another's.
fn digest(domain: &str, value: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain.as_bytes());
    hasher.update([0u8]);
    hasher.update(value);
    hasher.finalize().into()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The key a predecessor seals its successor's secret with.
fn pad(predecessor: &str) -> [u8; 32] {
    digest("tja refresh successor", predecessor.as_bytes())
}

/// What the store keeps of a refresh token.
fn token_hash(token: &str) -> String {
    hex(&digest("tja refresh token", token.as_bytes()))
}

/// The stores' name for a user ([`NewFamily::user`], the `user` of every store call): a hash
/// of `sub` (128 bits, lowercase hex), never the id itself. A store that keeps something per
/// user by `sub` (a generation written back after a data loss, say) names it with this.
#[must_use]
pub fn user_tag(sub: &str) -> String {
    hex(&digest("tja user", sub.as_bytes())[..16])
}

/// A session's public id, derived from its family id (which only refresh tokens carry, so
/// knowing a `sid` from an access token does not let anyone present a token of the family).
fn sid_of(family: &str) -> String {
    hex(&digest("tja session", family.as_bytes())[..16])
}

/// `<user tag: 32 hex><family id: 22 base64url><secret: 43 base64url>`, 97 characters with no
/// separator (nothing about it looks like a JWT): the user tag and family id, if the shape is
/// right.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let (user, rest) = token.split_at_checked(32)?;
    let (family, secret) = rest.split_at_checked(22)?;
    let b64 = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok =
        user.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && b64(family) && b64(secret);
    ok.then_some((user, family))
}

#[cfg(test)]
mod tests;
