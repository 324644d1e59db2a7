#!/usr/bin/env bash
# What the binary's default middleware chain costs: `edgeshard` answering
# GET /healthz ("ok") bare (no security headers, no access log) against
# the same binary with the chain an edge host would run (request ids, the
# security headers, the access log to a file), one shard pinned to CPU 1,
# wrk pinned to CPU 0, 64 keep-alive connections; rounds alternate the two
# so drift hits both. Reports the medians and the ratio of requests per
# server CPU-second.
#
# With --metrics, the same comparison for what the metrics cost: the
# binary bare (as above) with `--metrics=false` against bare with the
# metrics on (their default: each request timed and counted by route).
#
# With --activation, what sharing one socket-activated socket between
# shards costs: the bare binary with 2 shards on their own SO_REUSEPORT
# sockets against the same under `systemd-socket-activate` (one socket,
# every shard accepting from it); neither server nor wrk pinned (the
# shards take both CPUs). Each run also records how the requests fell
# between the shards (`/api/stats`). --close makes every request a new
# connection (`Connection: close`), where the sharing shows.
#
#   perf/chain.sh [--metrics | --activation [--close]] [--rounds N] [--duration 10s] [--force]
#
# Results: perf/results/DATE-HHMM-chain.md (or -metrics.md).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=5
DURATION=10s
FORCE=0
MODE=chain
CLOSE=0
while [ $# -gt 0 ]; do
    case $1 in
        --metrics) MODE=metrics; shift ;;
        --activation) MODE=activation; shift ;;
        --close) CLOSE=1; shift ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
load=$(awk '{print $1}' /proc/loadavg)
if awk -v l="$load" 'BEGIN {exit !(l > 0.7)}' && [ "$FORCE" = 0 ]; then
    echo "!!! load average is $load: refusing to run (--force to run anyway)" >&2
    exit 3
fi

cargo build --release --quiet --bin edgeshard
BIN=./target/release/edgeshard
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TCK=$(getconf CLK_TCK)
# shellcheck source=perf/lib.sh
. perf/lib.sh

# The two servers compared: the first is the baseline.
case $MODE in
    chain) NAMES="bare chain" ;;
    metrics) NAMES="metrics-off metrics-on" ;;
    activation) NAMES="reuseport activated" ;;
esac
SHARDS=1 PIN_SERVER=(taskset -c 1) PIN_WRK=(taskset -c 0) WRK_ARGS=()
if [ "$MODE" = activation ]; then
    command -v systemd-socket-activate >/dev/null || { echo "needs systemd-socket-activate" >&2; exit 1; }
    SHARDS=2 PIN_SERVER=() PIN_WRK=()
fi
[ "$CLOSE" = 1 ] && WRK_ARGS=(-H "Connection: close")
args_for() {
    case $1 in
        bare) echo "--security-headers=false --access-log off --metrics=false" ;;
        chain) echo "--request-id --access-log $WORK/access.log --metrics=false" ;;
        metrics-off) echo "--security-headers=false --access-log off --metrics=false" ;;
        metrics-on) echo "--security-headers=false --access-log off" ;;
        reuseport | activated) echo "--security-headers=false --access-log off --metrics=false" ;;
    esac
}

