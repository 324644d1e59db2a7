#!/usr/bin/env bash
# wrk on one path: edgeshard (--shards 1) next to nginx (`return 200`, one
# worker), each pinned to CPU 1 with wrk pinned to CPU 0, in rotating rounds
# (A B A B ...) so drift hits both. Prints each run and the medians,
# including requests per server CPU-second (utime+stime of the server's
# processes from /proc).
#
#   perf/vs-nginx.sh CASE [rounds=3] [duration=10s] [connections=64]
#
# CASE: healthz (the edgeshard binary), plaintext or json (examples/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
CASE=${1:?usage: perf/vs-nginx.sh healthz|plaintext|json [rounds] [duration] [connections]}
ROUNDS=${2:-3}
DURATION=${3:-10s}
CONNS=${4:-64}
case $CASE in
    healthz) EDGE=./target/release/edgeshard ;;
    plaintext | json) EDGE=./target/release/examples/bench ;;
    *) echo "unknown case $CASE" >&2; exit 2 ;;
esac
for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk nginx util-linux)" >&2; exit 1; }
done
cargo build --release --quiet --bin edgeshard --example bench
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TCK=$(getconf CLK_TCK)

NGINX_CONF=perf/nginx-peer.conf
PROBE_PATH=/$CASE
# shellcheck source=perf/lib.sh
. perf/lib.sh

run_one() { # name -> one line: name req/s p99 errors cpu_s req_per_cpu_s
    local name=$1 port pid before after out
    port=$(free_port)
    start_server "$name" "$port"
    pid=$SERVER_PID
    # Warm-up, not measured.
    taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/$CASE" >/dev/null
    before=$(cpu_ticks "$pid" | awk '{print $1 + $2}')
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port/$CASE")
    after=$(cpu_ticks "$pid" | awk '{print $1 + $2}')
    stop_server
    local rps p99 errs non2xx cpu
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(awk '/Socket errors/ {gsub(",","");s=$4+$6+$8+$10} END {print s+0}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF} END {}' <<<"$out"); non2xx=${non2xx:-0}
    cpu=$(awk -v a="$before" -v b="$after" -v t="$TCK" 'BEGIN {printf "%.2f", (b-a)/t}')
    awk -v n="$name" -v r="$rps" -v p="$p99" -v e="$errs" -v x="$non2xx" -v c="$cpu" -v d="${DURATION%s}" \
        'BEGIN {printf "%-10s %10.0f %8s %6d %6d %6.2f %12.0f\n", n, r, p, e, x, c, (c > 0 ? r*d/c : 0)}'
}

echo "# $(date -u +%FT%TZ) $(uname -m) /$CASE: wrk -t1 -c$CONNS -d$DURATION, server on CPU 1, wrk on CPU 0"
printf "%-10s %10s %8s %6s %6s %6s %12s\n" server "req/s" p99 errors non2xx cpu_s "req/cpu_s"
RESULTS="$WORK/results"
for round in $(seq "$ROUNDS"); do
    for name in edgeshard nginx; do
        run_one "$name" >> "$RESULTS"
        tail -1 "$RESULTS"
    done
done
echo "# medians over $ROUNDS rounds (each column its own median)"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in ("edgeshard", "nginx"):
    mine = [r for r in rows if r[0] == name]
    col = lambda i: statistics.median(float(r[i]) for r in mine)
    p99 = statistics.median(float(r[2].rstrip("ums")) * {"us": 1e-3, "ms": 1, "s": 1e3}[r[2].lstrip("0123456789.")] for r in mine)
    med[name] = (col(1), p99, col(6))
    print(f"{name:<10} req/s {col(1):>9.0f}  p99 {p99:.2f}ms  errors {sum(int(r[3]) for r in mine)}  non2xx {sum(int(r[4]) for r in mine)}  req/cpu_s {col(6):>9.0f}")
e, n = med["edgeshard"], med["nginx"]
print(f"edgeshard/nginx: req/s {e[0]/n[0]:.2f}x  req/cpu_s {e[2]/n[2]:.2f}x")
PY
