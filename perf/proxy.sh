#!/usr/bin/env bash
# The proxy case: edgeshard (`examples/bench` with `--proxy /app/=UPSTREAM`)
# against nginx (`proxy_pass` with keep-alive upstream connections, see
# perf/nginx-proxy.conf), both in front of the same upstream (the bench
# binary, one shard, answering /plaintext). The proxy under test runs one
# shard/worker on CPU 1; wrk and the upstream share CPU 0, the same for
# both. 64 keep-alive client connections; rounds alternate the two so
# drift hits both. Reports medians, errors and the ratio of requests per
# proxy CPU-second, and the upstream connections each proxy opened.
#
#   perf/proxy.sh [--rounds N] [--duration 10s] [--force]
#
# Results: perf/results/DATE-HHMM-proxy.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=5
DURATION=10s
FORCE=0
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
for tool in wrk taskset curl python3 nginx; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
load=$(awk '{print $1}' /proc/loadavg)
if awk -v l="$load" 'BEGIN {exit !(l > 0.7)}' && [ "$FORCE" = 0 ]; then
    echo "!!! load average is $load: refusing to run (--force to run anyway)" >&2
    exit 3
fi

cargo build --release --quiet --example bench
BENCH=./target/release/examples/bench
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TCK=$(getconf CLK_TCK)
# shellcheck source=perf/lib.sh
. perf/lib.sh

UPORT=$(free_port)
taskset -c 0 "$BENCH" --shards 1 --listen "127.0.0.1:$UPORT" >/dev/null 2>&1 &
UPSTREAM_PID=$!
wait_up "http://127.0.0.1:$UPORT/plaintext"

# Established connections to the upstream's port (the proxies' pools).
upstream_conns() { ss -Htn state established "( dport = :$UPORT )" | wc -l; }

RAW="$WORK/raw.tsv"
CONNS="$WORK/conns.tsv"
for round in $(seq "$ROUNDS"); do
    for name in edgeshard nginx; do
        port=$(free_port)
        case $name in
            edgeshard)
                taskset -c 1 "$BENCH" --shards 1 --listen "127.0.0.1:$port" \
                    --proxy "/app/=http://127.0.0.1:$UPORT" >/dev/null 2>&1 &
                ;;
            nginx)
                mkdir -p "$WORK/nginx"
                sed -e "s#PREFIX#$WORK/nginx#g" -e "s#UPORT#$UPORT#g" -e "s#PORT#$port#g" \
                    perf/nginx-proxy.conf > "$WORK/nginx/nginx.conf"
                taskset -c 1 nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >/dev/null 2>&1 &
                ;;
        esac
        SERVER_PID=$!
        url="http://127.0.0.1:$port/app/plaintext"
        wait_up "$url"
        body=$(curl -s "$url")
        [ "$body" = "Hello, World!" ] || { echo "$name answered $body" >&2; exit 1; }
        taskset -c 0 wrk -t1 -c64 -d2s "$url" >/dev/null
        read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
        out=$(taskset -c 0 wrk -t1 -c64 -d"$DURATION" --latency "$url")
        read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
        printf '%s\t%s\n' "$name" "$(upstream_conns)" >> "$CONNS"
        stop_server
        python3 perf/wrk_row.py proxy "$name" "$DURATION" "$TCK" "$u0" "$s0" "$u1" "$s1" 64 <<<"$out" | tee -a "$RAW"
    done
done
kill "$UPSTREAM_PID"

STAMP=$(date -u +%F-%H%M)
OUT="perf/results/$STAMP-proxy.md"
python3 - "$RAW" "$CONNS" "$ROUNDS" "$DURATION" "$(git describe --always --dirty)" > "$OUT" <<'PY'
import statistics, sys
raw, conns, rounds, duration, rev = sys.argv[1:6]
rows = [l.split("\t") for l in open(raw).read().splitlines()]
pools = {}
for l in open(conns).read().splitlines():
    name, n = l.split("\t")
    pools.setdefault(name, []).append(int(n))
by = {}
for case, name, rps, lat, err, non2xx, reqs, user, sys_ in rows:
    cpu = float(user) + float(sys_)
    by.setdefault(name, []).append((float(rps), float(lat), int(reqs) / cpu if cpu else 0.0, int(err), int(non2xx)))
print(f"## Proxy ({rev}): GET /app/plaintext through a proxy to the bench upstream, {rounds} rounds of {duration}, 64 connections\n")
print("Proxy on CPU 1 (one shard / one worker); wrk and the upstream on CPU 0. nginx: `proxy_pass` with `keepalive 64` and the same forwarding headers (perf/nginx-proxy.conf).\n")
print("| proxy | req/s (median) | p99 ms | req per proxy CPU-s (median) | errors | non-2xx | upstream connections at the end |")
print("|---|---|---|---|---|---|---|")
med = {}
for name in ("edgeshard", "nginx"):
    v = by[name]
    med[name] = (statistics.median(x[0] for x in v), statistics.median(x[2] for x in v))
    print(f"| {name} | {med[name][0]:.0f} | {statistics.median(x[1] for x in v):.3f} | {med[name][1]:.0f} | {sum(x[3] for x in v)} | {sum(x[4] for x in v)} | {pools.get(name)} |")
print()
print(f"edgeshard / nginx: req/s {med['edgeshard'][0] / med['nginx'][0]:.2f}×, req per proxy CPU-s {med['edgeshard'][1] / med['nginx'][1]:.2f}×")
print("\n```")
print(open(raw).read(), end="")
print("```")
PY
echo "# wrote $OUT" >&2
cat "$OUT"
