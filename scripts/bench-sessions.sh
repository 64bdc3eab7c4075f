#!/usr/bin/env bash
# Session figures for BENCHMARKS.md: the criterion micro-benchmarks of benches/sessions.rs, then
# refreshes per second (p50/p99) in memory and against a private local Redis, and the time a
# revocation takes to reach a second node.
#   scripts/bench-sessions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tower-jwt-auth/target}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$port"
REDIS_URL="redis://127.0.0.1:$port/" cargo bench --bench sessions -- "$@"
