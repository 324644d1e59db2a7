#!/usr/bin/env bash
# The aarch64 boot test: boots Debian's arm64 kernel under
# qemu-system-aarch64 (TCG, -M virt -cpu cortex-a72, 2 vCPUs) with an
# initramfs holding busybox and the static aarch64 edgeshard, and checks
# from the host, through forwarded loopback ports, that the server works
# there: glommio's io_uring path on an arm64 kernel, one shard per CPU.
#
#   scripts/arm-smoke.sh [BINARY]    (default: scripts/build-aarch64.sh's)
#
# ARM_SMOKE_VERBOSE=1 prints the serial console at the end, pass or fail.
# ARM_SMOKE_ROUNDS=N runs the host's checks N times against one boot.
#
# In the guest, /init loads the virtio-net modules, brings up the network
# and starts two servers: the embedded site on :8080, and --root /www (a
# directory put in the initramfs) on :8081. When both answer inside the
# guest it prints "SMOKE: ready" on the serial console; the host then runs
# scripts/arm_smoke_checks.py against the forwarded ports, writes
# "upgrade" to the console (the guest sends SIGUSR2 to the files server,
# whose old process must exit 0 once the new one serves; the host runs
# the checks again), then "stop", and the guest sends SIGTERM to both
# servers and prints "SMOKE: exit A B", which must be 0 0 (for the
# upgraded files server, which is not the guest shell's child: that it
# went away within 10 s). The VM is
# killed by its PID whatever happens; on failure the serial log is printed.
#
# To add a check: a function in scripts/arm_smoke_checks.py. To add a
# guest service (an upstream, TLS files): GUEST_SETUP below and the ports.
#
# The kernel and busybox come from Debian's arm64 packages (apt-get
# download, after `dpkg --add-architecture arm64`), cached in
# target/arm-smoke/ (ARM_SMOKE_CACHE) for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/arm-lib.sh
. scripts/arm-lib.sh

READY_TIMEOUT=${ARM_SMOKE_READY_TIMEOUT:-240}
STOP_TIMEOUT=${ARM_SMOKE_STOP_TIMEOUT:-60}
ROUNDS=${ARM_SMOKE_ROUNDS:-1}
CPUS=2
CACHE=${ARM_SMOKE_CACHE:-target/arm-smoke}
BIN=${1:-}

for tool in qemu-system-aarch64:qemu-system-arm cpio:cpio file:file curl:curl python3:python3; do
    command -v "${tool%%:*}" >/dev/null || apt_install "${tool#*:}"
done
if [ -z "$BIN" ]; then
    BIN=$(scripts/build-aarch64.sh)
fi
if ! file -L "$BIN" | grep -qE "ARM aarch64.*(statically linked|static-pie linked)"; then
    echo "$BIN: not a static aarch64 executable" >&2
    exit 1
fi

