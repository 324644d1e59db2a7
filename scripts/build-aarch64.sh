#!/usr/bin/env bash
# Builds a statically linked aarch64 release binary of edgeshard on this
# (x86_64) machine, installing the cross toolchain if it is missing, and
# prints where the binary is.
#
#   scripts/build-aarch64.sh [--example NAME]   (default: the edgeshard binary)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/arm-lib.sh
. scripts/arm-lib.sh

what=(--bin edgeshard)
out=edgeshard
if [ "${1:-}" = --example ]; then
    what=(--example "$2")
    out="examples/$2"
fi

ensure_cross_toolchain
command -v file >/dev/null || apt_install file
cross_env
cargo build --release --locked --target "$AARCH64" "${what[@]}" >&2
bin="target/$AARCH64/release/$out"
# Static, or it would not run in the boot test's initramfs (nor on a host
# with another glibc).
if ! file -L "$bin" | grep -qE "ARM aarch64.*(statically linked|static-pie linked)"; then
    echo "$bin is not a static aarch64 executable: $(file -L "$bin")" >&2
    exit 1
fi
echo "$bin"
