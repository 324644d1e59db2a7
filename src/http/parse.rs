//! Request heads: httparse over the connection's `BytesMut`, then our own
//! framing and safety rules (RFC 9112) on top. A complete head is split off
//! the buffer and frozen; every field is an offset into that one `Bytes`
//! (see [`super::head`]).

use std::mem::MaybeUninit;

use bytes::BytesMut;
use smallvec::SmallVec;

use super::error::ParseError;
use super::head::{Fields, Framing, Method, RequestHead, Span, Version, MAX_HEAD};
use super::limits::Limits;

/// The path part of a request target, as a subslice of it: origin-form up
/// to `?`; for an absolute-form `http(s)://authority/path?q`, `/path`
/// (empty when there is none, which [`RequestHead::path`] reads as `/`).
fn path_in_target(t: &str) -> &str {
    let mut rest = t;
    if !t.starts_with('/') {
        for scheme in ["http://", "https://"] {
            if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
                let after = &t[scheme.len()..];
                rest = match after.find(['/', '?']) {
                    Some(i) if after.as_bytes()[i] == b'/' => &after[i..],
                    Some(i) => &after[i..i],
                    None => &after[after.len()..],
                };
                break;
            }
        }
    }
    match edgeshard_routing::find_byte(b'?', rest.as_bytes()) {
        Some(q) => &rest[..q],
        None => rest,
    }
}

/// httparse needs one header slot per field; beyond this many we allocate.
const STACK_HEADERS: usize = 128;

/// Parses one request head from the front of `buf`.
///
/// `Ok(None)` means more bytes are needed. On success the head's bytes are
/// split off `buf`, which then starts at the body or the next request.
pub fn parse_head(buf: &mut BytesMut, limits: &Limits) -> Result<Option<RequestHead>, ParseError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let n_slots = limits.max_headers;
    let outcome = if n_slots <= STACK_HEADERS {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_into(buf, limits, &mut slots[..n_slots])?
    } else {
        let mut slots = Vec::with_capacity(n_slots);
        slots.resize_with(n_slots, MaybeUninit::uninit);
        parse_into(buf, limits, &mut slots)?
    };
    Ok(outcome.map(|(len, fields)| {
        let raw = buf.split_to(len).freeze();
        fields.into_head(raw)
    }))
}

fn parse_into<'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(usize, Fields)>, ParseError> {
    let mut req = httparse::Request::new(&mut []);
    let status = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, slots)
        .map_err(|e| classify_httparse_error(e, buf))?;
    let len = match status {
        httparse::Status::Complete(len) if len > MAX_HEAD => {
            return Err(ParseError::HeadersTooLarge)
        }
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            check_partial_limits(buf, limits)?;
            return Ok(None);
        }
    };
    let head = &buf[..len];
    let line_len = check_line_endings(head, &req)?;
    if line_len > limits.max_uri {
        return Err(ParseError::UriTooLong);
    }
    if len - line_len > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge);
    }

    let base = buf.as_ptr();
    let method_str = req.method.unwrap_or("");
    let method = Method::from_token(method_str);
    let target_str = req.path.unwrap_or("");
    check_target(method, target_str.as_bytes())?;
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(ParseError::UnsupportedVersion),
    };

    let mut fields = Fields {
        method,
        method_span: Span::of(base, method_str.as_bytes()),
        target: Span::of(base, target_str.as_bytes()),
        path: Span::of(base, path_in_target(target_str).as_bytes()),
        version,
        headers: SmallVec::new(),
        host: None,
        framing: Framing::None,
        keep_alive: version == Version::Http11,
        expect_continue: false,
    };
    let mut semantics = HeaderSemantics::default();
    for h in req.headers.iter() {
        let value = Span::of(base, h.value);
        fields
            .headers
            .push((Span::of(base, h.name.as_bytes()), value));
        if semantics.observe(h.name, h.value)? == Observed::Host {
            fields.host = Some(value);
        }
    }
    semantics.apply(&mut fields)?;
    if method == Method::Connect {
        return Err(ParseError::ConnectNotAllowed);
    }
    Ok(Some((len, fields)))
}

