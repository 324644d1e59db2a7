//! What a handler (and the middleware to come) learns about a request
//! beyond its bytes, checked over real sockets: the connection's
//! addresses and id, the matched route's pattern, typed extensions, and
//! the shard context a factory builds from (its poller among them).

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use edgeshard::{routes, Config, Handler, Request, Response, StatusCode};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

fn config(listen: &str) -> Config {
    Config {
        listen: vec![listen.parse().unwrap()],
        shards: NonZeroUsize::new(1),
        ..Config::default()
    }
}

/// Answers with the request's connection facts: `peer local id`.
async fn conn_facts(req: Request) -> Response {
    let c = req.conn();
    assert_eq!(req.peer_addr(), c.peer);
    Response::text(format!("{} {} {}", c.peer, c.local, c.id))
}

/// One request on `s`; the body split into its three facts.
fn facts(s: &mut TcpStream) -> (SocketAddr, SocketAddr, u64) {
    s.write_all(b"GET /facts HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let raw = read_response(s);
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let mut parts = body.split(' ');
    let peer = parts.next().unwrap().parse().unwrap();
    let local = parts.next().unwrap().parse().unwrap();
    let id = parts.next().unwrap().parse().unwrap();
    (peer, local, id)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn a_request_knows_both_addresses_of_its_connection_and_its_id() {
    // A listener on one address (no getsockname needed), one on the IPv4
    // wildcard (the connection's own address is read), and IPv6 loopback.
    for (listen, reach) in [
        ("127.0.0.1:0", "127.0.0.1"),
        ("0.0.0.0:0", "127.0.0.1"),
        ("[::1]:0", "::1"),
    ] {
        if reach == "::1" && TcpListener::bind("[::1]:0").is_err() {
            eprintln!("skipping the IPv6 case: this host has no ::1");
            continue;
        }
        let server = TestServer::with_handler(config(listen), |_| conn_facts);
        let addr = SocketAddr::new(reach.parse().unwrap(), server.addr.port());
        let mut a = connect(addr);
        let (peer, local, id) = facts(&mut a);
        assert_eq!(peer, a.local_addr().unwrap(), "{listen}: peer");
        assert_eq!(local, addr, "{listen}: local");
        // The same connection keeps its id; another gets a new one.
        assert_eq!(facts(&mut a), (peer, local, id), "{listen}");
        let mut b = connect(addr);
        let (peer_b, local_b, id_b) = facts(&mut b);
        assert_eq!(peer_b, b.local_addr().unwrap());
        assert_eq!(local_b, addr);
        assert_ne!(id_b, id, "{listen}: ids are per connection");
        // Shard 0: the shard's number in the top 16 bits is 0.
        assert!(id >> 48 == 0 && id > 0, "{id:#x}");
    }
}

#[test]
fn connection_ids_carry_the_shard_number() {
    let mut config = config("127.0.0.1:0");
    config.shards = NonZeroUsize::new(2);
    // Each shard's handler says which shard it is, beside the id.
    let server = TestServer::with_handler(config, |ctx| {
        let shard = ctx.id as u64;
        move |req: Request| async move { Response::text(format!("{shard} {}", req.conn().id)) }
    });
    let mut shards_seen = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let mut s = server.connect();
        s.write_all(HEALTHZ).unwrap();
        let raw = String::from_utf8(read_response(&mut s)).unwrap();
        let body = &raw[raw.find("\r\n\r\n").unwrap() + 4..];
        let (shard, id) = body.split_once(' ').unwrap();
        let (shard, id): (u64, u64) = (shard.parse().unwrap(), id.parse().unwrap());
        assert_eq!(id >> 48, shard, "{id:#x} from shard {shard}");
        assert!(ids.insert(id), "id {id:#x} given twice");
        shards_seen.insert(shard);
    }
    eprintln!("shards that answered: {shards_seen:?}");
}

async fn show_pattern(req: Request) -> String {
    format!(
        "pattern={} id={}",
        req.pattern().unwrap_or("-"),
        req.param("id").unwrap_or_default()
    )
}

async fn fallback(req: Request) -> String {
    format!("fallback pattern={}", req.pattern().unwrap_or("-"))
}

#[test]
fn a_handler_sees_the_pattern_its_route_matched() {
    let server = TestServer::with_handler(config("127.0.0.1:0"), |_| {
        routes! {
            "GET /users/{id}" => show_pattern,
            "/files/" => show_pattern,
        }
        .fallback(fallback)
    });
    for (path, body) in [
        ("/users/42", "pattern=GET /users/{id} id=42"),
        ("/files/a/b", "pattern=/files/ id="),
        ("/nowhere", "fallback pattern=-"),
    ] {
        let mut s = server.connect();
        write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(
            normalize(&read_response(&mut s)),
            text_response("200 OK", body, ""),
            "{path}"
        );
    }
}

/// What a middleware might attach: the request's arrival number.
#[derive(Debug, Clone, PartialEq)]
struct Seq(u64);

/// A hand-written middleware: numbers each request and hands it on.
struct Numbered<H> {
    next: std::cell::Cell<u64>,
    inner: H,
}

impl<H: Handler> Handler for Numbered<H> {
    #[allow(clippy::manual_async_fn)]
    fn call(&self, mut req: Request) -> impl std::future::Future<Output = Response> {
        let n = self.next.get() + 1;
        self.next.set(n);
        req.extensions_mut().insert(Seq(n));
        self.inner.call(req)
    }
}

async fn show_seq(req: Request) -> String {
    let seq = req.extensions().get::<Seq>().cloned();
    format!("{seq:?} {}", req.extensions().len())
}

#[test]
fn extensions_carry_what_a_layer_learned_to_the_handler() {
    let server = TestServer::with_handler(config("127.0.0.1:0"), |_| Numbered {
        next: std::cell::Cell::new(0),
        inner: routes! { "GET /seq" => show_seq },
    });
    let mut s = server.connect();
    for n in 1..=3 {
        s.write_all(b"GET /seq HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let want = format!("Some(Seq({n})) 1");
        assert_eq!(
            normalize(&read_response(&mut s)),
            text_response("200 OK", &want, "")
        );
    }
}

/// A one-shot upstream on 127.0.0.1: reads a request head, answers
/// `HTTP/1.0 200` with `body`, closes. Returns its address.
fn upstream(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"GET /from-edgeshard HTTP/1.1\r\n"));
        write!(s, "HTTP/1.0 200 OK\r\n\r\n{body}").unwrap();
    });
    addr
}

