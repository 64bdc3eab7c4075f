//! Error types: [`AuthError`] for rejected requests, [`ConfigError`] for set-up mistakes.

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;

/// Defines [`AuthErrorKind`] and its list of every kind, [`AuthErrorKind::ALL`], from one list of
/// variants: a kind cannot be added without being in the list, so every table indexed by kind
/// (challenges, gRPC statuses) covers it by construction.
macro_rules! auth_error_kinds {
    ($( $(#[$doc:meta])* $kind:ident, )*) => {
        /// Why a request was rejected by [`JwtAuth`](crate::auth::JwtAuth).
        ///
        /// The kind decides the status code and the RFC 6750 error code of the default rejection. New kinds
        /// may be added in minor releases, so match with a wildcard arm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum AuthErrorKind {
            $( $(#[$doc])* $kind, )*
        }

        impl AuthErrorKind {
            /// Every kind, in declaration order: `ALL[kind.index()] == kind`.
            pub(crate) const ALL: [Self; [$(Self::$kind),*].len()] = [$(Self::$kind),*];
        }
    };
}

auth_error_kinds! {
    /// The request carries no bearer token (no `Authorization` header, an empty token or another
    /// scheme such as `Basic`).
    MissingToken,
    /// The request is malformed: several `Authorization` headers, or a bearer credential made of
    /// more than one token.
    InvalidRequest,
    /// The token is longer than the configured maximum and was not decoded.
    TokenTooLong,
    /// The token is not a well-formed compact JWS (three base64url segments with a JSON header).
    Malformed,
    /// The token's header names an algorithm that no configured key accepts, or uses features
    /// (`crit`) this crate does not implement.
    UnsupportedAlgorithm,
    /// No configured key matches the token's `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify with the selected key.
    InvalidSignature,
    /// The token's `exp` is in the past (beyond the leeway).
    Expired,
    /// The token's `nbf` (or `iat`) is in the future (beyond the leeway).
    NotYetValid,
    /// The token's `iss` is not the configured issuer.
    InvalidIssuer,
    /// The token's `aud` does not contain the configured audience.
    InvalidAudience,
    /// A required claim is missing from the token.
    MissingClaim,
    /// A claim has the wrong JSON type, or the claims do not deserialize into the claims type.
    InvalidClaim,
    /// The token's `typ` header is not the one required by
    /// [`Validation::typ`](crate::Validation::typ).
    InvalidType,
    /// The token is valid but does not grant what the request needs (a scope, role or other
    /// authorization check failed): 403 `insufficient_scope`.
    Forbidden,
    /// No key could be obtained to verify the token (the key source is unavailable): 503.
    KeysUnavailable,
    /// The token is valid but the user's authentication is too old or too weak for this
    /// request (RFC 9470 step-up): 401 `insufficient_user_authentication`, with `max_age` or
    /// `acr_values` in the challenge; the client should have the user log in again.
    InsufficientUserAuthentication,
    /// The token was revoked before its `exp` (a logout, "log out everywhere", or the token
    /// itself): 401 `invalid_token`.
    Revoked,
    /// The list of revoked tokens could not be refreshed from the shared store for longer than
    /// its staleness bound, so a revoked token cannot be told apart: 503, until it catches up.
    RevocationsUnavailable,
    /// A token from a cookie came with an unsafe request that failed the cross-site request
    /// forgery checks (a cross-site origin, or no matching CSRF header): 403.
    CsrfRejected,
    /// The DPoP proof (RFC 9449) is missing, malformed, signed with a key or algorithm that is
    /// not accepted, or does not match the request (method, URI, time, access token), or its
    /// `jti` was seen before: 401 `invalid_dpop_proof`.
    InvalidDpopProof,
    /// The token's binding does not fit how it was sent: a DPoP-bound token (`cnf.jkt`) sent as
    /// `Bearer`, an unbound token sent as `DPoP`, or a proof made with another key than the
    /// token's: 401 `invalid_token` with a DPoP challenge.
    DpopBindingMismatch,
    /// This resource accepts only DPoP-bound tokens, and the request sent a bearer token:
    /// 401 with a DPoP challenge.
    DpopRequired,
    /// The DPoP proof must carry the server's current nonce (RFC 9449 §8, §9): 401
    /// `use_dpop_nonce`, with the nonce in the `DPoP-Nonce` header; retry with it.
    UseDpopNonce,
    /// The DPoP replay cache could not record the proof (full, or its shared store is
    /// unreachable), so a replay cannot be told apart: 503, retry later.
    DpopReplayUnavailable,
}

impl AuthErrorKind {
    /// The HTTP status the default rejection answers with.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Forbidden | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::KeysUnavailable | Self::RevocationsUnavailable | Self::DpopReplayUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 `error` code, or `None` when the token is missing (RFC 6750 §3.1: no error
    /// attribute when the request lacks authentication information).
    #[must_use]
    pub const fn error_code(self) -> Option<&'static str> {
        match self {
            Self::MissingToken
            | Self::KeysUnavailable
            | Self::RevocationsUnavailable
            | Self::DpopReplayUnavailable
            | Self::CsrfRejected => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::Forbidden => Some("insufficient_scope"),
            Self::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            _ => Some("invalid_token"),
        }
    }

    /// The gRPC status code for a rejection of a gRPC request: 16 (`UNAUTHENTICATED`),
    /// 7 (`PERMISSION_DENIED`) or 14 (`UNAVAILABLE`).
    #[must_use]
    pub const fn grpc_code(self) -> u8 {
        match self {
            Self::Forbidden | Self::CsrfRejected => 7,
            Self::KeysUnavailable | Self::RevocationsUnavailable | Self::DpopReplayUnavailable => {
                14
            }
            _ => 16,
        }
    }

    /// A short machine-readable name, as used in the JSON rejection body and in tracing
    /// events: `missing_token`, `expired`, `insufficient_scope`, …
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest => "invalid_request",
            Self::TokenTooLong => "token_too_long",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::InvalidSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::InvalidType => "invalid_type",
            Self::Forbidden => "insufficient_scope",
            Self::KeysUnavailable => "keys_unavailable",
            Self::CsrfRejected => "csrf_rejected",
            Self::Revoked => "revoked",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::RevocationsUnavailable => "revocations_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::DpopBindingMismatch => "dpop_binding_mismatch",
            Self::DpopRequired => "dpop_required",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::DpopReplayUnavailable => "dpop_replay_unavailable",
        }
    }

    /// A short, safe description: it never contains the token, a key or a claim value.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::MissingToken => "no bearer token in the request",
            Self::InvalidRequest => {
                "the request carries more than one credential or a malformed one"
            }
            Self::TokenTooLong => "the token is too long",
            Self::Malformed => "the token is malformed",
            Self::UnsupportedAlgorithm => {
                "the token uses an algorithm or header that is not accepted"
            }
            Self::UnknownKey => "no key matches the token",
            Self::InvalidSignature => "the token signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::InvalidIssuer => "the token issuer is not accepted",
            Self::InvalidAudience => "the token audience is not accepted",
            Self::MissingClaim => "the token lacks a required claim",
            Self::InvalidClaim => "the token claims are invalid",
            Self::InvalidType => "the token type is not accepted",
            Self::Forbidden => "the token does not grant access to this resource",
            Self::KeysUnavailable => "the keys to verify the token are unavailable; retry later",
            Self::Revoked => "the token has been revoked",
            Self::InsufficientUserAuthentication => {
                "a more recent or stronger authentication is required: log in again"
            }
            Self::RevocationsUnavailable => {
                "the list of revoked tokens is out of date (its store is unreachable); retry later"
            }
            Self::CsrfRejected => {
                "the request failed the cross-site request forgery check: send it from this \
                 site with the CSRF token in its header"
            }
            Self::InvalidDpopProof => {
                "the DPoP proof is missing, invalid or does not match this request; send a fresh \
                 proof for this method and URL"
            }
            Self::DpopBindingMismatch => {
                "the token does not fit its scheme: send a DPoP-bound token as DPoP with a proof \
                 from its key, and an unbound token as Bearer"
            }
            Self::DpopRequired => "this resource accepts only DPoP-bound tokens",
            Self::UseDpopNonce => {
                "the DPoP proof must carry the nonce from the DPoP-Nonce response header"
            }
            Self::DpopReplayUnavailable => {
                "the DPoP proof could not be checked for replay (its store is unavailable); \
                 retry later"
            }
        }
    }

    /// The position of this kind in [`AuthErrorKind::ALL`], for tables indexed by kind.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// A request was rejected: see [`AuthError::kind`].
