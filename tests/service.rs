//! The process as a service manager sees it: the notify protocol on a
//! real `NOTIFY_SOCKET` datagram socket (ready, reload, stop, and the
//! watchdog held back by a stalled shard), socket activation by
//! `systemd-socket-activate`, and a binary upgrade (SIGUSR2) and a reload
//! (SIGHUP) under a steady load that counts every failed request.
//!
//! A binary of its own: it makes itself the reaper of orphaned
//! descendants (an upgraded process outlives its parent, and the test
//! wants its exit status), and its load tests want the CPUs to
//! themselves.

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_edgeshard");

/// An example binary cargo built beside the tests.
fn example(name: &str) -> PathBuf {
    let bin = Path::new(BIN);
    bin.parent()
        .expect("target dir")
        .join("examples")
        .join(name)
}

/// The receiving end of a `NOTIFY_SOCKET`: an abstract datagram socket.
struct Notified {
    sock: UnixDatagram,
    name: String,
}

impl Notified {
    fn bind(tag: &str) -> Notified {
        let name = format!("edgeshard-test-{}-{tag}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).expect("bind the notify socket");
        Notified {
            sock,
            name: format!("@{name}"),
        }
    }

    /// The next datagram within `limit`.
    fn recv(&self, limit: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Datagrams until one has the line `line`; that one is last. Panics
    /// with what came if none does within `limit`.
    fn until(&self, line: &str, limit: Duration) -> Vec<String> {
        let end = Instant::now() + limit;
        let mut got = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.recv(left.max(Duration::from_millis(1))) {
                Some(m) => {
                    let done = m.lines().any(|l| l == line);
                    got.push(m);
                    if done {
                        return got;
                    }
                }
                None => break,
            }
        }
        panic!("no {line:?} within {limit:?}; got {got:?}");
    }
}

/// A process with its output collected line by line; killed on drop.
struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let collect = |r: Box<dyn Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let l = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
            lines
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        Proc { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.err.lock().unwrap().clone()
    }

    /// The first stdout line containing `part`, waiting up to `limit`.
    fn line(&self, part: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            if let Some(l) = self.stdout().into_iter().find(|l| l.contains(part)) {
                return l;
            }
            assert!(
                Instant::now() < end,
                "no line with {part:?}; stdout {:?} stderr {:?}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < end,
                "still running after {limit:?}; stderr {:?}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, sig).expect("kill");
}

/// The exit status of `pid`, a descendant this process reaps once its
/// parent is gone (see [`become_reaper`]), waiting up to `limit`.
fn reap(pid: u32, limit: Duration) -> i32 {
    let end = Instant::now() + limit;
    let p = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    loop {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
            Ok(Some(st)) => {
                return st
                    .exit_status()
                    .map_or(-(st.terminating_signal().unwrap_or(0) as i32), |c| c as i32)
            }
            Ok(None) => {}
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
        assert!(
            Instant::now() < end,
            "pid {pid} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills a server this test did not start itself (an upgrade's new
/// process) if a failed assertion leaves it running.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if alive(self.0) && String::from_utf8_lossy(&cmdline).contains("edgeshard") {
            signal(self.0, rustix::process::Signal::Kill);
        }
    }
}

/// Orphaned descendants (an upgraded server whose parent has exited)
/// become this process's children, so their exit status can be read.
fn become_reaper() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).expect("subreaper");
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// `exe` on an ephemeral loopback port, `shards` shards, no access log.
fn quiet(exe: impl AsRef<std::ffi::OsStr>, shards: usize) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["--listen", "127.0.0.1:0", "--access-log", "off", "--shards"])
        .arg(shards.to_string());
    cmd
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
const HEALTHZ_CLOSE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// One response off `s`: status code, whether the server closes after it,
/// and the body.
fn response(s: &mut TcpStream) -> Result<(u16, bool, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(match buf.is_empty() {
                    true => "closed before any response byte".into(),
                    false => "closed in the response head".into(),
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e} after {} bytes", buf.len())),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no content-length: {head:?}"))?;
    let closes = head.lines().any(|l| l == "connection: close");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match s.read(&mut chunk) {
            Ok(0) => return Err("closed in the body".into()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read body: {e}")),
        }
    }
    Ok((status, closes, body))
}

/// A GET on a fresh connection, closed after: status and body.
fn get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, _, body) = response(&mut s).expect("response");
    (status, body)
}

