//! The built-in API and JSON handling over real sockets: `/api/stats`
//! gathered from every shard by message, `/api/echo`, JSON bodies in and
//! out with their 400/413/415 errors.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::time::Duration;

use common::*;
use edgeshard::{routes, Config, Json, Request, ServerHandle};
use serde::{Deserialize, Serialize};

fn start(shards: usize, tweak: impl FnOnce(&mut Config)) -> (ServerHandle, std::net::SocketAddr) {
    let mut config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: NonZeroUsize::new(shards),
        ..Config::default()
    };
    tweak(&mut config);
    let h = edgeshard::start(config, edgeshard::builtin::app).expect("server starts");
    let addr = h.local_addrs()[0];
    (h, addr)
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn body_of(raw: &[u8]) -> &[u8] {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &raw[at..]
}

#[test]
fn stats_are_gathered_from_every_shard() {
    let (h, addr) = start(2, |_| {});
    // Separate connections, so SO_REUSEPORT spreads them over both shards.
    for _ in 0..20 {
        let mut s = connect(addr);
        assert_default_healthz(&mut s);
    }
    let mut s = connect(addr);
    s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let raw = read_response(&mut s);
    let head = normalize(&raw);
    let length = body_of(&raw).len();
    let want = format!(
        "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nCache-Control: no-store\r\n{SECURITY_LINES}\r\n"
    );
    assert!(head.starts_with(&want), "{head}");
    let stats: serde_json::Value = serde_json::from_slice(body_of(&raw)).unwrap();
    let shards = stats["shards"].as_array().unwrap();
    assert_eq!(stats["shards_total"], 2);
    assert_eq!(shards.len(), 2, "both shards answered: {stats}");
    assert_eq!(shards[0]["shard"], 0);
    assert_eq!(shards[1]["shard"], 1);
    let sum: u64 = shards.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(sum, 20, "{stats}");
    assert_eq!(stats["total_requests"], 20);
    assert!(shards
        .iter()
        .all(|s| s["uptime_seconds"].as_f64().unwrap() > 0.0));
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn echo_returns_the_body_and_its_content_type() {
    let (h, addr) = start(1, |_| {});
    let mut s = connect(addr);
    s.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-note; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        format!(
            "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/x-note; charset=utf-8\r\n\
             Content-Length: 5\r\n{SECURITY_LINES}\r\nhello"
        )
    );
    // GET on a POST route: 405 with Allow.
    s.write_all(b"GET /api/echo HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "405 Method Not Allowed",
            "405 Method Not Allowed\n",
            &format!("Allow: POST\r\n{SECURITY_LINES}")
        )
    );
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn oversized_json_body_is_refused_in_json() {
    let (h, addr) = start(1, |c| c.limits.max_body = 16);
    let mut s = connect(addr);
    s.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n")
        .unwrap();
    let body = r#"{"error":"request body too large","status":413}"#;
    assert_eq!(
        normalize(&read_to_close(&mut s)),
        json_response("413 Content Too Large", body)
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
    );
    h.shutdown();
    h.join().unwrap();
}

#[test]
fn a_json_request_does_not_make_the_next_requests_errors_json() {
    let (h, addr) = start(1, |_| {});
    let mut s = connect(addr);
    s.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    read_response(&mut s);
    // Same connection, a malformed head: a plain-text 400.
    s.write_all(b"GET / HTTP/1.1\r\nHost : t\r\n\r\n").unwrap();
    assert_eq!(
        normalize(&read_to_close(&mut s)),
        error_response("400 Bad Request", "whitespace before colon in header field")
    );
    h.shutdown();
    h.join().unwrap();
}

#[derive(Deserialize, Serialize)]
struct Item {
    name: String,
    qty: u32,
}

async fn create(req: Request) -> Result<Json<Item>, edgeshard::json::JsonError> {
    let mut item: Item = req.json_with_limit(64)?;
    item.qty += 1;
    Ok(Json(item))
}

fn json_exchange(s: &mut TcpStream, content_type: &str, body: &str) -> String {
    s.write_all(
        format!(
            "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    normalize(&read_response(s))
}

fn json_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn json_request_bodies_and_their_errors() {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: NonZeroUsize::new(1),
        ..Config::default()
    };
    let h = edgeshard::start(config, |_| routes! { "POST /items" => create }).unwrap();
    let mut s = connect(h.local_addrs()[0]);
    assert_eq!(
        json_exchange(&mut s, "application/json", r#"{"name":"bolt","qty":2}"#),
        json_response("200 OK", r#"{"name":"bolt","qty":3}"#)
    );
    assert_eq!(
        json_exchange(&mut s, "application/json", r#"{"name":"bolt""#),
        json_response(
            "400 Bad Request",
            r#"{"error":"malformed JSON: EOF while parsing an object at line 1 column 14","status":400}"#
        )
    );
    assert_eq!(
        json_exchange(&mut s, "application/json", r#"{"name":"bolt","qty":-1}"#),
        json_response(
            "400 Bad Request",
            r#"{"error":"malformed JSON: invalid value: integer `-1`, expected u32 at line 1 column 23","status":400}"#
        )
    );
    assert_eq!(
        json_exchange(&mut s, "text/plain", r#"{"name":"bolt","qty":2}"#),
        json_response(
            "415 Unsupported Media Type",
            r#"{"error":"expected Content-Type: application/json","status":415}"#
        )
    );
    let big = format!(r#"{{"name":"{}","qty":1}}"#, "x".repeat(80));
    assert_eq!(
        json_exchange(&mut s, "application/json", &big),
        json_response(
            "413 Content Too Large",
            r#"{"error":"request body larger than 64 bytes","status":413}"#
        )
    );
    h.shutdown();
    h.join().unwrap();
}
