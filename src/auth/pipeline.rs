//! The authentication pipeline, apart from tower: request parts in, one [`Outcome`] out.
//!
//! `JwtAuth` (the tower glue in `service.rs`) asks [`Pipeline::authenticate`] and acts on
//! the answer. Every per-request decision lives here, in this order:
//!
//! 1. a CORS preflight passes when allowed;
//! 2. the token is found through the configured sources (none: pass in optional mode, else 401);
//! 3. the keys in memory are read **once** and the verified-token cache is asked with them;
//! 4. on a miss the verifier checks the token, or hands over to a pending key refresh;
//! 5. a token that verified is remembered with the key set it was verified with.
//!
//! A check that must run on every request, cached or not, goes in [`Pipeline::admit`]
//! (revocation is there), which runs between the cache answer (or the verification) and the
//! pass, on the key-refresh path too.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::cache::{Cache, CacheSettings};
use crate::claims::Claims;
use crate::error::{AuthError, AuthErrorKind};
use crate::revocation::Revocations;
use crate::token::{RawToken, TokenSource, find_token};
use crate::verifier::{PendingVerification, Step, Verifier};
use std::time::SystemTime;

/// What to do with a request.
pub(crate) enum Outcome<C> {
    /// Call the inner service with these claims, or without claims (optional mode without a
    /// token, or an allowed CORS preflight).
    Pass(Option<Claims<C>>),
    /// Answer with a rejection; the inner service is not called.
    Reject(AuthError),
    /// Wait for something outside this process, then decide.
    Wait(Wait<C>),
}

/// What an undecided request waits for.
pub(crate) enum Wait<C> {
    /// The key source to refresh, then verify; `csrf`: then also check the token's `csrf`
    /// claim against the request's CSRF header (a cookie token on an unsafe request).
    Verification {
        verification: Pin<Box<PendingVerification<C>>>,
        csrf: bool,
    },
    /// A shared replay cache's answer for the request's DPoP proof; then pass these claims.
    #[cfg(feature = "dpop")]
    Replay {
        claims: Claims<C>,
        check: crate::dpop::ReplayFuture,
    },
}

/// The answer of the per-request checks ([`Pipeline::admit`]).
pub(crate) enum Admission {
    /// Admitted.
    Now,
    /// Admitted once the replay cache confirms the DPoP proof is new.
    #[cfg(feature = "dpop")]
    Later(crate::dpop::ReplayFuture),
}

/// Sources, verifier, cache and the optional and preflight settings of one layer. Cloning shares
/// the cache.
pub(crate) struct Pipeline<C> {
    verifier: Verifier,
    sources: Box<[TokenSource]>,
    optional: bool,
    cors_preflight: bool,
    /// Whether a token whose key is not in memory may wait for the key source to refresh.
    may_refresh: bool,
    cache: Option<Arc<Cache<C>>>,
    revocations: Option<Revocations>,
    #[cfg(feature = "cookie")]
    csrf: crate::csrf::CsrfProtection,
    #[cfg(feature = "dpop")]
    dpop: Option<crate::dpop::Dpop>,
}

/// The parts of a request the per-request checks read.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "dpop"), allow(dead_code))]
pub(crate) struct Req<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    /// The credential of `Authorization: DPoP …`, when the layer accepts DPoP and the request
    /// uses that scheme (found once per request).
    pub(crate) dpop: Option<&'a [u8]>,
}

impl<C> Pipeline<C> {
    /// Bearer tokens only, required, with a default [`CacheSettings`].
    pub(crate) fn new(verifier: Verifier) -> Self {
        let mut this = Self {
            verifier,
            sources: Box::new([TokenSource::bearer()]),
            optional: false,
            cors_preflight: false,
            may_refresh: true,
            cache: None,
            revocations: None,
            #[cfg(feature = "cookie")]
            csrf: crate::csrf::CsrfProtection::new(),
            #[cfg(feature = "dpop")]
            dpop: None,
        };
        this.set_cache(CacheSettings::new());
        this
    }

