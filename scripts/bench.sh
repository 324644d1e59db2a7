#!/usr/bin/env bash
# Benchmarks: criterion micro-benchmarks, then wrk against nginx.
#   scripts/bench.sh [rounds=3] [duration=10s] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench parse
cargo bench --bench route
perf/vs-nginx.sh healthz "$@"
perf/vs-nginx.sh plaintext "$@"
perf/vs-nginx.sh json "$@"
