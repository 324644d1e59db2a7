//! The service manager's notification protocol (`sd_notify`), by hand:
//! one datagram of `KEY=VALUE` lines to the `AF_UNIX` socket named in
//! `NOTIFY_SOCKET`, a path or, with a leading `@`, an abstract name. The
//! `sd-notify` crate sends to abstract sockets wrongly, and the protocol is
//! a few lines.
//!
//! The same channel carries a binary upgrade's "ready": the old process
//! hands the new one a socket of its own in [`UPGRADE_NOTIFY`], and waits
//! there for `READY=1` ([`Listener`]).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Where a new process started by an upgrade says it is ready.
pub const UPGRADE_NOTIFY: &str = "EDGESHARD_UPGRADE_NOTIFY";

/// A notification socket; sending is best effort (a manager that went
/// away must not stop the server).
#[derive(Debug)]
pub struct Notify {
    addr: SocketAddr,
    sock: UnixDatagram,
}

impl Notify {
    /// The socket `NOTIFY_SOCKET` names, if it is set (and usable).
    pub fn from_env() -> Option<Notify> {
        Notify::from_var("NOTIFY_SOCKET")
    }

    /// The socket the environment variable `var` names.
    pub fn from_var(var: &str) -> Option<Notify> {
        let name = std::env::var_os(var)?;
        let name = name.to_str()?;
        match Notify::new(name) {
            Ok(n) => Some(n),
            Err(e) => {
                crate::log::warning!("{var}={name}: cannot use it: {e}");
                None
            }
        }
    }

    /// A socket by name: a path, or `@name` for an abstract one.
    pub fn new(name: &str) -> io::Result<Notify> {
        let addr = address(name)?;
        let sock = UnixDatagram::unbound()?;
        Ok(Notify { addr, sock })
    }

    /// Sends `lines` (`KEY=VALUE`, one per line) as one datagram.
    pub fn send(&self, lines: &str) -> io::Result<()> {
        self.sock.send_to_addr(lines.as_bytes(), &self.addr)?;
        Ok(())
    }

    /// As [`Notify::send`], logging a failure instead of returning it.
    pub fn tell(&self, lines: &str) {
        if let Err(e) = self.send(lines) {
            crate::log::warning!("notify socket: cannot send {:?}: {e}", first_line(lines));
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn address(name: &str) -> io::Result<SocketAddr> {
    match name.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None if name.starts_with('/') => SocketAddr::from_pathname(name),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor an @abstract name",
        )),
    }
}

/// `MONOTONIC_USEC=` for a reload: `CLOCK_MONOTONIC` in microseconds.
pub fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

/// The watchdog interval the manager asks for (`WATCHDOG_USEC`, for this
/// process if `WATCHDOG_PID` names another).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A socket to be notified on: the receiving end, bound to an abstract
/// name unique to this process.
#[derive(Debug)]
pub struct Listener {
    sock: UnixDatagram,
    name: String,
}

impl Listener {
    /// Binds `@edgeshard-<pid>-<tag>`.
    pub fn bind(tag: &str) -> io::Result<Listener> {
        let name = format!("edgeshard-{}-{tag}", std::process::id());
        let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        Ok(Listener {
            sock,
            name: format!("@{name}"),
        })
    }

    /// The name to hand over (`@…`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next datagram, waiting at most until `until`; `None` then.
    pub fn recv_until(&self, until: Instant) -> io::Result<Option<String>> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        self.sock.set_read_timeout(Some(left))?;
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_and_path_sockets_receive_what_is_sent() {
        let l = Listener::bind("test-notify").expect("bind");
        let n = Notify::new(l.name()).expect("notify");
        n.send("READY=1\nSTATUS=up").expect("send");
        let got = l.recv_until(Instant::now() + Duration::from_secs(5));
        assert_eq!(got.expect("recv").as_deref(), Some("READY=1\nSTATUS=up"));

        let dir = std::env::temp_dir().join(format!("es-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let sock = UnixDatagram::bind(&dir).expect("bind path");
        Notify::new(dir.to_str().expect("utf-8"))
            .expect("notify")
            .send("WATCHDOG=1")
            .expect("send");
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn names_that_are_not_sockets_are_refused() {
        assert!(Notify::new("relative/path").is_err());
        assert!(Notify::new("").is_err());
        let l = Listener::bind("test-empty").expect("bind");
        let t = Instant::now();
        let got = l.recv_until(t + Duration::from_millis(50)).expect("recv");
        assert_eq!(got, None);
        assert!(t.elapsed() >= Duration::from_millis(50));
    }
}