    /// Replace the cache (a new, empty one, sized by `settings`; `None` when disabled). The one
    /// place the cache is built: it takes the leeway from the verifier's validation.
    pub(crate) fn set_cache(&mut self, settings: CacheSettings) {
        let leeway = self.verifier.validation().leeway_secs();
        self.cache = settings.build(leeway).map(Arc::new);
    }

    pub(crate) fn set_sources(&mut self, sources: Vec<TokenSource>) {
        if !sources.is_empty() {
            self.sources = sources.into_boxed_slice();
        }
    }

    pub(crate) fn set_optional(&mut self) {
        self.optional = true;
    }

    pub(crate) fn set_cors_preflight(&mut self) {
        self.cors_preflight = true;
    }

    pub(crate) fn set_revocations(&mut self, revocations: Revocations) {
        self.revocations = Some(revocations);
    }

    /// Now, by the validation's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.verifier.validation().now()
    }

    /// The checks that run on every request once the token is known good, cached or not, on
    /// the key-refresh path too: revocation; with `csrf` (a cookie token on an unsafe request)
    /// the CSRF header against the token's `csrf` claim; and the token's binding: a DPoP-bound
    /// token only with the `DPoP` scheme and a proof from its key (feature `dpop`), never as
    /// a bearer token.
    #[inline]
    #[cfg_attr(not(feature = "cookie"), allow(unused_variables))]
    pub(crate) fn admit(
        &self,
        claims: &Claims<C>,
        req: Req<'_>,
        csrf: bool,
        now: SystemTime,
    ) -> Result<Admission, AuthError> {
        if let Some(r) = &self.revocations {
            r.check(claims.registered(), now)?;
        }
        #[cfg(feature = "cookie")]
        if csrf {
            let submitted = req
                .headers
                .get(self.csrf.header_name())
                .map_or(&b""[..], http::HeaderValue::as_bytes);
            crate::csrf::CsrfProtection::check_claims(Some(submitted), claims.registered())?;
        }
        self.check_binding(claims, req, now)
    }

    /// [`Req`] for a request: its parts and, when this layer accepts DPoP, its DPoP credential.
    #[cfg_attr(not(feature = "dpop"), allow(clippy::unused_self))]
    pub(crate) fn req<'a>(
        &self,
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
    ) -> Req<'a> {
        #[cfg(feature = "dpop")]
        let dpop = self
            .dpop
            .as_ref()
            .and_then(|_| crate::token::scheme_credential(headers, "DPoP"));
        #[cfg(not(feature = "dpop"))]
        let dpop = None;
        Req {
            method,
            uri,
            headers,
            dpop,
        }
    }

    /// The token's `cnf.jkt` against the scheme it came with and the request's DPoP proof.
    #[inline]
    #[cfg_attr(not(feature = "dpop"), allow(unused_variables, clippy::unused_self))]
    fn check_binding(
        &self,
        claims: &Claims<C>,
        req: Req<'_>,
        now: SystemTime,
    ) -> Result<Admission, AuthError> {
        let jkt = claims
            .registered()
            .cnf
            .as_ref()
            .and_then(|c| c.jkt.as_deref());
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            use crate::dpop::ReplayCheck;
            return match (req.dpop, jkt) {
                (Some(token), Some(jkt)) => {
                    let proof = dpop.check(
                        req.method,
                        req.uri,
                        req.headers,
                        Some(token),
                        crate::time::unix_secs(now),
                    )?;
                    if proof.jkt() != jkt {
                        return Err(AuthErrorKind::DpopBindingMismatch.into());
                    }
                    match proof.claim() {
                        ReplayCheck::Fresh => Ok(Admission::Now),
                        ReplayCheck::Replayed => Err(AuthErrorKind::InvalidDpopProof.into()),
                        ReplayCheck::Full => Err(AuthErrorKind::DpopReplayUnavailable.into()),
                        ReplayCheck::Pending(check) => Ok(Admission::Later(check)),
                    }
                }
                (Some(_), None) | (None, Some(_)) => Err(AuthErrorKind::DpopBindingMismatch.into()),
                (None, None) if dpop.is_required() => Err(AuthErrorKind::DpopRequired.into()),
                (None, None) => Ok(Admission::Now),
            };
        }
        // Without DPoP support a bound token is never taken as a bearer token.
        if jkt.is_some() {
            return Err(AuthErrorKind::DpopBindingMismatch.into());
        }
        Ok(Admission::Now)
    }

    /// `error` as this layer's rejection should see it: with the DPoP offer (the accepted
    /// algorithms, whether DPoP is required) when the layer accepts DPoP.
    #[cfg_attr(not(feature = "dpop"), allow(clippy::unused_self))]
    pub(crate) fn offer(&self, error: &AuthError) -> Option<AuthError> {
        #[cfg(feature = "dpop")]
        if let Some(dpop) = &self.dpop {
            return Some(
                error
                    .clone()
                    .with_dpop_offer(dpop.algs_shared(), dpop.is_required()),
            );
        }
        let _ = error;
        None
    }

    #[cfg(feature = "dpop")]
    pub(crate) fn set_dpop(&mut self, dpop: crate::dpop::Dpop) {
        self.dpop = Some(dpop);
    }

    /// Never wait for a key refresh: the outcome is never pending.
    pub(crate) fn set_never_wait(&mut self) {
        self.may_refresh = false;
    }

    #[cfg(feature = "cookie")]
    pub(crate) fn set_csrf(&mut self, csrf: crate::csrf::CsrfProtection) {
        self.csrf = csrf;
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }
}

