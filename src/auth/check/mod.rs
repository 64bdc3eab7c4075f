//! Per-request checks: what runs on every request once its token is known good, verified now
//! or found in the cache.
//!
//! Revocation, CSRF (for tokens a browser sends by itself) and DPoP binding are checks the
//! layer mounts with [`JwtAuthLayer::revocations`](super::JwtAuthLayer::revocations),
//! [`csrf`](super::JwtAuthLayer::csrf) and [`dpop`](super::JwtAuthLayer::dpop); your own go
//! in with [`JwtAuthLayer::check`](super::JwtAuthLayer::check) and run after those. A check
//! answers at once ([`Verdict::Pass`], [`Verdict::Reject`]) or with a future
//! ([`Verdict::Later`], for a shared store): the futures of a request are awaited, in order,
//! only once every check has answered, and only by a layer that may wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};

use crate::claims::RegisteredClaims;
use crate::error::AuthError;
use crate::revocation::Watched;

/// A check's answer that needs a shared store: `Ok(())` to pass.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>;

/// A check's answer for one request.
pub enum Verdict {
    /// Nothing against the request.
    Pass,
    /// Refuse the request with this error (its kind gives the status: 401, 403 or 503).
    Reject(AuthError),
    /// Pass once this future says so. Awaited after every other check has answered, and only
    /// by a layer that may wait ([`RequestContext::may_wait`]): a
    /// [`never_wait`](super::JwtAuthLayer::never_wait) layer refuses the request with 503
    /// instead, so answer at once there.
    Later(CheckFuture),
}

impl From<Result<(), AuthError>> for Verdict {
    #[inline]
    fn from(result: Result<(), AuthError>) -> Self {
        match result {
            Ok(()) => Self::Pass,
            Err(error) => Self::Reject(error),
        }
    }
}

impl fmt::Debug for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pass => f.write_str("Pass"),
            Self::Reject(error) => f.debug_tuple("Reject").field(error).finish(),
            Self::Later(_) => f.write_str("Later"),
        }
    }
}

/// What a check reads of a request, built once per request by the layer.
#[derive(Clone, Copy)]
pub struct RequestContext<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) now: SystemTime,
    pub(crate) from_browser: bool,
    /// The token, when it came with the proof scheme of a mounted check
    /// (`Authorization: DPoP <token>`).
    pub(crate) proof_token: Option<&'a [u8]>,
    pub(crate) may_wait: bool,
}

impl<'a> RequestContext<'a> {
    /// The request's method.
    #[must_use]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request's URI.
    #[must_use]
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request's headers.
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// Now, by the clock of the layer's [`Validation`](crate::validation::Validation), read
    /// once for the whole request.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// Whether the token came from a cookie, which a browser sends by itself.
    #[must_use]
    pub fn sent_by_browser(&self) -> bool {
        self.from_browser
    }

    /// Whether the layer awaits a [`Verdict::Later`]; when not, answer at once.
    #[must_use]
    pub fn may_wait(&self) -> bool {
        self.may_wait
    }
}

impl fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("method", self.method)
            .field("uri", self.uri)
            .field("from_browser", &self.from_browser)
            .field("may_wait", &self.may_wait)
            .finish_non_exhaustive()
    }
}

/// A check of every request whose token is good, mounted with
/// [`JwtAuthLayer::check`](super::JwtAuthLayer::check): a closure
/// `Fn(&RegisteredClaims, &RequestContext<'_>) -> Verdict` is one.
///
/// It runs on cached tokens too, so it is the place for what can change while a token is valid
/// (a tenant switched off, a user blocked); what depends on the token alone belongs in the
/// claims type or in [`Validation`](crate::validation::Validation), and a refusal that should be
/// 403 in an [authorization layer](crate::authorize).
///
/// ```
/// use tower_jwt_auth::auth::{RequestContext, Verdict};
/// use tower_jwt_auth::{AuthErrorKind, JwtAuthLayer, RegisteredClaims};
/// # fn layer(layer: JwtAuthLayer<serde_json::Value>) -> JwtAuthLayer<serde_json::Value> {
/// let layer = layer.check(|claims: &RegisteredClaims, _req: &RequestContext<'_>| {
///     if claims.sub.as_deref() == Some("mallory") {
///         Verdict::Reject(AuthErrorKind::Revoked.into())
///     } else {
///         Verdict::Pass
///     }
/// });
/// # layer }
/// ```
pub trait Check: Send + Sync + 'static {
    /// The answer for one request whose token is good.
    fn check(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict;
}

