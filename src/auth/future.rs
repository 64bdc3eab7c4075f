use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::pipeline::{Admitted, Wait};
use super::shared::{Shared, accept};
use crate::rejection::OnRejection;

pin_project! {
    /// Response future of [`JwtAuth`](super::JwtAuth): the inner service's future, a ready
    /// rejection, or (only when the key source had to refresh) a verification in progress that
    /// calls the inner service once the token has verified.
    ///
    /// A state machine, not a boxed future: it is `Send` exactly when the inner service, its
    /// future, the request body and the rejection hook are. (The rare refresh path keeps its
    /// state in private boxes, so the common states stay small.)
    ///
    /// See the [module docs](crate::auth) for an example.
    pub struct ResponseFuture<S, ReqBody, C, R>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, C, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, C, R>
    where
        S: Service<Request<ReqBody>>,
    {
        // The rare paths (a key refresh, a shared replay cache) are boxed, so the common
        // states stay small to move.
        Waiting {
            wait: Box<Wait<C>>,
            // The instance `poll_ready` made ready, and the request; taken once.
            call: Option<Box<(S, Request<ReqBody>)>>,
            shared: Arc<Shared<C, R>>,
        },
        Called {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody, C, R> ResponseFuture<S, ReqBody, C, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(super) fn called(future: S::Future) -> Self {
        Self {
            state: State::Called { future },
        }
    }

    pub(super) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(super) fn waiting(
        wait: Wait<C>,
        ready: S,
        request: Request<ReqBody>,
        shared: Arc<Shared<C, R>>,
    ) -> Self {
        Self {
            state: State::Waiting {
                wait: Box::new(wait),
                call: Some(Box::new((ready, request))),
                shared,
            },
        }
    }
}

impl<S, ReqBody, ResBody, C, R> Future for ResponseFuture<S, ReqBody, C, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
    R: OnRejection<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("future polled after completion")));
                }
                StateProj::Waiting { wait, call, shared } => {
                    let decided = match &mut **wait {
                        Wait::Verification {
                            verification,
                            from_browser,
                        } => {
                            let verified = ready!(verification.as_mut().poll(cx));
                            let Some((_, request)) = call.as_deref() else {
                                panic!("future polled after completion");
                            };
                            let mut req = shared.auth.context(
                                request.method(),
                                request.uri(),
                                request.headers(),
                            );
                            req.from_browser = *from_browser;
                            match verified.and_then(|claims| shared.auth.admit(claims, &req)) {
                                Ok(Admitted::Now(claims)) => Ok(claims),
                                Ok(Admitted::Later(claims, pending)) => {
                                    // Wait for the checks' futures, then pass.
                                    **wait = Wait::Checks { claims, pending };
                                    continue;
                                }
                                Err(error) => Err(error),
                            }
                        }
                        Wait::Checks { claims, pending } => {
                            // In order; the first refusal wins.
                            let mut refused = None;
                            while let Some(check) = pending.first_mut() {
                                match ready!(check.as_mut().poll(cx)) {
                                    Ok(()) => drop(pending.remove(0)),
                                    Err(error) => {
                                        refused = Some(error);
                                        break;
                                    }
                                }
                            }
                            refused.map_or_else(|| Ok(claims.clone()), Err)
                        }
                    };
                    let (mut inner, request) =
                        *call.take().expect("future polled after completion");
                    match decided {
                        Ok(claims) => State::Called {
                            future: accept(&mut inner, request, Some(claims)),
                        },
                        Err(error) => {
                            // Dropping `inner` frees whatever its `poll_ready` reserved.
                            drop(inner);
                            State::Rejected {
                                response: Some(shared.reject(&error, request)),
                            }
                        }
                    }
                }
            };
            state.set(next);
        }
    }
}

impl<S, ReqBody, C, R> fmt::Debug for ResponseFuture<S, ReqBody, C, R>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting { .. } => "waiting",
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
