#!/usr/bin/env python3
"""The host's checks of scripts/arm-smoke.sh, against the servers running
in the arm64 guest through forwarded loopback ports.

    arm_smoke_checks.py SITE_PORT FILES_PORT CPUS

SITE_PORT serves the embedded site and proxies /files/ to the other
server, FILES_PORT `--root /www` (hello.txt, and data.bin: bytes 0..255
sixty-four times). Each check is a function
named check_*; they run in the order written and stop at the first
failure with what was expected and what came back. Add a check by adding
a function.
"""
import json
import socket
import sys
import urllib.request

SITE, FILES, CPUS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DATA = bytes(range(256)) * 64


def request(port, path, method="GET", headers=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: expected {want!r}, got {got!r}")


def check_embedded_demo_page():
    status, headers, body = request(SITE, "/")
    expect("GET / status", status, 200)
    expect("GET / content type", headers.get("Content-Type"), "text/html; charset=utf-8")
    if b"<title>edgeshard</title>" not in body:
        raise AssertionError(f"GET /: not the demo page: {body[:200]!r}")


def check_static_file_and_a_range():
    status, _, body = request(FILES, "/hello.txt")
    expect("GET /hello.txt", (status, body), (200, b"hello from arm64\n"))
    status, headers, body = request(FILES, "/data.bin", headers={"Range": "bytes=1000-1099"})
    expect("range status", status, 206)
    expect("Content-Range", headers.get("Content-Range"), f"bytes 1000-1099/{len(DATA)}")
    expect("range bytes", body, DATA[1000:1100])
    status, _, body = request(FILES, "/data.bin")
    expect("whole data.bin", (status, len(body), body == DATA), (200, len(DATA), True))


def check_one_shard_per_cpu():
    status, headers, body = request(SITE, "/api/stats")
    expect("/api/stats status", status, 200)
    stats = json.loads(body)
    expect("shards_total", stats["shards_total"], CPUS)
    expect("shards answering", sorted(s["shard"] for s in stats["shards"]), list(range(CPUS)))
    expect("Cache-Control", headers.get("Cache-Control"), "no-store")


READYZ_SERIES = 'edgeshard_requests_total{route="GET /readyz",method="GET",status="2xx"} '


def readyz_count():
    """The /readyz requests /metrics has counted so far (the checks may
    run more than once against one server)."""
    _, _, body = request(SITE, "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(READYZ_SERIES):
            return int(float(line[len(READYZ_SERIES):]))
    return 0


def check_readyz_and_metrics_from_every_shard():
    before = readyz_count()
    status, headers, body = request(SITE, "/readyz")
    expect("GET /readyz", (status, body, headers.get("Cache-Control")), (200, b"ready", "no-store"))
    status, headers, body = request(SITE, "/metrics")
    expect("/metrics status", status, 200)
    expect("/metrics type", headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
    text = body.decode()
    for line in (f'edgeshard_shards{{state="configured"}} {CPUS}',
                 f'edgeshard_shards{{state="answered"}} {CPUS}'):
        if line not in text.splitlines():
            raise AssertionError(f"/metrics lacks {line!r}:\n{text[:2000]}")
    if f"{READYZ_SERIES}{before + 1}" not in text.splitlines():
        raise AssertionError(f"/metrics did not count the /readyz request (had {before}):\n{text[:2000]}")


def check_json_echo():
    doc = json.dumps({"arch": "aarch64", "n": [1, 2, 3]}).encode()
    status, headers, body = request(SITE, "/api/echo", method="POST",
                                    headers={"Content-Type": "application/json"}, body=doc)
    expect("POST /api/echo", (status, headers.get("Content-Type"), body),
           (200, "application/json", doc))


def check_sixteen_pipelined_requests():
    with socket.create_connection(("127.0.0.1", SITE), timeout=30) as s:
        batch = b"".join(b"GET /healthz?i=%d HTTP/1.1\r\nHost: arm\r\n\r\n" % i for i in range(16))
        s.sendall(batch)
        got = b""
        while got.count(b"HTTP/1.1 200 OK\r\n") < 16 or not got.endswith(b"ok"):
            data = s.recv(65536)
            if not data:
                raise AssertionError(f"closed after {got.count(b'HTTP/1.1 ')} responses")
            got += data
        expect("responses to 16 pipelined requests", got.count(b"HTTP/1.1 200 OK\r\n"), 16)
        expect("bodies", got.count(b"\r\n\r\nok"), 16)


def check_the_proxy_to_the_other_server():
    status, headers, body = request(SITE, "/files/data.bin")
    expect("GET /files/data.bin through the proxy", (status, len(body), body == DATA),
           (200, len(DATA), True))
    status, headers, body = request(SITE, "/files/data.bin", headers={"Range": "bytes=10-19"})
    expect("a range through the proxy", (status, headers.get("Content-Range"), body),
           (206, f"bytes 10-19/{len(DATA)}", DATA[10:20]))
    doc = b"x" * 200_000
    status, _, body = request(SITE, "/files/api/echo", method="POST",
                              headers={"Content-Type": "application/octet-stream"}, body=doc)
    expect("a 200 kB POST through the proxy", (status, len(body), body == doc), (200, len(doc), True))


def main():
    checks = [(name, f) for name, f in globals().items() if name.startswith("check_")]
    for name, f in checks:
        f()
        print(f"# ok: {name[6:].replace('_', ' ')}", file=sys.stderr)


if __name__ == "__main__":
    main()
