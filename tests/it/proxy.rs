//! The reverse proxy on loopback, against real upstreams: edgeshard
//! itself, raw sockets that misbehave on purpose (killed mid-body, slow,
//! malformed, counting their connections), and nginx from Debian when it
//! is installed. Every exchange is checked at the byte level where the
//! proxy decides the bytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgeshard::proxy::{Balance, HostMode, MountSettings, ProxyMounts, UpstreamUrl};
use edgeshard::route::NotFound;
use edgeshard::{Config, Request, Response, StatusCode};

use crate::common::{normalize, one_shard, read_response, read_to_close, TestServer};

/// A plain-socket upstream: each connection is handed to `serve` on a
/// thread of its own; counts the connections it accepted. Stops on drop.
struct RawUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RawUpstream {
    fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        RawUpstream::on(listener, serve)
    }

    fn on(listener: TcpListener, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> RawUpstream {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let (a, s) = (accepted.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                let serve = serve.clone();
                thread::spawn(move || serve(conn));
            }
        });
        RawUpstream {
            addr,
            accepted,
            stop,
        }
    }

    fn url(&self) -> UpstreamUrl {
        UpstreamUrl::parse(&format!("http://{}", self.addr)).unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request head (through the blank line) from `r`.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Some(head);
        }
    }
}

/// An upstream that answers every request on a connection with the
/// request head it received as its body (keep-alive).
fn echo_head_upstream() -> RawUpstream {
    RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while let Some(head) = read_head(&mut r) {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{head}",
                head.len()
            );
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// An upstream on `listener` that answers every request on a connection
/// with `raw` (keep-alive; request bodies are not read).
fn answering(listener: TcpListener, raw: &'static [u8]) -> RawUpstream {
    RawUpstream::on(listener, move |conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while read_head(&mut r).is_some() {
            if w.write_all(raw).is_err() {
                return;
            }
        }
    })
}

