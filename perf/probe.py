"""Helpers for perf/extras.sh.

  probe.py idle HOST PORT N PID [PID...]
      RSS of the server processes before and after opening N keep-alive
      connections that each made one request and then sit idle; prints the
      bytes per connection.
  probe.py first-response PORT CMD...
      Starts CMD, polls GET /plaintext on 127.0.0.1:PORT as fast as it can,
      prints the milliseconds from spawn to the first 200, stops CMD.
"""
import resource
import socket
import subprocess
import sys
import time

REQ = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"


def rss_bytes(pids):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def idle(host, port, n, pids):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Warm the server up with a few connections so one-time costs are not counted.
    warm = [socket.create_connection((host, port)) for _ in range(16)]
    for s in warm:
        s.sendall(REQ)
        s.recv(4096)
    time.sleep(0.5)
    before = rss_bytes(pids)
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port))
        s.sendall(REQ)
        conns.append(s)
    for s in conns:
        data = b""
        while b"Hello, World!" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("server closed a connection")
            data += chunk
    time.sleep(1.0)
    after = rss_bytes(pids)
    print(f"{(after - before) / n:.0f} bytes per idle connection "
          f"(RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB for {n} connections)")


def first_response(port, cmd):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - start < 10:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(REQ)
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        print(f"{(time.monotonic() - start) * 1000:.1f}")
                        return
            except OSError:
                time.sleep(0.0002)
        raise SystemExit("no response within 10 s")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    if sys.argv[1] == "idle":
        idle(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), [int(p) for p in sys.argv[5:]])
    else:
        first_response(int(sys.argv[2]), sys.argv[3:])