impl<C: DeserializeOwned> Pipeline<C> {
    /// Decide what to do with a request, from its method, headers and URI.
    pub(crate) fn authenticate(
        &self,
        method: &Method,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Outcome<C> {
        if self.cors_preflight
            && method == Method::OPTIONS
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Outcome::Pass(None);
        }
        let req = self.req(method, uri, headers);
        if let Some(token) = req.dpop {
            return self.verify_token(&RawToken::Header(token), req, false);
        }
        match find_token(&self.sources, headers, uri) {
            Ok(Some(token)) => match self.csrf_request(&token, method, headers, uri) {
                Ok(csrf) => self.verify_token(&token, req, csrf),
                Err(error) => Outcome::Reject(error),
            },
            Ok(None) if self.optional => Outcome::Pass(None),
            Ok(None) => Outcome::Reject(AuthErrorKind::MissingToken.into()),
            Err(error) => Outcome::Reject(error),
        }
    }

    /// The CSRF checks that need no claims, for a token from a cookie: where the request came
    /// from and the CSRF header. `Ok(true)` when the header must then match the token's `csrf`
    /// claim (an unsafe method).
    #[cfg_attr(not(feature = "cookie"), allow(unused_variables, clippy::unused_self))]
    fn csrf_request(
        &self,
        token: &RawToken<'_>,
        method: &Method,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<bool, AuthError> {
        #[cfg(feature = "cookie")]
        if matches!(token, RawToken::Cookie(_)) {
            return Ok(self.csrf.check_request(method, headers, uri)?.is_some());
        }
        Ok(false)
    }

    /// Verify one token: from the cache when this exact token verified with the keys in memory
    /// now (no other check is needed then), else checked for its shape and verified.
    pub(crate) fn verify_token(
        &self,
        token: &RawToken<'_>,
        req: Req<'_>,
        csrf: bool,
    ) -> Outcome<C> {
        let keys = self.verifier.current_keys();
        // One clock read for the cache and the revocation list's trust bound.
        let now = self.now();
        if let (Some(cache), Some(keys)) = (&self.cache, &keys) {
            let hit = cache.get_at(token.bytes(), keys, now);
            crate::metrics::cache(hit.is_some());
            if let Some(claims) = hit {
                return self.pass(claims, req, csrf, now);
            }
        }
        let token = match token.check() {
            Ok(token) => token,
            Err(error) => return Outcome::Reject(error),
        };
        match self.verifier.start(token, keys.clone(), self.may_refresh) {
            Step::Done(Ok(claims)) => {
                if let (Some(cache), Some(keys)) = (&self.cache, keys) {
                    cache.insert(token, &claims, keys, crate::time::unix_secs(now));
                }
                self.pass(claims, req, csrf, now)
            }
            Step::Done(Err(error)) => Outcome::Reject(error),
            Step::Pending(verification) => Outcome::Wait(Wait::Verification { verification, csrf }),
        }
    }
}

impl<C> Pipeline<C> {
    /// Pass a good token's claims, unless a per-request check refuses them.
    #[inline]
    fn pass(&self, claims: Claims<C>, req: Req<'_>, csrf: bool, now: SystemTime) -> Outcome<C> {
        match self.admit(&claims, req, csrf, now) {
            Ok(Admission::Now) => Outcome::Pass(Some(claims)),
            #[cfg(feature = "dpop")]
            Ok(Admission::Later(check)) => Outcome::Wait(Wait::Replay { claims, check }),
            Err(error) => Outcome::Reject(error),
        }
    }
}

impl<C> Clone for Pipeline<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            sources: self.sources.clone(),
            optional: self.optional,
            cors_preflight: self.cors_preflight,
            may_refresh: self.may_refresh,
            cache: self.cache.clone(),
            revocations: self.revocations.clone(),
            #[cfg(feature = "cookie")]
            csrf: self.csrf.clone(),
            #[cfg(feature = "dpop")]
            dpop: self.dpop.clone(),
        }
    }
}

