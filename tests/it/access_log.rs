//! The access log on the wire: the lines a file gets (combined and JSON)
//! for answered, refused and pipelined requests; lines flushed within a
//! second while the server runs; SIGHUP reopening a rotated file; a stdout
//! nobody reads (the server keeps answering, lines are dropped and
//! counted, the process still exits); and a target that cannot be opened.

use crate::common;
use crate::static_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use static_common::{config_from, header, split, Fixture};

const BIN: &str = env!("CARGO_BIN_EXE_edgeshard");

/// A combined line with its time and its request time (µs) replaced by
/// `T` and `U`, which the test cannot know; the rest is compared whole.
fn masked(line: &str) -> String {
    let (open, close) = (
        line.find('[').expect("[time"),
        line.find(']').expect("time]"),
    );
    let time = &line[open + 1..close];
    assert_eq!(time.len(), 26, "time {time:?}");
    assert!(time.ends_with(" +0000"), "time {time:?}");
    // From the end: request id, shard, request time, and all before.
    let fields: Vec<&str> = line[close + 1..].rsplitn(4, ' ').collect();
    let micros: u64 = fields[2].parse().expect("request time in µs");
    assert!(micros < 10_000_000, "request time {micros} µs");
    format!(
        "{}[T]{} U {} {}",
        &line[..open],
        fields[3],
        fields[1],
        fields[0]
    )
}

