#!/usr/bin/env bash
# Does a flood of bad logins stall the other routes? Starts the release `axum_server`, logs in
# once, then measures the latency of `GET /protected` (with the token) and `GET /health`:
# first unloaded, then while FLOOD clients (default 16) send bogus logins as fast as they can
# (each one costs an argon2id check). Prints medians and 99th percentiles in milliseconds, and
# how the logins fared (200/401/503 counts) during the flood.
#
#   scripts/login-flood.sh                # 16 concurrent bogus logins
#   FLOOD=4 scripts/login-flood.sh
#   BIN=path/to/axum_server scripts/login-flood.sh   # measure another build
#
# Needs python3. Loopback only; bounded in time (about 30 s).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${BIN:-}" ]; then
    cargo build --release --example axum_server -q
    BIN="$CARGO_TARGET_DIR/release/examples/axum_server"
fi
port=3997
BIND_ADDR=127.0.0.1:$port JWT_SECRET=login-flood-secret-that-is-at-least-32-bytes RUST_LOG=warn \
    "$BIN" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT

python3 - "$port" "${FLOOD:-16}" <<'PY'
import http.client, json, statistics, sys, threading, time

port, flood = int(sys.argv[1]), int(sys.argv[2])

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)

for _ in range(100):
    try:
        c = conn(); c.request("GET", "/health"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)

c = conn()
c.request("POST", "/login", body=json.dumps({"username": "user1", "password": "password1"}),
          headers={"content-type": "application/json"})
token = json.loads(c.getresponse().read())["access_token"]

def measure(path, headers, n=200):
    c, times = conn(), []
    for _ in range(n):
        start = time.perf_counter()
        c.request("GET", path, headers=headers)
        res = c.getresponse(); res.read()
        assert res.status == 200, res.status
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.005)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]

def report(label):
    for path, headers in [("/protected", {"authorization": "Bearer " + token}), ("/health", {})]:
        med, p99 = measure(path, headers)
        print(f"| {label} | `{path}` | {med:.2f} | {p99:.2f} |")

print("| load | route | median ms | p99 ms |")
print("|---|---|---|---|")
report("unloaded")

stop, outcomes, lock = False, {}, threading.Lock()
def bogus():
    c = conn()
    while not stop:
        try:
            c.request("POST", "/login", body='{"username":"user1","password":"wrong"}',
                      headers={"content-type": "application/json"})
            res = c.getresponse(); res.read()
            with lock:
                outcomes[res.status] = outcomes.get(res.status, 0) + 1
        except OSError:
            c = conn()
threads = [threading.Thread(target=bogus, daemon=True) for _ in range(flood)]
for t in threads:
    t.start()
time.sleep(2)
started = time.time()
report(f"{flood} concurrent bogus logins")
elapsed = time.time() - started
stop = True
for t in threads:
    t.join(timeout=35)
print()
print(f"logins during the flood ({elapsed:.0f} s): " +
      ", ".join(f"{n} × {status}" for status, n in sorted(outcomes.items())))
PY