/// Limits that must hold while the head is still arriving, so a client
/// cannot make us buffer more than a head may ever be.
fn check_partial_limits(buf: &[u8], limits: &Limits) -> Result<(), ParseError> {
    // Whatever the bytes are, a head is never longer than both limits
    // together, nor than MAX_HEAD.
    if buf.len() > (limits.max_uri + limits.max_header_bytes + 2).min(MAX_HEAD) {
        return Err(ParseError::HeadersTooLarge);
    }
    // Skip the empty lines allowed before the request line.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    match memchr::memchr(b'\n', &buf[start..]) {
        None if buf.len() - start > limits.max_uri => Err(ParseError::UriTooLong),
        None => Ok(()),
        Some(i) if i + 1 > limits.max_uri => Err(ParseError::UriTooLong),
        // +2: the empty line that ends the head is not part of the limit.
        Some(i) if buf.len() - (start + i + 1) > limits.max_header_bytes + 2 => {
            Err(ParseError::HeadersTooLarge)
        }
        Some(_) => Ok(()),
    }
}

/// Every LF must follow a CR: httparse tolerates a bare LF as a line end.
/// (A CR not followed by LF it rejects itself.) httparse ends a line at
/// any LF and accepts no LF inside a line, so LFs can only sit before the
/// request line (the empty lines it skips), before each header name and in
/// the head's last two lines: checking those places checks them all,
/// without a scan. Returns the request line's length including its CRLF.
fn check_line_endings(head: &[u8], req: &httparse::Request<'_, '_>) -> Result<usize, ParseError> {
    let base = head.as_ptr() as usize;
    let offset = |s: &str| s.as_ptr() as usize - base;
    let crlf_before = |at: usize| at >= 2 && head[at - 2..at] == *b"\r\n";
    let start = req.method.map_or(0, offset);
    let leading = &head[..start];
    if leading
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || leading[i - 1] != b'\r'))
    {
        return Err(ParseError::BareLineFeed);
    }
    if !head.ends_with(b"\r\n\r\n") || !req.headers.iter().all(|h| crlf_before(offset(h.name))) {
        return Err(ParseError::BareLineFeed);
    }
    Ok(req
        .headers
        .first()
        .map_or(head.len() - 2, |h| offset(h.name)))
}

fn check_target(method: Method, target: &[u8]) -> Result<(), ParseError> {
    if !target.is_ascii() {
        return Err(ParseError::BadTarget);
    }
    let ok = match target.first() {
        Some(b'/') => true,
        Some(b'*') => target.len() == 1 && method == Method::Options,
        _ if method == Method::Connect => true,
        _ => {
            let lower =
                |s: &[u8], p: &[u8]| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p);
            lower(target, b"http://") || lower(target, b"https://")
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ParseError::BadTarget)
    }
}

/// The headers that decide framing and connection handling.
#[derive(Default)]
struct HeaderSemantics {
    content_length: Option<u64>,
    transfer_encoding: TeState,
    hosts: u8,
    close: bool,
    keep_alive: bool,
    expect: Expect,
}

/// What the Transfer-Encoding headers said, all of them together.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct TeState {
    present: bool,
    /// The last coding so far is `chunked`.
    chunked_last: bool,
    /// A coding we do not decode (anything but `chunked`) was listed.
    unknown: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Expect {
    #[default]
    None,
    Continue,
    Unknown,
}

/// What `observe` saw, when the caller needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observed {
    Host,
    Other,
}

