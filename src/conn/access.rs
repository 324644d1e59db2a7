//! Access log lines: a request's line is queued when it is answered and
//! written once its response has left (the flush that sent it, or the end
//! of a body sent on its own), with the time from its head's arrival.

use std::time::Instant;

use bytes::Bytes;

use super::{Answered, Conn, Shared};
use crate::access_log::Entry;
use crate::http::StatusCode;
use crate::transport::Transport;

/// Most bytes of a refused request's start that its log line shows.
const REFUSED_HEAD_MAX: usize = 1024;

impl<S: Transport> Conn<S> {
    /// The current request was answered with `status` and `bytes` body
    /// bytes: its line waits for the response to leave.
    pub(super) fn answered(
        &mut self,
        status: StatusCode,
        bytes: u64,
        id: Option<Bytes>,
        upstream: Option<Bytes>,
    ) {
        let Some(log) = self.log.as_deref_mut() else {
            return;
        };
        if let Some((head, start)) = log.current.take() {
            log.waiting.push(Answered {
                head,
                start,
                status: status.as_u16(),
                bytes,
                id,
                upstream,
            });
        }
    }

    /// A request is refused before a handler saw it: its line shows the
    /// head if it was parsed, else the start of what was read.
    pub(super) fn refused(&mut self, status: StatusCode, bytes: u64, shared: &Shared) {
        if shared.access_log.is_none() {
            return;
        }
        let log = self.log.get_or_insert_with(Box::default);
        if log.current.is_none() {
            let seen = &self.rbuf[..self.rbuf.len().min(REFUSED_HEAD_MAX)];
            log.current = Some((Bytes::copy_from_slice(seen), Instant::now()));
        }
        self.answered(status, bytes, None, None);
    }

    /// The responses waiting have left (or failed to): write their lines.
    pub(super) fn log_sent(&mut self, shared: &Shared) {
        let (Some(log), Some(queue)) = (&shared.access_log, self.log.as_deref_mut()) else {
            return;
        };
        if queue.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        let peer = self.entry.key().info().peer.ip();
        let secs = shared.date.secs();
        for a in queue.waiting.drain(..) {
            let entry = Entry {
                peer,
                head: &a.head,
                status: a.status,
                bytes: a.bytes,
                micros: now.saturating_duration_since(a.start).as_micros() as u64,
                request_id: a.id.as_deref(),
                upstream: a.upstream.as_deref(),
            };
            log.write(&entry, secs);
        }
    }
}
