//! The binary as a process: flags, start-up lines, a port served by someone
//! else, locked-memory limits, EMFILE, and SIGTERM with requests in flight.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    assert_default_healthz, normalize, read_response, read_to_close, text_response, HEALTHZ,
};

const BIN: &str = env!("CARGO_BIN_EXE_edgeshard");

/// A running `edgeshard` process; killed on drop if still running.
struct Proc {
    child: Child,
    addr: SocketAddr,
    stdout_lines: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(start.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Serves one request, sends `sig`, and expects exit status 0 within 5 s.
    fn serve_once_then_stop(&mut self, sig: &str) {
        assert_default_healthz(&mut self.connect());
        self.signal(sig);
        let st = self.wait_exit(Duration::from_secs(5));
        assert!(st.success(), "exit status {st:?}");
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut s).unwrap();
        }
        s
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

/// The binary with `args`, run under `prlimit` when limits are given.
fn command(args: &[&str], prlimit: &[&str]) -> Command {
    let mut cmd = if prlimit.is_empty() {
        Command::new(BIN)
    } else {
        let mut c = Command::new("prlimit");
        c.args(prlimit).arg("--").arg(BIN);
        c
    };
    cmd.args(args);
    cmd
}

/// Starts the binary (optionally under `prlimit`) and waits for its start-up lines.
fn spawn(args: &[&str], prlimit: &[&str], shards: usize) -> Proc {
    spawn_command(command(args, prlimit), shards)
}

/// Starts `cmd` (the binary, perhaps behind a wrapper) and waits for its
/// `shards` "listening on" lines; other start-up lines are skipped.
fn spawn_command(mut cmd: Command, shards: usize) -> Proc {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgeshard");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end: the access log goes to stdout too, and a closed
        // pipe would make the server say its lines are lost.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while lines.len() < shards {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.contains(" listening on ") => lines.push(l),
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("edgeshard did not start; stdout {lines:?}; stderr {err}");
            }
        }
    }
    let addr = lines[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect("address in start-up line");
    Proc {
        child,
        addr,
        stdout_lines: lines,
    }
}

/// Runs the binary to completion (it is expected to fail fast).
fn run_to_exit(args: &[&str], prlimit: &[&str]) -> (ExitStatus, String) {
    let out = command(args, prlimit)
        .stdin(Stdio::null())
        .output()
        .expect("run edgeshard");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--shards",
        "--backlog",
        "--max-conns",
        "--max-uri",
        "--max-header-bytes",
        "--max-headers",
        "--max-body",
        "--header-timeout",
        "--body-timeout",
        "--min-body-rate",
        "--idle-timeout",
        "--write-timeout",
        "--drain-timeout",
        "--print-routes",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn print_routes_lists_the_builtin_api() {
    let out = Command::new(BIN).arg("--print-routes").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "METHODS    PATTERN         HANDLER\n\
         GET, HEAD  GET /healthz    healthz\n\
         GET, HEAD  GET /readyz     readyz\n\
         GET, HEAD  GET /metrics    metrics\n\
         GET, HEAD  GET /api/stats  api_stats\n\
         POST       POST /api/echo  echo\n"
    );
}

