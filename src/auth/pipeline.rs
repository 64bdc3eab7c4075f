//! The authentication pipeline, apart from tower: request parts in, one [`Outcome`] out.
//!
//! `JwtAuth` (the tower glue in `service.rs`) asks [`Pipeline::authenticate`] and acts on
//! the answer. Every per-request decision lives here, in this order:
//!
//! 1. a CORS preflight passes when allowed;
//! 2. the token is found: with the proof scheme of a mounted check (`Authorization: DPoP`), or
//!    through the configured sources (none: pass in optional mode, else 401);
//! 3. the checks that need no claims run ([`Mounted::before`]);
//! 4. the keys in memory are read **once** and the verified-token cache is asked with them;
//! 5. on a miss the verifier checks the token, or hands over to a pending key refresh;
//!    a token that verified is remembered with the key set it was verified with;
//! 6. [`Pipeline::admit`]: the per-request checks ([`super::check`]), on every request, cached
//!    or not, on the key-refresh path too.
//!
//! Nothing here depends on a feature: revocation, CSRF and DPoP are checks the layer mounts.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use super::check::{CheckFuture, Checks, Mounted, RequestContext};
use crate::cache::{Cache, CacheSettings};
use crate::claims::Claims;
use crate::error::{AuthError, AuthErrorKind};
use crate::time::unix_secs;
use crate::token::{RawToken, TokenSource, find_token, scheme_credential};
use crate::verifier::{PendingVerification, Step, Verifier};

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
    /// The key source to refresh, then verify, then [`Pipeline::admit`]. `from_browser`: the
    /// token came in a cookie.
    Verification {
        verification: Pin<Box<PendingVerification<C>>>,
        from_browser: bool,
    },
    /// The checks' futures, in order (a shared replay store); then pass these claims.
    Checks {
        claims: Claims<C>,
        pending: Vec<CheckFuture>,
    },
}

/// A good token's claims, once the checks have answered.
pub(crate) enum Admitted<C> {
    /// Pass them.
    Now(Claims<C>),
    /// Pass them once every future has said so.
    Later(Claims<C>, Vec<CheckFuture>),
}

impl<C> From<Result<Admitted<C>, AuthError>> for Outcome<C> {
    #[inline]
    fn from(admitted: Result<Admitted<C>, AuthError>) -> Self {
        match admitted {
            Ok(Admitted::Now(claims)) => Self::Pass(Some(claims)),
            Ok(Admitted::Later(claims, pending)) => Self::Wait(Wait::Checks { claims, pending }),
            Err(error) => Self::Reject(error),
        }
    }
}

/// Sources, verifier, cache, checks and the optional and preflight settings of one layer.
/// Cloning shares the cache.
pub(crate) struct Pipeline<C> {
    verifier: Verifier,
    sources: Box<[TokenSource]>,
    optional: bool,
    cors_preflight: bool,
    /// Paths let through without a token (exact, or everything under one ending in `/`).
    exempt: Box<[Box<str>]>,
    /// Whether a request may wait: for the key source to refresh, for a check's future.
    may_wait: bool,
    cache: Option<Arc<Cache<C>>>,
    checks: Checks,
}

impl<C> Pipeline<C> {
    /// Bearer tokens only, required, with a default [`CacheSettings`].
    pub(crate) fn new(verifier: Verifier) -> Self {
        let mut this = Self {
            verifier,
            sources: Box::new([TokenSource::bearer()]),
            optional: false,
            cors_preflight: false,
            exempt: Box::default(),
            may_wait: true,
            cache: None,
            checks: Checks::default(),
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

    /// Read tokens from `sources`, mounting the check each needs (CSRF protection for a
    /// cookie) unless one is mounted in its slot already.
    pub(crate) fn set_sources(&mut self, sources: Vec<TokenSource>) {
        if sources.is_empty() {
            return;
        }
        for companion in sources.iter().filter_map(TokenSource::companion) {
            self.checks.set_default(companion);
        }
        self.sources = sources.into_boxed_slice();
    }

    pub(crate) fn set_optional(&mut self) {
        self.optional = true;
    }

    pub(crate) fn set_cors_preflight(&mut self) {
        self.cors_preflight = true;
    }

    pub(crate) fn add_exempt(&mut self, path: &str) {
        let path = if path.starts_with('/') {
            path.into()
        } else {
            format!("/{path}").into_boxed_str()
        };
        let mut all = std::mem::take(&mut self.exempt).into_vec();
        all.push(path);
        self.exempt = all.into_boxed_slice();
    }

    /// Check this revocation list on every request (replacing any other).
    pub(crate) fn set_revocations(&mut self, watched: crate::revocation::Watched) {
        self.checks.set_revocations(watched);
    }

    /// Mount a per-request check, replacing the one in its slot.
    pub(crate) fn set_check(&mut self, check: Arc<dyn Mounted>) {
        self.checks.set(check);
    }

    /// Never wait, for a key refresh or a check's future: the outcome is never pending.
    pub(crate) fn set_never_wait(&mut self) {
        self.may_wait = false;
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Now, by the validation's clock.
    fn now(&self) -> SystemTime {
        self.verifier.validation().now()
    }

    /// What the checks read of a request (the token's origin aside): its parts, the clock read
    /// once, and the credential of a check's proof scheme.
    pub(crate) fn context<'a>(
        &self,
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
    ) -> RequestContext<'a> {
        RequestContext {
            method,
            uri,
            headers,
            now: self.now(),
            from_browser: false,
            proof_token: self
                .checks
                .proof_scheme()
                .and_then(|scheme| scheme_credential(headers, scheme)),
            may_wait: self.may_wait,
        }
    }

    /// The checks that run on every request once the token is known good, cached or not, on
    /// the key-refresh path too. One rule is the pipeline's own: a token bound to a key
    /// (`cnf.jkt`) is never taken as a bearer token, so without a check of bound tokens it is
    /// refused. Always inlined: it is most of the hit path.
    #[inline(always)]
    pub(crate) fn admit(
        &self,
        claims: Claims<C>,
        req: &RequestContext<'_>,
    ) -> Result<Admitted<C>, AuthError> {
        let registered = claims.registered();
        if !self.checks.binding() && registered.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) {
            return Err(AuthErrorKind::DpopBindingMismatch.into());
        }
        Ok(match self.checks.after(registered, req)? {
            None => Admitted::Now(claims),
            Some(pending) => Admitted::Later(claims, pending),
        })
    }