///
/// `Display` gives a short description that is safe to show to clients; it never includes the
/// token, key material or claim values.
#[derive(Debug, Clone)]
pub struct AuthError {
    kind: AuthErrorKind,
    /// The failure is about DPoP.
    dpop: bool,
    /// What a few rejections carry for their challenge, boxed so that the error (and every
    /// `Result` on the request path that may hold one) stays two words.
    extra: Option<Box<Extra>>,
}

/// The challenge details of some rejections.
#[derive(Debug, Clone, Default)]
struct Extra {
    scope: Option<std::sync::Arc<str>>,
    step_up: Option<std::sync::Arc<str>>,
    /// The layer accepts DPoP with these algorithms (and only DPoP when `dpop_required`).
    dpop_algs: Option<std::sync::Arc<str>>,
    dpop_required: bool,
    /// A DPoP nonce to hand the client (`DPoP-Nonce`).
    dpop_nonce: Option<std::sync::Arc<str>>,
    /// Which claim a token failed on, and how (`` `username` is missing ``).
    claim: Option<Box<str>>,
}

impl AuthError {
    pub(crate) const fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            dpop: matches!(
                kind,
                AuthErrorKind::InvalidDpopProof
                    | AuthErrorKind::DpopBindingMismatch
                    | AuthErrorKind::DpopRequired
                    | AuthErrorKind::UseDpopNonce
            ),
            extra: None,
        }
    }

    fn extra(&self) -> Option<&Extra> {
        self.extra.as_deref()
    }

    /// Claims that do not fit: `problem` names the claim and what is wrong with it
    /// (`` `username` is missing ``), never its value.
    pub(crate) fn invalid_claim(problem: Option<String>) -> Self {
        let mut error = Self::new(AuthErrorKind::InvalidClaim);
        if let Some(problem) = problem {
            error.extra_mut().claim = Some(problem.into());
        }
        error
    }

    /// For [`AuthErrorKind::InvalidClaim`]: which claim the token failed on and how
    /// (`` `username` is missing ``, `` `exp` has the wrong type or value ``), when the claims
    /// type says. Never a claim's value.
    #[must_use]
    pub fn claim_problem(&self) -> Option<&str> {
        self.extra().and_then(|e| e.claim.as_deref())
    }

    /// What went wrong, for the client: [`AuthErrorKind::description`], with the claim a token
    /// failed on when there is one. Header-safe (visible ASCII, no quotes or backslashes).
    #[must_use]
    pub fn description(&self) -> std::borrow::Cow<'static, str> {
        match self.claim_problem() {
            Some(problem) => format!("{}: {problem}", self.kind.description()).into(),
            None => self.kind.description().into(),
        }
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The same error from a layer that accepts DPoP proofs with `algs` (only DPoP-bound
    /// tokens when `required`): the challenges then name the DPoP scheme.
    #[must_use]
    #[cfg(feature = "dpop")]
    pub(crate) fn with_dpop_offer(mut self, algs: std::sync::Arc<str>, required: bool) -> Self {
        let extra = self.extra_mut();
        extra.dpop_algs = Some(algs);
        extra.dpop_required = required;
        self
    }

    /// When the layer accepts DPoP: the proof algorithms it accepts (`ES256 EdDSA …`), for the
    /// challenge's `algs`.
    #[must_use]
    pub fn dpop_algs(&self) -> Option<&str> {
        self.extra().and_then(|e| e.dpop_algs.as_deref())
    }

    /// Whether the layer accepts only DPoP-bound tokens (no `Bearer` challenge then).
    #[must_use]
    pub fn dpop_required(&self) -> bool {
        self.extra().is_some_and(|e| e.dpop_required)
    }

    /// The same error, handing the client the server's current DPoP nonce.
    #[must_use]
    #[cfg(feature = "dpop")]
    pub(crate) fn with_dpop_nonce(mut self, nonce: std::sync::Arc<str>) -> Self {
        self.extra_mut().dpop_nonce = Some(nonce);
        self
    }

    /// The nonce for the `DPoP-Nonce` response header, when the server requires DPoP nonces
    /// (RFC 9449 §8, §9) and the proof did not carry the current one.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.extra().and_then(|e| e.dpop_nonce.as_deref())
    }

    /// Whether the failure is about DPoP (a bad proof, a bound token sent as `Bearer`, a
    /// bearer token where only DPoP is accepted): its challenge is then a DPoP one (RFC 9449
    /// §7.1), as for any failure of a request that used the `DPoP` scheme.
    #[must_use]
    pub const fn is_dpop(&self) -> bool {
        self.dpop
    }

    /// A 401 asking for a fresher or stronger authentication; `params` are the RFC 9470
    /// challenge attributes (`max_age="300"`, `acr_values="mfa"`), already quoted.
    pub(crate) fn step_up(params: std::sync::Arc<str>) -> Self {
        let mut error = Self::new(AuthErrorKind::InsufficientUserAuthentication);
        error.extra_mut().step_up = Some(params);
        error
    }

    /// For [`AuthErrorKind::InsufficientUserAuthentication`]: the RFC 9470 challenge
    /// attributes (`max_age="300"`, `acr_values="mfa"`) that say what would be enough.
    #[must_use]
    pub fn step_up_params(&self) -> Option<&str> {
        self.extra().and_then(|e| e.step_up.as_deref())
    }

    /// A 403: the token is valid but lacks `scope` (space-separated scope tokens that the
    /// request needs; empty when the failed check is not about scopes).
    pub(crate) fn forbidden(scope: Option<std::sync::Arc<str>>) -> Self {
        let mut error = Self::new(AuthErrorKind::Forbidden);
        if scope.is_some() {
            error.extra_mut().scope = scope;
        }
        error
    }

    /// For [`AuthErrorKind::Forbidden`] from a scope check: the scopes the request needs.
    #[must_use]
    pub fn required_scope(&self) -> Option<&str> {
        self.extra().and_then(|e| e.scope.as_deref())
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The HTTP status for this rejection (400 or 401).
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.kind.status()
    }
}