/// Fetches `/from-edgeshard` from `upstream` over a socket registered with
/// the shard's own poller; 502 if it cannot.
async fn relay(poller: Rc<edgeshard::poller::Poller>, upstream: SocketAddr) -> Response {
    let mut sock = match poller.connect(upstream).await {
        Ok(s) => s,
        Err(e) => return Response::error(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let req = b"GET /from-edgeshard HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n";
    let mut answer = Vec::new();
    if let Err(e) = async {
        sock.write_all(req).await?;
        sock.read_to_end(&mut answer).await
    }
    .await
    {
        return Response::error(StatusCode::BAD_GATEWAY, &e.to_string());
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Response::text(format!("upstream: {body}"))
}

#[test]
fn a_handler_reaches_an_upstream_through_the_shards_own_poller() {
    let up = upstream("hello from upstream");
    // A port nothing listens on: bound, its address taken, closed.
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = TestServer::with_handler(config("127.0.0.1:0"), move |ctx| {
        // The factory runs with the shard's context already built.
        assert_eq!((ctx.id, ctx.metrics.shard()), (0, 0));
        assert_eq!(ctx.mesh.shards(), 1);
        let poller = ctx.poller.clone();
        move |req: Request| {
            let poller = poller.clone();
            async move {
                match req.path() {
                    "/relay" => relay(poller, up).await,
                    _ => relay(poller, refused).await,
                }
            }
        }
    });
    let mut s = server.connect();
    s.write_all(b"GET /relay HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "upstream: hello from upstream", "")
    );
    // A refused connect is an error the handler sees, not a hang.
    s.write_all(b"GET /refused HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(
        got.starts_with("HTTP/1.1 502 Bad Gateway\r\n") && got.contains("refused"),
        "{got}"
    );
}
