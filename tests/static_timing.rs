//! Static-file tests that measure time or CPU: a slow reader must cost no
//! CPU and block nobody, a fast reader must not monopolise its shard. They
//! live in their own test binary, so the process's CPU time is theirs, and
//! they run one at a time (every test server pins its shard to the same
//! core).

mod common;
mod static_common;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use static_common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_slow_reader_costs_no_cpu_and_does_not_block_the_shard() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new("slow");
    let big: Vec<u8> = (0..16_000_000u32).map(|i| (i % 241) as u8).collect();
    fx.file("big.bin", &big);
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let mut slow = srv.connect();
    // A small receive buffer so the server's socket fills quickly.
    let sock = socket2::SockRef::from(&slow);
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    slow.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 4096];
    slow.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // While the reader stalls, the shard answers others at once and burns no CPU.
    let ticks = cpu_ticks();
    let stalled = Instant::now();
    let mut other = srv.connect();
    for _ in 0..5 {
        let t = Instant::now();
        common::assert_builtin_healthz(&mut other);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let spent = cpu_ticks() - ticks;
    let tick_hz = 100; // USER_HZ on Linux
    assert!(
        spent * 1000 / tick_hz < 100,
        "{spent} ticks of CPU in {:?} while a reader stalled",
        stalled.elapsed()
    );

    // Then the slow reader gets every byte, in order.
    let mut got = first;
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            if got.len() - (end + 4) >= big.len() {
                break;
            }
        }
        let n = slow.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    let (head, body) = split(&got);
    assert_eq!(header(&head, "content-length"), Some("16000000"));
    assert!(body == big, "slow reader's body differs");
}

/// On loopback the reader's socket usually fills before the shard's
/// preemption quantum ends, so this mostly shows that back-pressure gives
/// way; it fails if the sending connection ever blocks the shard.
#[test]
fn a_fast_reader_of_a_large_file_does_not_monopolise_the_shard() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fx = Fixture::new("fair");
    fx.file("huge.bin", &vec![3u8; 64 * 1024 * 1024]);
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let addr = srv.addr;
    let reader = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let mut total = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..4 {
            s.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut body_left = None;
            let mut head = Vec::new();
            while body_left != Some(0) {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                match body_left.as_mut() {
                    Some(left) => *left -= n,
                    None => {
                        head.extend_from_slice(&buf[..n]);
                        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            body_left = Some(64 * 1024 * 1024 - (head.len() - end - 4));
                        }
                    }
                }
                total += n;
            }
        }
        total
    });
    let mut s = srv.connect();
    let mut worst = Duration::ZERO;
    while !reader.is_finished() {
        let t = Instant::now();
        common::assert_builtin_healthz(&mut s);
        worst = worst.max(t.elapsed());
    }
    assert!(reader.join().unwrap() > 4 * 64 * 1024 * 1024);
    assert!(
        worst < Duration::from_millis(250),
        "a request waited {worst:?} behind a large file"
    );
}