impl<F> Check for F
where
    F: Fn(&RegisteredClaims, &RequestContext<'_>) -> Verdict + Send + Sync + 'static,
{
    fn check(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict {
        self(claims, req)
    }
}

/// Where a mounted check runs, and which one it replaces: a layer holds one check per name,
/// in the order of `order` (so a request failing two checks always gets the same answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// The crate's own checks (CSRF, DPoP binding) come with their features.
#[cfg_attr(not(any(feature = "cookie", feature = "dpop")), allow(dead_code))]
pub(crate) enum Slot {
    /// One of the crate's own checks: its place, and its name (a layer holds one per name).
    Crate { order: u8, name: &'static str },
    /// The application's checks: after the crate's own, in the order they were mounted, never
    /// replaced.
    Application,
}

impl Slot {
    /// A slot of the crate's own checks.
    #[cfg_attr(not(any(feature = "cookie", feature = "dpop")), allow(dead_code))]
    pub(crate) const fn new(order: u8, name: &'static str) -> Self {
        Self::Crate { order, name }
    }

    /// Where it runs: the crate's checks by their order, the application's last.
    const fn order(self) -> u16 {
        match self {
            Self::Crate { order, .. } => order as u16,
            Self::Application => u16::MAX,
        }
    }
}

/// A check as the pipeline mounts it: the crate's own checks implement this directly (they
/// also read the request before the token is verified, bring a proof scheme or shape the
/// challenge); the application's [`Check`]s through [`Users`].
pub(crate) trait Mounted: Send + Sync + 'static {
    /// Its place in the order, and the check of the same slot it replaces.
    fn slot(&self) -> Slot;

    /// Whether [`before`](Self::before) has anything to do (so a layer calls it only then).
    /// Default: no.
    fn checks_before(&self) -> bool {
        false
    }

    /// Before the token is verified: what needs no claims. Default: nothing.
    fn before(&self, req: &RequestContext<'_>) -> Result<(), AuthError> {
        let _ = req;
        Ok(())
    }

    /// Once the token is known good, cached or not.
    fn after(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict;

    /// The `Authorization` scheme whose credential is the token, beside the layer's token
    /// sources (`DPoP`): a check with one checks the binding of sender-constrained tokens.
    /// Default: none.
    fn proof_scheme(&self) -> Option<&'static str> {
        None
    }

    /// `error` as this check would have the client see it (the DPoP challenge); `None` to
    /// leave it as it is.
    fn challenge(&self, error: &AuthError) -> Option<AuthError> {
        let _ = error;
        None
    }
}

/// An application's [`Check`], mounted.
pub(crate) struct User<T>(pub(crate) T);

impl<T: Check> Mounted for User<T> {
    fn slot(&self) -> Slot {
        Slot::Application
    }

    fn after(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict {
        self.0.check(claims, req)
    }
}

/// The checks of one layer, in [`Slot`] order.
#[derive(Clone, Default)]
pub(crate) struct Checks {
    /// Revocations: checked first, by a direct call.
    revocations: Option<Watched>,
    checks: Vec<Arc<dyn Mounted>>,
    /// Those with something to check before the token is verified.
    before: Vec<Arc<dyn Mounted>>,
    /// The first proof scheme among them, found once.
    proof_scheme: Option<&'static str>,
}

impl Checks {
    /// Mount `check`, replacing the one of its slot (the application's are never replaced).
    pub(crate) fn set(&mut self, check: Arc<dyn Mounted>) {
        let slot = check.slot();
        if slot != Slot::Application {
            self.checks.retain(|c| c.slot() != slot);
        }
        self.checks.push(check);
        // Stable: the application's checks keep the order they were mounted in.
        self.checks.sort_by_key(|c| c.slot().order());
        self.proof_scheme = self.checks.iter().find_map(|c| c.proof_scheme());
        self.before = self
            .checks
            .iter()
            .filter(|c| c.checks_before())
            .cloned()
            .collect();
    }

    /// Check this revocation list (replacing any other).
    pub(crate) fn set_revocations(&mut self, watched: Watched) {
        self.revocations = Some(watched);
    }

    /// Mount `check` unless its slot is taken.
    pub(crate) fn set_default(&mut self, check: Arc<dyn Mounted>) {
        let slot = check.slot();
        if !self.checks.iter().any(|c| c.slot() == slot) {
            self.set(check);
        }
    }

    /// Whether a check of sender-constrained tokens is mounted (else a bound token is refused).
    #[inline]
    pub(crate) fn binding(&self) -> bool {
        self.proof_scheme.is_some()
    }

    pub(crate) fn proof_scheme(&self) -> Option<&'static str> {
        self.proof_scheme
    }

    /// Every check's [`Mounted::before`], in order; the first error wins.
    #[inline]
    pub(crate) fn before(&self, req: &RequestContext<'_>) -> Result<(), AuthError> {
        self.before.iter().try_for_each(|c| c.before(req))
    }

    /// The revocation list, then every mounted check's [`Mounted::after`], in order: the first
    /// rejection wins; the futures of the others, if any, are returned to be awaited in order
    /// (no allocation when there are none).
    #[inline(always)]
    pub(crate) fn after(
        &self,
        claims: &RegisteredClaims,
        req: &RequestContext<'_>,
    ) -> Result<Option<Vec<CheckFuture>>, AuthError> {
        if let Some(watched) = &self.revocations {
            watched.list.check(claims, req.now)?;
        }
        if self.checks.is_empty() {
            return Ok(None);
        }
        self.after_mounted(claims, req)
    }

    fn after_mounted(
        &self,
        claims: &RegisteredClaims,
        req: &RequestContext<'_>,
    ) -> Result<Option<Vec<CheckFuture>>, AuthError> {
        let mut pending: Option<Vec<CheckFuture>> = None;
        for check in &self.checks {
            match check.after(claims, req) {
                Verdict::Pass => {}
                Verdict::Reject(error) => return Err(error),
                Verdict::Later(future) => pending.get_or_insert_with(Vec::new).push(future),
            }
        }
        Ok(pending)
    }

    /// The rejection as the checks would have it.
    pub(crate) fn challenge(&self, error: &AuthError) -> Option<AuthError> {
        self.checks.iter().find_map(|c| c.challenge(error))
    }

    /// The names of the mounted checks, in order (for `Debug`).
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let revocations = self.revocations.as_ref().map(|_| "revocation");
        revocations
            .into_iter()
            .chain(self.checks.iter().map(|c| match c.slot() {
                Slot::Crate { name, .. } => name,
                Slot::Application => "application",
            }))
            .collect()
    }
}

#[cfg(test)]
mod tests;