/// An upstream that answers each connection's first request with `raw`
/// and then does what `after` says.
fn scripted(raw: &'static [u8], after: After) -> RawUpstream {
    RawUpstream::start(move |conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        if read_head(&mut r).is_none() {
            return;
        }
        if after == After::Stall {
            thread::sleep(Duration::from_secs(5));
            return;
        }
        let _ = w.write_all(raw);
        if after == After::Hold {
            thread::sleep(Duration::from_secs(5));
        }
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    /// Close once the bytes are written.
    Close,
    /// Keep the connection open a while (nothing more is sent).
    Hold,
    /// Answer nothing at all.
    Stall,
}

/// A proxy on one shard with `mounts`, tuned by `tweak`; everything else
/// 404s.
fn proxy(mounts: Vec<MountSettings>, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = one_shard();
    config.proxy.mounts = mounts;
    tweak(&mut config);
    TestServer::with_handler(config, |ctx| {
        ProxyMounts::new(&ctx.proxy, &ctx.poller, NotFound)
    })
}

fn mount(prefix: &str, ups: &[&RawUpstream]) -> MountSettings {
    MountSettings::new(prefix, ups.iter().map(|u| u.url()).collect())
}

fn get(server: &TestServer, target: &str) -> String {
    let mut s = server.connect();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

fn body_of(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn the_prefix_is_stripped_or_kept_and_the_base_path_prepended() {
    let up = echo_head_upstream();
    let mut based = mount("/app1", &[&up]);
    based.upstreams = vec![UpstreamUrl::parse(&format!("http://{}/v1/", up.addr)).unwrap()];
    let mut kept = mount("/keep/", &[&up]);
    kept.keep_prefix = true;
    let server = proxy(vec![based, kept], |_| {});
    let line = |t: &str| {
        body_of(&get(&server, t))
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        line("/app1/users/7?x=1&y=%20"),
        "GET /v1/users/7?x=1&y=%20 HTTP/1.1"
    );
    assert_eq!(line("/app1/"), "GET /v1/ HTTP/1.1");
    assert_eq!(line("/app1"), "GET /v1/ HTTP/1.1");
    assert_eq!(line("/keep/a/b"), "GET /keep/a/b HTTP/1.1");
    assert!(get(&server, "/elsewhere").starts_with("HTTP/1.1 404 "));
}

#[test]
fn request_headers_lose_hop_by_hop_fields_and_gain_forwarding_ones() {
    let up = echo_head_upstream();
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /a/x HTTP/1.1\r\nHost: example.test:8080\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\
          Keep-Alive: timeout=5\r\nProxy-Authorization: secret\r\nTE: trailers\r\nUpgrade: h2c\r\n\
          X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: evil\r\n\
          Accept: text/plain\r\n\r\n",
    )
    .unwrap();
    let resp = String::from_utf8(read_response(&mut s)).unwrap();
    let sent = body_of(&resp);
    let upstream = up.addr.to_string();
    assert_eq!(
        sent,
        format!(
            "GET /x HTTP/1.1\r\nHost: {upstream}\r\nAccept: text/plain\r\nTE: trailers\r\n\
             X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.test:8080\r\n\
             Forwarded: for=127.0.0.1;host=\"example.test:8080\";proto=http\r\n\r\n"
        ),
        "untrusted peer: its forwarding fields are replaced"
    );
    // The response: the upstream's Content-Type, our framing, Date and Server.
    assert!(
        resp.starts_with("HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: "),
        "{resp}"
    );
    assert!(
        resp.contains("\r\nContent-Type: text/plain\r\nContent-Length: "),
        "{resp}"
    );
}

#[test]
fn a_trusted_peers_forwarding_fields_are_kept_and_extended() {
    let up = echo_head_upstream();
    let mut m = mount("/a/", &[&up]);
    m.host = HostMode::Client;
    m.via = true;
    let server = proxy(vec![m], |c| {
        c.proxy.trusted = vec!["127.0.0.0/8".parse().unwrap()];
    });
    let mut s = server.connect();
    s.write_all(
        b"GET /a/x HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 203.0.113.9\r\n\
          X-Forwarded-Proto: https\r\nForwarded: for=203.0.113.9;proto=https\r\n\r\n",
    )
    .unwrap();
    let resp = String::from_utf8(read_response(&mut s)).unwrap();
    assert_eq!(
        body_of(&resp),
        "GET /x HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.test\r\n\
         Forwarded: for=203.0.113.9;proto=https, for=127.0.0.1;host=\"example.test\";proto=http\r\n\
         Via: 1.1 edgeshard\r\n\r\n"
    );
    assert!(resp.contains("\r\nVia: 1.1 edgeshard\r\n"), "{resp}");
}

#[test]
fn response_headers_lose_hop_by_hop_fields_and_the_upstreams_framing() {
    let up = scripted(
        b"HTTP/1.1 200 OK\r\nServer: upstream/1.0\r\nDate: Mon, 01 Jan 2001 00:00:00 GMT\r\n\
          Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: x\r\n\
          Trailer: X-T\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\
          Set-Cookie: b=2\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        After::Close,
    );
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // Chunk boundaries are the proxy's own (pieces as they were read).
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/plain\r\n\
         Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n\
         b\r\nhello world\r\n0\r\n\r\n"
    );
    // The client's connection stays open though the upstream's closed.
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(read_response(&mut s).starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn an_unreachable_upstream_is_a_502_and_a_silent_one_a_504() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = UpstreamUrl::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
    drop(closed);
    let silent = scripted(b"", After::Stall);
    let mut slow = mount("/slow/", &[&silent]);
    slow.read_timeout = Duration::from_millis(500);
    let server = proxy(vec![MountSettings::new("/dead/", vec![dead]), slow], |_| {});
    let resp = get(&server, "/dead/x");
    assert_eq!(
        normalize(resp.as_bytes()),
        "HTTP/1.1 502 Bad Gateway\r\nServer: edgeshard\r\nDate: <date>\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: 32\r\nConnection: close\r\n\r\n\
         502 Bad Gateway: connect failed\n"
    );
    let start = Instant::now();
    let resp = get(&server, "/slow/x");
    assert!(
        resp.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{resp}"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_read_timeout_of_a_second_or_more_fires_from_the_shards_tick() {
    // Waits of a second or more are swept by the shard's tick rather than
    // given a timer each: never early, at most a tick (250 ms) late.
    let silent = scripted(b"", After::Stall);
    let stalled = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nfirst",
        After::Hold,
    );
    let mut head = mount("/head/", &[&silent]);
    head.read_timeout = Duration::from_millis(1200);
    let mut body = mount("/body/", &[&stalled]);
    body.read_timeout = Duration::from_millis(1200);
    let server = proxy(vec![head, body], |_| {});
    let start = Instant::now();
    let resp = get(&server, "/head/x");
    let took = start.elapsed();
    assert!(
        resp.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{resp}"
    );
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let mut s = server.connect();
    let start = Instant::now();
    s.write_all(b"GET /body/ HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = String::from_utf8(read_to_close(&mut s)).unwrap();
    let took = start.elapsed();
    assert!(got.ends_with("\r\n\r\nfirst"), "{got}");
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn malformed_or_ambiguous_upstream_answers_are_502_never_passed_on() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
    ] {
        let up = scripted(raw, After::Close);
        let server = proxy(vec![mount("/a/", &[&up])], |_| {});
        let resp = get(&server, "/a/");
        assert!(
            resp.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
            "{:?} → {resp}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn an_upstream_that_dies_mid_body_aborts_the_clients_response() {
    // Promises 100000 bytes, sends 5, then closes.
    let up = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nhello",
        After::Close,
    );
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let got = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nContent-Length: 100000\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nhello"),
        "the client sees a short body and a close: {text}"
    );
    // Chunked: the last chunk never comes.
    let up = scripted(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        After::Close,
    );
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(
        got.ends_with("\r\n\r\n5\r\nhello\r\n"),
        "no last chunk: {got}"
    );
}

#[test]
fn idle_upstream_connections_are_reused_newest_first() {
    let up = echo_head_upstream();
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    for _ in 0..50 {
        s.write_all(b"GET /a/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert!(read_response(&mut s).starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    assert_eq!(
        up.accepted(),
        1,
        "50 sequential requests, one upstream connection"
    );
}

#[test]
fn a_reused_connection_the_upstream_closed_is_retried_on_a_fresh_one() {
    // Answers one request per connection and closes without saying so.
    let up = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        if read_head(&mut r).is_some() {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            // The proxy pools it; the close comes while it is idle...
            thread::sleep(Duration::from_millis(100));
        }
        // ...or, with the half-read request below, just after it is reused.
    });
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    for i in 0..5 {
        s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut s);
        assert!(
            r.ends_with(b"\r\n\r\nok"),
            "request {i}: {:?}",
            String::from_utf8_lossy(&r)
        );
        thread::sleep(Duration::from_millis(150));
    }
}

