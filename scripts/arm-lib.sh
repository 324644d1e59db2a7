# Shared by the ARM scripts (sourced): installing what they need, once,
# and the cross toolchain's environment. Every function reuses what is
# already there; apt-get update runs at most once per script run.

AARCH64=aarch64-unknown-linux-gnu
APT_UPDATED=${APT_UPDATED:-0}

# apt-get install PACKAGES, after one apt-get update per run.
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "need root to install: $* (or install them yourself)" >&2
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The aarch64 standard library (rustup) and a C cross compiler and libc
# (Debian): glommio, mimalloc and zstd compile C for the target, and the
# linker is gcc's.
ensure_cross_toolchain() {
    if ! rustup target list --installed | grep -qx "$AARCH64"; then
        echo "# rustup target add $AARCH64" >&2
        if ! rustup target add "$AARCH64" >&2; then
            echo "rustup could not fetch the $AARCH64 standard library: no ARM build" >&2
            return 1
        fi
    fi
    if ! command -v aarch64-linux-gnu-gcc >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/libc.a ]; then
        echo "# installing gcc-aarch64-linux-gnu libc6-dev-arm64-cross" >&2
        apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    fi
}

# Environment for cargo: the cross C compiler and linker, and a static
# binary (crt-static) so it runs on any aarch64 Linux, in an initramfs too.
cross_env() {
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
}
