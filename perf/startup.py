#!/usr/bin/env python3
"""Time from exec to the first successful response.

Starts the binary RUNS times on a fresh loopback port and, from the moment
before exec, connects and sends `GET /healthz` in a tight loop (a refused
connect returns at once) until a whole `200` comes back; that moment minus
the first is one sample. The server is then stopped with SIGTERM and must
exit 0. Prints min, median, p90 and max, and writes them to
perf/results/DATE-startup-SHARDS.md.

    perf/startup.py [--runs 30] [--shards N] [BIN]   (default: target/release/edgeshard)

The loop's own cost is in the numbers (a connect attempt is a few µs); the
server's first request is served by a shard that has just started, so
this is also the time to the first byte of a cold shard.
"""
import argparse
import datetime
import os
import socket
import statistics
import subprocess
import sys
import time

REQ = b"GET /healthz HTTP/1.1\r\nHost: startup\r\nConnection: close\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_response(port, deadline):
    while time.perf_counter() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            continue
        try:
            s.sendall(REQ)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200 "):
                return time.perf_counter()
        except OSError:
            pass
        finally:
            s.close()
    raise SystemExit("no response within the deadline")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--shards", type=int)
    ap.add_argument("bin", nargs="?", default="target/release/edgeshard")
    a = ap.parse_args()
    samples = []
    for _ in range(a.runs):
        port = free_port()
        args = [a.bin, "--listen", f"127.0.0.1:{port}", "--access-log", "off"]
        if a.shards:
            args += ["--shards", str(a.shards)]
        t0 = time.perf_counter()
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = first_response(port, t0 + 10)
        samples.append((t1 - t0) * 1000)
        p.terminate()
        _, err = p.communicate(timeout=15)
        if p.returncode != 0:
            raise SystemExit(f"exit {p.returncode}: {err.decode()}")
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    shards = a.shards or len(os.sched_getaffinity(0))
    row = (
        f"exec → first 200, {a.runs} runs, {shards} shard(s): "
        f"min {samples[0]:.2f} ms, median {statistics.median(samples):.2f} ms, "
        f"p90 {p90:.2f} ms, max {samples[-1]:.2f} ms"
    )
    print(row)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[0]
    os.makedirs("perf/results", exist_ok=True)
    with open(f"perf/results/{stamp}-startup-{shards}.md", "w") as f:
        f.write(f"# Start-up time ({rev}, load {load})\n\n`perf/startup.py --runs {a.runs}"
                f"{' --shards ' + str(a.shards) if a.shards else ''} {a.bin}`\n\n{row}\n\n"
                f"samples (ms): {', '.join(f'{s:.2f}' for s in samples)}\n")


if __name__ == "__main__":
    sys.exit(main())
