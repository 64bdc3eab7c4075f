#!/usr/bin/env bash
# Load and soak: 256 connections for a while against the axum demo (release build), mixing valid,
# invalid, expired and missing tokens in four concurrent wrk runs of 64 connections each.
# Reports requests, wrong answers, 5xx, p99, server RSS at start and end, and server CPU per
# request (from /proc).
#
#   scripts/soak.sh            # 60 s, HS256
#   scripts/soak.sh 30 RS256   # 30 s, RS256 (uses tests/keys)
#
# Needs wrk (Debian: apt-get install wrk) and python3 with PyJWT (pip install pyjwt cryptography).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
alg="${2:-HS256}"
port=3917
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --example axum_server -q
secret="soak-test-secret-that-is-64-bytes-long-for-every-hs-variant-0123456"
env_args=(BIND_ADDR=127.0.0.1:$port JWT_ALGORITHM=$alg RUST_LOG=warn)
case "$alg" in
    HS*) env_args+=(JWT_SECRET=$secret); key=$secret ;;
    RS*|PS*) env_args+=(JWT_PRIVATE_KEY_FILE=tests/keys/rsa_private.pem); key=tests/keys/rsa_private.pem ;;
    ES256) env_args+=(JWT_PRIVATE_KEY_FILE=tests/keys/ec256_private.pem); key=tests/keys/ec256_private.pem ;;
    EdDSA) env_args+=(JWT_PRIVATE_KEY_FILE=tests/keys/ed25519_private.pem); key=tests/keys/ed25519_private.pem ;;
esac
env "${env_args[@]}" "$CARGO_TARGET_DIR/release/examples/axum_server" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

tokens=$(python3 - "$alg" "$key" "$port" <<'PY'
import json, sys, time, urllib.request, jwt
alg, key, port = sys.argv[1:4]
if not alg.startswith("HS"):
    key = open(key).read()
req = urllib.request.Request(f"http://127.0.0.1:{port}/login",
    data=b'{"username":"user1","password":"password1"}', headers={"Content-Type": "application/json"})
valid = json.load(urllib.request.urlopen(req))["access_token"]
invalid = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
now = int(time.time())
expired = jwt.encode({"sub": "1", "username": "user1", "iat": now - 7200, "exp": now - 3600}, key, algorithm=alg)
print(valid, invalid, expired)
PY
)
read -r valid invalid expired <<<"$tokens"

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
dir=$(mktemp -d)
cat > "$dir/count.lua" <<'LUA'
-- Tally response statuses across wrk threads.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d: %d\n", status, n)) end
end
LUA
rss_start=$(rss)
ticks_start=$(cpu_ticks)
# name, expected status, optional Authorization header value
run() {
    local name=$1 expect=$2 auth=${3:-}
    local args=(-t1 -c64 -d"${duration}s" --latency -s "$dir/count.lua")
    [ -n "$auth" ] && args+=(-H "Authorization: Bearer $auth")
    wrk "${args[@]}" "http://127.0.0.1:$port/protected" > "$dir/$name.txt" 2>&1
    echo "$expect" > "$dir/$name.expect"
}
pids=()
run valid 200 "$valid" & pids+=($!)
run invalid 401 "$invalid" & pids+=($!)
run expired 401 "$expired" & pids+=($!)
run missing 401 & pids+=($!)
wait "${pids[@]}"
ticks_end=$(cpu_ticks)
rss_end=$(rss)

total=0; wrong=0
for name in valid invalid expired missing; do
    f="$dir/$name.txt"; expect=$(cat "$dir/$name.expect")
    n=$(awk '/requests in/ {print $1}' "$f")
    right=$(awk -v s="$expect" '$1 == "status" && $2 == s":" {print $3}' "$f"); right=${right:-0}
    p99=$(awk '$1 == "99%" {print $2}' "$f")
    errors=$(grep -h 'Socket errors' "$f" || true)
    statuses=$(grep -h '^status' "$f" | tr '\n' ' ')
    total=$((total + n)); wrong=$((wrong + n - right))
    echo "$name: $n requests, $statuses(expected $expect), p99 $p99 ${errors}"
done
hz=$(getconf CLK_TCK)
cpu_us=$(( (ticks_end - ticks_start) * 1000000 / hz ))
echo "total requests: $total, wrong answers: $wrong"
echo "server CPU: $((cpu_us / 1000)) ms in all, $(( cpu_us / (total > 0 ? total : 1) )) µs per request"
echo "server RSS: ${rss_start} KiB at start, ${rss_end} KiB at end"
kill -0 "$server" && echo "server still running"
[ "$wrong" -eq 0 ]
