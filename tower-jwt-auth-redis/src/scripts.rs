//! The Lua scripts, one per operation, each run on one slot with Redis's clock (`TIME`). Each
//! `.lua` file begins with what it takes (`KEYS`, `ARGV`) and what it answers.

use redis::Script;

/// Every script, loaded once per store (and cached by Redis by its hash).
pub(super) struct Scripts {
    pub(super) open: Script,
    pub(super) rotate: Script,
    pub(super) can_rotate: Script,
    pub(super) end_all: Script,
    pub(super) revoke: Script,
    pub(super) write_back: Script,
    pub(super) raise_generation: Script,
    pub(super) snapshot: Script,
    pub(super) throttle: Script,
}

impl Scripts {
    pub(super) fn load() -> Self {
        Self {
            open: Script::new(include_str!("scripts/open.lua")),
            rotate: Script::new(include_str!("scripts/rotate.lua")),
            can_rotate: Script::new(include_str!("scripts/can_rotate.lua")),
            end_all: Script::new(include_str!("scripts/end_all.lua")),
            revoke: Script::new(include_str!("scripts/revoke.lua")),
            write_back: Script::new(include_str!("scripts/write_back.lua")),
            raise_generation: Script::new(include_str!("scripts/raise_generation.lua")),
            snapshot: Script::new(include_str!("scripts/snapshot.lua")),
            throttle: Script::new(include_str!("scripts/throttle.lua")),
        }
    }
}
