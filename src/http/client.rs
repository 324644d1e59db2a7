//! Response heads from an upstream server: the proxy's side of HTTP/1.1.
//! Parsed with httparse and held to RFC 9112 §6.3 for how the body is
//! delimited; anything ambiguous (conflicting lengths, a length with
//! `Transfer-Encoding`, an oversized or malformed head, a status outside
//! 100–599) is an error the proxy answers with 502, never passed on.

use bytes::{Bytes, BytesMut};

use super::field::list_has;
use super::parse::parse_content_length;
use super::status::StatusCode;

/// Most header fields an upstream response may have.
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// How an upstream response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// Why an upstream response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Not a valid HTTP/1.x response head.
    Malformed,
    /// A status code outside 100–599.
    BadStatus,
    /// More than the limit of bytes or fields.
    TooLarge,
    /// Two different `Content-Length`s, or one that is not a number.
    BadLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthAndEncoding,
    /// A transfer coding other than `chunked` (the proxy would have to
    /// decode it, or pass on a body whose coding no field names).
    UnknownEncoding,
}

impl HeadError {
    /// A one-line reason for the log and the 502's body.
    pub fn reason(self) -> &'static str {
        match self {
            HeadError::Malformed => "malformed response head",
            HeadError::BadStatus => "invalid status code",
            HeadError::TooLarge => "response head too large",
            HeadError::BadLength => "invalid or conflicting Content-Length",
            HeadError::LengthAndEncoding => "both Content-Length and Transfer-Encoding",
            HeadError::UnknownEncoding => "a transfer coding other than chunked",
        }
    }
}

/// A parsed upstream response head; header names and values are ranges
/// of its raw bytes.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    raw: Bytes,
    status: StatusCode,
    /// HTTP/1.1 (else 1.0).
    http11: bool,
    headers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    framing: ResponseFraming,
    keep_alive: bool,
    content_length: Option<u64>,
}

impl ResponseHead {
    /// The `Content-Length` it declared (also for HEAD and 304, which
    /// have no body).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// How the body is delimited.
    pub fn framing(&self) -> ResponseFraming {
        self.framing
    }

    /// Whether the upstream keeps the connection open after the body.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether it is HTTP/1.1.
    pub fn is_http11(&self) -> bool {
        self.http11
    }

    /// Every field, in order, with its name as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// The first value of a field (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// Parses a response head from the start of `buf`, splitting it off.
/// `Ok(None)`: not complete yet (and within `max_head` bytes).
/// `head_request`: the request was HEAD, so no body follows whatever the
/// head says.
pub fn parse_response_head(
    buf: &mut BytesMut,
    max_head: usize,
    head_request: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Left uninitialised: httparse writes only the fields it parses, and
    // setting all 128 first cost 4 KiB of stores per head.
    let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > max_head {
        return Err(HeadError::TooLarge);
    }
    let code = resp.code.unwrap_or(0);
    let status = match StatusCode::from_u16(code) {
        Some(s) if code <= 599 => s,
        _ => return Err(HeadError::BadStatus),
    };
    let http11 = resp.version == Some(1);
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut headers = Vec::with_capacity(resp.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = !http11;
    for h in resp.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|&b| b == b',') {
                let n =
                    parse_content_length(part.trim_ascii()).map_err(|_| HeadError::BadLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::BadLength);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // `chunked`, once: anything else would need decoding here.
            let only_chunked = value.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !only_chunked || chunked {
                return Err(HeadError::UnknownEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if list_has(value, b"close") {
                close = true;
            } else if list_has(value, b"keep-alive") {
                close = false;
            }
        }
        headers.push((span(name), span(value)));
    }
    if length.is_some() && chunked {
        return Err(HeadError::LengthAndEncoding);
    }
    let no_body = head_request
        || code < 200
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = match (no_body, chunked, length) {
        (true, _, _) => ResponseFraming::None,
        (_, true, _) => ResponseFraming::Chunked,
        (_, false, Some(n)) => ResponseFraming::Length(n),
        (_, false, None) => ResponseFraming::UntilClose,
    };
    let keep_alive = !close && framing != ResponseFraming::UntilClose;
    let raw = buf.split_to(len).freeze();
    Ok(Some(ResponseHead {
        raw,
        status,
        http11,
        headers,
        framing,
        keep_alive,
        content_length: length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<ResponseHead>, HeadError> {
        parse_response_head(&mut BytesMut::from(raw), 8192, false)
    }

    #[test]
    fn lengths_chunked_and_close_delimited_bodies() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing(), ResponseFraming::Length(5));
        assert!(h.keep_alive());
        let h = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing(), ResponseFraming::Chunked);
        for coded in ["gzip, chunked", "gzip", "chunked, chunked"] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {coded}\r\n\r\n");
            assert_eq!(
                parse(&raw).unwrap_err(),
                HeadError::UnknownEncoding,
                "{coded}"
            );
        }
        let h = parse("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing(), ResponseFraming::UntilClose);
        assert!(!h.keep_alive());
        let h = parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive(), "1.0 closes unless it says keep-alive");
        let h = parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing(), ResponseFraming::None);
        let mut b = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        let h = parse_response_head(&mut b, 8192, true).unwrap().unwrap();
        assert_eq!(h.framing(), ResponseFraming::None);
        assert_eq!(h.header("content-length"), Some(&b"9"[..]));
    }

    #[test]
    fn ambiguous_or_broken_heads_are_refused() {
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").unwrap_err(),
            HeadError::BadLength
        );
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").is_ok());
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").unwrap_err(),
            HeadError::BadLength
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err(),
            HeadError::LengthAndEncoding
        );
        assert_eq!(
            parse("HTTP/1.1 099 X\r\n\r\n").unwrap_err(),
            HeadError::BadStatus
        );
        assert_eq!(
            parse("HTTP/1.1 600 X\r\n\r\n").unwrap_err(),
            HeadError::BadStatus
        );
        assert_eq!(
            parse("HTTP/1.1 2000 OK\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
        assert_eq!(
            parse("SMTP ready\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n").unwrap_err(),
            HeadError::Malformed,
            "obs-fold"
        );
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(9000));
        assert_eq!(parse(&big).unwrap_err(), HeadError::TooLarge);
        assert!(parse("HTTP/1.1 200 OK\r\nX: a\r\n").unwrap().is_none());
    }
}
