//! Per-shard counters: plain `Cell`s, bumped by the shard's own
//! connections and handlers with no lock and no atomic, read when the
//! shard answers `/api/stats`, and gathered from the other shards by
//! message ([`crate::mesh`]).

use std::cell::Cell;
use std::time::Instant;

use serde::Serialize;

/// One shard's counters.
#[derive(Debug)]
pub struct Metrics {
    shard: usize,
    core: usize,
    started: Instant,
    /// Responses sent, the server's own error answers included.
    requests: Cell<u64>,
    /// Files and directories the static-file handler opened.
    file_opens: Cell<u64>,
}

impl Metrics {
    /// Counters for shard `shard`, pinned to CPU `core`, starting now.
    pub fn new(shard: usize, core: usize) -> Metrics {
        Metrics {
            shard,
            core,
            started: Instant::now(),
            requests: Cell::new(0),
            file_opens: Cell::new(0),
        }
    }

    /// The shard these counters belong to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// When the shard started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests answered by this shard.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Files and directories the static-file handler opened.
    pub fn file_opens(&self) -> u64 {
        self.file_opens.get()
    }

    /// One request answered.
    #[inline]
    pub(crate) fn count_request(&self) {
        self.requests.set(self.requests.get() + 1);
    }

    /// One file-system open by the static-file handler (or an attempt).
    pub(crate) fn count_file_open(&self) {
        self.file_opens.set(self.file_opens.get() + 1);
    }

    /// The counters as `/api/stats` reports them, with the shard's open
    /// connections (which its connection table counts).
    pub fn stats(&self, connections: usize) -> ShardStats {
        ShardStats {
            shard: self.shard,
            core: self.core,
            requests: self.requests(),
            connections,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            file_opens: self.file_opens(),
        }
    }
}

/// One shard's counters, as reported to `/api/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShardStats {
    /// Shard number.
    pub shard: usize,
    /// The CPU it runs on.
    pub core: usize,
    /// Requests answered.
    pub requests: u64,
    /// Open connections.
    pub connections: usize,
    /// Seconds since the shard started.
    pub uptime_seconds: f64,
    /// Files and directories the static-file handler opened (cache misses
    /// and once-a-second revalidations).
    pub file_opens: u64,
}