#[test]
fn a_dead_upstream_costs_nothing_once_noticed_and_comes_back_after_the_fail_timeout() {
    let live = echo_head_upstream();
    let spare = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = spare.local_addr().unwrap();
    drop(spare);
    let mut m = MountSettings::new(
        "/a/",
        vec![
            UpstreamUrl::parse(&format!("http://{dead_addr}")).unwrap(),
            live.url(),
        ],
    );
    m.health.fail_timeout = Duration::from_millis(800);
    let server = proxy(vec![m], |_| {});
    // Every request succeeds: the connect failure moves on to the live one.
    for _ in 0..20 {
        assert!(get(&server, "/a/x").starts_with("HTTP/1.1 200 OK\r\n"));
    }
    // The dead one comes back (its port bound again) and, after the fail
    // timeout, gets its trial request and then its share.
    let back = match TcpListener::bind(dead_addr) {
        Ok(l) => l,
        Err(_) => return, // the port was taken meanwhile: nothing to prove
    };
    let revived = answering(back, b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nrevived");
    thread::sleep(Duration::from_millis(900));
    let revived_answers = (0..20)
        .filter(|_| get(&server, "/a/x").ends_with("revived"))
        .count();
    assert!(
        revived_answers >= 8,
        "round robin gives it half: {revived_answers}/20"
    );
    drop(revived);
}

#[test]
fn a_5xx_answering_upstream_is_skipped_until_its_fail_timeout() {
    let bad = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while read_head(&mut r).is_some() {
            if w.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nbad")
                .is_err()
            {
                return;
            }
        }
    });
    let good = echo_head_upstream();
    let mut m = mount("/a/", &[&bad, &good]);
    m.health.max_fails = 2;
    m.health.fail_timeout = Duration::from_secs(30);
    let server = proxy(vec![m], |_| {});
    let statuses: Vec<String> = (0..20)
        .map(|_| get(&server, "/a/")[9..12].to_string())
        .collect();
    let fails = statuses.iter().filter(|s| *s == "503").count();
    assert_eq!(
        fails, 2,
        "two 503s eject it, then only the good one answers: {statuses:?}"
    );
}

