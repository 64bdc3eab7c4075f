#!/usr/bin/env bash
# End-to-end comparison: the same small axum app (benches/compare) with no authentication, with
# tower-jwt-auth (cache on and off), with a hand-rolled from_fn + jsonwebtoken middleware and
# (benches/compare-authorizer, axum 0.7) with jwt-authorizer 0.15, driven by wrk with one token
# repeated. Configurations are interleaved and repeated; the server
# runs on CPU 0 and wrk on CPU 1. Reports requests/s, p99 and server CPU µs per request (from
# /proc/<pid>/stat), medians over the rounds, as a Markdown table.
#
#   scripts/bench-http.sh [seconds-per-run] [rounds]      # default 8 s, 3 rounds
#
# Needs wrk (apt-get install wrk), taskset, and python3 with PyJWT (pip install pyjwt cryptography).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
rounds="${2:-3}"
port=3990
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
(cd benches/compare && cargo build --release -q)
(cd benches/compare-authorizer && cargo build --release -q)
hz=$(getconf CLK_TCK)

token() {
    python3 - "$1" <<'PY'
import sys, time, jwt
alg = sys.argv[1]
keys = {"HS256": None, "RS256": "rsa_private.pem", "ES256": "ec256_private.pem", "EdDSA": "ed25519_private.pem"}
key = b"bench-secret-that-is-64-bytes-long-for-every-hs-variant-01234567" if keys[alg] is None \
    else open("tests/keys/" + keys[alg]).read()
now = int(time.time())
print(jwt.encode({"sub": "1", "username": "user1", "iat": now, "exp": now + 3600}, key, algorithm=alg))
PY
}

configs=(
    "none HS256 on" "none07 HS256 on"
    "ours HS256 on" "ours HS256 off" "fromfn HS256 on" "authorizer HS256 on"
    "ours RS256 on" "ours RS256 off" "fromfn RS256 on" "authorizer RS256 on"
    "ours ES256 on" "ours ES256 off" "authorizer ES256 on"
    "ours EdDSA on" "ours EdDSA off" "authorizer EdDSA on"
)
# CONFIGS="none HS256 on,ours HS256 on" runs a subset (the first one is the baseline).
if [ -n "${CONFIGS:-}" ]; then IFS=',' read -ra configs <<<"$CONFIGS"; fi
declare -A TOKENS
for alg in HS256 RS256 ES256 EdDSA; do TOKENS[$alg]=$(token "$alg"); done
results=$(mktemp)

for round in $(seq "$rounds"); do
    for config in "${configs[@]}"; do
        read -r mode alg cache <<<"$config"
        bin="$CARGO_TARGET_DIR/release/compare"
        case $mode in authorizer | none07) bin="$CARGO_TARGET_DIR/release/compare-authorizer" ;; esac
        MODE=${mode%07} ALG=$alg CACHE=$cache BIND_ADDR=127.0.0.1:$port taskset -c 0 "$bin" &
        server=$!
        for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$port/protected" && break; sleep 0.1; done
        check=$(curl -s -H "Authorization: Bearer ${TOKENS[$alg]}" "127.0.0.1:$port/protected")
        [ "$check" = '{"id":1,"username":"user1"}' ] || { echo "bad answer from $config: $check" >&2; exit 1; }
        before=$(awk '{print $14 + $15}' "/proc/$server/stat")
        out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" --latency -H "Authorization: Bearer ${TOKENS[$alg]}" \
            "http://127.0.0.1:$port/protected")
        after=$(awk '{print $14 + $15}' "/proc/$server/stat")
        kill "$server"; wait "$server" 2>/dev/null || true
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
        [ "$non2xx" = 0 ] || { echo "$config: $non2xx non-2xx answers" >&2; exit 1; }
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
        echo "$mode $alg $cache $rps $p99 $cpu_us" >> "$results"
        echo "round $round: $config: $rps req/s, p99 $p99, $cpu_us µs CPU/request" >&2
    done
done

python3 - "$results" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    mode, alg, cache, rps, p99, cpu = line.split()
    rows.setdefault((mode, alg, cache), []).append((float(rps), p99, float(cpu)))
def to_us(latency):  # wrk prints 494.00us, 2.16ms, 1.02s
    for unit, scale in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if latency.endswith(unit):
            return float(latency[: -len(unit)]) * scale
    return float("inf")
def cpu_of(key):
    return statistics.median(r[2] for r in rows[key])
base = cpu_of(next(iter(rows)))
# jwt-authorizer runs on axum 0.7: its overhead is taken over the axum 0.7 baseline when measured.
base07 = cpu_of(("none07", "HS256", "on")) if ("none07", "HS256", "on") in rows else base
names = {"none": "no authentication", "ours": "tower-jwt-auth", "fromfn": "hand-rolled from_fn + jsonwebtoken",
         "authorizer": "jwt-authorizer 0.15 (axum 0.7)", "none07": "no authentication (axum 0.7)"}
print("| app | alg | token cache | requests/s | p99 | server CPU µs/request | over no auth |")
print("|---|---|---|---|---|---|---|")
for (mode, alg, cache), runs in rows.items():
    cpu = statistics.median(r[2] for r in runs)
    rps = statistics.median(r[0] for r in runs)
    p99 = sorted((r[1] for r in runs), key=to_us)[len(runs) // 2]
    alg_col = "—" if mode.startswith("none") else alg
    cache_col = cache if mode == "ours" else "—"
    over = "—" if mode.startswith("none") else f"+{cpu - (base07 if mode == 'authorizer' else base):.2f} µs"
    print(f"| {names[mode]} | {alg_col} | {cache_col} | {rps:,.0f} | {p99} | {cpu:.2f} | {over} |")
PY
