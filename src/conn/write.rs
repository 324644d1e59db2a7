//! Writing: flushing the write buffer, and the bodies that do not fit in
//! it: large ones from their own buffer, streams (chunked or until close),
//! and files (`sendfile` in bounded chunks, or copied for transports
//! without it). Every wait restarts the write deadline on progress.

use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures_lite::{Stream, StreamExt};

use super::io::{interruptible, write_all};
use super::table::Phase;
use super::{Conn, End, Shared, FLUSH_AT};
use crate::http::encode::{encode_chunk, BodyLength, LAST_CHUNK};
use crate::response::{Body, FileBody, FilePart, RelayBody};
use crate::transport::Transport;

/// Most bytes one `sendfile` call may send before the connection lets
/// other tasks on the shard run: a client on a fast link cannot hold the
/// shard for a whole large file.
const SENDFILE_CHUNK: usize = 512 * 1024;
/// Transports without `sendfile` get file bodies read and written in
/// pieces of this size.
const COPY_CHUNK: usize = 16 * 1024;

impl<S: Transport> Conn<S> {
    /// Sends a body [`Conn::encode_response`] left, after its head;
    /// returns the body bytes sent.
    pub(super) async fn send_body(
        &mut self,
        body: Body,
        length: BodyLength,
        shared: &Shared,
    ) -> Result<u64, End> {
        match body {
            Body::Empty => Ok(0),
            Body::Full(b) => {
                self.flush(shared).await?;
                self.write_direct(&b, shared).await?;
                Ok(b.len() as u64)
            }
            // Boxed, like the file branch: their futures are large, and a
            // connection's future is as large as its largest state, idle or not.
            Body::Stream(stream) => {
                let chunked = length == BodyLength::Chunked;
                Box::pin(self.write_stream(stream, chunked, shared)).await
            }
            Body::File(f) => {
                let len = f.len();
                Box::pin(self.write_file(f, shared)).await?;
                Ok(len)
            }
            Body::Relay(r) => Box::pin(self.write_relay(r, length, shared)).await,
            Body::Tunnel(t) => Box::pin(self.tunnel(*t, shared)).await,
        }
    }

    /// Sends a relayed body: with its length, chunked or until close, as
    /// [`Conn::write_stream`] does, but a failure or a short end aborts
    /// the connection before the framing is complete, and bytes past the
    /// promised length are not sent.
    async fn write_relay(
        &mut self,
        body: RelayBody,
        length: BodyLength,
        shared: &Shared,
    ) -> Result<u64, End> {
        let (_, mut stream) = body.into_parts();
        let chunked = length == BodyLength::Chunked;
        let promised = match length {
            BodyLength::Known(n) => Some(n),
            _ => None,
        };
        let mut sent = 0u64;
        loop {
            let piece = match self.next_piece(&mut stream, shared).await? {
                None => break,
                Some(Ok(piece)) => piece,
                Some(Err(_)) => {
                    // What arrived goes out; the framing stays incomplete.
                    let _ = self.flush(shared).await;
                    self.relayed = sent;
                    return Err(End::Abort);
                }
            };
            let piece = match promised {
                Some(n) if sent + piece.len() as u64 > n => {
                    let keep = (n - sent) as usize;
                    self.wbuf.extend_from_slice(&piece[..keep]);
                    let _ = self.flush(shared).await;
                    self.relayed = n;
                    return Err(End::Abort);
                }
                _ => piece,
            };
            sent += piece.len() as u64;
            if chunked {
                encode_chunk(&mut self.wbuf, &piece);
            } else {
                self.wbuf.extend_from_slice(&piece);
            }
            if self.wbuf.len() >= FLUSH_AT {
                self.flush(shared).await?;
            }
        }
        if promised.is_some_and(|n| sent < n) {
            let _ = self.flush(shared).await;
            self.relayed = sent;
            return Err(End::Abort);
        }
        if chunked {
            self.wbuf.extend_from_slice(LAST_CHUNK);
        }
        Ok(sent)
    }

    /// Sends a streamed body: chunked (HTTP/1.1) or raw until close. What
    /// the stream has given is sent whenever it has nothing more ready (an
    /// event stream's events leave as they come), and in any case once
    /// [`FLUSH_AT`] bytes wait. Returns the body bytes (without framing).
    async fn write_stream(
        &mut self,
        mut stream: Pin<Box<dyn Stream<Item = Bytes>>>,
        chunked: bool,
        shared: &Shared,
    ) -> Result<u64, End> {
        let mut sent = 0;
        loop {
            let Some(piece) = self.next_piece(&mut stream, shared).await? else {
                break;
            };
            sent += piece.len() as u64;
            if chunked {
                encode_chunk(&mut self.wbuf, &piece);
            } else {
                self.wbuf.extend_from_slice(&piece);
            }
            if self.wbuf.len() >= FLUSH_AT {
                self.flush(shared).await?;
            }
        }
        if chunked {
            self.wbuf.extend_from_slice(LAST_CHUNK);
        }
        Ok(sent)
    }