#[test]
fn requests_are_spread_round_robin_or_to_the_least_busy() {
    let one = echo_head_upstream();
    let two = echo_head_upstream();
    let server = proxy(vec![mount("/a/", &[&one, &two])], |_| {});
    let mut s = server.connect();
    let mut hosts = std::collections::HashMap::new();
    for _ in 0..20 {
        s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = String::from_utf8(read_response(&mut s)).unwrap();
        let host = body_of(&r).lines().nth(1).unwrap().to_string();
        *hosts.entry(host).or_insert(0) += 1;
    }
    assert_eq!(hosts.len(), 2);
    assert!(hosts.values().all(|&n| n == 10), "{hosts:?}");
    // Least outstanding: a stalled upstream holds one request; the rest go
    // to the other.
    let stalled = scripted(b"", After::Stall);
    let quick = echo_head_upstream();
    let mut m = mount("/b/", &[&stalled, &quick]);
    m.balance = Balance::LeastOutstanding;
    m.read_timeout = Duration::from_secs(10);
    let server = proxy(vec![m], |_| {});
    let mut hung = server.connect();
    hung.write_all(b"GET /b/ HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    let before = stalled.accepted();
    for _ in 0..10 {
        assert!(get(&server, "/b/").starts_with("HTTP/1.1 200 OK\r\n"));
    }
    assert_eq!(
        stalled.accepted(),
        before,
        "nothing more went to the busy one"
    );
}

/// An edgeshard upstream whose handler streams what it is asked for.
fn edgeshard_upstream() -> TestServer {
    TestServer::with_handler(one_shard(), |_| edgeshard::handler_streaming(upstream_app))
}

async fn upstream_app(mut req: Request) -> Response {
    match req.path() {
        "/count" => {
            // Counts the body as it streams, with a digest to compare.
            let mut n = 0u64;
            let mut sum = 0u64;
            match req.take_body_stream() {
                Some(mut body) => {
                    body.set_limit(u64::MAX);
                    while let Ok(Some(piece)) = body.chunk().await {
                        n += piece.len() as u64;
                        sum = piece
                            .iter()
                            .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                    }
                }
                None => {
                    n = req.body().len() as u64;
                    sum = req
                        .body()
                        .iter()
                        .fold(0, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                }
            }
            Response::text(format!("{n} {sum}"))
        }
        "/events" => {
            let events = futures_lite::stream::unfold(0, |i| async move {
                if i == 3 {
                    return None;
                }
                glommio::timer::sleep(Duration::from_millis(300)).await;
                Some((Bytes::from(format!("data: event {i}\n\n")), i + 1))
            });
            Response::new(StatusCode::OK).with_stream("text/event-stream", events)
        }
        _ => Response::new(StatusCode::NOT_FOUND),
    }
}

fn digest(data: &[u8]) -> u64 {
    data.iter()
        .fold(0, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64))
}

#[test]
fn request_bodies_stream_through_with_a_length_or_chunked() {
    let up = edgeshard_upstream();
    let url = UpstreamUrl::parse(&format!("http://{}", up.addr)).unwrap();
    let server = proxy(vec![MountSettings::new("/a/", vec![url])], |c| {
        // Far above the server's own limit: the mount has its own.
        c.limits.max_body = 1024;
    });
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut s = server.connect();
    write!(
        s,
        "POST /a/count HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data).unwrap();
    let r = String::from_utf8(read_response(&mut s)).unwrap();
    assert_eq!(body_of(&r), format!("{} {}", data.len(), digest(&data)));
    // Chunked, with Expect: 100-continue relayed.
    s.write_all(b"POST /a/count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let cont = read_response(&mut s);
    assert_eq!(cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    for piece in data.chunks(100_000) {
        write!(s, "{:x}\r\n", piece.len()).unwrap();
        s.write_all(piece).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    let r = String::from_utf8(read_response(&mut s)).unwrap();
    assert_eq!(body_of(&r), format!("{} {}", data.len(), digest(&data)));
}

#[test]
fn server_sent_events_arrive_one_by_one() {
    let up = edgeshard_upstream();
    let url = UpstreamUrl::parse(&format!("http://{}", up.addr)).unwrap();
    let server = proxy(vec![MountSettings::new("/a/", vec![url])], |_| {});
    let mut s = server.connect();
    s.write_all(b"GET /a/events HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut seen = String::new();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 4096];
    while arrivals.len() < 3 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        let events = seen.matches("data: event").count();
        while arrivals.len() < events {
            arrivals.push(start.elapsed());
        }
    }
    // Each event ~300 ms after the last, not all at the end.
    assert!(arrivals[0] < Duration::from_millis(800), "{arrivals:?}");
    assert!(
        arrivals[1] - arrivals[0] > Duration::from_millis(150),
        "{arrivals:?}"
    );
    assert!(
        arrivals[2] - arrivals[1] > Duration::from_millis(150),
        "{arrivals:?}"
    );
    assert!(
        seen.contains("Content-Type: text/event-stream\r\n"),
        "{seen}"
    );
}

#[test]
fn an_upgrade_becomes_a_tunnel_both_ways_with_half_close() {
    // A WebSocket-shaped upgrade; the upstream then echoes what it reads
    // until the proxy passes the client's FIN on, and says goodbye.
    let up = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        let Some(head) = read_head(&mut r) else {
            return;
        };
        assert!(
            head.contains("\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"),
            "{head}"
        );
        w.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhello from upstream;",
        )
        .unwrap();
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => w.write_all(&buf[..n]).unwrap(),
            }
        }
        w.write_all(b"bye").unwrap();
    });
    let server = proxy(vec![mount("/ws/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /ws/chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let head = normalize(&read_response(&mut s));
    assert_eq!(
        head,
        "HTTP/1.1 101 Switching Protocols\r\nServer: edgeshard\r\nDate: <date>\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nConnection: Upgrade\r\n\r\n"
    );
    let mut early = [0u8; 20];
    s.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"hello from upstream;");
    for msg in [&b"ping 1"[..], b"ping 2"] {
        s.write_all(msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut s), b"bye");
}

#[test]
fn nginx_as_an_upstream() {
    if !crate::common::have("nginx", &["-v"]) {
        crate::common::missing("nginx");
        return;
    }
    let dir = tempdir("nginx-up");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(dir.join("html")).unwrap();
    std::fs::write(dir.join("html/index.html"), "hello from nginx\n").unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("html/big.bin"), &big).unwrap();
    let conf = format!(
        "daemon off; master_process off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
           fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
           server {{ listen 127.0.0.1:{port}; root {d}/html; keepalive_requests 10000; }} }}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    // One process (no master), so that killing it leaves no worker behind,
    // and killed on drop, so that a failed assertion does not either.
    let _nginx = KillOnDrop(
        std::process::Command::new("nginx")
            .args([
                "-c",
                &dir.join("nginx.conf").display().to_string(),
                "-p",
                &dir.display().to_string(),
            ])
            .spawn()
            .expect("nginx starts"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let url = UpstreamUrl::parse(&format!("http://{addr}")).unwrap();
    let server = proxy(vec![MountSettings::new("/n/", vec![url])], |_| {});
    let mut s = server.connect();
    for _ in 0..3 {
        s.write_all(b"GET /n/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = String::from_utf8(read_response(&mut s)).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\nServer: edgeshard\r\n"),
            "{r}"
        );
        assert!(r.ends_with("\r\n\r\nhello from nginx\n"), "{r}");
    }
    s.write_all(b"GET /n/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s);
    assert!(r.ends_with(&big), "5 MB through the proxy, intact");
    s.write_all(b"HEAD /n/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = head_only(&mut s);
    assert!(r.contains("\r\nContent-Length: 5000000\r\n"), "{r}");
    s.write_all(b"GET /n/missing HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = String::from_utf8(read_response(&mut s)).unwrap();
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child process killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads a response head only (a HEAD's response has no body).
fn head_only(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed in a head");
        raw.push(byte[0]);
    }
    String::from_utf8(raw).unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeshard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_access_log_names_the_upstream_and_how_it_failed() {
    let good = echo_head_upstream();
    let cut = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
        After::Close,
    );
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempdir("proxy-log");
    let log = dir.join("access.log");
    let server = proxy(
        vec![
            mount("/good/", &[&good]),
            mount("/cut/", &[&cut]),
            MountSettings::new(
                "/dead/",
                vec![UpstreamUrl::parse(&format!("http://{dead}")).unwrap()],
            ),
        ],
        |c| c.access_log.target = edgeshard::config::AccessLogTarget::Path(log.clone()),
    );
    get(&server, "/good/x");
    get(&server, "/dead/x");
    get(&server, "/cut/x");
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 3 || Instant::now() > deadline {
            break text.lines().map(str::to_string).collect::<Vec<_>>();
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].contains("\"GET /good/x HTTP/1.1\" 200 ")
            && lines[0].ends_with(&format!(" upstream=\"{}\"", good.addr)),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\" 502 ")
            && lines[1].ends_with(&format!(" upstream=\"{dead} connect failed\"")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains("\" 200 5 ")
            && lines[2].ends_with(&format!(" upstream=\"{} response cut short\"", cut.addr)),
        "{}",
        lines[2]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_upstream_named_by_host_name_is_resolved_and_each_address_tried() {
    // `localhost` may resolve to ::1 before 127.0.0.1; the upstream only
    // listens on the latter, so the first address may be refused.
    let up = echo_head_upstream();
    let url = UpstreamUrl::parse(&format!("http://localhost:{}", up.addr.port())).unwrap();
    let server = proxy(vec![MountSettings::new("/a/", vec![url])], |_| {});
    for _ in 0..4 {
        let r = get(&server, "/a/x");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            body_of(&r).contains(&format!("\r\nHost: localhost:{}\r\n", up.addr.port())),
            "{r}"
        );
    }
}

#[test]
fn a_name_that_does_not_resolve_stops_the_start() {
    let mut config = one_shard();
    config.proxy.mounts = vec![MountSettings::new(
        "/a/",
        vec![UpstreamUrl::parse("http://no-such-host.invalid:80").unwrap()],
    )];
    let err = match edgeshard::start(config, |_| NotFound) {
        Ok(_) => panic!("started with an unresolvable upstream"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("--proxy") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}

/// The `edgeshard` binary as a proxy, one shard, access log off; its pid
/// and address once it listens.
fn spawn_proxy(args: &[&str]) -> (std::process::Child, SocketAddr) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edgeshard"))
        .args([
            "--shards",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            "off",
        ])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn edgeshard");
    let addr = listening_addr(child.stdout.take().unwrap());
    (child, addr)
}

/// The address in the first "listening on ADDR" line a process prints.
fn listening_addr(stdout: std::process::ChildStdout) -> SocketAddr {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .map(|a| a.trim().parse().unwrap())
        })
        .expect("the server listens")
}

/// Peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_hundred_megabytes_up_and_down_in_bounded_memory() {
    const SIZE: u64 = 100 * 1024 * 1024;
    // Downloads: SIZE bytes with a length; uploads: counted and answered
    // with the count.
    let up = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while let Some(head) = read_head(&mut r) {
            if head.starts_with("GET ") {
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n").unwrap();
                let block = vec![b'd'; 64 * 1024];
                let mut left = SIZE;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if w.write_all(&block[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            } else {
                let len: u64 = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                let got = std::io::copy(&mut (&mut r).take(len), &mut std::io::sink()).unwrap();
                let body = got.to_string();
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        }
    });
    let (mut child, addr) = spawn_proxy(&["--proxy", &format!("/big/=http://{}", up.addr)]);
    let pid = child.id();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /big/ HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let rss_start = peak_rss_kib(pid);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let head = read_head(&mut r).unwrap();
    assert!(
        head.contains(&format!("\r\nContent-Length: {SIZE}\r\n")),
        "{head}"
    );
    // Half at full speed, a pause (a slow client: the proxy must stop
    // reading, not buffer), then the rest.
    let first = std::io::copy(&mut (&mut r).take(SIZE / 2), &mut std::io::sink()).unwrap();
    thread::sleep(Duration::from_secs(1));
    let rest = std::io::copy(&mut (&mut r).take(SIZE / 2), &mut std::io::sink()).unwrap();
    assert_eq!(first + rest, SIZE);
    let rss_down = peak_rss_kib(pid);
    // Upload SIZE bytes on the same connection.
    write!(
        s,
        "POST /big/ HTTP/1.1\r\nHost: t\r\nContent-Length: {SIZE}\r\n\r\n"
    )
    .unwrap();
    let block = vec![b'u'; 64 * 1024];
    let mut left = SIZE;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    let head = read_head(&mut r).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let mut count = vec![0u8; SIZE.to_string().len()];
    r.read_exact(&mut count).unwrap();
    assert_eq!(String::from_utf8(count).unwrap(), SIZE.to_string());
    let rss_up = peak_rss_kib(pid);
    eprintln!(
        "proxy peak RSS: {rss_start} KiB at start, {rss_down} KiB after 100 MiB down, {rss_up} KiB after 100 MiB up"
    );
    // Bounded: a few MiB over the start, far below the 100 MiB moved.
    assert!(
        rss_up < rss_start + 16 * 1024,
        "{rss_start} → {rss_down} → {rss_up} KiB"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_gateway_example_authenticates_proxies_and_serves_files() {
    let app1 = echo_head_upstream();
    let app2 = echo_head_upstream();
    let dir = tempdir("gateway");
    std::fs::write(dir.join("tokens.txt"), "s3cret-token-0123456789\n").unwrap();
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<h1>site</h1>\n").unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_edgeshard"))
        .parent()
        .unwrap()
        .join("examples/gateway");
    let mut child = std::process::Command::new(exe)
        .env("APP1", format!("http://{}", app1.addr))
        .env("APP2", format!("http://{}/v2", app2.addr))
        .env("TOKENS", dir.join("tokens.txt"))
        .args([
            "--shards",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            "off",
            "--root",
        ])
        .arg(dir.join("site"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the gateway example was built by cargo test");
    let addr = listening_addr(child.stdout.take().unwrap());
    let ask = |req: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        String::from_utf8(read_to_close(&mut s)).unwrap()
    };
    let health = ask("GET /api/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(
        health.contains("\r\nCache-Control: no-store\r\n"),
        "{health}"
    );
    assert!(
        health.ends_with("{\"status\":\"ok\",\"shard\":0}"),
        "{health}"
    );
    let refused = ask("GET /app1/users HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(
        refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{refused}"
    );
    let one = ask(
        "GET /app1/users?page=2 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-token-0123456789\r\n\
         Connection: close\r\n\r\n",
    );
    assert!(one.starts_with("HTTP/1.1 200 OK\r\n"), "{one}");
    assert!(
        body_of(&one).starts_with(&format!(
            "GET /users?page=2 HTTP/1.1\r\nHost: {}\r\n",
            app1.addr
        )),
        "{one}"
    );
    let two = ask(
        "GET /app2/items HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-token-0123456789\r\n\
         Connection: close\r\n\r\n",
    );
    assert!(
        body_of(&two).starts_with("GET /v2/items HTTP/1.1\r\n"),
        "{two}"
    );
    let site = ask("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(
        site.starts_with("HTTP/1.1 200 OK\r\n") && site.ends_with("<h1>site</h1>\n"),
        "{site}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_body_answers_keep_both_connections_usable() {
    // 204, 304 and a HEAD's 200 carry no body, whatever their fields say.
    let up = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while let Some(head) = read_head(&mut r) {
            let answer: &[u8] = if head.starts_with("GET /none") {
                b"HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n"
            } else if head.starts_with("GET /same") {
                b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 99\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
            };
            if w.write_all(answer).is_err() {
                return;
            }
        }
    });
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    for _ in 0..2 {
        s.write_all(b"GET /a/none HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            normalize(&read_response(&mut s)),
            "HTTP/1.1 204 No Content\r\nServer: edgeshard\r\nDate: <date>\r\nX-Kind: none\r\n\r\n"
        );
        s.write_all(b"GET /a/same HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            normalize(&read_response(&mut s)),
            "HTTP/1.1 304 Not Modified\r\nServer: edgeshard\r\nDate: <date>\r\nETag: \"v1\"\r\n\r\n"
        );
        s.write_all(b"HEAD /a/x HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(
            normalize(head_only(&mut s).as_bytes()),
            "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Length: 1234\r\n\r\n"
        );
    }
    assert_eq!(up.accepted(), 1, "the upstream connection served all six");
}

#[test]
fn an_upstream_that_refuses_a_body_answers_before_the_client_sends_it() {
    let up = scripted(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope",
        After::Hold,
    );
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(
        b"PUT /a/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let r = String::from_utf8(read_response(&mut s)).unwrap();
    assert!(
        r.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "no 100 Continue first: {r}"
    );
    assert!(
        r.contains("\r\nConnection: close\r\n") && r.ends_with("nope"),
        "{r}"
    );
}

#[test]
fn an_upstream_that_stalls_mid_body_is_cut_off_after_the_read_timeout() {
    let up = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nfirst ten.",
        After::Hold,
    );
    let mut m = mount("/a/", &[&up]);
    m.read_timeout = Duration::from_millis(400);
    let server = proxy(vec![m], |_| {});
    let mut s = server.connect();
    let start = Instant::now();
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let got = String::from_utf8(read_to_close(&mut s)).unwrap();
    let took = start.elapsed();
    assert!(got.ends_with("\r\n\r\nfirst ten."), "{got}");
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_close_delimited_answer_is_passed_on_chunked_and_a_1xx_is_skipped() {
    let up = scripted(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
        After::Close,
    );
    let server = proxy(vec![mount("/a/", &[&up])], |_| {});
    let mut s = server.connect();
    s.write_all(b"GET /a/ HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/plain\r\n\
         Transfer-Encoding: chunked\r\n\r\nd\r\nuntil the end\r\n0\r\n\r\n"
    );
}

#[test]
fn a_tunnel_where_nothing_moves_closes_after_the_read_timeout() {
    let up = RawUpstream::start(|conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        if read_head(&mut r).is_none() {
            return;
        }
        w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .unwrap();
        // Silent, and holding the connection open.
        let mut buf = [0u8; 64];
        let _ = r.read(&mut buf);
    });
    let mut m = mount("/ws/", &[&up]);
    m.read_timeout = Duration::from_millis(500);
    let server = proxy(vec![m], |_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /ws/ HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .unwrap();
    assert!(read_response(&mut s).starts_with(b"HTTP/1.1 101 "));
    let start = Instant::now();
    assert_eq!(read_to_close(&mut s), b"", "closed, nothing more sent");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

/// A listener whose accept queue is full: the kernel drops further SYNs
/// without answering, so a connect to it hangs until the connector gives
/// up (what a host behind a dropping firewall, or an overloaded one,
/// looks like). The listener and the connection that fills it.
fn unanswering() -> (socket2::Socket, TcpStream, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(addr).unwrap();
    let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    assert_eq!(
        probe.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::TimedOut),
        "the full listener should leave a connect unanswered"
    );
    (sock, filler, addr)
}

#[test]
fn an_upstream_that_does_not_accept_in_time_is_a_504_or_the_next_ones_turn() {
    let (_hole, _filler, addr) = unanswering();
    let hole = UpstreamUrl::parse(&format!("http://{addr}")).unwrap();
    let good = echo_head_upstream();
    let mut both = MountSettings::new("/both/", vec![hole.clone(), good.url()]);
    both.connect_timeout = Duration::from_millis(300);
    let mut only = MountSettings::new("/only/", vec![hole]);
    only.connect_timeout = Duration::from_millis(300);
    let server = proxy(vec![both, only], |_| {});

    // Alone, it is too slow rather than broken: 504, after the timeout.
    let start = Instant::now();
    let resp = get(&server, "/only/x");
    let took = start.elapsed();
    let body = "504 Gateway Timeout: connect timed out\n";
    assert_eq!(
        normalize(resp.as_bytes()),
        format!(
            "HTTP/1.1 504 Gateway Timeout\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    );
    assert!(
        took >= Duration::from_millis(280) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // With a second upstream, the request that meets the timeout goes on
    // to it; after that the silent one is skipped and nothing waits.
    let mut slow = 0;
    for _ in 0..6 {
        let start = Instant::now();
        let resp = get(&server, "/both/x");
        let took = start.elapsed();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        if took >= Duration::from_millis(280) {
            slow += 1;
            assert!(took < Duration::from_secs(3), "{took:?}");
        }
    }
    assert_eq!(slow, 1, "one request waits for the connect timeout, once");
    assert_eq!(
        good.accepted(),
        1,
        "the good upstream's connection is reused"
    );
}

/// A host name the test controls: the `edgeshard` binary runs in a mount
/// namespace of its own where `/etc/hosts` is a file of the test's, so
/// glibc's resolver (which reads the file on every lookup) sees what the
/// test writes there.
#[test]
fn upstream_names_are_resolved_again_and_requests_follow_the_new_address() {
    if !crate::common::have("unshare", &["--mount", "true"]) {
        return;
    }
    let a = echo_head_upstream();
    let port = a.addr.port();
    let Ok(listener) = TcpListener::bind(("127.0.0.2", port)) else {
        eprintln!("skipping: 127.0.0.2:{port} is taken");
        return;
    };
    let b = answering(listener, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
    let dir = tempdir("resolve-again");
    let hosts = dir.join("hosts");
    let name = "upstream.edgeshard.test";
    std::fs::write(&hosts, format!("127.0.0.1 {name}\n")).unwrap();
    let script = format!(
        "mount --bind {} /etc/hosts && exec {} \"$@\"",
        hosts.display(),
        env!("CARGO_BIN_EXE_edgeshard")
    );
    let mut child = KillOnDrop(
        std::process::Command::new("unshare")
            .args(["--mount", "sh", "-c", &script, "edgeshard"])
            .args([
                "--shards",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--access-log",
                "off",
            ])
            .args(["--proxy", &format!("/a/=http://{name}:{port}")])
            .args(["--proxy-resolve-every", "500ms"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn unshare"),
    );
    // Without --fork, unshare execs: the child is the server itself.
    let addr = listening_addr(child.0.stdout.take().unwrap());
    let fetch = |s: &mut TcpStream| -> String {
        write!(s, "GET /a/x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        String::from_utf8_lossy(&read_response(s)).into_owned()
    };
    let mut client = TcpStream::connect(addr).unwrap();
    for _ in 0..3 {
        let r = fetch(&mut client);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(body_of(&r).starts_with("GET /x HTTP/1.1\r\n"), "{r}");
    }
    assert_eq!((a.accepted(), b.accepted()), (1, 0));

    // The name moves. Within a few intervals requests follow it, though
    // an idle connection to the old address is still in the pool.
    std::fs::write(&hosts, format!("127.0.0.2 {name}\n")).unwrap();
    let moved = Instant::now();
    let mut followed = None;
    while moved.elapsed() < Duration::from_secs(5) {
        let r = fetch(&mut client);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        if body_of(&r) == "b" {
            followed = Some(moved.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let took = followed.expect("requests follow the name within 5 s");
    assert!(took < Duration::from_secs(3), "{took:?}");
    for _ in 0..3 {
        assert_eq!(body_of(&fetch(&mut client)), "b");
    }
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