impl HeaderSemantics {
    fn observe(&mut self, name: &str, value: &[u8]) -> Result<Observed, ParseError> {
        if name.eq_ignore_ascii_case("content-length") {
            if self.content_length.is_some() {
                return Err(ParseError::DuplicateContentLength);
            }
            self.content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                self.add_coding(coding)?;
            }
        } else if name.eq_ignore_ascii_case("host") {
            self.hosts = self.hosts.saturating_add(1);
            return Ok(Observed::Host);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            self.expect = if trim_ows(value).eq_ignore_ascii_case(b"100-continue") {
                Expect::Continue
            } else {
                Expect::Unknown
            };
        }
        Ok(Observed::Other)
    }

    fn add_coding(&mut self, coding: &[u8]) -> Result<(), ParseError> {
        let te = &mut self.transfer_encoding;
        if te.chunked_last {
            // Anything after `chunked`, including `chunked` again (RFC 9112 §6.1).
            return Err(ParseError::ChunkedNotLast);
        }
        te.present = true;
        if coding.eq_ignore_ascii_case(b"chunked") {
            te.chunked_last = true;
        } else {
            te.unknown = true;
        }
        Ok(())
    }

    fn apply(self, f: &mut Fields) -> Result<(), ParseError> {
        if self.hosts > 1 {
            return Err(ParseError::DuplicateHost);
        }
        if self.hosts == 0 && f.version == Version::Http11 {
            return Err(ParseError::MissingHost);
        }
        let te = self.transfer_encoding;
        f.framing = match (te.present, self.content_length) {
            (false, None | Some(0)) => Framing::None,
            (false, Some(n)) => Framing::Length(n),
            (true, Some(_)) => return Err(ParseError::ContentLengthWithTransferEncoding),
            (true, None) if f.version == Version::Http10 => {
                return Err(ParseError::TransferEncodingInHttp10)
            }
            (true, None) if te.unknown => return Err(ParseError::UnknownTransferCoding),
            (true, None) => Framing::Chunked,
        };
        f.keep_alive = match f.version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        };
        // RFC 9110 §10.1.1: an HTTP/1.0 client's Expect is ignored.
        if f.version == Version::Http11 {
            match self.expect {
                Expect::None => {}
                Expect::Continue => f.expect_continue = true,
                Expect::Unknown => return Err(ParseError::UnknownExpectation),
            }
        }
        Ok(())
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `Content-Length = 1*DIGIT`; no sign, no list, no overflow.
fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    if value.is_empty() {
        return Err(ParseError::BadContentLength);
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return Err(ParseError::BadContentLength);
        }
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::BadContentLength)
    })
}

/// Turns httparse's error into ours, looking at the bytes to say which rule
/// was broken. Only runs on bad input.
#[cold]
fn classify_httparse_error(err: httparse::Error, buf: &[u8]) -> ParseError {
    match err {
        httparse::Error::Version => ParseError::UnsupportedVersion,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderName => {
            let mut lines = buf.split(|&b| b == b'\n').skip(1);
            if lines.any(|l| matches!(l.first(), Some(b' ' | b'\t'))) {
                return ParseError::ObsoleteLineFolding;
            }
            let space_before_colon = buf.split(|&b| b == b'\n').skip(1).any(|l| {
                let name_end = l.iter().position(|&b| b == b':').unwrap_or(l.len());
                l[..name_end].iter().any(|&b| b == b' ' || b == b'\t') && name_end < l.len()
            });
            if space_before_colon {
                ParseError::WhitespaceBeforeColon
            } else {
                ParseError::BadHeader
            }
        }
        httparse::Error::HeaderValue if has_bare_cr(buf) => ParseError::BareCarriageReturn,
        httparse::Error::HeaderValue => ParseError::BadHeader,
        httparse::Error::NewLine if has_bare_cr(buf) => ParseError::BareCarriageReturn,
        httparse::Error::NewLine | httparse::Error::Token if is_http09(buf) => {
            ParseError::UnsupportedVersion
        }
        httparse::Error::NewLine | httparse::Error::Token | httparse::Error::Status => {
            ParseError::BadRequestLine
        }
    }
}

/// An HTTP/0.9 request line: `METHOD SP /path CRLF`, with no version.
fn is_http09(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(m), Some([b'/', ..]), None) if !m.is_empty() && m.iter().all(u8::is_ascii_uppercase)
    )
}

fn has_bare_cr(buf: &[u8]) -> bool {
    buf.windows(2).any(|w| w[0] == b'\r' && w[1] != b'\n')
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
