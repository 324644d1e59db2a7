//! Connection cap and graceful shutdown, in process.

use crate::common;

use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn connection_cap_stops_accepting_until_a_slot_frees() {
    let server = TestServer::start(|c| c.max_conns = NonZeroUsize::new(2).unwrap());
    let mut a = server.connect();
    let mut b = server.connect();
    a.write_all(HEALTHZ).unwrap();
    b.write_all(HEALTHZ).unwrap();
    read_response(&mut a);
    read_response(&mut b);
    // The kernel completes the handshake (backlog), but the shard does not accept.
    let mut c = server.connect();
    c.write_all(HEALTHZ).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        c.read(&mut buf).is_err(),
        "a third connection was served at a cap of 2"
    );
    // Closing one frees a slot; the waiting connection is then served.
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        normalize(&read_response(&mut c)),
        text_response("200 OK", "ok", "")
    );
    // And the surviving one still works.
    assert_healthz(&mut b);
}

#[test]
fn shutdown_lets_a_running_handler_finish_with_connection_close() {
    let server = TestServer::start(|c| c.timeouts.drain = Duration::from_secs(5));
    let mut busy = server.connect();
    busy.write_all(b"GET /slow?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut idle = server.connect();
    idle.write_all(HEALTHZ).unwrap();
    read_response(&mut idle);
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    let handle = server.shutdown();
    assert_eq!(
        read_to_close(&mut idle),
        b"",
        "idle connection closed without a response"
    );
    assert_eq!(
        normalize(&read_to_close(&mut busy)),
        text_response("200 OK", "slept", "Connection: close\r\n")
    );
    handle.join().expect("shards exit cleanly");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drain waited {:?}",
        start.elapsed()
    );
}

#[test]
fn connections_asleep_between_requests_close_on_fin_and_on_shutdown() {
    // A 400 ms write timeout makes the tick 100 ms: idle for 350 ms, a
    // connection sleeps with no task, kept by its slot in the shard's table.
    let server = TestServer::start(|c| {
        c.timeouts.write = Duration::from_millis(400);
        c.timeouts.idle = Duration::from_secs(60);
        c.timeouts.drain = Duration::from_secs(5);
    });
    let mut conns: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for s in &mut conns {
        assert_healthz(s);
    }
    std::thread::sleep(Duration::from_millis(350));
    // The client's FIN is a read edge: the sleeper wakes, reads the end, closes.
    let mut fin = conns.pop().unwrap();
    fin.shutdown(std::net::Shutdown::Write).unwrap();
    let start = Instant::now();
    assert_eq!(read_to_close(&mut fin), b"");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Shutdown interrupts the sleepers like idle tasks: closed at once,
    // without a response, and the drain does not wait for its deadline.
    let start = Instant::now();
    let handle = server.shutdown();
    for s in &mut conns {
        assert_eq!(
            read_to_close(s),
            b"",
            "asleep connection closed without a response"
        );
    }
    handle.join().expect("shards exit cleanly");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drain waited {:?}",
        start.elapsed()
    );
}

#[test]
fn shutdown_during_a_pipelined_batch_answers_the_batch_then_closes() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    s.write_all(
        b"GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let handle = server.shutdown();
    // The request in the handler gets its response with Connection: close;
    // the one queued behind it is not started.
    assert_eq!(
        normalize(&read_to_close(&mut s)),
        text_response("200 OK", "slept", "Connection: close\r\n")
    );
    handle.join().unwrap();
}

#[test]
fn many_connections_at_once_are_all_served() {
    let server = TestServer::start(|_| {});
    let mut conns: Vec<_> = (0..200).map(|_| server.connect()).collect();
    for s in conns.iter_mut() {
        s.write_all(HEALTHZ).unwrap();
    }
    for s in conns.iter_mut() {
        assert_eq!(
            normalize(&read_response(s)),
            text_response("200 OK", "ok", "")
        );
    }
}
