//! What a shard's connections share: the limits and timeouts they enforce,
//! the connection table, the Date cache, the buffer pools, and the shard's
//! counters. One per shard, behind an `Rc`; nothing in it crosses shards.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;

use super::pool::{ReadPool, WritePool};
use super::table::ConnTable;
use super::timeouts::Timeouts;
use super::INITIAL_READ;
use crate::access_log::AccessLog;
use crate::http::date::DateCache;
use crate::http::{split_request_line, Limits};
use crate::log;
use crate::metrics::Metrics;

/// The state a shard's connections share.
#[derive(Debug)]
pub struct Shared {
    /// Request size limits.
    pub(crate) limits: Limits,
    /// Connection timeouts.
    pub(crate) timeouts: Timeouts,
    /// The Date header, reformatted at most once a second.
    pub(crate) date: DateCache,
    /// Live connections, their deadlines and shutdown state.
    pub(crate) conns: Rc<ConnTable>,
    /// Read buffers lent to connections waiting for a request.
    pub(crate) read_pool: ReadPool,
    /// Write buffers of connections between responses.
    pub(crate) write_pool: WritePool,
    /// The shard's counters: connections count the requests they answer.
    pub(crate) metrics: Rc<Metrics>,
    /// The shard's access log, if there is one.
    pub(crate) access_log: Option<Rc<AccessLog>>,
    /// Connections accepted so far: the low bits of the next one's id.
    accepted: Cell<u64>,
    reported_invalid: Cell<bool>,
    refusals_logged: log::Budget,
    panics_logged: log::Budget,
}

/// Most lines a shard logs each second about requests it refused as
/// attacks (a scanner sends thousands).
const REFUSAL_LINES_PER_SECOND: u32 = 10;
/// Most bytes of a refused request line that are logged.
const LOGGED_LINE_MAX: usize = 256;

impl Shared {
    /// The state for the connections of the shard `metrics` counts for,
    /// with its access log if there is one.
    pub fn new(
        limits: Limits,
        timeouts: Timeouts,
        metrics: Rc<Metrics>,
        access_log: Option<Rc<AccessLog>>,
    ) -> Rc<Shared> {
        Rc::new(Shared {
            limits,
            timeouts,
            date: DateCache::new(),
            conns: Rc::new(ConnTable::new(&timeouts)),
            read_pool: ReadPool::new(INITIAL_READ),
            write_pool: WritePool::default(),
            metrics,
            access_log,
            accepted: Cell::new(0),
            reported_invalid: Cell::new(false),
            refusals_logged: log::Budget::new(REFUSAL_LINES_PER_SECOND),
            panics_logged: log::Budget::new(REFUSAL_LINES_PER_SECOND),
        })
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// An id for a new connection, unique in the process: the shard's
    /// number in the top 16 bits, its count of connections below.
    pub(crate) fn next_conn_id(&self) -> u64 {
        let n = self.accepted.get() + 1;
        self.accepted.set(n);
        (self.metrics.shard() as u64) << 48 | (n & ((1 << 48) - 1))
    }

    /// The shard's tick: the connection table's deadlines, and the Date.
    pub(crate) fn tick(&self, now: std::time::Instant) {
        self.conns.tick(now);
        self.date.refresh();
    }

    /// A request was refused as an attack (its path climbs above the
    /// root): log who sent it and its request line, escaped and cut to
    /// [`LOGGED_LINE_MAX`] bytes, within the shard's budget of lines.
    #[cold]
    pub(crate) fn report_refused(&self, why: &str, peer: SocketAddr, head: &[u8]) {
        let Some(more) = self
            .refusals_logged
            .admit(self.date.secs(), "refused and not logged")
        else {
            return;
        };
        log::warning!(
            "shard {}: refused a request from {peer} with 400 ({why}): \"{}\"{more}",
            self.metrics.shard(),
            request_line(head).escape_ascii()
        );
    }

    /// A handler panicked (the panic hook printed where and why): say on
    /// which request, from whom, with its id when it had one, within the
    /// shard's budget of such lines.
    #[cold]
    pub(crate) fn report_panic(&self, head: &[u8], peer: SocketAddr, id: Option<&Bytes>) {
        let Some(more) = self
            .panics_logged
            .admit(self.date.secs(), "panics not logged")
        else {
            return;
        };
        let id = id.map_or(String::new(), |id| {
            format!(" (request id {})", id.escape_ascii())
        });
        log::warning!(
            "shard {}: handler panicked on \"{}\" from {peer}{id}; answered 500{more}",
            self.metrics.shard(),
            request_line(head).escape_ascii()
        );
    }

    /// A handler built an invalid response; say so once per shard.
    #[cold]
    pub(crate) fn report_invalid_response(&self, why: &str) {
        if !self.reported_invalid.replace(true) {
            log::warning!(
                "shard {}: handler returned an invalid response ({why}); answered 500",
                self.metrics.shard()
            );
        }
    }
}

/// A head's request line, cut to [`LOGGED_LINE_MAX`] bytes.
fn request_line(head: &[u8]) -> &[u8] {
    let line = split_request_line(head).0;
    &line[..line.len().min(LOGGED_LINE_MAX)]
}