#[test]
fn bad_flag_value_is_a_clear_error() {
    let (st, err) = run_to_exit(&["--max-body", "lots"], &[]);
    assert!(!st.success());
    assert!(err.contains("--max-body") && err.contains("lots"), "{err}");
    let (st, err) = run_to_exit(&["--shards", "0", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(st.code(), Some(2));
    assert_eq!(err, "edgeshard: --shards: must be at least 1\n");
}

/// The benchmark example, which `cargo test` builds beside the binary.
fn bench_example() -> std::path::PathBuf {
    let bin = std::path::Path::new(BIN);
    bin.parent().unwrap().join("examples").join("bench")
}

#[test]
fn each_binary_speaks_in_its_own_name() {
    let bench = bench_example();
    assert!(bench.exists(), "{} is not built", bench.display());
    let out = Command::new(&bench)
        .args(["--shards", "0", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "bench: --shards: must be at least 1\n"
    );
    let mut cmd = Command::new(&bench);
    cmd.args(["--listen", "127.0.0.1:0", "--shards", "1"]);
    let mut p = spawn_command(cmd, 1);
    assert!(
        p.stdout_lines[0].starts_with("bench: shard 0 on core "),
        "{:?}",
        p.stdout_lines
    );
    p.signal("-TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn help_shows_each_default() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default) in [
        ("--listen", "0.0.0.0:8080"),
        ("--max-uri", "8KiB"),
        ("--max-body", "1MiB"),
        ("--header-timeout", "10s"),
        ("--idle-timeout", "75s"),
        ("--file-cache", "4096"),
    ] {
        // `--help` shows each flag as an entry of its own, blank lines between.
        let line = help
            .split("\n\n")
            .find(|entry| entry.contains(&format!("{flag} <")))
            .unwrap_or_else(|| panic!("{flag} missing from:\n{help}"));
        assert!(
            line.contains(&format!("[default: {default}]")),
            "{flag}: {line}"
        );
    }
}

#[test]
fn starts_one_line_per_shard_serves_and_exits_0_on_sigterm() {
    let mut p = spawn(&["--listen", "127.0.0.1:0", "--shards", "2"], &[], 2);
    assert_eq!(p.stdout_lines.len(), 2);
    for (i, line) in p.stdout_lines.iter().enumerate() {
        let prefix = format!("edgeshard: shard {i} on core ");
        assert!(
            line.starts_with(&prefix) && line.ends_with(&format!("listening on {}", p.addr)),
            "{line}"
        );
    }
    // Several connections, so both shards are likely to see some.
    for _ in 0..8 {
        assert_default_healthz(&mut p.connect());
    }
    p.signal("-TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).success());
    assert_eq!(
        p.stderr(),
        "",
        "start-up and shutdown print nothing on stderr"
    );
}

#[test]
fn paths_climbing_above_the_root_are_logged_within_a_budget() {
    let mut p = spawn(&["--listen", "127.0.0.1:0", "--shards", "1"], &[], 1);
    let refuse = |n: usize| {
        let mut s = p.connect();
        write!(
            s,
            "GET /a/../../etc/passwd?n={n} HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .unwrap();
        assert_eq!(
            normalize(&read_to_close(&mut s)),
            common::error_response("400 Bad Request", "path climbs above the root")
        );
        s.local_addr().unwrap()
    };
    // A scanner's burst: 25 within well under two seconds, so at least five
    // go over the shard's budget of 10 lines a second.
    let mut peers: Vec<_> = (0..25).map(refuse).collect();
    // In a later second, one more: its line counts those left out.
    std::thread::sleep(Duration::from_millis(2100));
    peers.push(refuse(25));
    p.signal("-TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).success());
    let err = p.stderr();
    let mut logged = 0;
    let mut left_out = 0;
    for line in err.lines() {
        let (start, more) = match line.rsplit_once(" (") {
            Some((start, more)) if more.ends_with(" more refused and not logged before this)") => (
                start,
                more.split(' ').next().unwrap().parse::<usize>().unwrap(),
            ),
            _ => (line, 0),
        };
        let n: usize = start
            .rsplit("?n=")
            .next()
            .and_then(|r| r.strip_suffix(" HTTP/1.1\""))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(
            start,
            format!(
                "edgeshard: shard 0: refused a request from {} with 400 \
                 (path climbs above the root): \"GET /a/../../etc/passwd?n={n} HTTP/1.1\"",
                peers[n]
            )
        );
        logged += 1;
        left_out += more;
    }
    assert!((10..=20).contains(&(logged - 1)), "{err}");
    assert!(err.lines().last().unwrap().contains("?n=25 "), "{err}");
    assert_eq!(
        logged + left_out,
        26,
        "every refusal is logged or counted: {err}"
    );
}

#[test]
fn runs_with_transparent_huge_pages_off() {
    // One touched byte of a 2 MiB page would make all of it resident: idle
    // connections would cost whatever page the allocator last touched.
    let mut p = spawn(&["--listen", "127.0.0.1:0", "--shards", "1"], &[], 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id())).unwrap();
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    p.serve_once_then_stop("-TERM");
    // The line exists since Linux 5.0; older kernels have nothing to check.
    if let Some(line) = thp {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}

#[test]
fn sigint_also_drains_and_exits_0() {
    let mut p = spawn(&["--listen", "127.0.0.1:0", "--shards", "1"], &[], 1);
    p.serve_once_then_stop("-INT");
}

#[test]
fn port_served_by_another_process_is_refused() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    let (st, err) = run_to_exit(&["--listen", &addr, "--shards", "1"], &[]);
    assert!(!st.success());
    assert_eq!(
        err,
        format!("edgeshard: address {addr} is already in use by another process; stop it or choose another --listen\n")
    );
}

#[test]
fn second_edgeshard_on_the_same_port_does_not_join_silently() {
    let first = spawn(&["--listen", "127.0.0.1:0", "--shards", "1"], &[], 1);
    let addr = first.addr.to_string();
    let (st, err) = run_to_exit(&["--listen", &addr, "--shards", "1"], &[]);
    assert!(!st.success());
    assert!(
        err.contains(&addr) && err.contains("already in use"),
        "{err}"
    );
    drop(first);
}

#[test]
fn starts_cleanly_under_an_8_mib_memlock_limit() {
    let mut p = spawn(
        &["--listen", "127.0.0.1:0", "--shards", "2"],
        &["--memlock=8388608:8388608"],
        2,
    );
    p.serve_once_then_stop("-TERM");
    assert_eq!(p.stderr(), "", "no warnings under 8 MiB");
}

#[test]
fn raises_a_low_soft_memlock_limit_to_the_hard_limit() {
    let mut p = spawn(
        &["--listen", "127.0.0.1:0", "--shards", "1"],
        &["--memlock=65536:8388608"],
        1,
    );
    p.serve_once_then_stop("-TERM");
}

#[test]
fn too_little_locked_memory_exits_with_what_to_raise() {
    let (st, err) = run_to_exit(
        &["--listen", "127.0.0.1:0", "--shards", "2"],
        &["--memlock=262144:262144"],
    );
    assert_eq!(st.code(), Some(1));
    assert!(
        err.starts_with(
            "edgeshard: locked-memory limit (RLIMIT_MEMLOCK) is 256 KiB; 2 shard(s) need 512 KiB"
        ),
        "{err}"
    );
    assert!(
        err.contains("ulimit -l 512") && err.contains("LimitMEMLOCK=512K"),
        "{err}"
    );
}

#[test]
fn raises_the_open_files_soft_limit_to_the_hard_limit() {
    let p = spawn(
        &["--listen", "127.0.0.1:0", "--shards", "1"],
        &["--nofile=64:4096"],
        1,
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], ["4096", "4096"], "{line}");
}

#[test]
fn out_of_file_descriptors_pauses_accepting_and_recovers() {
    // 15 descriptors at rest (among them the shard's epoll, the spare
    // duplicate it parks with, and the listening socket's duplicate kept
    // for an upgrade) leave room for 4 connections under 19.
    let mut p = spawn(
        &["--listen", "127.0.0.1:0", "--shards", "1"],
        &["--nofile=19:19"],
        1,
    );
    let mut conns: Vec<TcpStream> = (0..8).map(|_| p.connect()).collect();
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for mut s in conns.drain(..) {
        s.write_all(HEALTHZ).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(n) if n > 0 => served.push(s),
            _ => waiting.push(s),
        }
    }
    assert!(
        !served.is_empty() && !waiting.is_empty(),
        "served {} waiting {}",
        served.len(),
        waiting.len()
    );
    // Existing connections are still served while accepts fail.
    for s in served.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_default_healthz(s);
    }
    drop(served);
    // Freed descriptors let the waiting connections in; their requests are answered.
    for s in waiting.iter_mut() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(
            normalize(&read_response(s)),
            text_response(
                "200 OK",
                "ok",
                &format!("Cache-Control: no-store\r\n{}", common::SECURITY_LINES)
            )
        );
    }
    drop(waiting);
    p.signal("-TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).success());
    let err = p.stderr();
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "logged once, not per retry: {err}");
    assert!(
        lines[0].contains("accept failed") && lines[0].contains("Too many open files"),
        "{err}"
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_and_closes_idle_ones() {
    let mut p = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--drain-timeout",
            "5s",
        ],
        &[],
        1,
    );
    let mut idle = p.connect();
    assert_default_healthz(&mut idle);
    let mut in_flight = p.connect();
    in_flight
        .write_all(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    p.signal("-TERM");
    // The idle connection is closed at once, without a response.
    assert_eq!(read_to_close(&mut idle), b"");
    assert!(signalled.elapsed() < Duration::from_secs(2));
    // No new connections are accepted.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(p.addr).is_err(),
        "still accepting after SIGTERM"
    );
    // The in-flight request completes, with Connection: close.
    in_flight.write_all(b"67890").unwrap();
    assert_eq!(
        normalize(&read_to_close(&mut in_flight)),
        format!(
            "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\nContent-Type: text/plain\r\n\
             Content-Length: 10\r\n{}Connection: close\r\n\r\n1234567890",
            common::SECURITY_LINES
        )
    );
    let st = p.wait_exit(Duration::from_secs(3));
    assert!(st.success(), "exit status {st:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "did not wait for the drain deadline"
    );
}

#[test]
fn drain_deadline_closes_what_is_left_and_exits_0() {
    let mut p = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--drain-timeout",
            "1s",
        ],
        &[],
        1,
    );
    let mut stuck = p.connect();
    stuck
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n1")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let signalled = Instant::now();
    p.signal("-TERM");
    let st = p.wait_exit(Duration::from_secs(5));
    assert!(st.success());
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(read_to_close(&mut stuck), b"");
}

