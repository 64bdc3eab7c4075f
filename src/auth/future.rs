use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::pipeline::{Admission, Wait};
use super::service::Shared;
use crate::rejection::{OnRejection, trace_rejection};

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
                        Wait::Verification { verification, csrf } => {
                            let verified = ready!(verification.as_mut().poll(cx));
                            let Some((_, request)) = call.as_deref() else {
                                panic!("future polled after completion");
                            };
                            let csrf = *csrf;
                            match verified {
                                Ok(claims) => match shared.auth.admit(
                                    &claims,
                                    shared.auth.req(
                                        request.method(),
                                        request.uri(),
                                        request.headers(),
                                    ),
                                    csrf,
                                    shared.auth.now(),
                                ) {
                                    Ok(Admission::Now) => Ok(Some(claims)),
                                    #[cfg(feature = "dpop")]
                                    Ok(Admission::Later(check)) => {
                                        // Wait for the replay cache, then pass.
                                        **wait = Wait::Replay { claims, check };
                                        Ok(None)
                                    }
                                    Err(error) => Err(error),
                                },
                                Err(error) => Err(error),
                            }
                        }
                        #[cfg(feature = "dpop")]
                        Wait::Replay { claims, check } => {
                            let answer = ready!(check.as_mut().poll(cx));
                            crate::dpop::replay_outcome(answer.map_err(|_| ()))
                                .map(|()| Some(claims.clone()))
                        }
                    };
                    let claims = match decided {
                        Ok(None) => continue,
                        Ok(Some(claims)) => Ok(claims),
                        Err(error) => Err(error),
                    };
                    let (mut inner, mut request) =
                        *call.take().expect("future polled after completion");
                    match claims {
                        Ok(claims) => {
                            crate::metrics::accepted();
                            request.extensions_mut().insert(claims);
                            State::Called {
                                future: inner.call(request),
                            }
                        }
                        Err(error) => {
                            trace_rejection(&error);
                            // Dropping `inner` frees whatever its `poll_ready` reserved.
                            drop(inner);
                            let (parts, _body) = request.into_parts();
                            let offered = shared.auth.offer(&error);
                            let error = offered.as_ref().unwrap_or(&error);
                            State::Rejected {
                                response: Some(shared.on_rejection.on_rejection(error, &parts)),
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