impl From<AuthErrorKind> for AuthError {
    fn from(kind: AuthErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.description())
    }
}

impl StdError for AuthError {}

/// What kind of set-up mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// No jsonwebtoken crypto backend is available: enable the `aws-lc-rs` or `rust-crypto`
    /// feature, or install a `jsonwebtoken::crypto::CryptoProvider` before building keys.
    NoCryptoBackend,
    /// The key set is empty.
    NoKeys,
    /// The key material could not be parsed (bad PEM, DER, JWK or secret).
    InvalidKey,
    /// The algorithm does not fit the key type (e.g. `HS256` with an RSA key).
    AlgorithmMismatch,
    /// A JWK or JWK Set document is not valid JSON of the expected shape.
    InvalidJwk,
    /// A configured string cannot be used in an HTTP header (e.g. a realm with quotes).
    InvalidHeaderValue,
    /// A key file could not be read.
    Io,
    /// A URL (JWKS, OpenID issuer) is not an absolute http(s) URL.
    InvalidUrl,
    /// No key set could be obtained in time from a remote source.
    KeysUnavailable,
    /// A remote key source was built outside a tokio runtime: build it inside one (e.g. in
    /// `#[tokio::main]`).
    NoRuntime,
    /// OpenID Connect discovery failed: the document could not be fetched, was not valid, or
    /// named another issuer.
    Discovery,
    /// TLS for the default HTTP client could not be set up.
    Tls,
    /// A remote key source has no HTTP client: give one, or enable the `hyper-client` feature.
    NoHttpClient,
    /// A session store could not be used at start (its revocations could not be loaded).
    StoreUnavailable,
    /// An OAuth client cannot be registered (an id that could pass for a user's, a missing
    /// secret, a scope with a forbidden character, a malformed client list).
    InvalidClient,
}

