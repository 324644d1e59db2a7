#!/usr/bin/env bash
# The harness's other measurements, each next to a peer where one applies:
#   - memory per idle keep-alive connection (10 000 connections, RSS delta / 10 000),
#     edgeshard and nginx;
#   - time from process start to the first successful response (median of 5);
#   - syscalls per request under `strace -c -f`, keep-alive and pipelined,
#     edgeshard and nginx (strace slows the server; the counts stay per request).
#
#   perf/extras.sh            (prints markdown; perf/harness.sh appends it)
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=./target/release/examples/bench
cargo build --release --quiet --example bench
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/nginx" "$WORK/www"
chmod 755 "$WORK" "$WORK/www"
NGINX_CONF=perf/nginx-harness.conf
# shellcheck source=perf/lib.sh
. perf/lib.sh

echo "### Memory per idle keep-alive connection"
echo
for name in edgeshard nginx; do
    port=$(free_port)
    start_server "$name" "$port"
    pids="$SERVER_PID $( (pgrep -P "$SERVER_PID" || true) | tr '\n' ' ')"
    echo "- $name: $(python3 perf/probe.py idle 127.0.0.1 "$port" 10000 $pids)"
    stop_server
done
echo
echo "### Start to first response"
echo
port=$(free_port)
times=$(for _ in 1 2 3 4 5; do python3 perf/probe.py first-response "$port" taskset -c 1 "$EDGE" --shards 1 --listen "127.0.0.1:$port"; done | sort -n | tr '\n' ' ')
echo "- edgeshard (\`--shards 1\`): median $(echo "$times" | awk '{print $3}') ms (runs: $times ms)"
echo
echo "### Syscalls per request (\`strace -c -f\`, 5 s of wrk)"
echo
for name in edgeshard nginx; do
    for mode in keepalive pipelined; do
        port=$(free_port)
        start_server "$name" "$port"
        args=(-c64)
        [ "$mode" = pipelined ] && args=(-c256 -s perf/pipeline.lua)
        sleep 0.3  # let nginx's worker settle so strace attaches to it
        strace -c -f -q -o "$WORK/strace.txt" -p "$SERVER_PID" $( (pgrep -P "$SERVER_PID" || true) | sed 's/^/-p /') &
        tracer=$!
        sleep 0.5
        out=$(taskset -c 0 wrk -t1 -d5s "${args[@]}" "http://127.0.0.1:$port/plaintext")
        kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
        stop_server
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
        # The total line is "% time, seconds, usecs/call, calls[, errors] total":
        # the errors column is left out when there were none.
        calls=$(awk '$NF == "total" {print $4}' "$WORK/strace.txt")
        top=$(awk 'NR > 2 && $1 ~ /^[0-9.]+$/ && $NF != "total" {print $NF}' "$WORK/strace.txt" | head -4 | tr '\n' ' ')
        if [ "$((calls * 100))" -lt "$reqs" ]; then
            # Fewer than one call per hundred requests: strace did not see the
            # process that served them (it attaches to nginx's worker by pid),
            # or its summary was not read right.
            echo "- $name $mode: not measured (strace counted $calls calls for $reqs requests)"
            continue
        fi
        echo "- $name $mode: $(awk -v c="$calls" -v r="$reqs" 'BEGIN {printf "%.2f", c / r}') syscalls per request ($calls calls / $reqs requests; most time in: $top)"
    done
done
