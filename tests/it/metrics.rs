//! `GET /metrics` over real sockets, parsed by Python's
//! `prometheus_client` (the parser Prometheus users meet): the counters
//! match the requests the test made, by route, method and status class.

use crate::common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use edgeshard::Config;

fn start(tweak: impl FnOnce(&mut Config)) -> (edgeshard::ServerHandle, SocketAddr) {
    let mut config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: NonZeroUsize::new(2),
        ..Config::default()
    };
    tweak(&mut config);
    let h = edgeshard::start(config, edgeshard::builtin::app).expect("server starts");
    let addr = h.local_addrs()[0];
    (h, addr)
}

/// One request on a connection of its own (so both shards see some);
/// the response.
fn once(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    read_to_close(&mut s)
}

/// The samples of a scrape as `prometheus_client` parses them:
/// `(name, labels as k=v joined by ",", value)`.
fn parse(text: &[u8]) -> Vec<(String, String, f64)> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}\t{labels}\t{s.value}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let name = f.next().unwrap().to_string();
            let labels = f.next().unwrap().to_string();
            let value = f.next().unwrap().parse().unwrap();
            (name, labels, value)
        })
        .collect()
}

/// `GET /metrics` on a connection of its own, parsed.
fn scrape(addr: SocketAddr) -> Vec<(String, String, f64)> {
    let raw = once(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    parse(&raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..])
}

fn value(samples: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| *v)
        .sum()
}

