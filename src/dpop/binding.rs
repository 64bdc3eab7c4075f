//! [`Dpop`] as the layer's check of sender-constrained tokens.

use crate::auth::check::{Mounted, RequestContext, Slot, Verdict};
use crate::claims::RegisteredClaims;
use crate::error::{AuthError, AuthErrorKind};
use crate::time::unix_secs;

use super::{Dpop, ReplayCheck, replay_outcome};
use crate::resource::ResourceServerBuilder;

impl ResourceServerBuilder {
    /// Accept DPoP-bound tokens on the layers (feature `dpop`); see
    /// [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop).
    pub fn dpop(mut self, dpop: Dpop) -> Self {
        self.checks.push(std::sync::Arc::new(dpop));
        self
    }
}

/// A DPoP-bound token only with the `DPoP` scheme and a proof from its key; an unbound one
/// never with that scheme; with [`Dpop::required`], no token without it.
impl Mounted for Dpop {
    fn slot(&self) -> Slot {
        Slot::new(2, "dpop")
    }

    fn after(&self, claims: &RegisteredClaims, req: &RequestContext<'_>) -> Verdict {
        let jkt = claims.cnf.as_ref().and_then(|c| c.jkt.as_deref());
        match (req.proof_token, jkt) {
            (Some(token), Some(jkt)) => {
                let proof = match self.check(
                    req.method,
                    req.uri,
                    req.headers,
                    Some(token),
                    unix_secs(req.now),
                ) {
                    Ok(proof) => proof,
                    Err(error) => return Verdict::Reject(error),
                };
                if proof.jkt() != jkt {
                    return Verdict::Reject(AuthErrorKind::DpopBindingMismatch.into());
                }
                match proof.claim() {
                    ReplayCheck::Fresh => Verdict::Pass,
                    ReplayCheck::Replayed => {
                        Verdict::Reject(AuthErrorKind::InvalidDpopProof.into())
                    }
                    ReplayCheck::Full => {
                        Verdict::Reject(AuthErrorKind::DpopReplayUnavailable.into())
                    }
                    // A layer that never waits cannot ask a shared store.
                    ReplayCheck::Pending(_) if !req.may_wait => {
                        Verdict::Reject(AuthErrorKind::DpopReplayUnavailable.into())
                    }
                    ReplayCheck::Pending(answer) => Verdict::Later(Box::pin(async move {
                        replay_outcome(answer.await.map_err(|_| ()))
                    })),
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                Verdict::Reject(AuthErrorKind::DpopBindingMismatch.into())
            }
            (None, None) if self.is_required() => {
                Verdict::Reject(AuthErrorKind::DpopRequired.into())
            }
            (None, None) => Verdict::Pass,
        }
    }

    fn proof_scheme(&self) -> Option<&'static str> {
        Some("DPoP")
    }

    fn challenge(&self, error: &AuthError) -> Option<AuthError> {
        Some(
            error
                .clone()
                .with_dpop_offer(self.algs_shared(), self.is_required()),
        )
    }
}
