#!/usr/bin/env bash
# Static release binaries of edgeshard for x86_64 and aarch64 Linux, with
# their SHA-256 sums, ready to copy to a host. Run on an x86_64 build
# machine (the aarch64 one is cross-built, see scripts/build-aarch64.sh).
#
#   scripts/release.sh [OUTDIR]      (default: dist/)
#
# Writes OUTDIR/edgeshard-VERSION-x86_64-linux, OUTDIR/edgeshard-VERSION-aarch64-linux
# and OUTDIR/SHA256SUMS (check on the host with `sha256sum -c --ignore-missing`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/arm-lib.sh
. scripts/arm-lib.sh

out=${1:-dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
host=x86_64-unknown-linux-gnu
if [ "$(uname -m)" != x86_64 ]; then
    echo "run this on an x86_64 machine (it cross-builds the aarch64 binary)" >&2
    exit 1
fi

# x86_64: the host's own target, linked statically against glibc.
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$host" --bin edgeshard >&2
x86="target/$host/release/edgeshard"
arm=$(scripts/build-aarch64.sh)
for bin in "$x86" "$arm"; do
    if ! file -L "$bin" | grep -qE "statically linked|static-pie linked"; then
        echo "$bin is not statically linked: $(file -L "$bin")" >&2
        exit 1
    fi
done

mkdir -p "$out"
cp "$x86" "$out/edgeshard-$version-x86_64-linux"
cp "$arm" "$out/edgeshard-$version-aarch64-linux"
(
    cd "$out"
    sha256sum "edgeshard-$version-x86_64-linux" "edgeshard-$version-aarch64-linux" > SHA256SUMS
)
echo "# $out:" >&2
cat "$out/SHA256SUMS"
