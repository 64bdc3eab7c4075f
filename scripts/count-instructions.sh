#!/usr/bin/env bash
# Instructions per operation, counted by callgrind: repeatable to a fraction of a percent on a
# noisy machine, where wall-clock figures drift by ±10 %. Runs the `verify` criterion benchmark
# binary under `valgrind --tool=callgrind` (criterion's --profile-time mode, no analysis) for
# each case and divides the inclusive instruction count of the measured function by its calls:
#
# - bare: `jsonwebtoken::decoding::decode`;
# - JwtAuth: the benchmark's `through_layer` (poll_ready, call: token extraction, cache lookup
#   or verification, claims into the extensions, the no-op inner call; the response future and
#   dropping the response and request).
#
# - no authentication: the same `through_layer` on the bare no-op service (the baseline).
#
#   scripts/count-instructions.sh            # needs valgrind (apt-get install valgrind)
#   ALGS="HS256 RS256" scripts/count-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin=$(cargo bench --bench verify --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "verify" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

count() { # case-regex function-name
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" --bench "$1" --profile-time 2 \
        >/dev/null 2>&1
    # In a caller tree, a block is the callers (`<`, each with its call count) followed by the
    # function itself (`*`, with its inclusive cost).
    callgrind_annotate --tree=caller --inclusive=yes "$out/cg" >"$out/tree" 2>/dev/null
    python3 - "$2" "$out/tree" <<'PY'
import re, sys
name, calls = sys.argv[1], 0
for line in open(sys.argv[2]):
    caller = re.match(r"\s*[\d,]+ \([\s\d.%]+\)\s+<.*\(([\d,]+)x\)", line)
    if caller:
        calls += int(caller.group(1).replace(",", ""))
        continue
    fn = re.match(r"\s*([\d,]+) \([\s\d.%]+\)\s+\*\s+(.*) \[", line)
    if fn and fn.group(2).endswith(name):
        total = int(fn.group(1).replace(",", ""))
        print(f"{total / calls:,.0f}")
        sys.exit()
    calls = 0
print("?")
PY
}

echo "| algorithm | bare jsonwebtoken::decode | JwtAuth, cache off | no authentication | JwtAuth, hot cache | hot over no auth |"
echo "|---|---|---|---|---|---|"
for alg in ${ALGS:-HS256 RS256 ES256 EdDSA}; do
    bare=$(count "^$alg/bare jsonwebtoken::decode\$" "jsonwebtoken::decoding::decode")
    off=$(count "^$alg/JwtAuth request, cache off\$" "verify::through_layer")
    none=$(count "^$alg/no authentication\$" "verify::through_layer")
    hot=$(count "^$alg/JwtAuth request, hot cache\$" "verify::through_layer")
    over=$(python3 -c "print(f'{int(\"$hot\".replace(\",\", \"\")) - int(\"$none\".replace(\",\", \"\")):,}')" 2>/dev/null || echo "?")
    echo "| $alg | $bare | $off | $none | $hot | $over |"
done
revoked=$(count "^HS256/JwtAuth request, hot cache, 10000 revocations\$" "verify::through_layer")
bounded=$(count "^HS256/JwtAuth request, hot cache, 10000 revocations, trust bound\$" "verify::through_layer")
echo
echo "HS256, hot cache, with 10,000 revoked sessions (the revocation check on a hit): $revoked"
echo "the same with a trust bound (a node fed from Redis): $bounded"