/// Waits up to `limit` for `path` to hold at least `n` lines.
fn lines_within(path: &Path, n: usize, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n || start.elapsed() > limit {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_file_gets_one_combined_line_per_answer_once_it_has_left() {
    let fx = Fixture::new("access-combined");
    let path = fx.path("access.log");
    let p = path.to_str().unwrap();
    let config = config_from(&["--access-log", p, "--request-id", "--max-body", "10"]);
    let handle = edgeshard::start(config, edgeshard::builtin::app).expect("starts");
    let addr = handle.local_addrs()[0];
    let connect = || {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    // Two pipelined requests: one write answers both.
    let mut s = connect();
    s.write_all(
        b"GET /healthz?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: agent \"q\"\r\nReferer: http://r/\r\n\r\n\
          HEAD /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: given-1\r\n\r\n",
    )
    .unwrap();
    let (first, _) = split(&read_response(&mut s));
    let made = header(&first, "x-request-id").expect("an id").to_string();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(String::from_utf8_lossy(&head).contains("X-Request-Id: given-1\r\n"));
    // A 404, an echoed body, a body too large, and bytes that are no request.
    let (notfound, _) = get_on(addr, "/nope");
    let id404 = header(&notfound, "x-request-id").unwrap().to_string();
    let mut s = connect();
    s.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let (echo, body) = split(&read_response(&mut s));
    assert_eq!(body, b"hello");
    let id_echo = header(&echo, "x-request-id").unwrap().to_string();
    // The refusals' lines show the bytes of their error bodies.
    let refused = |req: &[u8], status: &str| {
        let mut s = connect();
        s.write_all(req).unwrap();
        let (head, body) = split(&read_to_close(&mut s));
        assert!(head.starts_with(status), "{head}");
        body.len()
    };
    let too_large = refused(
        b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n",
        "HTTP/1.1 413 ",
    );
    let garbage = refused(b"\x16\x03\x01 hello\r\n\r\n", "HTTP/1.1 400 ");

    handle.shutdown();
    handle.join().expect("clean exit");
    let lines = lines_within(&path, 6, Duration::ZERO);
    let masked: Vec<String> = lines.iter().map(|l| masked(l)).collect();
    assert_eq!(
        masked,
        [
            format!(
                "127.0.0.1 - - [T] \"GET /healthz?x=1 HTTP/1.1\" 200 2 \"http://r/\" \"agent \\x22q\\x22\" U 0 {made}"
            ),
            "127.0.0.1 - - [T] \"HEAD /healthz HTTP/1.1\" 200 0 \"-\" \"-\" U 0 given-1".to_string(),
            format!("127.0.0.1 - - [T] \"GET /nope HTTP/1.1\" 404 14 \"-\" \"-\" U 0 {id404}"),
            format!("127.0.0.1 - - [T] \"POST /api/echo HTTP/1.1\" 200 5 \"-\" \"-\" U 0 {id_echo}"),
            format!("127.0.0.1 - - [T] \"POST /api/echo HTTP/1.1\" 413 {too_large} \"-\" \"-\" U 0 -"),
            format!("127.0.0.1 - - [T] \"\\x16\\x03\\x01 hello\" 400 {garbage} \"-\" \"-\" U 0 -"),
        ],
        "{lines:#?}"
    );
}

#[test]
fn json_lines_name_every_field() {
    let fx = Fixture::new("access-json");
    let path = fx.path("access.json");
    let config = config_from(&[
        "--access-log",
        path.to_str().unwrap(),
        "--access-log-format",
        "json",
    ]);
    let handle = edgeshard::start(config, edgeshard::builtin::app).expect("starts");
    let addr = handle.local_addrs()[0];
    get_on(addr, "/healthz");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: t\r\nUser-Agent: caf\xc3\xa9\r\n\r\n")
        .unwrap();
    read_response(&mut s);
    handle.shutdown();
    handle.join().expect("clean exit");
    let lines = lines_within(&path, 2, Duration::ZERO);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let v: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(v[0]["method"], "GET");
    assert_eq!(v[0]["uri"], "/healthz");
    assert_eq!(v[0]["protocol"], "HTTP/1.1");
    assert_eq!(v[0]["status"], 200);
    assert_eq!(v[0]["bytes_sent"], 2);
    assert_eq!(v[0]["remote_addr"], "127.0.0.1");
    assert_eq!(v[0]["request_id"], serde_json::Value::Null);
    assert_eq!(v[0]["shard"], 0);
    assert!(v[0]["request_time_us"].as_u64().is_some());
    let time = v[0]["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    // Bytes past ASCII keep their value (read as Latin-1) in valid JSON.
    assert_eq!(v[1]["uri"], "/nope");
    assert_eq!(v[1]["status"], 404);
    assert_eq!(v[1]["user_agent"], "caf\u{c3}\u{a9}");
}

/// `GET path` on a new connection to `addr`; the normalized head and body.
fn get_on(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    split(&read_response(&mut s))
}

/// The binary as a child process, killed on drop if still running.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary on one shard at a free port, with `args`; its stdout is
/// read up to the "listening" line only.
fn spawn(args: &[&str]) -> (Proc, SocketAddr, BufReader<std::process::ChildStdout>) {
    let mut child = Proc(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--shards", "1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgeshard"),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "no listening line");
        if let Some(at) = line.find(" listening on ") {
            let addr = line[at + " listening on ".len()..].trim().parse().unwrap();
            return (child, addr, out);
        }
    }
}

fn signal(child: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn exit_within(child: &mut Proc, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            return st;
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lines_reach_the_file_within_a_second_and_sighup_reopens_it_after_rotation() {
    let fx = Fixture::new("access-rotate");
    let path = fx.path("access.log");
    let rotated = fx.path("access.log.1");
    let (mut child, addr, _out) = spawn(&["--access-log", path.to_str().unwrap()]);
    get_on(addr, "/healthz?before");
    // No shutdown: the shard hands its lines over at least once a second.
    let before = lines_within(&path, 1, Duration::from_secs(3));
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].contains("\"GET /healthz?before HTTP/1.1\" 200 2 "));

    // logrotate: move the file away, then SIGHUP.
    std::fs::rename(&path, &rotated).unwrap();
    signal(&child, "-HUP");
    // The next write opens the file anew; until then lines would go to
    // the moved one, so wait for the reopen to be asked before the request.
    std::thread::sleep(Duration::from_millis(200));
    get_on(addr, "/healthz?after");
    let after = lines_within(&path, 1, Duration::from_secs(3));
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(after[0].contains("\"GET /healthz?after HTTP/1.1\" 200 2 "));
    assert_eq!(lines_within(&rotated, 1, Duration::ZERO), before);

    signal(&child, "-TERM");
    assert!(exit_within(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn a_stdout_nobody_reads_slows_nothing_drops_lines_and_lets_the_process_exit() {
    // Access lines go to stdout (the binary's default), a pipe this test
    // does not read: once it is full the writer thread waits, the shard
    // keeps answering and, past its buffer, drops lines and says so.
    let (mut child, addr, mut out) = spawn(&[]);
    let agent = "a".repeat(2000);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let batch: Vec<u8> = (0..50)
        .flat_map(|_| {
            format!("GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: {agent}\r\n\r\n").into_bytes()
        })
        .collect();
    let started = Instant::now();
    // ~2.1 KB per line: 6000 lines are 12 MiB, past the 4 MiB buffer and
    // the writer thread's queue.
    for _ in 0..120 {
        s.write_all(&batch).unwrap();
        for _ in 0..50 {
            let r = read_response(&mut s);
            assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "6000 requests took {took:?}"
    );
    // Let the shard's writer find the queue full at least once more.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "-TERM");
    // The writer thread is stuck on the pipe: the process waits for it at
    // most two seconds after the shards have drained.
    let st = exit_within(&mut child, Duration::from_secs(15));
    assert!(st.success(), "{st:?}");
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("line(s) dropped: the log target does not keep up"),
        "stderr: {err}"
    );
    // What was written is whole lines.
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8(rest).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        !lines.is_empty() && lines.len() < 6000,
        "{} lines",
        lines.len()
    );
    for l in &lines {
        assert!(
            l.starts_with("127.0.0.1 - - [")
                && l.contains("\"GET /healthz HTTP/1.1\" 200 2 \"-\" \""),
            "{l:.200}"
        );
    }
}

#[test]
fn a_log_that_cannot_be_opened_stops_the_start_naming_the_flag() {
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            "/proc/no/such/dir/a.log",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "edgeshard: --access-log: cannot open /proc/no/such/dir/a.log for append: No such file or directory"
        ),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--access-log-format", "common"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected combined or json"));
}
