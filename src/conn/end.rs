//! Endings: what a connection sends before it closes (an error response,
//! the rest of its pipelined answers) and how it closes (a FIN after the
//! last byte, or lingering so unread request bytes do not turn the close
//! into a reset that destroys the response before the client reads it).

use std::time::Duration;

use super::io::{read_into, shutdown_write};
use super::table::Phase;
use super::{Conn, End, Shared, INITIAL_READ};
use crate::http::Version;
use crate::json::json_error;
use crate::response::Response;
use crate::transport::Transport;

/// After a closing response, how long we keep reading (and discarding) so
/// the client sees our response rather than a reset.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// After a closing response, the most we discard (bytes).
const LINGER_MAX: usize = 256 * 1024;

impl<S: Transport> Conn<S> {
    /// Sends what the ending calls for, then closes.
    pub(super) async fn finish(&mut self, end: End, shared: &Shared) {
        match end {
            // What was answered is logged, though it may not have arrived.
            End::Abort => self.log_sent(shared),
            // `busy` turns it into a sleep; as Quiet if it ever got here.
            End::Quiet | End::Sleep => {
                let _ = self.flush(shared).await;
            }
            End::Reject(status, reason) => {
                shared.metrics.count_request();
                shared.metrics.count_rejected(status);
                let resp = if self.json_errors {
                    json_error(status, reason).with_close()
                } else {
                    Response::error(status, reason)
                };
                // Earlier pipelined responses are still in `wbuf`, ahead of this one.
                let (_, rest, bytes) =
                    self.encode_response(resp, Version::Http11, false, true, shared);
                self.refused(status, bytes, shared);
                if let Some((body, length)) = rest {
                    if self.send_body(body, length, shared).await.is_err() {
                        self.log_sent(shared);
                        return;
                    }
                }
                // The request's body may be unread: always linger.
                self.linger(shared).await;
            }
            // Like nginx's `lingering_close on`: linger only if the client
            // has sent more than we answered (pipelined after a close).
            End::Done if !self.rbuf.is_empty() => self.linger(shared).await,
            End::Linger => self.linger(shared).await,
            End::Done => {
                if self.flush(shared).await.is_ok() {
                    let _ = shutdown_write(&mut self.io).await;
                }
            }
        }
    }

    /// Flushes, shuts the write side, and reads until the client closes (bounded),
    /// so unread request bytes do not turn our close into a reset that could
    /// destroy the response before the client reads it.
    async fn linger(&mut self, shared: &Shared) {
        if self.flush(shared).await.is_err() || shutdown_write(&mut self.io).await.is_err() {
            return;
        }
        self.slot.enter(Phase::Linger, Some(LINGER_TIMEOUT));
        let mut discarded = 0;
        while discarded < LINGER_MAX {
            self.rbuf.clear();
            match read_into(&mut self.io, &self.slot, &mut self.rbuf, INITIAL_READ).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    }
}
