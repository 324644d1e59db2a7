#!/usr/bin/env bash
# The side-by-side harness: edgeshard (examples/bench, --shards 1), nginx
# (one worker), hyper (current-thread tokio) and may_minihttp (one worker),
# each pinned to CPU 1 while wrk runs pinned to CPU 0. Every case runs in
# rounds that rotate the servers (A B C D A B C D ...) so drift hits all of
# them; the summary reports medians.
#
#   perf/harness.sh [--rounds N] [--duration 10s] [--cases a,b] [--no-extras]
#                   [--baseline BIN] [--force]
#
# --baseline BIN adds another edgeshard binary (say, examples/bench built
# from the commit before a change) to every case, in the same rotation, so
# a change's cost is a same-run ratio rather than two runs' difference.
# The README's summary is updated only by a run of every case without a
# baseline.
#
# Per run it records req/s, p99 (for the pipelined case, where wrk's
# percentiles are not batch latencies, the mean batch latency instead; see
# perf/pipeline.lua), errors, non-2xx, and the server's user and system CPU
# seconds from /proc, hence requests per server CPU-second.
# Results: perf/results/DATE-HHMM-harness.md and the README summary.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
DURATION=10s
ALL_CASES=plaintext,pipelined,json,static1k,static1m,notfound
CASES=$ALL_CASES
FORCE=0
EXTRAS=1
BASELINE=
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --cases) CASES=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        --no-extras) EXTRAS=0; shift ;;
        --baseline) BASELINE=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

for tool in wrk nginx taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "harness needs $tool (apt-get install wrk nginx util-linux curl)" >&2; exit 1; }
done

# A busy machine makes every number meaningless: refuse unless forced.
load=$(awk '{print $1}' /proc/loadavg)
if awk -v l="$load" 'BEGIN {exit !(l > 0.7)}'; then
    echo "!!! load average is $load: the machine is busy; results would be noise." >&2
    [ "$FORCE" = 1 ] || { echo "!!! refusing to run (pass --force to run anyway)" >&2; exit 3; }
    echo "!!! running anyway (--force); treat these numbers with suspicion" >&2
fi

echo "# building edgeshard and the peers" >&2
cargo build --release --quiet --example bench
cargo build --release --quiet --manifest-path perf/peers/hyper/Cargo.toml
cargo build --release --quiet --manifest-path perf/peers/may/Cargo.toml
EDGE=./target/release/examples/bench
HYPER=perf/peers/hyper/target/release/peer-hyper
MAY=perf/peers/may/target/release/peer-may
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
    echo "--baseline $BASELINE: not an executable" >&2
    exit 2
fi

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/www" "$WORK/nginx"
head -c 1024 /dev/urandom > "$WORK/www/1k.bin"
head -c $((1024 * 1024)) /dev/urandom > "$WORK/www/1m.bin"
# nginx's worker runs unprivileged: let it reach the fixtures.
chmod 755 "$WORK" "$WORK/www" && chmod 644 "$WORK/www/"*
TCK=$(getconf CLK_TCK)

NGINX_CONF=perf/nginx-harness.conf
# shellcheck source=perf/lib.sh
. perf/lib.sh

# Which servers take part in a case: the peers serve no files.
servers_for() {
    local base=
    [ -n "$BASELINE" ] && base=baseline
    case $1 in
        static1k | static1m) echo edgeshard $base nginx ;;
        *) echo edgeshard $base nginx hyper may ;;
    esac
}

case_path() {
    case $1 in
        plaintext | pipelined) echo /plaintext ;;
        json) echo /json ;;
        static1k) echo /1k.bin ;;
        static1m) echo /1m.bin ;;
        notfound) echo /not-found ;;
    esac
}

case_conns() {
    case $1 in
        pipelined) echo 256 ;;
        static1m) echo 16 ;;
        *) echo 64 ;;
    esac
}

RAW="$WORK/raw.tsv"
run_one() { # case server
    local case=$1 name=$2 port out
    port=$(free_port)
    start_server "$name" "$port"
    local url="http://127.0.0.1:$port$(case_path "$case")"
    local conns script=()
    conns=$(case_conns "$case")
    [ "$case" = pipelined ] && script=(-s perf/pipeline.lua)
    taskset -c 0 wrk -t1 -c"$conns" -d2s "${script[@]}" "$url" >/dev/null
    read -r u0 s0 < <(cpu_ticks "$SERVER_PID")
    out=$(taskset -c 0 wrk -t1 -c"$conns" -d"$DURATION" --latency "${script[@]}" "$url")
    read -r u1 s1 < <(cpu_ticks "$SERVER_PID")
    stop_server
    python3 perf/wrk_row.py "$case" "$name" "$DURATION" "$TCK" "$u0" "$s0" "$u1" "$s1" "$conns" <<<"$out" | tee -a "$RAW"
}

IFS=, read -r -a case_list <<<"$CASES"
for case in "${case_list[@]}"; do
    for round in $(seq "$ROUNDS"); do
        for name in $(servers_for "$case"); do
            run_one "$case" "$name"
        done
    done
done

# Date and UTC start time, so runs on one day do not overwrite each other.
STAMP=$(date -u +%F-%H%M)
mkdir -p perf/results
OUT="perf/results/$STAMP-harness.md"
BASELINE_NOTE=${BASELINE:+baseline: $BASELINE}
python3 perf/summarize.py "$RAW" "$ROUNDS" "$DURATION" "$BASELINE_NOTE" > "$OUT"
[ "$EXTRAS" = 1 ] && perf/extras.sh >> "$OUT"
# The rows behind the medians, in the order they ran, to check or recompute.
{
    printf '\n### Raw rows\n\n'
    printf 'case, server, req/s, latency ms, errors, non-2xx, requests, user s, sys s (in run order):\n\n```\n'
    cat "$RAW"
    printf '```\n'
} >> "$OUT"
if [ "$CASES" = "$ALL_CASES" ] && [ -z "$BASELINE" ]; then
    python3 perf/summarize.py --readme "$RAW" "$ROUNDS" "$DURATION" "" "$OUT" README.md
    echo "# wrote $OUT and the README summary" >&2
else
    echo "# wrote $OUT (a partial or baseline run: README summary left alone)" >&2
fi
cat "$OUT"
