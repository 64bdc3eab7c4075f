//! What the middleware and its response future share: the pipeline and the rejection hook,
//! with the one accept tail and the one reject tail both of them end with.

use http::{Request, Response};
use tower_service::Service;

use super::pipeline::Pipeline;
use crate::claims::Claims;
use crate::error::AuthError;
use crate::rejection::{OnRejection, trace_rejection};

/// Everything of a [`JwtAuth`](super::JwtAuth) but the inner service, behind one `Arc`.
pub(super) struct Shared<C, R> {
    pub(super) auth: Pipeline<C>,
    pub(super) on_rejection: R,
}

/// Call `inner` with the claims set, or cleared when there are none, so that no claims can
/// come from elsewhere. Inlined: the request is not moved once more on the hot path.
#[inline(always)]
pub(super) fn accept<S, C, ReqBody>(
    inner: &mut S,
    mut req: Request<ReqBody>,
    claims: Option<Claims<C>>,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    crate::metrics::accepted();
    match claims {
        Some(claims) => req.extensions_mut().insert(claims),
        None => req.extensions_mut().remove::<Claims<C>>(),
    };
    inner.call(req)
}

impl<C, R> Shared<C, R> {
    /// The rejection's response: traced, offered the checks' challenge (DPoP), built by the
    /// hook from the request's parts. The body is dropped unread.
    pub(super) fn reject<ReqBody, ResBody>(
        &self,
        error: &AuthError,
        req: Request<ReqBody>,
    ) -> Response<ResBody>
    where
        R: OnRejection<ResBody>,
    {
        trace_rejection(error);
        let (parts, _body) = req.into_parts();
        let offered = self.auth.offer(error);
        let error = offered.as_ref().unwrap_or(error);
        self.on_rejection.on_rejection(error, &parts)
    }
}
