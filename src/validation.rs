//! [`Validation`]: what a token must satisfy besides its signature.
//!
//! This is the policy: time checks, issuer, audience, required claims, the `typ` header and the
//! token length cap. It is checked into its final form as it is built (required claims sorted
//! into registered and custom, `typ` normalised), and the [`Verifier`](crate::verifier::Verifier) holds
//! it as it is: nothing is copied or rebuilt per request.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::{Algorithm, KeySet, Validation, Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), tower_jwt_auth::ConfigError> {
//! let keys = KeySet::from(VerifyingKey::from_secret(Algorithm::HS256, [42u8; 32])?);
//! let validation = Validation::new()
//!     .issuer("https://auth.example.com")
//!     .audience("orders-api")
//!     .leeway(Duration::from_secs(30))
//!     .require_claim("sub");
//! let verifier = Verifier::new(keys, validation)?;
//! let err = verifier.verify::<serde_json::Value>("not.a.token").unwrap_err();
//! assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::time::unix_secs;

use serde::de::IgnoredAny;

use crate::claims::RegisteredClaims;
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};

/// Default cap on the token length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Default clock-skew leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// Claims checks applied to every token (strict by default).
///
/// - `exp` is required; `nbf` is checked when present; both with a leeway (default 60 s).
/// - An `iat` further in the future than the leeway is rejected (a token cannot have been
///   issued after now), as PyJWT does; [`Validation::allow_iat_in_the_future`] turns it off.
/// - Configuring an issuer or audience makes `iss` or `aud` required. A token that carries an
///   `aud` is rejected when no audience is configured (RFC 7519 §4.1.3).
/// - Registered claims with the wrong JSON type are rejected.
/// - Tokens longer than [`DEFAULT_MAX_TOKEN_LEN`] are rejected before decoding.
///
/// See the [module docs](self) for an example.
#[derive(Clone, Debug)]
#[must_use]
pub struct Validation {
    issuers: Vec<String>,
    audiences: Vec<String>,
    /// Whole seconds.
    leeway: u64,
    /// Required claims that are registered claims (checked on the typed struct).
    required_registered: Vec<String>,
    /// Required claims outside the registered set (checked on the JSON object's keys).
    required_custom: Vec<String>,
    max_token_len: usize,
    /// Without the `application/` prefix.
    typ: Option<String>,
    allow_future_iat: bool,
    /// A token without `aud` passes too.
    audience_optional: bool,
    /// `None`: the system clock.
    clock: Option<std::sync::Arc<dyn Clock>>,
}

/// Where verification reads the time: the system clock by default, or a clock of your own
/// given to [`Validation::clock`] (a test's, to check expiry without sleeping; `testkit` with
/// feature `test-util` has one).
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("Clock")
    }
}

impl Default for Validation {
    fn default() -> Self {
        Self::new()
    }
}

