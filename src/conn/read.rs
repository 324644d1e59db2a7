//! Reading: waiting for a request head (with or without a buffer of the
//! connection's own). Bodies are read in `pump`.

use super::io::{read_into, read_pooled, Stop};
use super::table::{Interrupt, Phase};
use super::{Conn, End, Shared, INITIAL_READ, MAX_READ};
use crate::http::StatusCode;
use crate::transport::Transport;

impl<S: Transport> Conn<S> {
    /// Flushes what is pending, then waits for more of a request head.
    pub(super) async fn fill_head(&mut self, shared: &Shared) -> Result<(), End> {
        self.flush(shared).await?;
        let t = &shared.timeouts;
        if self.rbuf.is_empty() {
            if self.slot.draining() {
                return Err(End::Quiet);
            }
            let limit = if self.served == 0 { t.header } else { t.idle };
            self.slot.enter(Phase::Idle, Some(limit));
        } else if self.slot.phase() != Phase::Head {
            self.slot.enter(Phase::Head, Some(t.header));
        }
        // Between requests, unless reads have grown past the pool's size,
        // the connection lends its buffer to the pool and waits without one.
        let idle = self.rbuf.is_empty() && self.read_size == shared.read_pool.size();
        let got = if idle {
            self.lend_buffers(shared);
            let pool = &shared.read_pool;
            read_pooled(&mut self.io, &self.slot, pool, &mut self.rbuf)
                .await
                .inspect(|&n| self.adapt_read_size(n, pool.size()))
        } else {
            self.read(self.read_size).await
        };
        self.after_wait(got, shared)
    }

    /// Waits, outside the boxed request machinery, for the next request's
    /// first bytes: the tick found the connection idle (phase `Idle`).
    pub(super) async fn sleep(&mut self, shared: &Shared) -> Result<(), End> {
        // Already done unless reads had grown past the pool's size.
        self.lend_buffers(shared);
        let pool = &shared.read_pool;
        loop {
            let got = read_pooled(&mut self.io, &self.slot, pool, &mut self.rbuf).await;
            if !matches!(got, Err(Stop::Interrupted(Interrupt::Sleep))) {
                return self.after_wait(got, shared);
            }
        }
    }

    /// Gives the emptied read and write buffers to the shard's pools while
    /// the connection waits for a request (`flush` has emptied `wbuf`).
    pub(super) fn lend_buffers(&mut self, shared: &Shared) {
        shared.write_pool.put(std::mem::take(&mut self.wbuf));
        // A buffer with no memory (already lent) would only be refilled anew.
        if self.rbuf.capacity() > 0 {
            shared.read_pool.put_empty(std::mem::take(&mut self.rbuf));
        }
    }

    /// What a wait for request bytes came to.
    fn after_wait(&mut self, got: Result<usize, Stop>, shared: &Shared) -> Result<(), End> {
        match got {
            Ok(0) => Err(End::Quiet),
            Ok(n) => {
                shared.metrics.count_received(n);
                if self.slot.phase() == Phase::Idle {
                    self.slot.enter(Phase::Head, Some(shared.timeouts.header));
                }
                Ok(())
            }
            Err(Stop::Interrupted(Interrupt::Sleep)) => Err(End::Sleep),
            Err(Stop::Interrupted(Interrupt::Timeout(Phase::Head))) => Err(End::Reject(
                StatusCode::REQUEST_TIMEOUT,
                "request head not received in time",
            )),
            Err(Stop::Interrupted(Interrupt::Timeout(_) | Interrupt::Drain)) => Err(End::Quiet),
            Err(_) => Err(End::Abort),
        }
    }

    async fn read(&mut self, want: usize) -> Result<usize, Stop> {
        let n = read_into(&mut self.io, &self.slot, &mut self.rbuf, want).await?;
        self.adapt_read_size(n, want);
        Ok(n)
    }

    /// Reads that fill up double the next one; small ones halve it.
    fn adapt_read_size(&mut self, n: usize, want: usize) {
        self.read_size = next_read_size(self.read_size, n, want);
    }
}

/// The read size after a read of `n` bytes that asked for `want`: doubled
/// when the read filled up, halved when it came back under a quarter.
pub(super) fn next_read_size(read_size: usize, n: usize, want: usize) -> usize {
    if n == want {
        (read_size * 2).min(MAX_READ)
    } else if n < read_size / 4 {
        (read_size / 2).max(INITIAL_READ)
    } else {
        read_size
    }
}
