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
use edgeshard_routing::percent::{climbs_above_root, hex};

/// The parts of a request target: an absolute-form `http(s)://authority/path?q`
/// gives its authority (possibly empty) and `/path` (empty when there is
/// none, which [`RequestHead::path`] reads as `/`); an origin-form target
/// gives no authority and its path up to `?`. And what the same pass saw
/// of the path's segments.
fn target_parts(t: &str) -> (Option<&str>, &str, Segments) {
    let mut rest = t;
    let mut authority = None;
    if !t.starts_with('/') {
        for scheme in ["http://", "https://"] {
            if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
                let after = &t[scheme.len()..];
                let end = after.find(['/', '?']).unwrap_or(after.len());
                authority = Some(&after[..end]);
                rest = match after.as_bytes().get(end) {
                    Some(b'/') => &after[end..],
                    _ => &after[end..end],
                };
                break;
            }
        }
    }
    let (end, segments) = scan_path(rest.as_bytes());
    (authority, &rest[..end], segments)
}

/// What [`scan_path`] saw of a path's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segments {
    /// A segment starts with `.` or `%`: it may be a dot-segment.
    dotted: bool,
    /// The path starts with `/`, and no segment is empty or starts with
    /// `.` or `%`: it is clean (Go's `path.Clean` leaves it as it is), and
    /// the router need not look again.
    plain: bool,
}

/// Bytes [`scan_path`] stops at: `/` (a segment starts), `.` and `%` (a
/// segment may be a dot-segment), `?` (the path ends).
const PATH_MARK: [bool; 256] = {
    let mut t = [false; 256];
    t[b'/' as usize] = true;
    t[b'.' as usize] = true;
    t[b'%' as usize] = true;
    t[b'?' as usize] = true;
    t
};

/// Where the path ends (at `?` or the end), and what its segments look
/// like. One pass, a table lookup per byte: every request's path goes
/// through here. (A word-at-a-time version took more instructions on the
/// short paths requests have.)
#[inline]
fn scan_path(b: &[u8]) -> (usize, Segments) {
    let (mut dotted, mut empty) = (false, false);
    // Where the current segment starts (just after its `/`).
    let mut segment = usize::MAX;
    let mut end = b.len();
    for (i, &c) in b.iter().enumerate() {
        if !PATH_MARK[c as usize] {
            continue;
        }
        match c {
            b'/' => {
                empty |= i == segment;
                segment = i + 1;
            }
            b'?' => {
                end = i;
                break;
            }
            _ => dotted |= i == segment,
        }
    }
    let plain = b.first() == Some(&b'/') && !dotted && !empty;
    (end, Segments { dotted, plain })
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

    let (authority, path, segments) = target_parts(target_str);
    if authority.is_some_and(|a| !is_authority(a.as_bytes())) {
        return Err(ParseError::BadAuthority);
    }
    if segments.dotted && climbs_above_root(path) {
        return Err(ParseError::PathAboveRoot);
    }
    let mut fields = Fields {
        method,
        method_span: Span::of(base, method_str.as_bytes()),
        target: Span::of(base, target_str.as_bytes()),
        path: Span::of(base, path.as_bytes()),
        plain_path: segments.plain,
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
            // An empty value is allowed (RFC 9112 §3.2); anything else must
            // be `host[:port]`.
            if !h.value.is_empty() && !is_authority(h.value) {
                return Err(ParseError::BadHost);
            }
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

/// What a byte may be in an authority (RFC 3986 §3.2.2): part of a
/// `reg-name` or IPv4 address (unreserved or sub-delims), or one of the
/// bytes that need a closer look. Anything else (`/`, `@`, `?`, `#`,
/// whitespace, controls, non-ASCII) makes it invalid.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HostByte {
    Invalid,
    Name,
    Colon,
    Percent,
    Bracket,
}

const HOST_BYTES: [HostByte; 256] = {
    let mut t = [HostByte::Invalid; 256];
    let mut c = 0;
    while c < 256 {
        if (c as u8).is_ascii_alphanumeric() {
            t[c] = HostByte::Name;
        }
        c += 1;
    }
    let name = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < name.len() {
        t[name[i] as usize] = HostByte::Name;
        i += 1;
    }
    t[b':' as usize] = HostByte::Colon;
    t[b'%' as usize] = HostByte::Percent;
    t[b'[' as usize] = HostByte::Bracket;
    t[b']' as usize] = HostByte::Bracket;
    t
};

/// Whether `a` is `host [":" port]` (RFC 9112 §3.2, RFC 3986 §3.2.2–3):
/// a non-empty host, then optionally `:` and a port of at most 65535
/// (`host:` with an empty port is allowed, as RFC 3986's `port = *DIGIT`
/// is). The host is a name or IPv4 address whose `%` start escapes, or a
/// bracketed IP literal. No userinfo. One pass for the usual name.
#[inline]
fn is_authority(a: &[u8]) -> bool {
    let name = a
        .iter()
        .position(|&b| HOST_BYTES[b as usize] != HostByte::Name)
        .unwrap_or(a.len());
    match a.get(name).map(|&b| HOST_BYTES[b as usize]) {
        None => name > 0,
        Some(HostByte::Colon) => name > 0 && is_port(&a[name + 1..]),
        Some(HostByte::Percent | HostByte::Bracket) => is_authority_slow(a),
        Some(_) => false,
    }
}

/// [`is_authority`] for a host with an escape or an IP literal.
#[cold]
fn is_authority_slow(a: &[u8]) -> bool {
    let (host, port) = if a.first() == Some(&b'[') {
        let Some(close) = a.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &a[1..close];
        // IPv6 (hex, `:`, `.`), an IPvFuture, or a zone id (`%25…`, RFC 6874).
        let ok = |&b: &u8| {
            matches!(
                HOST_BYTES[b as usize],
                HostByte::Name | HostByte::Colon | HostByte::Percent
            )
        };
        if literal.is_empty() || !literal.iter().all(ok) {
            return false;
        }
        match &a[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (literal, port),
            _ => return false,
        }
    } else {
        let end = a.iter().position(|&b| b == b':').unwrap_or(a.len());
        let host = &a[..end];
        let mut i = 0;
        while i < host.len() {
            match HOST_BYTES[host[i] as usize] {
                HostByte::Name => i += 1,
                HostByte::Percent
                    if host.get(i + 1).and_then(|&h| hex(h)).is_some()
                        && host.get(i + 2).and_then(|&h| hex(h)).is_some() =>
                {
                    i += 3
                }
                _ => return false,
            }
        }
        if end == a.len() {
            return !host.is_empty();
        }
        (host, &a[end + 1..])
    };
    !host.is_empty() && is_port(port)
}

/// `*DIGIT`, at most 65535.
fn is_port(p: &[u8]) -> bool {
    p.len() <= 5
        && p.iter().all(u8::is_ascii_digit)
        && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65_535
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
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
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
        httparse::Error::Version if names_a_version(buf) => ParseError::UnsupportedVersion,
        // `GET /a b HTTP/1.1`: a space inside the target, not a version.
        httparse::Error::Version => ParseError::BadRequestLine,
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

/// Whether the request line (as far as it has arrived) is three words
/// whose last starts `HTTP/`: a version, if not one we speak (`HTTP/2.0`,
/// `HTTP/1.32`). Anything else that broke httparse's version is a broken
/// request line.
fn names_a_version(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = buf[start..].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    matches!(
        (words.next(), words.next(), words.next(), words.next()),
        (Some(_), Some(_), Some(v), None) if v.starts_with(b"HTTP/")
    )
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