impl<C> fmt::Debug for Pipeline<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("verifier", &self.verifier)
            .field("sources", &self.sources)
            .field("optional", &self.optional)
            .field("cors_preflight", &self.cors_preflight)
            .field("token_cache", &self.cache.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http::header::AUTHORIZATION;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;
    use crate::keys::VerifyingKey;
    use crate::keys::{KeyFuture, KeySet, KeySource};
    use crate::time::unix_now;
    use crate::validation::Validation;
    use jsonwebtoken::Algorithm;

    const SECRET: [u8; 32] = [b's'; 32];

    fn token(sub: &str) -> String {
        crate::crypto::install_crypto_provider().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": sub, "exp": unix_now() + 60}),
            &EncodingKey::from_secret(&SECRET),
        )
        .unwrap()
    }

    /// A token from a header: no CSRF check.
    fn verify(auth: &Pipeline<Value>, token: &RawToken<'_>) -> Outcome<Value> {
        let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
        auth.verify_token(token, auth.req(&method, &uri, &headers), false)
    }

    fn raw(token: &str) -> RawToken<'_> {
        RawToken::Header(token.as_bytes())
    }

    fn key(secret: [u8; 32]) -> Arc<KeySet> {
        Arc::new(KeySet::from(
            VerifyingKey::from_secret(Algorithm::HS256, secret).unwrap(),
        ))
    }

    /// A key source whose set the test replaces, counting how often it is read.
    #[derive(Clone)]
    struct Swappable(Arc<Mutex<(Arc<KeySet>, usize)>>);

    impl KeySource for Swappable {
        fn current(&self) -> Option<Arc<KeySet>> {
            let mut state = self.0.lock().unwrap();
            state.1 += 1;
            Some(Arc::clone(&state.0))
        }

        fn refresh(&self, _alg: jsonwebtoken::Algorithm, _kid: Option<&str>) -> Option<KeyFuture> {
            None
        }
    }

    fn pipeline(source: &Swappable) -> Pipeline<Value> {
        Pipeline::new(Verifier::from_source(source.clone(), Validation::new()).unwrap())
    }

    fn pass(outcome: Outcome<Value>) -> Option<Claims<Value>> {
        match outcome {
            Outcome::Pass(claims) => claims,
            Outcome::Reject(e) => panic!("rejected: {e}"),
            Outcome::Wait(_) => panic!("pending"),
        }
    }

    fn rejected(outcome: Outcome<Value>) -> AuthErrorKind {
        match outcome {
            Outcome::Reject(e) => e.kind(),
            _ => panic!("not rejected"),
        }
    }

    #[test]
    fn a_second_request_is_answered_from_the_cache() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let t = token("a");
        let first = pass(verify(&auth, &raw(&t))).unwrap();
        let second = pass(verify(&auth, &raw(&t))).unwrap();
        assert!(first.same_as(&second));
        assert_eq!(auth.cached_tokens(), 1);
    }

    #[test]
    fn the_keys_are_read_once_per_request() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let t = token("a");
        let _ = pass(verify(&auth, &raw(&t)));
        assert_eq!(source.0.lock().unwrap().1, 1, "miss");
        let _ = pass(verify(&auth, &raw(&t)));
        assert_eq!(source.0.lock().unwrap().1, 2, "hit");
    }

    #[test]
    fn a_new_key_set_is_a_cache_miss_and_the_token_is_checked_again() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let t = token("a");
        let _ = pass(verify(&auth, &raw(&t)));
        // The same keys in a new `Arc` (a refresh that changed nothing visible): verified again
        // and accepted, and the entry now belongs to the new set.
        source.0.lock().unwrap().0 = key(SECRET);
        let again = pass(verify(&auth, &raw(&t))).unwrap();
        assert_eq!(again.registered().sub.as_deref(), Some("a"));
        // Keys without the signer: the cached entry must not answer.
        source.0.lock().unwrap().0 = key([b'x'; 32]);
        assert_eq!(
            rejected(verify(&auth, &raw(&t))),
            AuthErrorKind::InvalidSignature
        );
    }

    #[test]
    fn a_rejected_token_is_not_cached() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        assert_eq!(
            rejected(verify(&auth, &raw("a.b.c"))),
            AuthErrorKind::Malformed
        );
        assert_eq!(auth.cached_tokens(), 0);
    }

    #[test]
    fn a_cached_token_is_not_checked_again_but_a_different_one_is() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let t = token("a");
        let _ = pass(verify(&auth, &raw(&t)));
        assert!(pass(verify(&auth, &raw(&t))).is_some());
        // The same token with a blank inside is another credential: checked, and refused.
        let mut spaced = t;
        spaced.insert(10, ' ');
        assert_eq!(
            rejected(verify(&auth, &raw(&spaced))),
            AuthErrorKind::InvalidRequest
        );
        let not_utf8 = RawToken::Header(b"\xff.\xfe.\xfd");
        assert_eq!(rejected(verify(&auth, &not_utf8)), AuthErrorKind::Malformed);
    }

    #[test]
    fn no_token_is_401_unless_optional() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let mut auth = pipeline(&source);
        let (get, headers, uri) = (Method::GET, HeaderMap::new(), Uri::from_static("/"));
        assert_eq!(
            rejected(auth.authenticate(&get, &headers, &uri)),
            AuthErrorKind::MissingToken
        );
        auth.set_optional();
        assert!(pass(auth.authenticate(&get, &headers, &uri)).is_none());
    }

    #[test]
    fn a_bearer_token_in_the_headers_is_verified() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let mut headers = HeaderMap::new();
        let value = format!("Bearer {}", token("b"));
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        let claims = pass(auth.authenticate(&Method::GET, &headers, &Uri::from_static("/")));
        assert_eq!(claims.unwrap().registered().sub.as_deref(), Some("b"));
    }

    #[test]
    fn clones_share_the_cache() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let auth = pipeline(&source);
        let clone = auth.clone();
        let _ = pass(verify(&auth, &raw(&token("c"))));
        assert_eq!(clone.cached_tokens(), 1);
    }
}
