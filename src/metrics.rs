//! Metrics (feature `metrics`), through the [`metrics`](https://docs.rs/metrics) facade: the
//! application installs the exporter it likes (Prometheus, StatsD, …); without one, or without
//! the feature, every call here is a no-op.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `tower_jwt_auth_requests_total` | counter | `outcome` = `accepted` or `rejected`; `reason` = the [`AuthErrorKind`](crate::AuthErrorKind) name (`expired`, `bad_signature`, `revoked`, …) for rejections |
//! | `tower_jwt_auth_cache_total` | counter | `result` = `hit` or `miss` (verified-token cache) |
//! | `tower_jwt_auth_key_refreshes_total` | counter | `outcome` = `updated`, `unchanged` or `failed` (remote key sets) |
//! | `tower_jwt_auth_key_set_age_seconds` | gauge | time since the key set in memory was last fetched, set at each refresh attempt |
//! | `tower_jwt_auth_logins_total` | counter | `outcome` = `success`, `invalid_credentials`, `throttled`, `invalid_request` or `unavailable` |
//! | `tower_jwt_auth_login_throttled_total` | counter | `limit` = `address` or `username` |
//! | `tower_jwt_auth_refreshes_total` | counter | `outcome` = `success`, `invalid_grant`, `reuse` or `unavailable` |
//!
//! Labels take values from these fixed lists only: no token, secret, username, subject or
//! address ever becomes a label.
//!
//! The per-request counters are registered at the first request and then cost one atomic
//! increment each: install the recorder before the server starts serving.

// Some counters belong to optional parts (login, sessions, remote key sets).
#[cfg(feature = "metrics")]
#[allow(dead_code)]
mod enabled {
    use std::sync::OnceLock;

    use metrics::{Counter, counter};

    use crate::AuthErrorKind;

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

    pub(crate) fn key_refresh(outcome: &'static str) {
        counter!("tower_jwt_auth_key_refreshes_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn key_set_age(seconds: f64) {
        metrics::gauge!("tower_jwt_auth_key_set_age_seconds").set(seconds);
    }

    pub(crate) fn login(outcome: &'static str) {
        counter!("tower_jwt_auth_logins_total", "outcome" => outcome).increment(1);
    }

    pub(crate) fn throttled(limit: &'static str) {
        counter!("tower_jwt_auth_login_throttled_total", "limit" => limit).increment(1);
    }

    pub(crate) fn refresh(outcome: &'static str) {
        counter!("tower_jwt_auth_refreshes_total", "outcome" => outcome).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code, clippy::missing_const_for_fn)]
mod enabled {
    use crate::AuthErrorKind;

    #[inline(always)]
    pub(crate) fn accepted() {}
    #[inline(always)]
    pub(crate) fn rejected(_kind: AuthErrorKind) {}
    #[inline(always)]
    pub(crate) fn cache(_hit: bool) {}
    pub(crate) fn key_refresh(_outcome: &'static str) {}
    pub(crate) fn key_set_age(_seconds: f64) {}
    pub(crate) fn login(_outcome: &'static str) {}
    pub(crate) fn throttled(_limit: &'static str) {}
    pub(crate) fn refresh(_outcome: &'static str) {}
}

#[allow(unused_imports)]
pub(crate) use enabled::*;