fn sum(samples: &[(String, String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| *v)
        .sum()
}

#[test]
fn metrics_count_what_was_served_and_parse_with_prometheus_client() {
    if !have("python3", &["-c", "import prometheus_client"]) {
        return;
    }
    let (h, addr) = start(|_| {});
    for _ in 0..5 {
        once(
            addr,
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
    }
    for _ in 0..3 {
        once(
            addr,
            b"GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
    }
    for _ in 0..2 {
        once(
            addr,
            b"POST /api/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
              Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        );
    }
    once(
        addr,
        b"PUT /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    let bad = once(addr, b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        bad.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&bad)
    );

    let raw = once(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let head = normalize(&raw);
    assert!(
        head.starts_with(
            "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        ),
        "{head}"
    );
    assert!(head.contains("\r\nCache-Control: no-store\r\n"), "{head}");
    let body = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    let s = parse(body);
    let requests = "edgeshard_requests_total";
    assert_eq!(
        value(&s, requests, "method=GET,route=GET /healthz,status=2xx"),
        5.0
    );
    assert_eq!(
        value(&s, requests, "method=GET,route=static,status=4xx"),
        3.0
    );
    assert_eq!(
        value(&s, requests, "method=POST,route=POST /api/echo,status=2xx"),
        2.0
    );
    // The router's own 405.
    assert_eq!(
        value(&s, requests, "method=PUT,route=other,status=4xx"),
        1.0
    );
    assert_eq!(sum(&s, requests), 11.0, "{s:?}");
    assert_eq!(
        value(&s, "edgeshard_rejected_requests_total", "status=400"),
        1.0
    );
    let hist = "edgeshard_request_duration_seconds";
    assert_eq!(
        value(&s, &format!("{hist}_count"), "route=GET /healthz"),
        5.0
    );
    assert_eq!(
        value(&s, &format!("{hist}_bucket"), "le=+Inf,route=GET /healthz"),
        5.0
    );
    assert!(value(&s, &format!("{hist}_sum"), "route=GET /healthz") > 0.0);
    // Per shard: 12 answered before the scrape (the 400 too), on 13
    // connections (the scrape's is open).
    assert_eq!(sum(&s, "edgeshard_shard_requests_total"), 12.0);
    assert_eq!(sum(&s, "edgeshard_connections_total"), 13.0);
    assert_eq!(sum(&s, "edgeshard_connections_open"), 1.0);
    assert_eq!(value(&s, "edgeshard_shards", "state=answered"), 2.0);
    assert!(value(&s, "edgeshard_received_bytes_total", "") > 400.0);
    // "ok\n" five times, the echoes, the 404s' and the 405's bodies.
    assert!(value(&s, "edgeshard_response_body_bytes_total", "") > 25.0);
    h.shutdown();
}

#[test]
fn with_the_metrics_off_metrics_is_a_404() {
    let (h, addr) = start(|c| c.metrics = false);
    let raw = once(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        raw.starts_with(b"HTTP/1.1 404 Not Found\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    h.shutdown();
}

#[test]
fn proxied_requests_are_counted_by_mount_and_by_upstream_and_outcome() {
    if !have("python3", &["-c", "import prometheus_client"]) {
        return;
    }
    use edgeshard::proxy::{MountSettings, UpstreamUrl};
    let (up, up_addr) = start(|_| {});
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let (h, addr) = start(|c| {
        c.proxy.mounts = vec![
            MountSettings::new(
                "/up/",
                vec![UpstreamUrl::parse(&format!("http://{up_addr}")).unwrap()],
            ),
            MountSettings::new(
                "/dead/",
                vec![UpstreamUrl::parse(&format!("http://{dead}")).unwrap()],
            ),
        ];
    });
    for _ in 0..3 {
        let r = once(
            addr,
            b"GET /up/healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    let r = once(
        addr,
        b"GET /dead/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(r.starts_with(b"HTTP/1.1 502 "));
    let s = scrape(addr);
    let requests = "edgeshard_requests_total";
    assert_eq!(
        value(&s, requests, "method=GET,route=proxy /up/,status=2xx"),
        3.0
    );
    assert_eq!(
        value(&s, requests, "method=GET,route=proxy /dead/,status=5xx"),
        1.0
    );
    let upstreams = "edgeshard_upstream_requests_total";
    assert_eq!(
        value(&s, upstreams, &format!("outcome=ok,upstream={up_addr}")),
        3.0
    );
    assert_eq!(
        value(
            &s,
            upstreams,
            &format!("outcome=connect failed,upstream={dead}")
        ),
        1.0
    );
    // What the proxy keeps per upstream: the dead one ejected once (one
    // failure does it by default), the live one's answers timed and its
    // connections pooled.
    let up_labels = format!("mount=/up/,upstream=http://{up_addr}");
    let dead_labels = format!("mount=/dead/,upstream=http://{dead}");
    assert_eq!(
        value(&s, "edgeshard_upstream_ejections_total", &dead_labels),
        1.0,
        "{s:?}"
    );
    assert_eq!(
        value(&s, "edgeshard_upstream_ejections_total", &up_labels),
        0.0
    );
    assert_eq!(
        value(&s, "edgeshard_upstream_response_seconds_count", &up_labels),
        3.0
    );
    let idle: f64 = s
        .iter()
        .filter(|(n, l, _)| {
            n == "edgeshard_upstream_idle_connections"
                && l.starts_with("mount=/up/,shard=")
                && l.ends_with(&format!(",upstream=http://{up_addr}"))
        })
        .map(|(_, _, v)| v)
        .sum();
    assert!((1.0..=3.0).contains(&idle), "pooled: {idle}");
    h.shutdown();
    up.shutdown();
}

#[test]
fn static_file_lookups_are_counted_as_cache_hits_and_misses() {
    if !have("python3", &["-c", "import prometheus_client"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgeshard-metrics-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "a\n").unwrap();
    let root = dir.clone();
    let (h, addr) = start(move |c| {
        c.shards = NonZeroUsize::new(1);
        c.static_files.mounts = vec![edgeshard::config::MountSpec::new("/", root)];
    });
    for _ in 0..4 {
        let r = once(
            addr,
            b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    let s = scrape(addr);
    let lookups = "edgeshard_static_cache_lookups_total";
    let (hits, misses) = (
        value(&s, lookups, "result=hit"),
        value(&s, lookups, "result=miss"),
    );
    // The first look opens the file; the next ones (within the cache's
    // second) are answered from it.
    assert!(
        misses >= 1.0 && hits >= 2.0 && hits + misses == 4.0,
        "{hits} {misses}"
    );
    assert!(value(&s, "edgeshard_static_file_opens_total", "") >= 1.0);
    assert_eq!(
        value(
            &s,
            "edgeshard_requests_total",
            "method=GET,route=static,status=2xx"
        ),
        4.0
    );
    h.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_admin_address_serves_metrics_and_the_main_listener_no_longer_does() {
    let (h, addr) = start(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()));
    let admin = h.metrics_addr().expect("the admin address is bound");
    assert_ne!(admin, addr);
    let main = once(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        main.starts_with(b"HTTP/1.1 404 Not Found\r\n"),
        "{}",
        String::from_utf8_lossy(&main)
    );
    let raw = once(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n")
            && text.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{text}"
    );
    // The main listener's 404 was counted, gathered from both shards.
    assert!(
        text.contains("\nedgeshard_shards{state=\"answered\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\nedgeshard_requests_total{route=\"GET /metrics\",method=\"GET\",status=\"4xx\"} 1\n"
        ),
        "{text}"
    );
    let ready = once(
        admin,
        b"GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with(b"HTTP/1.1 200 OK\r\n") && ready.ends_with(b"\r\n\r\nready"));
    let other = once(
        admin,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        other.starts_with(b"HTTP/1.1 404 Not Found\r\n"),
        "the app is not on the admin address"
    );
    h.shutdown();
}
