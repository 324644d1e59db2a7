//! Connection timeouts: how long each phase of a connection's life may
//! take. Each default is written once, here; the flags' help text reads it.
//! The connection table ([`super::table`]) enforces them with one tick per
//! shard, so no timer is armed per request.

use std::time::Duration;

/// Default time to receive a whole request head: nginx's `client_header_timeout` is 60 s;
/// 10 s is generous for a real client and short for a slowloris.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total time allowed for one request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default minimum body rate (bytes/s), enforced after [`BODY_RATE_GRACE`]:
/// 1 KiB/s is slower than any real uplink and faster than a slow-body attack.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;
/// Time a body gets before its average rate is checked.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(5);
/// Default idle keep-alive timeout: nginx's `keepalive_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default time a write may make no progress before the connection closes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time in-flight requests get to finish after SIGTERM/SIGINT.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request head must arrive whole within this time of its first byte
    /// (or of the accept, for a connection's first request).
    pub header: Duration,
    /// A request body must arrive whole within this time of its head.
    pub body: Duration,
    /// Minimum average body rate in bytes/s after [`BODY_RATE_GRACE`]; 0 disables.
    pub min_body_rate: u64,
    /// An idle keep-alive connection is closed after this long.
    pub idle: Duration,
    /// A write that makes no progress for this long closes the connection.
    pub write: Duration,
    /// After a shutdown signal, in-flight requests get this long.
    pub drain: Duration,
    /// A handler that has not answered within this time is dropped
    /// (cancelled) and the client gets 503; `None`: no limit.
    pub handler: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: DEFAULT_HEADER_TIMEOUT,
            body: DEFAULT_BODY_TIMEOUT,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            idle: DEFAULT_IDLE_TIMEOUT,
            write: DEFAULT_WRITE_TIMEOUT,
            drain: DEFAULT_DRAIN_TIMEOUT,
            handler: None,
        }
    }
}

impl Timeouts {
    /// The shortest timeout: the per-shard deadline tick is derived from it.
    pub fn shortest(&self) -> Duration {
        [self.header, self.body, self.idle, self.write, self.drain]
            .into_iter()
            .chain(self.handler)
            .min()
            .unwrap_or(DEFAULT_HEADER_TIMEOUT)
    }

    /// The name of the first timeout that is zero (none may be), if any.
    pub fn zero(&self) -> Option<&'static str> {
        [
            ("header", self.header),
            ("body", self.body),
            ("idle", self.idle),
            ("write", self.write),
            ("drain", self.drain),
            ("handler", self.handler.unwrap_or(Duration::MAX)),
        ]
        .into_iter()
        .find_map(|(name, d)| d.is_zero().then_some(name))
    }
}
