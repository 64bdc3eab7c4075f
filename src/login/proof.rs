//! The DPoP proof of a login or a refresh (RFC 9449 §5): checked before anything else, recorded
//! only once the rest of the request has succeeded (the password was right, the refresh token
//! is valid), so that a request that fails for any other reason leaves nothing in the replay
//! cache. Without the `dpop` feature, an uninhabited stand-in with the same shape.

#[cfg(feature = "dpop")]
pub(crate) use with_dpop::{Dpop, Proof, alg_names, finish};
#[cfg(not(feature = "dpop"))]
pub(crate) use without_dpop::{Dpop, Proof, alg_names, finish};

#[cfg(feature = "dpop")]
mod with_dpop {
    use std::time::Duration;

    use http::{HeaderValue, Response, StatusCode};

    use super::super::{AuthServerBuilder, LoginService};
    use crate::auth::check::Mounted;
    use crate::body::{JsonBody, json_error};
    use crate::session::OneTimeStore;

    pub(crate) type Dpop = crate::dpop::Dpop;

    /// A proof that passed every check but the replay check.
    pub(crate) struct Proof(crate::dpop::DpopProof);

    /// The root's DPoP settings, recording proofs in its shared store unless they name a
    /// replay cache, and the check its layers mount.
    pub(crate) fn finish(
        dpop: Option<Dpop>,
        store: Option<std::sync::Arc<dyn OneTimeStore>>,
    ) -> (Option<Dpop>, Vec<std::sync::Arc<dyn Mounted>>) {
        let Some(mut dpop) = dpop else {
            return (None, Vec::new());
        };
        if let Some(store) = store {
            dpop = dpop.replays_by_default_in(|| {
                std::sync::Arc::new(crate::dpop::StoreReplayCache::shared(store))
            });
        }
        let check: std::sync::Arc<dyn Mounted> = std::sync::Arc::new(dpop.clone());
        (Some(dpop), vec![check])
    }

    /// `dpop_signing_alg_values_supported`, when DPoP is on.
    pub(crate) fn alg_names(dpop: Option<&Dpop>) -> Option<Vec<String>> {
        dpop.map(|dpop| dpop.alg_names().map(str::to_owned).collect())
    }

    fn invalid() -> Response<JsonBody> {
        json_error(
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "the DPoP proof is invalid, replayed, or not made for this request",
        )
    }

    impl<U> AuthServerBuilder<U> {
        /// Bind tokens to the client's DPoP key at login and refresh, and accept DPoP-bound
        /// tokens on the layers (feature `dpop`); see
        /// [`LoginService::dpop`](super::super::LoginService::dpop) and
        /// [`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop).
        ///
        /// With a shared [`store`](AuthServerBuilder::store), proofs are recorded in it (so a
        /// proof accepted by one node is refused by all), unless `dpop` has a
        /// [replay cache](crate::dpop::Dpop::replay_cache) of its own.
        pub fn dpop(mut self, dpop: crate::dpop::Dpop) -> Self {
            self.dpop = Some(dpop);
            self
        }
    }

    impl<A> LoginService<A> {
        /// Bind tokens to the client's DPoP key (RFC 9449, feature `dpop`): a login that carries a
        /// valid proof for this service's URL (`htm` POST, `htu` this service's URL under
        /// [`Dpop::new`]'s public URL) gets an access token with `cnf.jkt` and
        /// `"token_type": "DPoP"`, and its session (with [`sessions`](Self::sessions)) is bound
        /// too, so refreshing needs a proof from the same key. A login without a `DPoP` header gets
        /// bearer tokens as before; one with a bad or replayed proof gets 400 `invalid_dpop_proof`.
        /// Not applied in cookie mode, whose tokens a browser sends by itself.
        ///
        /// The proof is checked before the password (a bad proof never counts against the user's
        /// login limit) and its `jti` recorded only after the password was found right: a request
        /// with wrong credentials leaves nothing in the replay cache.
        ///
        /// [`Dpop::new`]: crate::dpop::Dpop::new
        #[must_use]
        pub fn dpop(mut self, dpop: crate::dpop::Dpop) -> Self {
            self.options.dpop = Some(dpop);
            self
        }
    }

