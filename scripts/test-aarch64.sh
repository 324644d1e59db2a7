#!/usr/bin/env bash
# Runs the unit tests of edgeshard and edgeshard-routing built for aarch64,
# under qemu-aarch64 (user-mode emulation) as cargo's runner. qemu-user
# does not emulate io_uring, so the server cannot run there; these are the
# tests that need no ring (parsing, routing, encoding, Dates, config,
# static-file rules). scripts/arm-smoke.sh boots a real arm64 kernel for
# the server itself.
#
#   scripts/test-aarch64.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/arm-lib.sh
. scripts/arm-lib.sh

ensure_cross_toolchain
command -v qemu-aarch64 >/dev/null || apt_install qemu-user
cross_env
# Static test binaries: qemu-aarch64 needs no aarch64 libc beside them.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
cargo test --locked --target "$AARCH64" -p edgeshard-routing --lib --tests "$@"
cargo test --locked --target "$AARCH64" -p edgeshard --lib "$@"