RAW="$WORK/raw.tsv"
for round in $(seq "$ROUNDS"); do
    for name in $NAMES; do
        port=$(free_port)
        rm -f "$WORK/access.log"
        activate=()
        [ "$name" = activated ] && activate=(systemd-socket-activate -l "127.0.0.1:$port")
        # shellcheck disable=SC2046 # the flags are words
        "${PIN_SERVER[@]}" "${activate[@]}" "$BIN" --shards "$SHARDS" --listen "127.0.0.1:$port" $(args_for "$name") >/dev/null 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 200); do
            curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
            sleep 0.025
        done
        url="http://127.0.0.1:$port/healthz"
        "${PIN_WRK[@]}" wrk -t1 -c64 -d2s "${WRK_ARGS[@]}" "$url" >/dev/null
        read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
        out=$("${PIN_WRK[@]}" wrk -t1 -c64 -d"$DURATION" --latency "${WRK_ARGS[@]}" "$url")
        read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
        if [ "$MODE" = activation ]; then
            split=$(curl -s "http://127.0.0.1:$port/api/stats" | python3 -c 'import json,sys; print(" / ".join(str(s["requests"]) for s in json.load(sys.stdin)["shards"]))')
            echo "# round $round $name: requests by shard $split" | tee -a "$WORK/split.txt" >&2
        fi
        stop_server
        if [ "$name" = chain ]; then
            lines=$(wc -l < "$WORK/access.log")
            echo "# round $round: the access log has $lines lines" >&2
        fi
        python3 perf/wrk_row.py healthz "$name" "$DURATION" "$TCK" "$u0" "$s0" "$u1" "$s1" 64 <<<"$out" | tee -a "$RAW"
    done
done

STAMP=$(date -u +%F-%H%M)
SUFFIX=$MODE
[ "$CLOSE" = 1 ] && SUFFIX=$MODE-close
OUT="perf/results/$STAMP-$SUFFIX.md"
# shellcheck disable=SC2086 # the names are words
python3 - "$RAW" "$ROUNDS" "$DURATION" "$(git describe --always --dirty)" "$SHARDS" "$CLOSE" $NAMES > "$OUT" <<'PY'
import statistics, sys
raw, rounds, duration, rev, shards, close, base, other = sys.argv[1:9]
rows = [l.split("\t") for l in open(raw).read().splitlines()]
by = {}
for case, name, rps, lat, err, non2xx, reqs, user, sys_ in rows:
    cpu = float(user) + float(sys_)
    by.setdefault(name, []).append((float(rps), float(lat), int(reqs) / cpu if cpu else 0.0, int(err), int(non2xx)))
what = {"bare": "Middleware chain", "metrics-off": "Metrics", "reuseport": "Shared activated socket"}[base]
conns = "64 connections, a new one per request (Connection: close)" if close == "1" else "64 keep-alive connections"
print(f"## {what} cost ({rev}): GET /healthz, {rounds} rounds of {duration}, {conns}, {shards} shard(s)\n")
if base == "reuseport":
    print("both `--security-headers=false --access-log off --metrics=false`; reuseport: each shard its own SO_REUSEPORT socket; activated: under `systemd-socket-activate`, one socket every shard accepts from\n")
elif base == "bare":
    print("bare: `--security-headers=false --access-log off --metrics=false`; chain: `--request-id --access-log FILE --metrics=false` (security headers on by default)\n")
else:
    print("both `--security-headers=false --access-log off`; metrics-off adds `--metrics=false`, metrics-on times and counts each request by route\n")
print("| server | req/s (median) | p99 ms | req per server CPU-s (median) | errors | non-2xx |")
print("|---|---|---|---|---|---|")
med = {}
for name in (base, other):
    v = by[name]
    med[name] = (statistics.median(x[0] for x in v), statistics.median(x[2] for x in v))
    print(f"| {name} | {med[name][0]:.0f} | {statistics.median(x[1] for x in v):.3f} | {med[name][1]:.0f} | {sum(x[3] for x in v)} | {sum(x[4] for x in v)} |")
print()
print(f"{other} / {base}: req/s {med[other][0] / med[base][0]:.3f}, req per CPU-s {med[other][1] / med[base][1]:.3f} "
      f"(cost {100 * (1 - med[other][1] / med[base][1]):.1f}% of requests per CPU-second)")
print("\n```")
print(open(raw).read(), end="")
print("```")
PY
if [ -f "$WORK/split.txt" ]; then
    { echo; echo "Requests by shard (/api/stats after each run):"; echo; echo '```'; cat "$WORK/split.txt"; echo '```'; } >> "$OUT"
fi
echo "# wrote $OUT" >&2
cat "$OUT"
