//! Recovery: a handler that panics gets a 500 and the shard goes on, and
//! the log says which request it was: its request line, the client, and
//! its request id when the request-id middleware gave it one. Its own
//! binary, without the test harness (whose output capture the server's
//! threads would inherit): it points the process's stderr at a file and
//! reads the log from there.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use edgeshard::middleware::{HandlerExt, RequestIds};
use edgeshard::{routes, Config, Request};

async fn boom(_: Request) -> &'static str {
    panic!("boom on purpose")
}

async fn fine(_: Request) -> &'static str {
    "fine"
}

fn exchange(addr: std::net::SocketAddr, req: &str) -> (String, std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // One response: its head, then Content-Length bytes.
    let complete = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= length
    };
    while !complete(&got) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        s.local_addr().unwrap(),
    )
}

fn main() {
    a_panicking_handler_is_logged_with_its_request_line_and_id();
    println!("test a_panicking_handler_is_logged_with_its_request_line_and_id ... ok");
}

fn a_panicking_handler_is_logged_with_its_request_line_and_id() {
    let log = std::env::temp_dir().join(format!("edgeshard-panic-log-{}", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    // Keep the real stderr, to put it back before any assertion speaks.
    let real = rustix::io::dup(std::os::fd::AsFd::as_fd(&std::io::stderr())).unwrap();
    rustix::stdio::dup2_stderr(&file).unwrap();

    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: std::num::NonZeroUsize::new(1),
        ..Config::default()
    };
    let handle = edgeshard::start(config, |shard| {
        routes! {
            "GET /boom" => boom,
            "GET /fine" => fine,
            "GET /bare/boom" => boom,
        }
        .route_layer(RequestIds::with_prefix(shard.id, 0xbad))
        .layer(())
    })
    .expect("starts");
    let addr = handle.local_addrs()[0];

    let (boomed, me) = exchange(
        addr,
        "GET /boom HTTP/1.1\r\nHost: t\r\nX-Request-Id: trace-42\r\n\r\n",
    );
    let (fine, _) = exchange(addr, "GET /fine HTTP/1.1\r\nHost: t\r\n\r\n");
    let (_, me2) = exchange(addr, "GET /boom?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    handle.shutdown();
    handle.join().unwrap();
    rustix::stdio::dup2_stderr(&real).unwrap();

    assert!(
        boomed.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{boomed}"
    );
    assert!(
        boomed.ends_with("500 Internal Server Error: the handler failed\n"),
        "{boomed}"
    );
    assert!(fine.ends_with("\r\n\r\nfine"), "the shard goes on: {fine}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("edgeshard: "))
        .collect();
    assert_eq!(
        ours,
        [
            format!(
                "edgeshard: shard 0: handler panicked on \"GET /boom HTTP/1.1\" from {me} \
                 (request id trace-42); answered 500"
            ),
            format!(
                "edgeshard: shard 0: handler panicked on \"GET /boom?x=1 HTTP/1.1\" from {me2} \
                 (request id 00000bad-0-2); answered 500"
            ),
        ],
        "{text}"
    );
    // The panic hook's own lines say where and why.
    assert_eq!(text.matches("boom on purpose").count(), 2, "{text}");
    // The made id counted the request in between (GET /fine): ids are per
    // request, not per panic.
}