    /// A stream's next piece: at once if it has one ready, else after
    /// sending what waits (an event stream's events leave as they come).
    /// Waiting on the stream is handler time: no write deadline.
    async fn next_piece<T>(
        &mut self,
        stream: &mut Pin<Box<dyn Stream<Item = T>>>,
        shared: &Shared,
    ) -> Result<Option<T>, End> {
        self.slot.enter(Phase::Handler, None);
        if let Some(piece) = futures_lite::future::poll_once(stream.next()).await {
            return Ok(piece);
        }
        self.flush(shared).await?;
        self.slot.enter(Phase::Handler, None);
        Ok(stream.next().await)
    }

    /// Sends a file body after its head (already in `wbuf`).
    async fn write_file(&mut self, body: FileBody, shared: &Shared) -> Result<(), End> {
        let (file, parts) = body.into_parts();
        for part in parts {
            match part {
                FilePart::Bytes(b) => self.wbuf.extend_from_slice(&b),
                FilePart::Range { offset, len } => {
                    self.send_file_range(&file, offset, len, shared).await?
                }
            }
        }
        Ok(())
    }

    /// Sends `len` bytes of `file` from `offset`. What is pending goes
    /// first with "more follows" (so the head and the first body bytes
    /// share a packet), then `sendfile` in chunks of at most
    /// [`SENDFILE_CHUNK`], yielding to the shard between them. A full socket
    /// parks the connection until there is room: a slow client costs no CPU
    /// while it waits. Transports without `sendfile` get the bytes copied.
    async fn send_file_range(
        &mut self,
        file: &OwnedFd,
        mut offset: u64,
        len: u64,
        shared: &Shared,
    ) -> Result<(), End> {
        let end = offset + len;
        self.flush_with(true, shared).await?;
        // Even with nothing flushed: a stalled client times out here too.
        self.slot.enter(Phase::Write, Some(shared.timeouts.write));
        while offset < end {
            if self.slot.closing() {
                return Err(End::Abort);
            }
            let want = (end - offset).min(SENDFILE_CHUNK as u64) as usize;
            let (io, slot) = (&mut self.io, &self.slot);
            let sent = std::future::poll_fn(|cx| {
                match io.poll_sendfile(cx, file.as_fd(), &mut offset, want) {
                    None => Poll::Ready(None),
                    Some(p) => interruptible(slot, cx, p).map(Some),
                }
            })
            .await;
            match sent {
                None => {
                    return self
                        .copy_file_range(file, offset, end - offset, shared)
                        .await
                }
                // The file shrank under us: the promised length cannot be kept.
                Some(Ok(0)) | Some(Err(_)) => return Err(End::Abort),
                Some(Ok(_)) => {
                    self.slot.enter(Phase::Write, Some(shared.timeouts.write));
                    glommio::yield_if_needed().await;
                }
            }
        }
        Ok(())
    }

    /// Copies file bytes through the transport's own write, for transports
    /// without `sendfile`.
    async fn copy_file_range(
        &mut self,
        file: &OwnedFd,
        mut offset: u64,
        len: u64,
        shared: &Shared,
    ) -> Result<(), End> {
        let end = offset + len;
        while offset < end {
            let n = (end - offset).min(COPY_CHUNK as u64) as usize;
            let start = self.wbuf.len();
            self.wbuf.resize(start + n, 0);
            let got = crate::sys::pread_full(file.as_fd(), &mut self.wbuf[start..], offset);
            match got {
                Ok(got) if got == n => offset += n as u64,
                // Shrunk or unreadable after the head promised a length.
                _ => {
                    self.wbuf.truncate(start);
                    return Err(End::Abort);
                }
            }
            self.flush(shared).await?;
        }
        Ok(())
    }

    /// Sends `wbuf`.
    pub(super) async fn flush(&mut self, shared: &Shared) -> Result<(), End> {
        self.flush_with(false, shared).await
    }

    /// Sends `wbuf`; with `more`, a file body follows at once. Without,
    /// the responses waiting in it have left: their log lines are written.
    async fn flush_with(&mut self, more: bool, shared: &Shared) -> Result<(), End> {
        if self.wbuf.is_empty() {
            if !more && self.log.as_ref().is_some_and(|q| !q.waiting.is_empty()) {
                self.log_sent(shared);
            }
            return Ok(());
        }
        self.dates.settle(&mut self.wbuf, &shared.date);
        self.slot.enter(Phase::Write, Some(shared.timeouts.write));
        let res = write_all(
            &mut self.io,
            &self.slot,
            &self.wbuf,
            shared.timeouts.write,
            more,
        )
        .await;
        self.wbuf.clear();
        if self.wbuf.capacity() > 4 * FLUSH_AT {
            self.wbuf.shrink_to(FLUSH_AT);
        }
        if !more && self.log.as_ref().is_some_and(|q| !q.waiting.is_empty()) {
            self.log_sent(shared);
        }
        res.map_err(|_| End::Abort)
    }

    async fn write_direct(&mut self, data: &[u8], shared: &Shared) -> Result<(), End> {
        self.slot.enter(Phase::Write, Some(shared.timeouts.write));
        write_all(&mut self.io, &self.slot, data, shared.timeouts.write, false)
            .await
            .map_err(|_| End::Abort)
    }
}