    /// `error` as this layer's rejection should see it (with the DPoP offer when the layer
    /// accepts DPoP); `None` to leave it as it is.
    pub(crate) fn offer(&self, error: &AuthError) -> Option<AuthError> {
        self.checks.challenge(error)
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
        if !self.exempt.is_empty() && is_exempt(&self.exempt, uri.path()) {
            return Outcome::Pass(None);
        }
        let mut req = self.context(method, uri, headers);
        let token = match req.proof_token {
            Some(token) => RawToken::Header(token),
            None => match find_token(&self.sources, headers, uri) {
                Ok(Some(token)) => token,
                Ok(None) if self.optional => return Outcome::Pass(None),
                Ok(None) => return Outcome::Reject(AuthErrorKind::MissingToken.into()),
                Err(error) => return Outcome::Reject(error),
            },
        };
        req.from_browser = token.sent_by_browser();
        if let Err(error) = self.checks.before(&req) {
            return Outcome::Reject(error);
        }
        self.verify_token(&token, &req)
    }

    /// Verify one token: from the cache when this exact token verified with the keys in memory
    /// now, else checked for its shape and verified; then [`admit`](Self::admit)ted.
    pub(crate) fn verify_token(
        &self,
        token: &RawToken<'_>,
        req: &RequestContext<'_>,
    ) -> Outcome<C> {
        let keys = self.verifier.current_keys();
        if let (Some(cache), Some(keys)) = (&self.cache, &keys) {
            let hit = cache.get_at(token.bytes(), keys, req.now);
            crate::metrics::cache(hit.is_some());
            if let Some(claims) = hit {
                return self.admit(claims, req).into();
            }
        }
        let token = match token.check() {
            Ok(token) => token,
            Err(error) => return Outcome::Reject(error),
        };
        match self.verifier.start(token, keys.clone(), self.may_wait) {
            Step::Done(Ok(claims)) => {
                if let (Some(cache), Some(keys)) = (&self.cache, keys) {
                    cache.insert(token, &claims, keys, unix_secs(req.now));
                }
                self.admit(claims, req).into()
            }
            Step::Done(Err(error)) => Outcome::Reject(error),
            Step::Pending(verification) => Outcome::Wait(Wait::Verification {
                verification,
                from_browser: req.from_browser,
            }),
        }
    }
}

/// Whether `path` is one of `exempt`: equal to one, or under one that ends in `/` with nothing
/// a router might read differently after it (no empty, `.` or `..` segment, no `%`), so that
/// `/health/../admin` is never let through as `/health/…`.
fn is_exempt(exempt: &[Box<str>], path: &str) -> bool {
    exempt.iter().any(|e| {
        if path == &**e {
            return true;
        }
        let Some(rest) = e.ends_with('/').then(|| path.strip_prefix(&**e)).flatten() else {
            return false;
        };
        !rest.contains('%') && rest.split('/').all(|s| !matches!(s, "" | "." | ".."))
    })
}

impl<C> Clone for Pipeline<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            sources: self.sources.clone(),
            optional: self.optional,
            cors_preflight: self.cors_preflight,
            exempt: self.exempt.clone(),
            may_wait: self.may_wait,
            cache: self.cache.clone(),
            checks: self.checks.clone(),
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
            .field("exempt", &self.exempt)
            .field("token_cache", &self.cache.is_some())
            .field("checks", &self.checks.names())
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

    /// A token from a header.
    fn verify(auth: &Pipeline<Value>, token: &RawToken<'_>) -> Outcome<Value> {
        let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
        auth.verify_token(token, &auth.context(&method, &uri, &headers))
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
    fn exempt_paths_pass_without_a_token_and_nothing_dressed_as_them() {
        let source = Swappable(Arc::new(Mutex::new((key(SECRET), 0))));
        let mut auth = pipeline(&source);
        auth.add_exempt("/grpc.health.v1.Health/");
        auth.add_exempt("health");
        let (get, headers) = (Method::GET, HeaderMap::new());
        for open in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/health",
        ] {
            let uri: Uri = open.parse().unwrap();
            assert!(
                pass(auth.authenticate(&get, &headers, &uri)).is_none(),
                "{open}"
            );
        }
        for closed in [
            "/grpc.health.v1.Health",
            "/grpc.health.v1.Health/../demo.v1.Whoami/Get",
            "/grpc.health.v1.Health//Check",
            "/grpc.health.v1.Health/%2e%2e/admin",
            "/healthz",
            "/health/",
            "/demo.v1.Whoami/Get",
        ] {
            let uri: Uri = closed.parse().unwrap();
            assert_eq!(
                rejected(auth.authenticate(&get, &headers, &uri)),
                AuthErrorKind::MissingToken,
                "{closed}"
            );
        }
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