    impl Proof {
        /// The request's proof, checked without recording it: `None` without `dpop` or
        /// without a `DPoP` header; a bad proof is 400 `invalid_dpop_proof`, a proof without
        /// the server's nonce 400 `use_dpop_nonce` with the nonce in `DPoP-Nonce` (§8).
        // The error is the response itself, built once per refused request.
        #[allow(clippy::result_large_err)]
        pub(crate) fn check(
            dpop: Option<&Dpop>,
            parts: &http::request::Parts,
        ) -> Result<Option<Self>, Response<JsonBody>> {
            let Some(dpop) = dpop else {
                return Ok(None);
            };
            if !parts.headers.contains_key(crate::dpop::DPOP) {
                return Ok(None);
            }
            let now = crate::time::unix_now();
            dpop.check(&parts.method, &parts.uri, &parts.headers, None, now)
                .map(|proof| Some(Self(proof)))
                .map_err(|e| match e.dpop_nonce() {
                    Some(nonce) => {
                        let mut res = json_error(
                            StatusCode::BAD_REQUEST,
                            "use_dpop_nonce",
                            "the DPoP proof must carry the nonce in the DPoP-Nonce header; \
                             retry with it",
                        );
                        if let Ok(value) = HeaderValue::from_str(nonce) {
                            res.headers_mut().insert(crate::dpop::DPOP_NONCE, value);
                        }
                        res
                    }
                    None => invalid(),
                })
        }

        /// The thumbprint of the proof's key.
        pub(crate) fn jkt(&self) -> &str {
            self.0.jkt()
        }

        /// Record the proof's `jti`: a replayed proof is 400 `invalid_dpop_proof`, a replay
        /// cache that cannot answer 503.
        pub(crate) async fn record(&self) -> Result<(), Response<JsonBody>> {
            match self.0.claim_async().await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == crate::error::AuthErrorKind::DpopReplayUnavailable => {
                    Err(super::super::service::unavailable(
                        "the DPoP proof could not be checked for replay; try again later",
                        Duration::from_secs(1),
                    ))
                }
                Err(_) => Err(invalid()),
            }
        }
    }
}

#[cfg(not(feature = "dpop"))]
mod without_dpop {
    use std::convert::Infallible;

    use http::Response;

    use crate::body::JsonBody;

    /// Nothing: DPoP settings cannot be made without the feature.
    pub(crate) type Dpop = Infallible;

    /// Nothing to finish and nothing to mount without the feature.
    pub(crate) fn finish(
        dpop: Option<Dpop>,
        _store: Option<std::sync::Arc<dyn crate::session::OneTimeStore>>,
    ) -> (
        Option<Dpop>,
        Vec<std::sync::Arc<dyn crate::auth::check::Mounted>>,
    ) {
        match dpop {
            Some(never) => match never {},
            None => (None, Vec::new()),
        }
    }

    /// No proof is ever checked without the feature.
    pub(crate) enum Proof {}

    pub(crate) fn alg_names(dpop: Option<&Dpop>) -> Option<Vec<String>> {
        dpop.map(|never| match *never {})
    }

    impl Proof {
        #[allow(clippy::unnecessary_wraps, clippy::result_large_err)]
        pub(crate) fn check(
            dpop: Option<&Dpop>,
            _parts: &http::request::Parts,
        ) -> Result<Option<Self>, Response<JsonBody>> {
            match dpop {
                Some(never) => match *never {},
                None => Ok(None),
            }
        }

        pub(crate) fn jkt(&self) -> &str {
            match *self {}
        }

        #[allow(clippy::unused_async)]
        pub(crate) async fn record(&self) -> Result<(), Response<JsonBody>> {
            match *self {}
        }
    }
}
