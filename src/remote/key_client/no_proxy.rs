//! Without the `https-proxy` feature: always a direct connection.

use std::sync::Arc;

use super::Route;

/// Nothing to choose.
pub(super) type Setting = ();

pub(super) fn route((): &()) -> Option<Arc<dyn Route>> {
    None
}
