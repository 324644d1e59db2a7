//! Request ids: every request gets one, echoed in `X-Request-Id` and put
//! in the request's extensions for handlers (and logs) to read.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;

use super::Middleware;
use crate::handler::Request;
use crate::response::Response;

/// The longest incoming `X-Request-Id` taken as it is.
const MAX_INCOMING: usize = 64;

/// A request's id, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Bytes);

impl RequestId {
    /// The id as text (ids are ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// The request-id middleware of one shard: keeps an incoming
/// `X-Request-Id` that is short (at most 64 bytes) and of safe characters
/// (letters, digits, `-`, `_`, `.`, `:`), else makes one:
/// `<prefix>-<shard>-<n>`, where the prefix is random per process and `n`
/// counts this shard's requests. No lock, no syscall, unique in the
/// process and (by the prefix) across restarts.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u32,
    shard: usize,
    next: Cell<u64>,
}

impl RequestIds {
    /// Ids for shard `shard`, with a prefix drawn now.
    pub fn new(shard: usize) -> RequestIds {
        RequestIds::with_prefix(shard, boot_prefix())
    }

    /// Ids with a given prefix (tests, or one prefix for all shards).
    pub fn with_prefix(shard: usize, prefix: u32) -> RequestIds {
        RequestIds {
            prefix,
            shard,
            next: Cell::new(0),
        }
    }

    fn make(&self) -> Bytes {
        let n = self.next.get() + 1;
        self.next.set(n);
        // `{prefix:08x}-{shard:x}-{n:x}`, without the formatting machinery.
        let mut id = [0u8; 8 + 1 + 16 + 1 + 16];
        let mut len = hex_into(&mut id, u64::from(self.prefix), 8);
        id[len] = b'-';
        len += 1;
        len += hex_into(&mut id[len..], self.shard as u64, 1);
        id[len] = b'-';
        len += 1;
        len += hex_into(&mut id[len..], n, 1);
        Bytes::copy_from_slice(&id[..len])
    }
}

/// Writes `v` in lowercase hex, at least `width` digits, at the start of
/// `out`; returns the digits written.
fn hex_into(out: &mut [u8], v: u64, width: usize) -> usize {
    let digits = (16 - v.leading_zeros() as usize / 4).max(width);
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        let shift = 4 * (digits - 1 - i);
        *slot = b"0123456789abcdef"[((v >> shift) & 0xf) as usize];
    }
    digits
}

/// A random 32-bit prefix, the same for every shard of this process: std's
/// hash keys are seeded from the OS once per process.
fn boot_prefix() -> u32 {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PREFIX.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        h.finish() as u32
    })
}

/// Whether an incoming id can be passed on as it is: short, and nothing a
/// log line or a header could be confused by.
fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INCOMING
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// What [`RequestIds`] carries to the response: the id. (The connection
/// finds it for its logs by the note `on_request` made, which outlives a
/// handler that panics or is cancelled.)
#[derive(Debug)]
pub struct IdCarry {
    id: Bytes,
}

impl Middleware for RequestIds {
    type Carry = IdCarry;

    fn on_request(&self, req: &mut Request) -> Result<IdCarry, Response> {
        let id = match req.header("x-request-id") {
            Some(v) if acceptable(v) => Bytes::copy_from_slice(v),
            _ => self.make(),
        };
        req.extensions_mut().insert(RequestId(id.clone()));
        req.conn_key().note_request_id(id.clone());
        Ok(IdCarry { id })
    }

    fn on_response(&self, carry: IdCarry, resp: Response) -> Response {
        // The connection takes the noted id once the request is answered.
        // Made here, or taken only if it passed `acceptable`.
        resp.with_checked_header(Bytes::from_static(b"X-Request-Id"), carry.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_count_per_shard_under_one_prefix() {
        let ids = RequestIds::with_prefix(3, 0xabc);
        assert_eq!(ids.make(), "00000abc-3-1");
        assert_eq!(ids.make(), "00000abc-3-2");
        let ids = RequestIds::with_prefix(0x1f, 0xdead_beef);
        ids.next.set(0xffff_ffff_ffff_fffe);
        assert_eq!(ids.make(), "deadbeef-1f-ffffffffffffffff");
        assert_eq!(RequestIds::with_prefix(0, 0).make(), "00000000-0-1");
        assert_eq!(RequestIds::new(0).prefix, RequestIds::new(1).prefix);
    }

    #[test]
    fn only_short_safe_incoming_ids_are_kept() {
        assert!(acceptable(b"abc-123_x.y:z"));
        assert!(acceptable(&[b'a'; 64]));
        assert!(!acceptable(&[b'a'; 65]));
        assert!(!acceptable(b""));
        for bad in [
            &b"a b"[..],
            b"a\"b",
            b"a\tb",
            b"caf\xc3\xa9",
            b"a/b",
            b"<x>",
        ] {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }
}