impl Validation {
    /// The strict defaults described above.
    pub fn new() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY.as_secs(),
            required_registered: Vec::new(),
            required_custom: Vec::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            typ: None,
            allow_future_iat: false,
            audience_optional: false,
            clock: None,
        }
    }

    /// Read the time from `clock` instead of the system clock: for `exp`, `nbf` and `iat`, and
    /// for the verified-token cache and the revocation list of a layer using this validation.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(std::sync::Arc::new(clock));
        self
    }

    /// Now, by this validation's clock.
    #[inline]
    pub(crate) fn now(&self) -> SystemTime {
        match &self.clock {
            None => SystemTime::now(),
            Some(clock) => clock.now(),
        }
    }

    /// Now in Unix seconds, by this validation's clock.
    pub(crate) fn unix_now(&self) -> u64 {
        unix_secs(self.now())
    }

    /// The clock, to hand to a combined validation.
    pub(crate) fn clock_ref(&self) -> Option<&std::sync::Arc<dyn Clock>> {
        self.clock.as_ref()
    }

    pub(crate) fn with_clock(mut self, clock: Option<std::sync::Arc<dyn Clock>>) -> Self {
        self.clock = clock;
        self
    }

    /// Accept tokens from this issuer (`iss`). May be called several times to accept any of them.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accept tokens for this audience (`aud`). May be called several times; a token must name at
    /// least one of them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accept tokens without `aud` as well; a token that has one must still name one of the
    /// [`audience`](Self::audience)s. For a server whose own tokens had no audience and
    /// whose newer ones name it (an issuer whose clients' RFC 9068 tokens carry its
    /// identifier).
    pub fn audience_optional(mut self) -> Self {
        self.audience_optional = true;
        self
    }

    /// Clock-skew leeway for `exp` and `nbf` (whole seconds; default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// Require a claim to be present (any name: registered like `sub` or `jti`, or your own).
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if RegisteredClaims::default().has(&name).is_some() {
            self.required_registered.push(name);
        } else {
            self.required_custom.push(name);
        }
        self
    }

    /// The longest token accepted, in bytes (default 8 KiB). Longer tokens are rejected before
    /// any decoding.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Require the token's `typ` header to be this media type (compared case-insensitively, with
    /// or without the `application/` prefix, RFC 7515 §4.1.9), e.g. `at+jwt` for RFC 9068 access
    /// tokens. Without it, any `typ` (or none) is accepted.
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(strip_application(&typ.into()).to_owned());
        self
    }

    /// Accept an `iat` (issued at) in the future beyond the leeway. By default such a token is
    /// rejected as not yet valid: either the issuer's clock is wrong by more than the leeway or
    /// the token is forged.
    pub fn allow_iat_in_the_future(mut self) -> Self {
        self.allow_future_iat = true;
        self
    }

    /// Tie the validation to the issuer a key source belongs to: required when none is
    /// configured, and an error when the configured ones do not include it.
    pub(crate) fn bind_issuer(mut self, issuer: &str) -> Result<Self, ConfigError> {
        if self.issuers.is_empty() {
            self.issuers.push(issuer.to_owned());
            Ok(self)
        } else if self.issuers.iter().any(|i| i == issuer) {
            Ok(self)
        } else {
            Err(ConfigError::new(
                ConfigErrorKind::Discovery,
                "the key source belongs to an issuer the validation does not accept: configure \
                 that issuer, or discover the one you configured",
            ))
        }
    }

    // ===== the checks, used by the verifier =====

    /// The clock-skew leeway, in seconds.
    pub(crate) fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// The issuers accepted (empty: any).
    pub(crate) fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The length cap.
    pub(crate) fn max_token_length(&self) -> usize {
        self.max_token_len
    }

    /// The length cap, checked before any decoding.
    pub(crate) fn check_length(&self, token: &str) -> Result<(), AuthError> {
        if token.len() > self.max_token_len {
            return Err(AuthErrorKind::TokenTooLong.into());
        }
        Ok(())
    }

    /// The `typ` header, when one is required.
    pub(crate) fn check_typ(&self, typ: Option<&str>) -> Result<(), AuthError> {
        if let Some(required) = &self.typ {
            let typ = typ.map(strip_application);
            if !typ.is_some_and(|t| t.eq_ignore_ascii_case(required)) {
                return Err(AuthErrorKind::InvalidType.into());
            }
        }
        Ok(())
    }

    /// Time, issuer, audience and required registered claims, at `now` (Unix seconds).
    pub(crate) fn check_claims(
        &self,
        claims: &RegisteredClaims,
        now: u64,
    ) -> Result<(), AuthError> {
        let exp = claims.exp.ok_or(AuthErrorKind::MissingClaim)?;
        if exp < now.saturating_sub(self.leeway) {
            return Err(AuthErrorKind::Expired.into());
        }
        let later_than_now = |t: u64| t > now.saturating_add(self.leeway);
        if claims.nbf.is_some_and(later_than_now)
            || (!self.allow_future_iat && claims.iat.is_some_and(later_than_now))
        {
            return Err(AuthErrorKind::NotYetValid.into());
        }
        if !self.issuers.is_empty() {
            match &claims.iss {
                None => return Err(AuthErrorKind::MissingClaim.into()),
                Some(iss) if !self.issuers.contains(iss) => {
                    return Err(AuthErrorKind::InvalidIssuer.into());
                }
                Some(_) => {}
            }
        }
        if self.audiences.is_empty() {
            // RFC 7519 §4.1.3: a token for an audience we do not claim to be must be rejected.
            if !claims.aud.is_empty() {
                return Err(AuthErrorKind::InvalidAudience.into());
            }
        } else if claims.aud.is_empty() {
            if !self.audience_optional {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        } else if !claims.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(AuthErrorKind::InvalidAudience.into());
        }
        for name in &self.required_registered {
            if claims.has(name) != Some(true) {
                return Err(AuthErrorKind::MissingClaim.into());
            }
        }
        Ok(())
    }

    /// Required claims outside the registered set, on the raw payload (parsed only when some
    /// are configured).
    pub(crate) fn check_custom_claims(&self, payload: &[u8]) -> Result<(), AuthError> {
        if self.required_custom.is_empty() {
            return Ok(());
        }
        let object: HashMap<String, IgnoredAny> =
            serde_json::from_slice(payload).map_err(|_| AuthErrorKind::InvalidClaim)?;
        if self.required_custom.iter().all(|n| object.contains_key(n)) {
            Ok(())
        } else {
            Err(AuthErrorKind::MissingClaim.into())
        }
    }
}

