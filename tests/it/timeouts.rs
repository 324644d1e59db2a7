//! Each timeout with short values: slow heads and bodies get 408 and a
//! close, idle connections close quietly, stalled writes are dropped.

use crate::common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use socket2::SockRef;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn incomplete_head_gets_408_after_header_timeout() {
    let server = TestServer::start(|c| c.timeouts.header = ms(300));
    let mut s = server.connect();
    let start = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let got = normalize(&read_to_close(&mut s));
    let took = start.elapsed();
    assert_eq!(
        got,
        error_response("408 Request Timeout", "request head not received in time")
    );
    assert!(took >= ms(300) && took < ms(2000), "took {took:?}");
}

#[test]
fn slowloris_trickle_does_not_extend_the_header_deadline() {
    let server = TestServer::start(|c| c.timeouts.header = ms(500));
    let mut s = server.connect();
    let start = Instant::now();
    let req = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for &b in req.iter() {
        if s.write_all(&[b]).is_err() {
            break;
        }
        std::thread::sleep(ms(50));
        if start.elapsed() > ms(1500) {
            break;
        }
    }
    let got = normalize(&read_to_close(&mut s));
    assert_eq!(
        got,
        error_response("408 Request Timeout", "request head not received in time")
    );
    assert!(start.elapsed() < ms(2500), "took {:?}", start.elapsed());
}

#[test]
fn silent_new_connection_is_closed_without_a_response() {
    let server = TestServer::start(|c| c.timeouts.header = ms(300));
    let mut s = server.connect();
    let start = Instant::now();
    assert_eq!(read_to_close(&mut s), b"");
    assert!(start.elapsed() >= ms(300) && start.elapsed() < ms(2000));
}

#[test]
fn body_past_its_deadline_gets_408() {
    let server = TestServer::start(|c| c.timeouts.body = ms(300));
    let mut s = server.connect();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    let start = Instant::now();
    let got = normalize(&read_to_close(&mut s));
    assert_eq!(
        got,
        error_response("408 Request Timeout", "request body not received in time")
    );
    assert!(start.elapsed() >= ms(300) && start.elapsed() < ms(2000));
}

