//! Response heads, written straight into the connection's write buffer:
//! preformatted status lines, the cached Date, and itoa for lengths.

use super::date::DATE_LEN;
use super::status::StatusCode;

/// How the body that follows the head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body and no length header (1xx, 204, 304).
    Forbidden,
    /// `Content-Length: n`.
    Known(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Body ends when the connection closes (streams to HTTP/1.0 clients).
    UntilClose,
}

/// What the connection decided about the head it is about to write.
#[derive(Debug, Clone, Copy)]
pub struct HeadMeta<'a> {
    /// The status.
    pub status: StatusCode,
    /// Content-Type value, if any.
    pub content_type: Option<&'a [u8]>,
    /// Body delimiting.
    pub length: BodyLength,
    /// Send `Connection: close`.
    pub close: bool,
    /// Send `Connection: keep-alive` (an HTTP/1.0 client asked for it).
    pub keep_alive_header: bool,
    /// Header lines formatted in advance (`Name: value\r\n`…), copied as
    /// they are after the content type and before the length.
    pub preformatted: &'a [u8],
}

const SERVER_DATE: &[u8] = b"Server: edgeshard\r\nDate: ";

/// Appends a response head (through the blank line) to `out`. Returns
/// where in `out` the Date's value starts.
pub fn encode_head<'h>(
    out: &mut Vec<u8>,
    meta: &HeadMeta<'_>,
    date: &[u8; DATE_LEN],
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
) -> usize {
    match meta.status.preformatted_line() {
        Some(line) => out.extend_from_slice(line),
        None => {
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(itoa::Buffer::new().format(meta.status.as_u16()).as_bytes());
            out.extend_from_slice(b" \r\n");
        }
    }
    out.extend_from_slice(SERVER_DATE);
    let date_at = out.len();
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = meta.content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(meta.preformatted);
    match meta.length {
        BodyLength::Known(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        BodyLength::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyLength::Forbidden | BodyLength::UntilClose => {}
    }
    for (name, value) in headers {
        field(out, name, value);
    }
    if meta.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if meta.keep_alive_header {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    date_at
}

/// Appends one header line, `name: value\r\n`.
#[inline]
pub(crate) fn field<B: bytes::BufMut>(out: &mut B, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends one chunk of a chunked body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while n > 0 {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn encodes_a_small_response_exactly() {
        let mut out = Vec::new();
        let meta = HeadMeta {
            status: StatusCode::OK,
            content_type: Some(b"text/plain; charset=utf-8"),
            length: BodyLength::Known(2),
            close: false,
            keep_alive_header: false,
            preformatted: b"",
        };
        out.extend_from_slice(b"(earlier response)");
        let date_at = encode_head(&mut out, &meta, DATE, std::iter::empty());
        assert_eq!(&out[date_at..date_at + DATE_LEN], DATE);
        let out = &out[18..];
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn unregistered_status_close_and_headers() {
        let mut out = Vec::new();
        let meta = HeadMeta {
            status: StatusCode::from_u16(299).unwrap(),
            content_type: None,
            length: BodyLength::Chunked,
            close: true,
            keep_alive_header: false,
            preformatted: b"",
        };
        let hdrs = [(&b"X-A"[..], &b"1"[..])];
        encode_head(&mut out, &meta, DATE, hdrs.iter().copied());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 299 \r\n"));
        assert!(text.ends_with("Transfer-Encoding: chunked\r\nX-A: 1\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        encode_chunk(&mut out, &[b'x'; 26]);
        encode_chunk(&mut out, b"");
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(&out[..4], b"1a\r\n");
        assert!(out.ends_with(b"x\r\n0\r\n\r\n"));
    }
}
