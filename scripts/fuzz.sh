#!/usr/bin/env bash
# Fuzz the five targets in fuzz/ (token extraction + verification, the differential check against
# jsonwebtoken::decode, the login body, JWK parsing, DPoP proofs).
#
#   scripts/fuzz.sh            # 10 minutes per target
#   scripts/fuzz.sh 30         # 30 seconds per target (what .ci/run does)
#
# cargo-fuzz passes unstable rustc flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them
# (no nightly is needed). Without a sanitizer (`--sanitizer none`), panics and aborts are the
# findings; debug assertions (`-a`: integer overflow, debug_assert!) are on in the optimised build. A crash leaves its input in fuzz/artifacts/<target>/ and fails this script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for target in verify differential login_body jwks dpop_proof; do
    mkdir -p "corpus/$target"
    cargo fuzz run --sanitizer none -O -a "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len=12000
done