/// A steady load on `/healthz`: threads on keep-alive connections (a
/// new one only when the server closes theirs; 1 ms between requests)
/// and threads opening a connection per request. Every request that does not get a whole
/// `200` is a failure, with no retries: a request crossed by a close is
/// counted, not hidden.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(addr: SocketAddr, keep_alive: usize, fresh: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for i in 0..keep_alive + fresh {
            let (stop, ok) = (stop.clone(), ok.clone());
            let reuse = i < keep_alive;
            threads.push(std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut conn: Option<TcpStream> = None;
                while !stop.load(Ordering::Relaxed) {
                    let mut s = match conn.take() {
                        Some(s) => s,
                        None => match TcpStream::connect(addr) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                s
                            }
                            Err(e) => {
                                failures.push(format!("connect: {e}"));
                                continue;
                            }
                        },
                    };
                    let req = if reuse { HEALTHZ } else { HEALTHZ_CLOSE };
                    let outcome = s
                        .write_all(req)
                        .map_err(|e| format!("write: {e}"))
                        .and_then(|()| response(&mut s));
                    match outcome {
                        Ok((200, closes, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if reuse && !closes {
                                conn = Some(s);
                                // A client that thinks between requests:
                                // its connection is idle most of the time,
                                // as a browser's or a balancer's is.
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                        Ok((status, _, body)) => failures.push(format!(
                            "status {status}: {}",
                            String::from_utf8_lossy(&body)
                        )),
                        Err(e) => failures.push(e),
                    }
                }
                failures
            }));
        }
        Load { stop, ok, threads }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` requests have succeeded (at most `limit`).
    fn reach(&self, n: u64, limit: Duration) {
        let end = Instant::now() + limit;
        while self.ok() < n {
            assert!(
                Instant::now() < end,
                "only {} requests in {limit:?}",
                self.ok()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the clients: requests that succeeded, and every failure.
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().expect("client thread"))
            .collect();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

/// Sends SIGUSR2 to `pid` and waits for the new process to be named the
/// main one (`MAINPID=`, from the old process) and ready; its pid.
fn upgrade(pid: u32, notified: &Notified) -> u32 {
    signal(pid, rustix::process::Signal::Usr2);
    let got = notified.until("READY=1", Duration::from_secs(40));
    let new_pid = got
        .iter()
        .flat_map(|m| m.lines())
        .find_map(|l| l.strip_prefix("MAINPID="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no MAINPID: {got:?}"));
    assert_ne!(new_pid, pid);
    new_pid
}

/// The address in `STATUS=serving on ADDR with …`.
fn status_addr(messages: &[String]) -> SocketAddr {
    messages
        .iter()
        .flat_map(|m| m.lines())
        .find_map(|l| l.strip_prefix("STATUS=serving on "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|a| a.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no serving status in {messages:?}"))
}

#[test]
fn ready_once_every_shard_listens_then_reloading_and_stopping() {
    let notified = Notified::bind("ready");
    let mut cmd = quiet(BIN, 2);
    cmd.env("NOTIFY_SOCKET", &notified.name);
    let mut p = Proc::spawn(cmd);
    let got = notified.until("READY=1", Duration::from_secs(20));
    assert_eq!(got.len(), 1, "READY=1 is the first message: {got:?}");
    assert!(
        got[0].contains("STATUS=serving on 127.0.0.1:") && got[0].ends_with("with 2 shard(s)"),
        "{got:?}"
    );
    // Ready means listening: a request right away is served.
    let addr = status_addr(&got);
    assert_eq!(get(addr, "/healthz").0, 200);
    assert_eq!(
        p.stdout()
            .iter()
            .filter(|l| l.contains(" listening on "))
            .count(),
        2
    );

    let before = monotonic_usec();
    signal(p.pid(), rustix::process::Signal::Hup);
    let got = notified.until("READY=1", Duration::from_secs(20));
    let reloading = got
        .iter()
        .find(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {got:?}"));
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {reloading:?}"));
    assert!(
        usec >= before && usec <= monotonic_usec(),
        "MONOTONIC_USEC {usec} is CLOCK_MONOTONIC at the reload (from {before})"
    );
    p.line(
        "SIGHUP: the configuration is reloaded",
        Duration::from_secs(5),
    );

    signal(p.pid(), rustix::process::Signal::Term);
    let got = notified.until("STOPPING=1", Duration::from_secs(10));
    assert!(got.last().unwrap().contains("STATUS=draining"), "{got:?}");
    assert!(p.exit_within(Duration::from_secs(10)).success());
    assert_eq!(p.stderr(), Vec::<String>::new());
}

#[test]
fn watchdog_pings_stop_while_a_shard_is_stalled_and_resume_after() {
    let notified = Notified::bind("watchdog");
    let mut cmd = Command::new(example("stall"));
    cmd.args(["--listen", "127.0.0.1:0", "--shards", "2"])
        .env("NOTIFY_SOCKET", &notified.name)
        // Pings every 500 ms; a shard quiet for 1 s holds them back.
        .env("WATCHDOG_USEC", "1000000");
    let mut p = Proc::spawn(cmd);
    let addr = status_addr(&notified.until("READY=1", Duration::from_secs(20)));

    // Regular pings while the shards run.
    let start = Instant::now();
    let mut pings = Vec::new();
    while start.elapsed() < Duration::from_millis(2200) {
        if let Some(m) = notified.recv(Duration::from_millis(100)) {
            assert_eq!(m, "WATCHDOG=1");
            pings.push(start.elapsed());
        }
    }
    assert!(pings.len() >= 3, "pings every 500 ms: {pings:?}");

    // One shard blocked for 4 s: pings stop, and say which shard.
    let stalled = std::thread::spawn(move || get(addr, "/stall/4000"));
    let stall_began = Instant::now();
    let mut messages = Vec::new();
    while stall_began.elapsed() < Duration::from_millis(6500) {
        if let Some(m) = notified.recv(Duration::from_millis(100)) {
            messages.push((stall_began.elapsed(), m));
        }
    }
    assert_eq!(stalled.join().unwrap().0, 200);
    let status = messages
        .iter()
        .find(|(_, m)| m.starts_with("STATUS=stalled: shard "))
        .unwrap_or_else(|| panic!("no stalled status: {messages:?}"));
    let ping_times: Vec<Duration> = messages
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    // Before the stall is noticed a ping or two may still leave; then
    // none until the shard runs again, 4 s after the stall began.
    let gap = ping_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        gap >= Duration::from_millis(2500),
        "pings held back while the shard was stalled: {messages:?}"
    );
    let resumed = ping_times
        .iter()
        .filter(|t| **t > Duration::from_millis(4000))
        .count();
    assert!(resumed >= 2, "pings resume once it runs: {messages:?}");
    assert!(status.0 < Duration::from_millis(2500), "{messages:?}");
    let err = p.stderr().join("\n");
    assert!(
        err.contains("has not run for longer than 1000 ms: withholding the watchdog ping"),
        "{err}"
    );
    assert!(p
        .stdout()
        .iter()
        .any(|l| l.contains("watchdog pings resume")));
    signal(p.pid(), rustix::process::Signal::Term);
    assert!(p.exit_within(Duration::from_secs(10)).success());
}

#[test]
fn without_watchdog_usec_for_this_process_there_are_no_pings() {
    let notified = Notified::bind("nowatchdog");
    let mut cmd = quiet(BIN, 1);
    cmd.env("NOTIFY_SOCKET", &notified.name)
        .env("WATCHDOG_USEC", "200000")
        // Meant for another process (sd_watchdog_enabled(3)).
        .env("WATCHDOG_PID", "1");
    let mut p = Proc::spawn(cmd);
    notified.until("READY=1", Duration::from_secs(20));
    assert_eq!(notified.recv(Duration::from_millis(800)), None);
    signal(p.pid(), rustix::process::Signal::Term);
    assert!(p.exit_within(Duration::from_secs(10)).success());
}

/// `systemd-socket-activate`'s child: `args` after the sockets.
fn activated(listen: &[(SocketAddr, &str)], args: &[&str], notify: Option<&str>) -> Proc {
    let mut cmd = Command::new("systemd-socket-activate");
    for (addr, _) in listen {
        cmd.arg("-l").arg(addr.to_string());
    }
    let names: Vec<&str> = listen.iter().map(|(_, n)| *n).collect();
    cmd.arg(format!("--fdname={}", names.join(":")));
    if let Some(n) = notify {
        cmd.arg("-E").arg(format!("NOTIFY_SOCKET={n}"));
    }
    cmd.arg(BIN).args(args);
    Proc::spawn(cmd)
}

#[test]
fn socket_activation_serves_on_the_sockets_systemd_hands_over_shared_by_every_shard() {
    if !common::have("systemd-socket-activate", &["--version"]) {
        return;
    }
    become_reaper();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let notified = Notified::bind("activated");
    let mut p = activated(
        &[(web, "http"), (admin, "metrics")],
        &["--shards", "2", "--access-log", "-"],
        Some(&notified.name),
    );
    // The tool starts the server at the first connection, as systemd
    // starts a socket-activated service; that connection is served.
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(admin).is_err() {
        assert!(
            Instant::now() < end,
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = std::thread::spawn(move || get(web, "/healthz"));
    notified.until("READY=1", Duration::from_secs(20));
    assert_eq!(first.join().unwrap().0, 200);
    let line = p.line("handed over by", Duration::from_secs(5));
    assert!(
        line.contains(&format!(
            "systemd (LISTEN_FDS): {web} and the metrics address"
        )),
        "{line}"
    );
    assert_eq!(get(web, "/healthz").0, 200);
    // The socket named `metrics` is the admin address.
    let (status, body) = get(admin, "/metrics");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("edgeshard_connections_total"));
    assert_eq!(
        get(web, "/metrics").0,
        404,
        "metrics live on their own address"
    );

    // Both shards accept from the one socket: requests on fresh
    // connections from several clients reach each of them.
    let load = Load::start(web, 0, 6);
    load.reach(600, Duration::from_secs(30));
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    std::thread::sleep(Duration::from_millis(1500));
    let shards: std::collections::BTreeMap<String, usize> = p
        .stdout()
        .iter()
        .filter(|l| l.contains("GET /healthz"))
        .filter_map(|l| l.split(' ').rev().nth(1).map(str::to_string))
        .fold(Default::default(), |mut m, s| {
            *m.entry(s).or_default() += 1;
            m
        });
    eprintln!("{ok} requests on one activated socket, by shard: {shards:?}");
    assert!(
        shards.contains_key("0") && shards.contains_key("1"),
        "{shards:?}"
    );

    // An upgrade hands the same sockets on.
    signal(p.pid(), rustix::process::Signal::Usr2);
    let line = p.line("is ready and serves", Duration::from_secs(30));
    assert!(p.exit_within(Duration::from_secs(10)).success(), "{line}");
    assert_eq!(get(web, "/healthz").0, 200);
    assert_eq!(get(admin, "/metrics").0, 200);
    let new_pid: u32 = line
        .split("pid ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("new pid");
    let _kill = KillOnDrop(new_pid);
    signal(new_pid, rustix::process::Signal::Term);
    assert_eq!(reap(new_pid, Duration::from_secs(10)), 0);
}

/// A config file with one static mount at `/files/` on `dir`.
fn write_config(path: &Path, dir: &Path) {
    std::fs::write(
        path,
        format!(
            "listen = [\"127.0.0.1:0\"]\nshards = 2\n\n[log]\naccess = \"off\"\n\n[[static]]\nprefix = \"/files/\"\nroot = \"{}\"\n",
            dir.display()
        ),
    )
    .unwrap();
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeshard-service-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn an_upgrade_and_a_reload_under_load_fail_no_request() {
    become_reaper();
    let dir = temp_dir("upgrade");
    for (sub, text) in [("a", "first\n"), ("b", "second\n")] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        std::fs::write(dir.join(sub).join("which.txt"), text).unwrap();
    }
    let config = dir.join("edgeshard.toml");
    write_config(&config, &dir.join("a"));
    let notified = Notified::bind("upgrade");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &notified.name);
    let mut old = Proc::spawn(cmd);
    let addr = status_addr(&notified.until("READY=1", Duration::from_secs(20)));
    assert_eq!(get(addr, "/files/which.txt"), (200, b"first\n".to_vec()));

    let load = Load::start(addr, 4, 4);
    load.reach(4_000, Duration::from_secs(60));

    // The upgrade: the new process is ready, named the main process, and
    // the old one drains and exits 0 while the load goes on.
    let new_pid = upgrade(old.pid(), &notified);
    let _kill = KillOnDrop(new_pid);
    let at_upgrade = load.ok();
    let st = old.exit_within(Duration::from_secs(15));
    assert!(st.success(), "old process: {st:?}; {:?}", old.stderr());
    assert!(alive(new_pid), "the new process serves");
    assert!(
        old.stdout().iter().any(|l| l
            == &format!(
                "edgeshard: upgrade: pid {new_pid} is ready and serves; this process (pid {}) drains and exits",
                old.pid()
            )),
        "{:?}",
        old.stdout()
    );
    load.reach(at_upgrade + 4_000, Duration::from_secs(60));

    // The reload: a new root for /files/, taken by the new process.
    write_config(&config, &dir.join("b"));
    signal(new_pid, rustix::process::Signal::Hup);
    let got = notified.until("READY=1", Duration::from_secs(20));
    assert!(got.iter().any(|m| m.starts_with("RELOADING=1")), "{got:?}");
    assert_eq!(get(addr, "/files/which.txt"), (200, b"second\n".to_vec()));
    let at_reload = load.ok();
    load.reach((at_reload + 4_000).max(24_000), Duration::from_secs(90));

    let (ok, failures) = load.finish();
    eprintln!(
        "{ok} requests across an upgrade (at {at_upgrade}) and a reload (at {at_reload}); {} failed",
        failures.len()
    );
    assert!(ok >= 20_000);
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    // The new process also says why a bad configuration is refused, and
    // keeps the one it has.
    std::fs::write(&config, "listen = [\"127.0.0.1:0\"]\nshards = 2\n[[static]]\nprefix = \"/files/\"\nroot = \"/nonexistent\"\n").unwrap();
    signal(new_pid, rustix::process::Signal::Hup);
    let got = notified.until("READY=1", Duration::from_secs(20));
    assert!(
        got.last()
            .unwrap()
            .contains("the last reload was refused: ")
            && got.last().unwrap().contains("static[0]"),
        "{got:?}"
    );
    assert_eq!(get(addr, "/files/which.txt"), (200, b"second\n".to_vec()));
    signal(new_pid, rustix::process::Signal::Term);
    assert_eq!(reap(new_pid, Duration::from_secs(15)), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_upgrade_to_a_binary_that_fails_keeps_the_old_process_serving() {
    become_reaper();
    let dir = temp_dir("failing");
    let exe = dir.join("edgeshard");
    std::fs::copy(BIN, &exe).unwrap();
    let notified = Notified::bind("failing");
    let mut cmd = quiet(&exe, 1);
    cmd.env("NOTIFY_SOCKET", &notified.name);
    let mut p = Proc::spawn(cmd);
    let addr = status_addr(&notified.until("READY=1", Duration::from_secs(20)));

    // A new file at the same path that exits at once.
    let broken = dir.join("broken");
    std::fs::write(&broken, "#!/bin/sh\necho 'broken build' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&broken, &exe).unwrap();
    signal(p.pid(), rustix::process::Signal::Usr2);
    let end = Instant::now() + Duration::from_secs(20);
    let why = loop {
        if let Some(l) = p
            .stderr()
            .into_iter()
            .find(|l| l.contains("upgrade failed"))
        {
            break l;
        }
        assert!(Instant::now() < end, "{:?}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        why.contains("this process keeps serving: the new process (pid ")
            && why.contains("exited (exit status: 3) before it was ready"),
        "{why}"
    );
    assert!(p.stderr().iter().any(|l| l == "broken build"));
    assert_eq!(get(addr, "/healthz").0, 200, "still serving");
    assert_eq!(p.child.try_wait().unwrap(), None);

    // The real binary back at the path: the next upgrade goes through.
    let fixed = dir.join("fixed");
    std::fs::copy(BIN, &fixed).unwrap();
    std::fs::rename(&fixed, &exe).unwrap();
    let new_pid = upgrade(p.pid(), &notified);
    let _kill = KillOnDrop(new_pid);
    assert!(p.exit_within(Duration::from_secs(15)).success());
    assert_eq!(get(addr, "/healthz").0, 200);
    signal(new_pid, rustix::process::Signal::Term);
    assert_eq!(reap(new_pid, Duration::from_secs(15)), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The units in `deploy/`, with `ExecStart` pointing at the binary built
/// here, in a directory of their own.
fn units() -> PathBuf {
    let dir = temp_dir("units");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for unit in ["edgeshard.service", "edgeshard.socket"] {
        let text = std::fs::read_to_string(root.join(unit)).unwrap();
        std::fs::write(
            dir.join(unit),
            text.replace("/usr/local/bin/edgeshard", BIN),
        )
        .unwrap();
    }
    dir
}

#[test]
fn the_units_in_deploy_verify_without_a_warning() {
    if !common::have("systemd-analyze", &["--version"]) {
        return;
    }
    let dir = units();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("edgeshard.service"))
        .arg(dir.join("edgeshard.socket"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The system calls `@group`s and names in `filters` allow.
fn allowed_syscalls(filters: &[String]) -> std::collections::BTreeSet<String> {
    fn expand(name: &str, into: &mut std::collections::BTreeSet<String>) {
        if !name.starts_with('@') {
            into.insert(name.to_string());
            return;
        }
        let out = Command::new("systemd-analyze")
            .args(["syscall-filter", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze syscall-filter {name}"
        );
        for line in String::from_utf8_lossy(&out.stdout).lines().skip(1) {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                expand(line, into);
            }
        }
    }
    let mut all = std::collections::BTreeSet::new();
    for f in filters {
        assert!(!f.starts_with('~'), "an allow list is expected: {f}");
        for name in f.split_whitespace() {
            expand(name, &mut all);
        }
    }
    all
}

/// The system calls in an `strace -f` log.
fn syscalls_in(log: &str) -> std::collections::BTreeSet<String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once(' ')?.1.trim_start();
            let rest = rest.strip_prefix("<... ").unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
        })
        .filter(|n| n != "exited" && n != "killed")
        .collect()
}

#[test]
fn the_units_syscall_filter_allows_every_call_the_server_makes() {
    if !common::have("strace", &["-V"]) || !common::have("systemd-analyze", &["--version"]) {
        return;
    }
    become_reaper();
    let dir = temp_dir("strace");
    let www = dir.join("www");
    std::fs::create_dir_all(www.join("sub")).unwrap();
    std::fs::write(www.join("big.bin"), vec![7u8; 2 << 20]).unwrap();
    std::fs::write(www.join("sub/a.txt"), "a\n").unwrap();
    let log = dir.join("strace.log");
    let port = free_port();
    let notified = Notified::bind("strace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--shards", "2"])
        .arg("--root")
        .arg(&www)
        .args(["--autoindex", "--access-log"])
        .arg(dir.join("access.log"))
        .args(["--proxy", &format!("/p/=http://127.0.0.1:{port}/sub")])
        .env("NOTIFY_SOCKET", &notified.name)
        .env("WATCHDOG_USEC", "1000000");
    let mut p = Proc::spawn(cmd);
    let addr = status_addr(&notified.until("READY=1", Duration::from_secs(60)));
    let exercise = || {
        assert_eq!(get(addr, "/big.bin").1.len(), 2 << 20);
        assert_eq!(get(addr, "/sub/").0, 200);
        assert_eq!(get(addr, "/p/a.txt"), (200, b"a\n".to_vec()));
        assert_eq!(get(addr, "/metrics").0, 200);
        assert_eq!(get(addr, "/api/stats").0, 200);
    };
    exercise();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(response(&mut s).unwrap().0, 200);
    // strace's child is the server; the upgrade's new process is its child.
    let server_pid =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", p.pid(), p.pid()))
            .unwrap()
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .expect("the server under strace");
    signal(server_pid, rustix::process::Signal::Hup);
    notified.until("READY=1", Duration::from_secs(30));
    let new_pid = upgrade(server_pid, &notified);
    let _kill = KillOnDrop(new_pid);
    exercise();
    std::thread::sleep(Duration::from_millis(1200));
    signal(new_pid, rustix::process::Signal::Term);
    assert!(p.exit_within(Duration::from_secs(30)).success());

    let used = syscalls_in(&std::fs::read_to_string(&log).unwrap());
    assert!(
        used.contains("io_uring_setup") && used.contains("sendfile"),
        "{used:?}"
    );
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/edgeshard.service"),
    )
    .unwrap();
    let filters: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
        .map(str::to_string)
        .collect();
    let allowed = allowed_syscalls(&filters);
    let refused: Vec<&String> = used.iter().filter(|s| !allowed.contains(*s)).collect();
    assert!(
        refused.is_empty(),
        "edgeshard.service's SystemCallFilter refuses {refused:?} (the server used {used:?})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `total_requests` from a server's `/api/stats`.
fn total_requests(addr: SocketAddr) -> u64 {
    let (status, body) = get(addr, "/api/stats");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    v["total_requests"].as_u64().expect("total_requests")
}

/// One host of the fleet: the binary on `port`, with a notify socket.
fn host(port: u16, tag: &str) -> (Proc, Notified) {
    let notified = Notified::bind(tag);
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--shards", "1"])
        .args(["--access-log", "off", "--shutdown-delay", "1s"])
        .env("NOTIFY_SOCKET", &notified.name);
    let p = Proc::spawn(cmd);
    notified.until("READY=1", Duration::from_secs(20));
    (p, notified)
}

#[test]
fn a_fleet_behind_haproxy_fails_no_request_while_one_host_upgrades_and_another_restarts() {
    if !common::have("haproxy", &["-v"]) {
        return;
    }
    become_reaper();
    let (pa, pb, ph) = (free_port(), free_port(), free_port());
    let (mut a, a_notified) = host(pa, "fleet-a");
    let (mut b, _b_notified) = host(pb, "fleet-b");
    let dir = temp_dir("fleet");
    let cfg =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg"))
            .unwrap()
            .replace("0.0.0.0:80", &format!("127.0.0.1:{ph}"))
            .replace("10.0.0.11:8080", &format!("127.0.0.1:{pa}"))
            .replace("10.0.0.12:8080", &format!("127.0.0.1:{pb}"));
    std::fs::write(dir.join("haproxy.cfg"), cfg).unwrap();
    let mut cmd = Command::new("haproxy");
    cmd.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
    let haproxy = Proc::spawn(cmd);
    let front: SocketAddr = format!("127.0.0.1:{ph}").parse().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(front).is_err() {
        assert!(Instant::now() < end, "haproxy: {:?}", haproxy.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both hosts up in HAProxy's eyes (two checks 200 ms apart each).
    std::thread::sleep(Duration::from_millis(800));

    let load = Load::start(front, 4, 2);
    load.reach(3_000, Duration::from_secs(60));

    // Host A: a binary upgrade.
    let a_new = upgrade(a.pid(), &a_notified);
    let _kill = KillOnDrop(a_new);
    assert!(a.exit_within(Duration::from_secs(15)).success());
    let after_upgrade = load.ok();
    load.reach(after_upgrade + 3_000, Duration::from_secs(60));

    // Host B: stopped (/readyz 503 for the shutdown delay, then a drain)
    // and started again on the same port.
    signal(b.pid(), rustix::process::Signal::Term);
    b.line(
        "stopping in 1s: /readyz answers 503 meanwhile",
        Duration::from_secs(5),
    );
    assert!(b.exit_within(Duration::from_secs(15)).success());
    let (mut b2, _b2_notified) = host(pb, "fleet-b2");
    // HAProxy takes it back after two good checks.
    std::thread::sleep(Duration::from_millis(1000));
    let restarted = load.ok();
    load.reach(restarted + 3_000, Duration::from_secs(60));
    let (ok, failures) = load.finish();
    eprintln!(
        "{ok} requests through HAProxy across an upgrade of one host (at {after_upgrade}) and a restart of the other (at {restarted}); {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let back: SocketAddr = format!("127.0.0.1:{pb}").parse().unwrap();
    assert!(
        total_requests(back) > 100,
        "the restarted host is back in the rotation"
    );

    signal(a_new, rustix::process::Signal::Term);
    assert_eq!(reap(a_new, Duration::from_secs(15)), 0);
    signal(b2.pid(), rustix::process::Signal::Term);
    assert!(b2.exit_within(Duration::from_secs(15)).success());
    let warnings: Vec<String> = haproxy
        .stderr()
        .into_iter()
        .filter(|l| !l.contains("is DOWN") && !l.contains("is UP"))
        .collect();
    eprintln!("haproxy said: {warnings:?}");
    drop(haproxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn handed_over_descriptors_that_are_not_listening_sockets_stop_the_start_naming_them() {
    // fd 3 a regular file, then a TCP socket that is not listening; and
    // LISTEN_FDS for another process, which is not taken at all.
    let cases = [
        (
            "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --listen 127.0.0.1:0 3</etc/hostname",
            "edgeshard: descriptor 3 from systemd (LISTEN_FDS): not a socket",
        ),
        (
            "LISTEN_PID=$$ LISTEN_FDS=x exec \"$0\" --listen 127.0.0.1:0",
            "edgeshard: LISTEN_FDS=\"x\" is not a count of descriptors",
        ),
        (
            "EDGESHARD_FDS=1:listen EDGESHARD_FDS_PARENT=$PPID exec \"$0\" --listen 127.0.0.1:0",
            "edgeshard: descriptor 1 from the process upgraded from: not a listening socket to take",
        ),
    ];
    for (script, want) in cases {
        let out = Command::new("sh")
            .args(["-c", script, BIN])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert_eq!(err.trim_end(), want, "{script}");
    }
    // Meant for another process: ignored, and the server binds its own.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "LISTEN_PID=1 LISTEN_FDS=1 exec \"$0\" --listen 127.0.0.1:0 --access-log off",
        BIN,
    ]);
    let mut p = Proc::spawn(cmd);
    let line = p.line(" listening on ", Duration::from_secs(20));
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(get(addr, "/healthz").0, 200);
    assert!(!p.stdout().iter().any(|l| l.contains("handed over")));
    signal(p.pid(), rustix::process::Signal::Term);
    assert!(p.exit_within(Duration::from_secs(10)).success());
}

/// An upstream answering every request with `body`, one per connection.
fn fixed_upstream(body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Sends `req` on `s`; the response's head (lower-cased) and body.
fn exchange(s: &mut TcpStream, req: &str) -> (String, String) {
    s.write_all(req.as_bytes()).unwrap();
    let raw = common::read_response(s);
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").expect("a whole head");
    (
        format!("{}\r\n\r\n", head.to_ascii_lowercase()),
        body.to_string(),
    )
}

#[test]
fn a_reload_changes_upstreams_auth_files_and_middleware_under_an_open_connection() {
    let dir = temp_dir("reload");
    let (a, b) = (fixed_upstream("A\n"), fixed_upstream("B\n"));
    let write = |upstream: SocketAddr, token: &str, csp: &str, log: &str| {
        std::fs::write(dir.join("tokens"), format!("{token}\n")).unwrap();
        std::fs::write(
            dir.join("edgeshard.toml"),
            format!(
                "listen = [\"127.0.0.1:0\"]\nshards = 1\n\n[log]\naccess = \"{log}\"\n\n\
                 [[proxy]]\nprefix = \"/app/\"\nupstreams = [\"http://{upstream}\"]\n\n\
                 [[auth]]\nprefix = \"/app/\"\nscheme = \"bearer\"\nfile = \"tokens\"\n\n\
                 [security]\ncsp = \"{csp}\"\n"
            ),
        )
        .unwrap();
    };
    write(a, "one", "default-src 'self'", "a.log");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(dir.join("edgeshard.toml"));
    let mut p = Proc::spawn(cmd);
    let line = p.line(" listening on ", Duration::from_secs(20));
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let req = |token: &str| {
        format!("GET /app/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n")
    };
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (head, body) = exchange(&mut conn, &req("one"));
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert_eq!(body, "A\n");
    assert!(
        head.contains("content-security-policy: default-src 'self'\r\n"),
        "{head}"
    );
    assert!(!head.contains("connection: close"), "{head}");

    write(b, "two", "default-src 'none'", "b.log");
    signal(p.pid(), rustix::process::Signal::Hup);
    p.line(
        "SIGHUP: the configuration is reloaded",
        Duration::from_secs(20),
    );
    // The same connection, still open, sees the new configuration.
    let (head, _) = exchange(&mut conn, &req("one"));
    assert!(
        head.starts_with("http/1.1 401 "),
        "the old token is refused: {head}"
    );
    let (head, body) = exchange(&mut conn, &req("two"));
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert_eq!(body, "B\n", "the new upstream answers");
    assert!(
        head.contains("content-security-policy: default-src 'none'\r\n"),
        "{head}"
    );
    // The access log now goes to the new file (with any line a shard
    // still had in its buffer at the reload: they are written at least
    // once a second).
    let logged = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(5);
    while logged("a.log").lines().count() + logged("b.log").lines().count() < 3 {
        assert!(
            Instant::now() < end,
            "a.log {:?} b.log {:?}",
            logged("a.log"),
            logged("b.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let b_log = logged("b.log");
    assert!(
        b_log.contains("\"GET /app/x HTTP/1.1\" 401 ")
            && b_log.contains("\"GET /app/x HTTP/1.1\" 200 "),
        "{b_log}"
    );

    // A change that takes a restart is said, and the rest still applies.
    std::fs::write(
        dir.join("edgeshard.toml"),
        std::fs::read_to_string(dir.join("edgeshard.toml"))
            .unwrap()
            .replace("shards = 1", "shards = 2"),
    )
    .unwrap();
    signal(p.pid(), rustix::process::Signal::Hup);
    let said = p.line("take a restart", Duration::from_secs(20));
    assert!(
        said.ends_with("they keep their running values: shards"),
        "{said}"
    );
    let (head, _) = exchange(&mut conn, &req("two"));
    assert!(head.starts_with("http/1.1 200 "), "{head}");

    // A broken file: refused, named, and the running configuration stays.
    std::fs::write(
        dir.join("edgeshard.toml"),
        "listen = [\"127.0.0.1:0\"]\n[[proxy]]\nprefix = \"/app/\"\nupstreams = [\"htp://x\"]\n",
    )
    .unwrap();
    signal(p.pid(), rustix::process::Signal::Hup);
    let end = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        if let Some(l) = p.stderr().into_iter().find(|l| l.contains("refused")) {
            break l;
        }
        assert!(Instant::now() < end, "{:?}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        refused.starts_with(
            "edgeshard: SIGHUP: the new configuration is refused; the running one stays: "
        ) && refused.contains("edgeshard.toml:4: proxy[0].upstreams"),
        "{refused}"
    );
    let (head, body) = exchange(&mut conn, &req("two"));
    assert!(head.starts_with("http/1.1 200 ") && body == "B\n", "{head}");
    signal(p.pid(), rustix::process::Signal::Term);
    assert!(p.exit_within(Duration::from_secs(10)).success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signals_still_work_once_stdout_and_stderr_are_gone() {
    // Under a pipe whose reader has gone (a log collector restarted, the
    // shell that started it closed), every line the server prints fails
    // with EPIPE. That must not kill the thread that handles signals.
    let notified = Notified::bind("closed-stdout");
    let mut child = quiet(BIN, 1)
        .env("NOTIFY_SOCKET", &notified.name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    notified.until("READY=1", Duration::from_secs(20));
    drop(child.stdout.take());
    drop(child.stderr.take());
    // A reload prints a line (and a refused upgrade of a shard count a
    // warning); neither can be written.
    signal(child.id(), rustix::process::Signal::Hup);
    notified.until("READY=1", Duration::from_secs(20));
    signal(child.id(), rustix::process::Signal::Hup);
    notified.until("READY=1", Duration::from_secs(20));
    signal(child.id(), rustix::process::Signal::Term);
    notified.until("STOPPING=1", Duration::from_secs(10));
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("SIGTERM did not stop the server");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn while_the_old_process_drains_every_new_connection_is_answered_at_once() {
    become_reaper();
    let notified = Notified::bind("draining");
    let mut cmd = quiet(BIN, 1);
    cmd.env("NOTIFY_SOCKET", &notified.name);
    let mut old = Proc::spawn(cmd);
    let addr = status_addr(&notified.until("READY=1", Duration::from_secs(20)));
    // A request whose body is still coming keeps the old process draining.
    let mut held = TcpStream::connect(addr).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    held.write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nabc")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let new_pid = upgrade(old.pid(), &notified);
    let _kill = KillOnDrop(new_pid);
    assert_eq!(
        old.child.try_wait().unwrap(),
        None,
        "the old process drains"
    );
    // Single requests with pauses between them, so that each shard goes
    // from busy to idle: none may wait for another connection to come.
    for i in 0..40 {
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(HEALTHZ_CLOSE).unwrap();
        let got = response(&mut s);
        assert!(
            matches!(got, Ok((200, _, _))) && started.elapsed() < Duration::from_millis(500),
            "request {i}: {got:?} after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5 + (i % 4) * 20));
    }
    assert_eq!(old.child.try_wait().unwrap(), None, "still draining");
    held.write_all(b"def").unwrap();
    let (status, closes, body) = response(&mut held).unwrap();
    assert_eq!(
        (status, closes, body.as_slice()),
        (200, true, &b"abcdef"[..])
    );
    assert!(old.exit_within(Duration::from_secs(10)).success());
    signal(new_pid, rustix::process::Signal::Term);
    assert_eq!(reap(new_pid, Duration::from_secs(10)), 0);
}
