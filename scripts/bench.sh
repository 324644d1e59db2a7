#!/usr/bin/env bash
# Benchmarks: criterion micro-benchmarks, then wrk against nginx.
#   scripts/bench.sh [rounds=3] [duration=10s] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench parse
perf/healthz.sh "$@"
