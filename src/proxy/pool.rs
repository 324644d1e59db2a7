//! Each shard's idle connections to one upstream: bounded, newest reused
//! first (the oldest is the one the upstream most likely closed), checked
//! at checkout, and dropped once idle longer than the idle timeout.
//!
//! The check: a connection the shard's epoll has reported readable or
//! closed since its response ended is not reused. One that has been idle
//! for more than [`PEEK_AFTER`] (or whose last read filled its buffer, so
//! the poller cannot tell) is also peeked at (`recv(MSG_PEEK |
//! MSG_DONTWAIT)` must find nothing). A connection reused at once skips
//! the peek: it would cost a system call per request (a quarter of the
//! proxy's), and the epoll state was current microseconds ago. A close
//! that races the reuse is what the retry on a fresh connection is for.

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::poller::Socket;
use crate::sys;

/// Idle longer than this, a connection is peeked at before reuse.
pub const PEEK_AFTER: Duration = Duration::from_secs(1);

/// A connection to an upstream with its read buffer.
#[derive(Debug)]
pub(super) struct UpConn {
    pub(super) sock: Socket,
    pub(super) buf: BytesMut,
}

/// Idle connections to one upstream, oldest first.
#[derive(Debug)]
pub(super) struct Pool {
    idle: RefCell<Vec<(UpConn, Instant)>>,
    max: usize,
    timeout: Duration,
}

impl Pool {
    pub(super) fn new(max: usize, timeout: Duration) -> Pool {
        Pool {
            idle: RefCell::new(Vec::new()),
            max,
            timeout,
        }
    }

    /// The newest idle connection that is still usable.
    pub(super) fn take(&self) -> Option<UpConn> {
        let mut idle = self.idle.borrow_mut();
        if idle.is_empty() {
            return None;
        }
        let now = Instant::now();
        while let Some((conn, since)) = idle.pop() {
            if now.duration_since(since) > self.timeout {
                // The rest are older still.
                idle.clear();
                return None;
            }
            let recent = now.duration_since(since) < PEEK_AFTER;
            if (recent && conn.sock.known_quiet()) || sys::idle_and_open(conn.sock.as_fd()) {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose response ended cleanly, dropping the
    /// oldest past the bound and any idle too long.
    pub(super) fn put(&self, mut conn: UpConn) {
        if self.max == 0 || !conn.buf.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        let expired = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) > self.timeout)
            .count();
        idle.drain(..expired);
        if idle.len() >= self.max {
            idle.remove(0);
        }
        // An emptied buffer keeps its memory for the next response.
        conn.buf.clear();
        idle.push((conn, now));
    }

    /// Idle connections now.
    pub(super) fn len(&self) -> usize {
        self.idle.borrow().len()
    }

    /// Closes every idle connection (the upstream was ejected, or its
    /// addresses changed).
    pub(super) fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}
