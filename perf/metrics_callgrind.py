#!/usr/bin/env python3
"""What the metrics cost in instructions per request: the bench example
under callgrind with the metrics on (the default) and off
(`--metrics=false`), keep-alive and pipelined, per request as
(I(12000) - I(2000)) / 10000 (see perf/callgrind.py).

    perf/metrics_callgrind.py [BIN]   (default: target/release/examples/bench)
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind as c  # noqa: E402

def run(binary, extra, mode, n):
    port = c.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "--listen", f"127.0.0.1:{port}", "--shards", "1"] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c.client(port, mode, n)
        server.terminate(); server.wait()
        return c.count(out)[0]
binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/examples/bench"
print("| case | build | instructions per request |")
print("|---|---|---|")
for mode in ("keepalive", "pipelined"):
    for label, extra in (("metrics on", []), ("metrics off", ["--metrics=false"])):
        lo = run(binary, extra, mode, 2000); hi = run(binary, extra, mode, 12000)
        print(f"| {mode} | {label} | {(hi-lo)/10000:.0f} |", flush=True)
