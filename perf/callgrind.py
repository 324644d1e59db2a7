#!/usr/bin/env python3
"""Instructions and memcpy calls per request, counted by callgrind.

Wall-clock numbers on a shared machine move by 10% from round to round;
callgrind's instruction counts repeat. This runs the bench example under
`valgrind --tool=callgrind`, sends it N requests for /plaintext on one
connection, one at a time (keepalive) or 16 per write (pipelined), and
reports per request (I(22000) - I(2000)) / 20000, which takes start-up and
shutdown out; likewise the calls to memcpy/memmove (moves of large values
that the compiler did not elide). Each point is the mean of two runs.

    perf/callgrind.py [BIN ...]   (default: target/release/examples/bench)
    perf/callgrind.py --proxy [BIN ...]

With --proxy, each BIN runs as a proxy (`--proxy /app/=UPSTREAM`) in
front of an upstream that is the first BIN run natively (not counted),
and the requests are `GET /app/plaintext`: the instructions are the
proxy's per proxied request.

Build first: cargo build --release --example bench
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

REQ = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"
PROXIED = b"GET /app/plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"
LOW, HIGH = 2000, 22000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port, mode, n, req=REQ):
    for _ in range(300):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("the server did not come up")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    batch = 1 if mode == "keepalive" else 16
    done = 0
    while done < n:
        k = min(batch, n - done)
        s.sendall(req * k)
        got = b""
        while got.count(b"HTTP/1.1 ") < k:
            data = s.recv(1 << 20)
            if not data:
                sys.exit("the server closed the connection")
            got += data
        done += k
    s.close()


def count(out_file):
    """Total instructions, and calls into memcpy/memmove, from a callgrind file."""
    names, total, copies, cfn = {}, 0, 0, None
    for line in open(out_file):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
        elif line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            cfn = names.get(m.group(1), "") if m else line
        elif line.startswith("calls=") and cfn and re.search(r"mem(cpy|move)", cfn):
            copies += int(line.split("=")[1].split()[0])
    return total, copies


def run(binary, mode, n, upstream=None):
    port = free_port()
    extra, req = [], REQ
    if upstream is not None:
        extra, req = ["--proxy", f"/app/=http://127.0.0.1:{upstream}"], PROXIED
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             binary, "--listen", f"127.0.0.1:{port}", "--shards", "1"] + extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client(port, mode, n, req)
        server.terminate()
        server.wait()
        return count(out)


def main():
    args = sys.argv[1:]
    proxy = "--proxy" in args
    binaries = [a for a in args if a != "--proxy"] or ["target/release/examples/bench"]
    upstream, up = None, None
    if proxy:
        upstream = free_port()
        up = subprocess.Popen(
            [binaries[0], "--listen", f"127.0.0.1:{upstream}", "--shards", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        table(binaries, upstream)
    finally:
        if up is not None:
            up.terminate()
            up.wait()


def table(binaries, upstream):
    print("| build | case | instructions per request | memcpy calls per request |")
    print("|---|---|---|---|")
    for binary in binaries:
        for mode in ("keepalive", "pipelined"):
            points = {}
            for n in (LOW, HIGH):
                runs = [run(binary, mode, n, upstream) for _ in range(2)]
                points[n] = [sum(r[i] for r in runs) / 2 for i in (0, 1)]
            per = [(points[HIGH][i] - points[LOW][i]) / (HIGH - LOW) for i in (0, 1)]
            print(f"| {binary} | {mode} | {per[0]:.0f} | {per[1]:.1f} |")


if __name__ == "__main__":
    main()
