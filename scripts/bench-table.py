#!/usr/bin/env python3
"""The Markdown table of scripts/bench-http.sh from its raw results (one run per line:
`mode alg cache requests/s p99 cpu-µs`); medians over the rounds of each configuration.

    python3 scripts/bench-table.py target/bench-http-results.txt
"""
import statistics
import sys

NAMES = {
    "none": "no authentication",
    "none07": "no authentication (axum 0.7)",
    "ours": "tower-jwt-auth",
    "fromfn": "hand-rolled from_fn + jsonwebtoken",
    "authorizer": "jwt-authorizer 0.15 (axum 0.7)",
}


def to_us(latency):
    """wrk prints 494.00us, 2.16ms, 1.02s."""
    for unit, scale in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if latency.endswith(unit):
            return float(latency[: -len(unit)]) * scale
    return float("inf")


rows = {}
for line in open(sys.argv[1]):
    mode, alg, cache, rps, p99, cpu = line.split()
    rows.setdefault((mode, alg, cache), []).append((float(rps), p99, float(cpu)))


def cpu_of(key):
    return statistics.median(r[2] for r in rows[key])


base = cpu_of(next(iter(rows)))
# jwt-authorizer runs on axum 0.7: its overhead is taken over the axum 0.7 baseline when measured.
base07 = cpu_of(("none07", "HS256", "on")) if ("none07", "HS256", "on") in rows else base

print("| app | alg | token cache | requests/s | p99 | server CPU µs/request | over no auth | × no auth |")
print("|---|---|---|---|---|---|---|---|")
for (mode, alg, cache), runs in rows.items():
    cpu = cpu_of((mode, alg, cache))
    rps = statistics.median(r[0] for r in runs)
    p99 = sorted((r[1] for r in runs), key=to_us)[len(runs) // 2]
    baseline = base07 if mode == "authorizer" else base
    alg_col = "—" if mode.startswith("none") else alg
    cache_col = cache if mode == "ours" else "—"
    over = "—" if mode.startswith("none") else f"+{cpu - baseline:.2f} µs"
    ratio = "—" if mode.startswith("none") else f"{cpu / baseline:.2f}×"
    print(f"| {NAMES[mode]} | {alg_col} | {cache_col} | {rps:,.0f} | {p99} | {cpu:.2f} | {over} | {ratio} |")
