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
    "ours HS256 on" "ours HS256 rev" "ours HS256 off" "fromfn HS256 on" "authorizer HS256 on"
    "ours RS256 on" "ours RS256 off" "fromfn RS256 on" "authorizer RS256 on"
    "ours ES256 on" "ours ES256 off" "authorizer ES256 on"
    "ours EdDSA on" "ours EdDSA off" "authorizer EdDSA on"
)
# CONFIGS="none HS256 on,ours HS256 on" runs a subset (the first one is the baseline).
if [ -n "${CONFIGS:-}" ]; then IFS=',' read -ra configs <<<"$CONFIGS"; fi
declare -A TOKENS
for alg in HS256 RS256 ES256 EdDSA; do TOKENS[$alg]=$(token "$alg"); done
# One line per run (mode alg cache requests/s p99 cpu-µs), kept for scripts/bench-table.py.
results="$CARGO_TARGET_DIR/bench-http-results.txt"
: >"$results"
echo "raw results: $results" >&2

for round in $(seq "$rounds"); do
    for config in "${configs[@]}"; do
        read -r mode alg cache <<<"$config"
        bin="$CARGO_TARGET_DIR/release/compare"
        case $mode in authorizer | none07) bin="$CARGO_TARGET_DIR/release/compare-authorizer" ;; esac
        # none07 is the "none" mode of the axum 0.7 app.
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

python3 scripts/bench-table.py "$results"
