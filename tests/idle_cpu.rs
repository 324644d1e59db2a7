//! A shard that has just served a burst of requests waits for more in
//! `epoll_wait` for a moment; once the traffic stops it must go to sleep,
//! not spin. Measured as this process's CPU time over a quiet second (the
//! only test in this file, so nothing else runs meanwhile).

mod common;

use std::time::Duration;

use common::*;

/// `utime + stime` of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name may hold spaces: the fields after it follow the last ')'.
    let after = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_shard_sleeps_once_a_burst_of_requests_is_over() {
    let server = TestServer::start(|_| {});
    let mut s = server.connect();
    for _ in 0..2000 {
        assert_healthz(&mut s);
    }
    // The connection stays open and idle; the shard's hot wait ends
    // within a millisecond of the last request.
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks() - before;
    // Clock ticks are 1/100 s on Linux: a spinning shard would use about
    // 100 here; a sleeping one wakes for its timer tick and little else.
    assert!(used < 20, "{used} ticks of CPU in a quiet second");
    assert_healthz(&mut s);
}