# Debian's arm64 kernel (its vmlinuz is a raw Image qemu boots with
# -kernel), its virtio-net modules, and busybox-static.
fetch_guest_parts() {
    [ -s "$CACHE/vmlinuz" ] && [ -x "$CACHE/busybox" ] && return 0
    mkdir -p "$CACHE/debs"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        APT_UPDATED=0
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    local kernel
    kernel=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/.*Depends: \(linux-image-[^ ]*\)/\1/p' | head -n1)
    [ -n "$kernel" ] || { echo "no linux-image-arm64 package found" >&2; return 1; }
    rm -f "$CACHE"/debs/*.deb
    (cd "$CACHE/debs" && apt-get download -q "$kernel" busybox-static:arm64 2>/dev/null)
    local x="$CACHE/extract"
    rm -rf "$x" && mkdir -p "$x"
    for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$x"; done
    mkdir -p "$CACHE/modules"
    for m in failover net_failover virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net; do
        find "$x/lib/modules" -name "$m.ko*" -exec cp {} "$CACHE/modules/" \;
    done
    cp "$x/bin/busybox" "$CACHE/busybox"
    cp "$x"/boot/vmlinuz-* "$CACHE/vmlinuz"
    rm -rf "$x"
}
fetch_guest_parts

WORK=$(mktemp -d)
QEMU_PID=
cleanup() {
    local status=$?
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill -KILL "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
    if { [ "$status" != 0 ] || [ -n "${ARM_SMOKE_VERBOSE:-}" ]; } && [ -f "$WORK/serial.log" ]; then
        echo "----- serial console -----" >&2
        cat "$WORK/serial.log" >&2
        echo "--------------------------" >&2
    fi
    if [ -n "${CAT_PID:-}" ]; then
        kill "$CAT_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# The initramfs: busybox, the server, the modules, the files to serve.
root="$WORK/root"
mkdir -p "$root/bin" "$root/lib/modules" "$root/www" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$CACHE/busybox" "$root/bin/busybox"
cp "$BIN" "$root/edgeshard"
cp "$CACHE"/modules/* "$root/lib/modules/"
printf 'hello from arm64\n' > "$root/www/hello.txt"
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 64)' > "$root/www/data.bin"
GUEST_SETUP=''
cat > "$root/init" <<INIT
#!/bin/busybox sh
# The console is the serial port: the host reads it and writes "stop" to it.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec < /dev/console > /dev/console 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in failover net_failover virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_net; do
    insmod /lib/modules/\$m.ko || echo "SMOKE: insmod \$m failed"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "SMOKE: kernel \$(uname -r) \$(uname -m), \$(grep -c ^processor /proc/cpuinfo) CPUs, memlock \$(ulimit -l)"
$GUEST_SETUP
/edgeshard --listen 0.0.0.0:8080 --proxy /files/=http://127.0.0.1:8081 > /tmp/site.log 2>&1 &
SITE=\$!
/edgeshard --listen 0.0.0.0:8081 --root /www > /tmp/files.log 2>&1 &
FILES=\$!
n=0
until wget -q -O /dev/null http://127.0.0.1:8080/healthz && wget -q -O /dev/null http://127.0.0.1:8081/healthz; do
    n=\$((n + 1))
    if [ \$n -gt 600 ] || ! kill -0 \$SITE \$FILES 2>/dev/null; then
        echo "SMOKE: not ready"
        cat /tmp/site.log /tmp/files.log
        poweroff -f
    fi
    sleep 0.2
done
echo "SMOKE: ready"
read -r command
if [ "\$command" = upgrade ]; then
    # A binary upgrade of the files server: the new process takes its
    # sockets; the old one must exit 0. The new one is not this shell's
    # child, so at the stop only its going away is seen.
    kill -USR2 \$FILES
    wait \$FILES
    old=\$?
    NEW=\$(sed -n 's/.*upgrade: pid \\([0-9]*\\) is ready.*/\\1/p' /tmp/files.log)
    echo "SMOKE: upgraded \$old \${NEW:-none}"
    read -r command
fi
echo "SMOKE: got \$command; the guest's TCP sockets (queues in hex), then SIGTERM to both servers"
cat /proc/net/tcp
kill -TERM \$SITE \$FILES \$NEW 2>/dev/null
wait \$SITE
site=\$?
if [ -n "\$NEW" ]; then
    files=1
    for _ in \$(seq 100); do
        [ -d /proc/\$NEW ] && ! grep -q '^State:.*Z' /proc/\$NEW/status || { files=0; break; }
        sleep 0.1
    done
else
    wait \$FILES
    files=\$?
fi
cat /tmp/site.log /tmp/files.log
echo "SMOKE: exit \$site \$files"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initramfs.gz"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SITE_PORT=$(free_port)
FILES_PORT=$(free_port)

# The console: qemu reads WORK/serial.in and writes WORK/serial.out.
mkfifo "$WORK/serial.in" "$WORK/serial.out"
: > "$WORK/serial.log"
cat "$WORK/serial.out" >> "$WORK/serial.log" &
CAT_PID=$!
exec 3<>"$WORK/serial.in"

started=$(date +%s)
qemu-system-aarch64 -M virt -cpu cortex-a72 -smp "$CPUS" -m 1024 -accel tcg \
    -kernel "$CACHE/vmlinuz" -initrd "$WORK/initramfs.gz" \
    -append "console=ttyAMA0 rdinit=/init loglevel=4 panic=-1" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SITE_PORT-:8080,hostfwd=tcp:127.0.0.1:$FILES_PORT-:8081" \
    -device virtio-net-pci,netdev=n0,romfile= \
    -display none -monitor none -serial "pipe:$WORK/serial" -no-reboot &
QEMU_PID=$!

# Waits until the console shows a line starting with $1, or $2 seconds pass.
wait_for() {
    local deadline=$(($(date +%s) + $2))
    while ! grep -q "^$1" "$WORK/serial.log"; do
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            echo "the VM stopped before \"$1\"" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "no \"$1\" on the console within $2 s" >&2
            return 1
        fi
        sleep 0.5
    done
}

wait_for "SMOKE: ready" "$READY_TIMEOUT"
echo "# guest ready after $(($(date +%s) - started)) s: $(grep '^SMOKE: kernel' "$WORK/serial.log" | tr -d '\r')" >&2
# A failed check still stops the servers, so the console shows what they
# logged (the log is printed on failure).
stop_guest_after_failure() {
    echo "a check failed; stopping the servers to see their logs" >&2
    echo stop >&3
    wait_for "SMOKE: exit" 30 || true
    exit 1
}
for round in $(seq "$ROUNDS"); do
    if [ "$ROUNDS" = 1 ]; then
        python3 scripts/arm_smoke_checks.py "$SITE_PORT" "$FILES_PORT" "$CPUS" || stop_guest_after_failure
    else
        python3 scripts/arm_smoke_checks.py "$SITE_PORT" "$FILES_PORT" "$CPUS" 2>&1 | sed "s/^/[$round] /" >&2
        [ "${PIPESTATUS[0]}" = 0 ] || stop_guest_after_failure
    fi
done
# A binary upgrade (SIGUSR2) of the files server: the new process serves
# the same forwarded port; the checks run again against it.
echo upgrade >&3
wait_for "SMOKE: upgraded" "$STOP_TIMEOUT" || stop_guest_after_failure
upgraded=$(grep '^SMOKE: upgraded' "$WORK/serial.log" | tr -d '\r')
case $upgraded in
    "SMOKE: upgraded 0 "[0-9]*) echo "# $upgraded (old exit status, new pid)" >&2 ;;
    *) echo "the upgrade failed: $upgraded" >&2; stop_guest_after_failure ;;
esac
python3 scripts/arm_smoke_checks.py "$SITE_PORT" "$FILES_PORT" "$CPUS" || stop_guest_after_failure
echo stop >&3
wait_for "SMOKE: exit" "$STOP_TIMEOUT"
result=$(grep '^SMOKE: exit' "$WORK/serial.log" | tr -d '\r')
if [ "$result" != "SMOKE: exit 0 0" ]; then
    echo "the servers did not exit 0 on SIGTERM: $result" >&2
    exit 1
fi
for _ in $(seq 50); do
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 0.2
done
echo "# arm64 boot test passed in $(($(date +%s) - started)) s: the files server upgraded (its old process exited 0), then both stopped on SIGTERM" >&2
