"""One harness row from wrk's output (stdin) and the server's CPU ticks.

Usage: wrk_row.py CASE SERVER DURATION CLK_TCK U0 S0 U1 S1 CONNS
Prints a tab-separated row: case, server, req/s, latency ms, errors,
non-2xx, requests, user seconds, system seconds. The latency is wrk's p99,
except for the pipelined case, where wrk's percentiles are not batch
latencies (see perf/pipeline.lua) and the mean batch latency by Little's
law (connections x 16 / req/s) is given instead.
"""
import re
import sys

case, server, duration, tck, u0, s0, u1, s1, conns = sys.argv[1:10]
out = sys.stdin.read()


def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
if case == "pipelined":
    p99 = int(conns) * 16 / rps * 1000.0 if rps else 0.0
else:
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
requests = int(re.search(r"(\d+) requests in", out).group(1))
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
non2xx = int(m.group(1)) if m else 0
tck = float(tck)
user = (int(u1) - int(u0)) / tck
system = (int(s1) - int(s0)) / tck
print(f"{case}\t{server}\t{rps:.0f}\t{p99:.3f}\t{errors}\t{non2xx}\t{requests}\t{user:.2f}\t{system:.2f}")
