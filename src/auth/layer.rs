use std::fmt;
use std::marker::PhantomData;

use tower_layer::Layer;

use super::JwtAuth;
use crate::rejection::DefaultOnRejection;
use crate::validation::Verifier;

/// Applies [`JwtAuth`] to a service: verifies bearer tokens and inserts
/// [`Claims<C>`](crate::Claims) into the request extensions.
///
/// `C` is your claims type (`serde::de::DeserializeOwned`); `R` builds rejections (see
/// [`OnRejection`](crate::OnRejection)). Cloning is cheap.
///
/// See the [module docs](crate::auth) for an example.
#[must_use]
pub struct JwtAuthLayer<C, R = DefaultOnRejection> {
    verifier: Verifier,
    on_rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<C> JwtAuthLayer<C> {
    /// A layer that verifies with `verifier` and rejects with [`DefaultOnRejection`].
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier,
            on_rejection: DefaultOnRejection::new(),
            _claims: PhantomData,
        }
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// Replace the rejection hook (a closure or any [`OnRejection`](crate::OnRejection)).
    pub fn on_rejection<R2>(self, on_rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            verifier: self.verifier,
            on_rejection,
            _claims: PhantomData,
        }
    }

    /// The verifier this layer uses.
    #[must_use]
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::from_parts(inner, self.verifier.clone(), self.on_rejection.clone())
    }
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            on_rejection: self.on_rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("verifier", &self.verifier)
            .field("claims", &std::any::type_name::<C>())
            .field("on_rejection", &std::any::type_name::<R>())
            .finish()
    }
}
