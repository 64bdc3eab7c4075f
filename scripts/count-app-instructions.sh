#!/usr/bin/env bash
# Instructions per whole HTTP request in the comparison app (benches/compare), counted by
# callgrind: exact where wall-clock and CPU-time figures on this machine drift by ±2 µs.
#
# For each configuration the app runs under `valgrind --tool=callgrind` with instrumentation
# off; one keep-alive connection sends WARMUP requests, instrumentation is switched on
# (`callgrind_control -i on`), the same connection sends REQUESTS more with one token, and the
# instructions of the whole process (accept loop, hyper, axum, the middleware, the handler,
# the answer) are divided by REQUESTS.
#
#   scripts/count-app-instructions.sh                       # none, ours HS256, ours RS256
#   CONFIGS="none HS256 on,fromfn HS256 on" scripts/count-app-instructions.sh
#
# Needs valgrind and python3 with PyJWT (pip install pyjwt cryptography).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
(cd benches/compare && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/compare"
port=3991
warmup="${WARMUP:-1000}"
requests="${REQUESTS:-5000}"
IFS=',' read -ra configs <<<"${CONFIGS:-none HS256 on,ours HS256 on,ours RS256 on}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "| app | alg | token cache | instructions per request |"
echo "|---|---|---|---|"
for config in "${configs[@]}"; do
    read -r mode alg cache <<<"$config"
    MODE=$mode ALG=$alg CACHE=$cache BIND_ADDR=127.0.0.1:$port \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" \
        "$bin" 2>"$out/valgrind.log" &
    server=$!
    python3 - "$port" "$alg" "$warmup" "$requests" "$server" <<'PY'
import http.client, subprocess, sys, time, jwt
port, alg, warmup, requests, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
keys = {"HS256": None, "RS256": "rsa_private.pem", "ES256": "ec256_private.pem", "EdDSA": "ed25519_private.pem"}
key = b"bench-secret-that-is-64-bytes-long-for-every-hs-variant-01234567" if keys[alg] is None \
    else open("tests/keys/" + keys[alg]).read()
now = int(time.time())
token = jwt.encode({"sub": "1", "username": "user1", "iat": now, "exp": now + 3600}, key, algorithm=alg)
for _ in range(300):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(port))
        conn.request("GET", "/protected")
        conn.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
headers = {"Authorization": "Bearer " + token}
def send(n):
    for _ in range(n):
        conn.request("GET", "/protected", headers=headers)
        res = conn.getresponse()
        body = res.read()
        assert res.status == 200 and body == b'{"id":1,"username":"user1"}', (res.status, body)
send(warmup)
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
send(requests)
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
PY
    kill "$server"
    wait "$server" 2>/dev/null || true
    total=$(cat "$out"/cg.* | awk '/^(summary|totals):/ {s += $2} END {print s}')
    rm -f "$out"/cg.*
    python3 -c "print(f'| $mode | $alg | $cache | {$total / $requests:,.0f} |')"
done