#[test]
fn body_below_the_minimum_rate_gets_408_after_the_grace_period() {
    // 100 bytes/s against a 1000 bytes/s minimum; the total deadline is far away.
    let server = TestServer::start(|c| {
        c.timeouts.body = Duration::from_secs(60);
        c.timeouts.min_body_rate = 1000;
    });
    let mut s = server.connect();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    s.set_read_timeout(Some(ms(100))).unwrap();
    while start.elapsed() < Duration::from_secs(9) {
        if s.write_all(&[b'x'; 10]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    got.extend_from_slice(&read_to_close(&mut s));
    let took = start.elapsed();
    assert_eq!(
        normalize(&got),
        error_response("408 Request Timeout", "request body not received in time")
    );
    assert!(
        took > Duration::from_secs(5) && took < Duration::from_secs(8),
        "took {took:?}"
    );
}

#[test]
fn idle_keep_alive_connection_closes_quietly() {
    let server = TestServer::start(|c| c.timeouts.idle = ms(300));
    let mut s = server.connect();
    assert_healthz(&mut s);
    let start = Instant::now();
    assert_eq!(
        read_to_close(&mut s),
        b"",
        "no bytes after the idle timeout"
    );
    let took = start.elapsed();
    assert!(took >= ms(300) && took < ms(2000), "took {took:?}");
}

#[test]
fn active_keep_alive_connection_outlives_the_idle_timeout() {
    let server = TestServer::start(|c| c.timeouts.idle = ms(400));
    let mut s = server.connect();
    for _ in 0..8 {
        assert_healthz(&mut s);
        std::thread::sleep(ms(150));
    }
}

#[test]
fn stalled_write_is_dropped_after_write_timeout() {
    let server = TestServer::start(|c| c.timeouts.write = ms(300));
    let mut s = server.connect();
    SockRef::from(&s).set_recv_buffer_size(64 * 1024).unwrap();
    // 64 MiB, far more than both sockets' buffers hold; the client reads nothing.
    s.write_all(b"GET /bigstream?chunks=1024 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(ms(1500));
    let got = read_to_close(&mut s);
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(
        got.len() < 32 * 1024 * 1024,
        "the server kept writing to a stalled client: {} bytes",
        got.len()
    );
}

#[test]
fn slow_reader_that_keeps_reading_is_not_cut_off() {
    let server = TestServer::start(|c| c.timeouts.write = ms(400));
    let mut s = server.connect();
    SockRef::from(&s).set_recv_buffer_size(16 * 1024).unwrap();
    // 4 MiB read in slices with pauses shorter than the write timeout.
    s.write_all(b"GET /bigstream?chunks=64 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        std::thread::sleep(ms(20));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("read: {e} after {total} bytes"),
        }
    }
    assert!(total > 64 * 64 * 1024, "got only {total} bytes");
}

#[test]
fn slow_streamed_body_is_not_cut_off_by_the_write_timeout() {
    // The handler takes 300 ms per piece; only writes that stall count.
    let server = TestServer::start(|c| c.timeouts.write = ms(150));
    let mut s = server.connect();
    s.write_all(b"GET /slowstream?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = normalize(&read_response(&mut s));
    assert!(
        got.ends_with("\r\n\r\n5\r\ntick,\r\n5\r\ntick,\r\n5\r\ntick,\r\n0\r\n\r\n"),
        "{got}"
    );
    assert_healthz(&mut s);
}

#[test]
fn a_connection_asleep_between_requests_wakes_for_the_next_and_keeps_its_deadline() {
    // A 400 ms write timeout makes the tick 100 ms: idle for 350 ms, the
    // connection has put its request machinery away (see idle_memory.rs).
    let server = TestServer::start(|c| {
        c.timeouts.write = ms(400);
        c.timeouts.idle = ms(1500);
    });
    let mut s = server.connect();
    assert_healthz(&mut s);
    std::thread::sleep(ms(350));
    assert_healthz(&mut s);
    std::thread::sleep(ms(350));
    // A pipelined pair, and a head split across the wake-up.
    let mut two = HEALTHZ.to_vec();
    two.extend_from_slice(HEALTHZ);
    s.write_all(&two).unwrap();
    let ok = text_response("200 OK", "ok", "");
    assert_eq!(normalize(&read_response(&mut s)), ok);
    assert_eq!(normalize(&read_response(&mut s)), ok);
    std::thread::sleep(ms(350));
    s.write_all(&HEALTHZ[..10]).unwrap();
    std::thread::sleep(ms(50));
    s.write_all(&HEALTHZ[10..]).unwrap();
    assert_eq!(normalize(&read_response(&mut s)), ok);
    // Asleep, the idle timeout still closes it.
    let start = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    let took = start.elapsed();
    assert!(took >= ms(1400) && took < ms(2500), "closed after {took:?}");
}

#[test]
fn deadlines_fire_on_time_during_traffic_and_just_after_it_stops() {
    // While requests keep coming, the shard waits for the next one in
    // epoll_wait, holding its thread, rather than parking in glommio. Its
    // timers must still fire: one slow head times out while another
    // connection is busy, the other after that traffic has stopped.
    let server = TestServer::start(|c| c.timeouts.header = ms(300));
    let mut busy = server.connect();
    let start = Instant::now();
    let traffic = std::thread::spawn(move || {
        let mut served = 0u32;
        while start.elapsed() < ms(450) && served < 200_000 {
            assert_healthz(&mut busy);
            served += 1;
        }
        served
    });
    let slow_head = |after: Duration| {
        let server_addr = server.addr;
        std::thread::spawn(move || {
            std::thread::sleep(after.saturating_sub(start.elapsed()));
            let mut s = std::net::TcpStream::connect(server_addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let opened = Instant::now();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
            let got = normalize(&read_to_close(&mut s));
            (got, opened.elapsed())
        })
    };
    // Times out at about 300 ms + a tick (75 ms): inside the traffic.
    let during = slow_head(ms(0));
    // Times out at about 750 ms, when the traffic has stopped (at 450 ms).
    let after = slow_head(ms(375));
    let served = traffic.join().unwrap();
    assert!(served > 10, "only {served} requests served in 450 ms");
    let timeout = error_response("408 Request Timeout", "request head not received in time");
    for (when, slow) in [("during", during), ("after", after)] {
        let (got, took) = slow.join().unwrap();
        assert_eq!(got, timeout, "{when} the traffic");
        assert!(
            took >= ms(300) && took < ms(1200),
            "{when} the traffic: 408 after {took:?}"
        );
    }
}

/// Sets `done` if it runs to the end, `dropped` when it goes away: a
/// handler cancelled at its deadline is dropped without finishing.
struct Watch {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.dropped
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_handler_past_its_deadline_is_cancelled_and_answered_503() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let done = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let (d, g) = (done.clone(), dropped.clone());
    let config = edgeshard::Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: std::num::NonZeroUsize::new(1),
        timeouts: edgeshard::config::Timeouts {
            handler: Some(ms(300)),
            ..Default::default()
        },
        ..Default::default()
    };
    let server = TestServer::with_handler(config, move |_| {
        let (d, g) = (d.clone(), g.clone());
        move |req: edgeshard::Request| {
            let (d, g) = (d.clone(), g.clone());
            async move {
                if req.path() == "/slow" {
                    let watch = Watch {
                        done: d,
                        dropped: g,
                    };
                    glommio::timer::sleep(ms(3000)).await;
                    watch.done.store(true, Ordering::SeqCst);
                }
                edgeshard::Response::text("ok")
            }
        }
    });
    let mut s = server.connect();
    let start = Instant::now();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = normalize(&read_response(&mut s));
    let took = start.elapsed();
    assert_eq!(
        got,
        text_response(
            "503 Service Unavailable",
            "503 Service Unavailable: the handler timed out\n",
            ""
        )
    );
    assert!(took >= ms(300) && took < ms(1500), "took {took:?}");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the handler's future was dropped"
    );
    assert!(!done.load(Ordering::SeqCst), "and did not run to its end");
    // The connection goes on; a quick handler is not affected.
    assert_healthz(&mut s);
    std::thread::sleep(ms(400));
    s.write_all(b"GET /other HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response("200 OK", "ok", "")
    );
    assert!(!done.load(Ordering::SeqCst));
}
