//! Crate-internal macros.

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose wrapped service is `inner`.
macro_rules! define_inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Consume the middleware, returning the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
