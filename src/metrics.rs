//! Metrics (feature `metrics`), through the [`metrics`](https://docs.rs/metrics) facade: the
//! application installs the exporter it likes (Prometheus, StatsD, …); without one, or without
//! the feature, every call here is a no-op.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `tower_jwt_auth_requests_total` | counter | `outcome` = `accepted` or `rejected`; `reason` = the [`AuthErrorKind`](crate::error::AuthErrorKind) name (`expired`, `bad_signature`, `revoked`, …) for rejections |
//! | `tower_jwt_auth_cache_total` | counter | `result` = `hit` or `miss` (verified-token cache) |
//! | `tower_jwt_auth_key_refreshes_total` | counter | `outcome` = `updated`, `unchanged` or `failed` (remote key sets) |
//! | `tower_jwt_auth_key_set_age_seconds` | gauge | time since the key set in memory was last fetched, set at each refresh attempt |
//! | `tower_jwt_auth_logins_total` | counter | `outcome` = `success`, `invalid_credentials`, `throttled`, `invalid_request`, `forbidden` (cookie mode: a login from another origin) or `unavailable` |
//! | `tower_jwt_auth_login_throttled_total` | counter | `limit` = `address` or `username` |
//! | `tower_jwt_auth_refreshes_total` | counter | `outcome` = `success`, `invalid_grant`, `invalid_dpop_proof`, `reuse`, `forbidden` (cookie mode: a refresh from another origin or without the session's CSRF value) or `unavailable` |
//!
//! Labels take values from these fixed lists only: no token, secret, username, subject or
//! address ever becomes a label.
//!
//! The per-request counters are registered at the first request and then cost one atomic
//! increment each: install the recorder before the server starts serving.

/// Declares a label enum: each variant and the label value it stands for.
macro_rules! labels {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $label:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        // Some belong to optional parts (login, sessions, remote key sets).
        #[allow(dead_code)]
        pub(crate) enum $name { $($variant,)* }

        impl $name {
            /// The label value.
            #[allow(dead_code)]
            pub(crate) const fn label(self) -> &'static str {
                match self { $(Self::$variant => $label,)* }
            }
        }
    };
}

labels! {
    /// How a login ended: `outcome` of `tower_jwt_auth_logins_total`.
    LoginOutcome {
        Success => "success",
        InvalidCredentials => "invalid_credentials",
        Throttled => "throttled",
        InvalidRequest => "invalid_request",
        Forbidden => "forbidden",
        Unavailable => "unavailable",
    }
}

labels! {
    /// How a refresh ended: `outcome` of `tower_jwt_auth_refreshes_total`.
    RefreshOutcome {
        Success => "success",
        InvalidGrant => "invalid_grant",
        InvalidDpopProof => "invalid_dpop_proof",
        Reuse => "reuse",
        Forbidden => "forbidden",
        Unavailable => "unavailable",
    }
}

labels! {
    /// How a key-set fetch ended: `outcome` of `tower_jwt_auth_key_refreshes_total`.
    KeyRefreshOutcome {
        Updated => "updated",
        Unchanged => "unchanged",
        Failed => "failed",
    }
}

labels! {
    /// Which login limit refused an attempt: `limit` of `tower_jwt_auth_login_throttled_total`.
    Limit {
        Address => "address",
        Username => "username",
    }
}

// Some counters belong to optional parts (login, sessions, remote key sets).
#[cfg(feature = "metrics")]
#[allow(dead_code)]
mod enabled {
    use std::sync::OnceLock;

    use metrics::{Counter, counter};

    use super::{KeyRefreshOutcome, Limit, LoginOutcome, RefreshOutcome};
    use crate::error::AuthErrorKind;

    const KINDS: usize = AuthErrorKind::ALL.len();

    struct Handles {
        accepted: Counter,
        rejected: [Counter; KINDS],
        hit: Counter,
        miss: Counter,
    }

    fn handles() -> &'static Handles {
        static HANDLES: OnceLock<Handles> = OnceLock::new();
        HANDLES.get_or_init(|| Handles {
            accepted: counter!("tower_jwt_auth_requests_total", "outcome" => "accepted"),
            rejected: AuthErrorKind::ALL.map(|kind| {
                counter!(
                    "tower_jwt_auth_requests_total",
                    "outcome" => "rejected",
                    "reason" => kind.as_str()
                )
            }),
            hit: counter!("tower_jwt_auth_cache_total", "result" => "hit"),
            miss: counter!("tower_jwt_auth_cache_total", "result" => "miss"),
        })
    }

    #[inline]
    pub(crate) fn accepted() {
        handles().accepted.increment(1);
    }

    #[inline]
    pub(crate) fn rejected(kind: AuthErrorKind) {
        handles().rejected[kind.index()].increment(1);
    }

    #[inline]
    pub(crate) fn cache(hit: bool) {
        let h = handles();
        if hit { &h.hit } else { &h.miss }.increment(1);
    }

    pub(crate) fn key_refresh(outcome: KeyRefreshOutcome) {
        counter!("tower_jwt_auth_key_refreshes_total", "outcome" => outcome.label()).increment(1);
    }

    pub(crate) fn key_set_age(seconds: f64) {
        metrics::gauge!("tower_jwt_auth_key_set_age_seconds").set(seconds);
    }

    pub(crate) fn login(outcome: LoginOutcome) {
        counter!("tower_jwt_auth_logins_total", "outcome" => outcome.label()).increment(1);
    }

    pub(crate) fn throttled(limit: Limit) {
        counter!("tower_jwt_auth_login_throttled_total", "limit" => limit.label()).increment(1);
    }

    pub(crate) fn refresh(outcome: RefreshOutcome) {
        counter!("tower_jwt_auth_refreshes_total", "outcome" => outcome.label()).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code, clippy::missing_const_for_fn)]
mod enabled {
    use super::{KeyRefreshOutcome, Limit, LoginOutcome, RefreshOutcome};
    use crate::error::AuthErrorKind;

    #[inline(always)]
    pub(crate) fn accepted() {}
    #[inline(always)]
    pub(crate) fn rejected(_kind: AuthErrorKind) {}
    #[inline(always)]
    pub(crate) fn cache(_hit: bool) {}
    pub(crate) fn key_refresh(_outcome: KeyRefreshOutcome) {}
    pub(crate) fn key_set_age(_seconds: f64) {}
    pub(crate) fn login(_outcome: LoginOutcome) {}
    pub(crate) fn throttled(_limit: Limit) {}
    pub(crate) fn refresh(_outcome: RefreshOutcome) {}
}

#[allow(unused_imports)]
pub(crate) use enabled::*;