/// `application/at+jwt` and `at+jwt` name the same type (RFC 7515 §4.1.9).
fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: serde_json::Value) -> RegisteredClaims {
        serde_json::from_value(json).unwrap()
    }

    fn kind(r: Result<(), AuthError>) -> AuthErrorKind {
        r.unwrap_err().kind()
    }

    const NOW: u64 = 1_000_000;

    #[test]
    fn exp_is_required() {
        let v = Validation::new();
        let no_exp = registered(serde_json::json!({"sub": "a"}));
        assert_eq!(
            kind(v.check_claims(&no_exp, NOW)),
            AuthErrorKind::MissingClaim
        );
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let v = Validation::new().leeway(Duration::from_secs(30));
        let ok = registered(serde_json::json!({"exp": NOW - 10, "nbf": NOW + 10}));
        assert!(v.check_claims(&ok, NOW).is_ok());
        let expired = registered(serde_json::json!({"exp": NOW - 31}));
        assert_eq!(kind(v.check_claims(&expired, NOW)), AuthErrorKind::Expired);
        let early = registered(serde_json::json!({"exp": NOW + 600, "nbf": NOW + 31}));
        assert_eq!(
            kind(v.check_claims(&early, NOW)),
            AuthErrorKind::NotYetValid
        );
    }

    #[test]
    fn an_iat_in_the_future_beyond_the_leeway_is_rejected_unless_allowed() {
        let v = Validation::new().leeway(Duration::from_secs(30));
        let skewed = registered(serde_json::json!({"exp": NOW + 600, "iat": NOW + 30}));
        assert!(v.check_claims(&skewed, NOW).is_ok());
        let future = registered(serde_json::json!({"exp": NOW + 600, "iat": NOW + 31}));
        assert_eq!(
            kind(v.check_claims(&future, NOW)),
            AuthErrorKind::NotYetValid
        );
        assert!(
            v.allow_iat_in_the_future()
                .check_claims(&future, NOW)
                .is_ok()
        );
    }

    #[test]
    fn a_configured_issuer_is_required() {
        let v = Validation::new().issuer("https://a.example");
        let none = registered(serde_json::json!({"exp": NOW + 60}));
        assert_eq!(
            kind(v.check_claims(&none, NOW)),
            AuthErrorKind::MissingClaim
        );
        let other = registered(serde_json::json!({"exp": NOW + 60, "iss": "https://b.example"}));
        assert_eq!(
            kind(v.check_claims(&other, NOW)),
            AuthErrorKind::InvalidIssuer
        );
    }

    #[test]
    fn an_audience_is_required_once_configured_and_refused_when_not() {
        let token_for_api = registered(serde_json::json!({"exp": NOW + 60, "aud": ["api"]}));
        assert_eq!(
            kind(Validation::new().check_claims(&token_for_api, NOW)),
            AuthErrorKind::InvalidAudience
        );
        let v = Validation::new().audience("api");
        assert!(v.check_claims(&token_for_api, NOW).is_ok());
        let none = registered(serde_json::json!({"exp": NOW + 60}));
        assert_eq!(
            kind(v.check_claims(&none, NOW)),
            AuthErrorKind::MissingClaim
        );
    }

    #[test]
    fn required_claims_are_sorted_into_registered_and_custom() {
        let v = Validation::new()
            .require_claim("jti")
            .require_claim("tenant");
        assert_eq!(v.required_registered, ["jti"]);
        assert_eq!(v.required_custom, ["tenant"]);
        assert!(v.check_custom_claims(br#"{"tenant": 1}"#).is_ok());
        assert_eq!(
            kind(v.check_custom_claims(br#"{"other": 1}"#)),
            AuthErrorKind::MissingClaim
        );
    }

    #[test]
    fn typ_is_normalised_once() {
        let v = Validation::new().typ("application/AT+JWT");
        assert!(v.check_typ(Some("at+jwt")).is_ok());
        assert!(v.check_typ(Some("application/at+jwt")).is_ok());
        assert_eq!(kind(v.check_typ(Some("JWT"))), AuthErrorKind::InvalidType);
        assert_eq!(kind(v.check_typ(None)), AuthErrorKind::InvalidType);
        assert!(Validation::new().check_typ(None).is_ok());
    }
}