/// As an unprivileged user (root reads everything), a file the server may
/// not read is a 403 with a short body, and the shard goes on serving.
#[test]
fn unreadable_files_are_403_and_the_shard_keeps_serving() {
    use std::os::unix::fs::PermissionsExt;
    if !common::have("setpriv", &["--version"]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("edgeshard-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("open.txt"), b"readable\n").unwrap();
    std::fs::write(dir.join("closed.txt"), b"private\n").unwrap();
    std::fs::set_permissions(dir.join("open.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        dir.join("closed.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    // The build directory may sit under a home that nobody cannot enter.
    let bin = dir.join("edgeshard-bin");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--root"])
        .arg(&dir);
    let mut p = spawn_command(setpriv, 1);
    let get = |path: &str| {
        let mut s = p.connect();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let denied = get("/closed.txt");
    assert!(denied.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{denied}");
    assert!(
        denied.ends_with("\r\n\r\n403 Forbidden: access denied\n"),
        "{denied}"
    );
    assert!(!denied.contains("private"));
    let ok = get("/open.txt");
    assert!(
        ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("readable\n"),
        "{ok}"
    );
    p.signal("-TERM");
    let _ = p.wait_exit(Duration::from_secs(10));
    let _ = std::fs::set_permissions(
        dir.join("closed.txt"),
        std::fs::Permissions::from_mode(0o600),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory holding `edgeshard.toml` with `toml` in it, and a
/// `site/` beside it with an `index.html`; the file's path.
fn config_in_dir(name: &str, toml: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeshard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "from the file's site\n").unwrap();
    let path = dir.join("edgeshard.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn get_root(p: &Proc) -> String {
    let mut s = p.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

#[test]
fn runs_from_a_config_file_alone_and_flags_override_it() {
    let path = config_in_dir(
        "config-alone",
        "listen = [\"127.0.0.1:0\"]\nshards = 1\nrequest_id = true\n\n\
         [log]\naccess = \"off\"\n\n[security]\nheaders = false\n\n\
         [[static]]\nprefix = \"/\"\nroot = \"site\"\n",
    );
    let config = path.to_str().unwrap();
    // Started elsewhere: the root is found beside the file.
    let mut cmd = command(&["--config", config], &[]);
    cmd.current_dir("/");
    let p = spawn_command(cmd, 1);
    let r = get_root(&p);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\nfrom the file's site\n"), "{r}");
    assert!(r.contains("\r\nX-Request-Id: "), "request_id = true: {r}");
    assert!(
        !r.contains("X-Content-Type-Options"),
        "headers = false: {r}"
    );
    drop(p);
    // A flag given as well wins over the file.
    let p = spawn(&["--config", config, "--request-id=false"], &[], 1);
    let r = get_root(&p);
    assert!(r.ends_with("\r\n\r\nfrom the file's site\n"), "{r}");
    assert!(!r.contains("X-Request-Id"), "the flag overrides: {r}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_bad_config_file_is_refused_naming_the_file_the_line_and_the_key() {
    let path = config_in_dir(
        "config-bad",
        "listen = [\"127.0.0.1:0\"]\n\n[[proxy]]\nprefix = \"/app1/\"\nupstreams = [\"htp://x\"]\n",
    );
    let config = path.to_str().unwrap();
    let expected = format!(
        "edgeshard: {config}:5: proxy[0].upstreams[0]: \"htp://x\" is not an http:// URL\n"
    );
    for args in [&["--config", config][..], &["check-config", config]] {
        let (status, stderr) = run_to_exit(args, &[]);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, expected, "{args:?}");
    }
    // A value that only fails when checked against the rest: the file's
    // mount names the file's key, a flag's the flag.
    std::fs::write(&path, "[[static]]\nprefix = \"/\"\nroot = \"missing\"\n").unwrap();
    let (status, stderr) = run_to_exit(&["check-config", config], &[]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with(&format!("edgeshard: {config}:1: static[0]: "))
            && stderr.contains("missing"),
        "{stderr}"
    );
    let (status, stderr) = run_to_exit(
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--root",
            "/definitely/not/here",
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with("edgeshard: --root: /definitely/not/here"),
        "{stderr}"
    );
    let (status, stderr) = run_to_exit(&["--config", "/definitely/not/here.toml"], &[]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with("edgeshard: /definitely/not/here.toml: cannot read it: "),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn the_deploy_example_passes_check_config_and_what_it_prints_reads_back() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/edgeshard.toml");
    let check = |path: &str| {
        let out = command(&["check-config", path], &[])
            .stdin(Stdio::null())
            .output()
            .expect("run edgeshard");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{path}: {stderr}");
        assert_eq!(
            stderr,
            format!("edgeshard: {path}: the configuration is valid\n")
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = check(example);
    for key in [
        "[limits]",
        "[[static]]",
        "[[proxy]]",
        "[rate_limit]",
        "max_body = \"100MiB\"",
    ] {
        assert!(shown.contains(key), "{key} in:\n{shown}");
    }
    // Every setting in effect, defaults included, in the file's format.
    assert!(shown.contains("\nmax_headers = 100\n"), "{shown}");
    let copy =
        std::env::temp_dir().join(format!("edgeshard-effective-{}.toml", std::process::id()));
    std::fs::write(&copy, &shown).unwrap();
    assert_eq!(check(copy.to_str().unwrap()), shown);
    let _ = std::fs::remove_file(&copy);
}

fn readyz(p: &Proc) -> String {
    let mut s = p.connect();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    normalize(&read_response(&mut s))
}

#[test]
fn readyz_turns_503_at_sigterm_and_the_shutdown_delay_keeps_serving_meanwhile() {
    let delay = Duration::from_millis(1500);
    let mut p = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--access-log",
            "off",
            "--shutdown-delay",
            "1500ms",
        ],
        &[],
        1,
    );
    let no_store = format!("Cache-Control: no-store\r\n{}", common::SECURITY_LINES);
    assert_eq!(readyz(&p), text_response("200 OK", "ready", &no_store));
    let signalled = Instant::now();
    p.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    // Within the delay: new connections are still taken and served, and
    // only /readyz has changed.
    assert_eq!(
        readyz(&p),
        text_response(
            "503 Service Unavailable",
            "503 Service Unavailable: stopping\n",
            &no_store
        )
    );
    assert_default_healthz(&mut p.connect());
    // Then the drain closes the listener, and the process exits 0.
    while TcpStream::connect(p.addr).is_ok() {
        assert!(signalled.elapsed() < delay + Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed = signalled.elapsed();
    assert!(closed >= delay, "the listener closed after {closed:?}");
    assert!(p.wait_exit(Duration::from_secs(5)).success());
}