/// A configuration error, returned when building keys, verifiers, issuers and services.
///
/// Never returned on the request path. The message says what was wrong and what to do; it never
/// contains key material.
#[derive(Debug)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: &'static str,
    /// What the message is about (a file's path and the operating system's error, say).
    detail: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: &'static str) -> Self {
        Self {
            kind,
            message,
            detail: None,
            source: None,
        }
    }

    pub(crate) fn with_source(
        kind: ConfigErrorKind,
        message: &'static str,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message,
            detail: None,
            source: Some(Box::new(source)),
        }
    }

    /// Name what the message is about in the text (`…: /etc/keys/jwt.pem: No such file or
    /// directory (os error 2)`); it must hold no key or secret.
    pub(crate) fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            None => f.pad(self.message),
            Some(detail) => f.pad(&format!("{}: {detail}", self.message)),
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_has_no_error_code() {
        assert_eq!(AuthErrorKind::MissingToken.error_code(), None);
        assert_eq!(
            AuthErrorKind::MissingToken.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn grpc_codes_follow_the_status() {
        assert_eq!(AuthErrorKind::Expired.grpc_code(), 16);
        assert_eq!(AuthErrorKind::Forbidden.grpc_code(), 7);
        assert_eq!(AuthErrorKind::KeysUnavailable.grpc_code(), 14);
        assert_eq!(AuthErrorKind::Forbidden.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn invalid_request_is_400() {
        assert_eq!(
            AuthErrorKind::InvalidRequest.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            AuthErrorKind::InvalidRequest.error_code(),
            Some("invalid_request")
        );
    }

    #[test]
    fn every_kind_has_a_distinct_index() {
        for (i, kind) in AuthErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn descriptions_are_header_safe() {
        for kind in AuthErrorKind::ALL {
            let d = kind.description();
            assert!(
                crate::text::is_clean_client_text(d),
                "{kind:?}: {d:?} (printable ASCII, single spaces)"
            );
            assert!(
                crate::text::quotable(d),
                "{kind:?}: {d:?} must be quotable in a header"
            );
        }
    }
}
