//! Unix time, shared by the request path and the stores: both depend on this module, and the
//! stores on nothing else of the pipeline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// A time in Unix seconds (0 before 1970).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now in Unix milliseconds (0 before 1970).
#[cfg_attr(not(feature = "sessions"), allow(dead_code))]
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now plus `d`, saturating far in the future instead of overflowing.
#[cfg_attr(not(feature = "sessions"), allow(dead_code))]
pub(crate) fn later(d: Duration) -> SystemTime {
    let now = SystemTime::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}
