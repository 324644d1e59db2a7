//! A parsed request head and the types it is made of. Every field is an
//! offset into one frozen `Bytes` (the head as it arrived), so a head
//! costs one reference count and a few hundred bytes of offsets; the
//! parser ([`super::parse`]) fills them in.

use bytes::Bytes;
use smallvec::SmallVec;

use super::extensions::Extensions;

/// Request method. Unknown (extension) methods keep their bytes in the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// `TRACE`
    Trace,
    /// `CONNECT`
    Connect,
    /// Any other token.
    Other,
}

impl Method {
    pub(super) fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// Protocol version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: close by default.
    Http10,
    /// HTTP/1.1: keep-alive by default.
    Http11,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A byte range `[start, end)` inside the frozen head.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    start: u16,
    end: u16,
}

/// Largest request head, in bytes: offsets are `u16`, which halves the
/// head's size and so the cost of every move of a request (the request
/// path's largest copy). Checked while parsing whatever the limits say.
pub const MAX_HEAD: usize = u16::MAX as usize;

impl Span {
    pub(super) fn of(base: *const u8, part: &[u8]) -> Span {
        // Offsets, not pointers: the slice lies inside the head starting at
        // `base`, which is at most MAX_HEAD bytes long.
        let start = part.as_ptr() as usize - base as usize;
        Span {
            start: start as u16,
            end: (start + part.len()) as u16,
        }
    }

    fn get(self, raw: &[u8]) -> &[u8] {
        &raw[self.start as usize..self.end as usize]
    }
}

/// Header name and value offsets; 16 live inline, which covers browsers.
pub(super) type HeaderSpans = SmallVec<[(Span, Span); 16]>;

/// A parsed request head. Fields are slices of one frozen `Bytes`.
#[derive(Debug, Clone)]
pub struct RequestHead {
    raw: Bytes,
    method: Method,
    method_span: Span,
    target: Span,
    /// The path within the target, found once while parsing (empty for an
    /// absolute-form target without one, which means `/`).
    path: Span,
    /// The path is clean as it came (see [`RequestHead::path_is_plain`]).
    plain_path: bool,
    version: Version,
    headers: HeaderSpans,
    /// The Host header's value, found while parsing (`None` if absent).
    host: Option<Span>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    /// Typed values attached after parsing (none allocated until one is).
    extensions: Extensions,
}

impl RequestHead {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method exactly as sent (useful for [`Method::Other`]).
    pub fn method_str(&self) -> &str {
        match self.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Other => ascii(self.method_span.get(&self.raw)),
        }
    }

    /// The request target as sent: origin-form path and query, absolute-form URI, or `*`.
    pub fn target(&self) -> &str {
        ascii(self.target.get(&self.raw))
    }

    /// The path, still percent-encoded (`/` for an absolute-form URI without one).
    pub fn path(&self) -> &str {
        match ascii(self.path.get(&self.raw)) {
            "" => "/",
            p => p,
        }
    }

    /// The host the request is for, without its port: the authority of an
    /// absolute-form target, else the `Host` header. `None` if absent or empty.
    pub fn host(&self) -> Option<&str> {
        let t = self.target();
        let authority = if t.starts_with('/') || t == "*" {
            ascii(self.host?.get(&self.raw))
        } else {
            let rest = t.split_once("://").map_or(t, |(_, r)| r);
            &rest[..rest.find(['/', '?']).unwrap_or(rest.len())]
        };
        let bytes = authority.as_bytes();
        let end = if bytes.first() == Some(&b'[') {
            // IPv6 literal: keep the brackets, drop the port.
            bytes
                .iter()
                .position(|&b| b == b']')
                .map_or(bytes.len(), |i| i + 1)
        } else {
            bytes.iter().position(|&b| b == b':').unwrap_or(bytes.len())
        };
        let host = &authority[..end];
        (!host.is_empty()).then_some(host)
    }

    /// Whether the parser saw that the path is clean as it is: it starts
    /// with `/` and no segment is empty or starts with `.` or `%`. (When
    /// `false`, the path may still be clean: `/.well-known/` is.)
    pub(crate) fn path_is_plain(&self) -> bool {
        self.plain_path
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        // The path ends at the query's `?`, when there is one.
        let (q, end) = (self.path.end as usize, self.target.end as usize);
        (q < end && self.raw[q] == b'?').then(|| ascii(&self.raw[q + 1..end]))
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All headers in order, with their names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(move |(n, v)| (ascii(n.get(&self.raw)), v.get(&self.raw)))
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether the client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// Typed values middleware and handlers attached to this request.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Typed values, to attach one.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The raw head bytes, request line through the final CRLF.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }
}

/// Method, target and header names are checked ASCII by the parser, so the
/// fallback (`""`) is never taken.
#[inline]
fn ascii(b: &[u8]) -> &str {
    crate::sys::ascii_str(b)
}

/// What `parse_into` learned, as offsets, before the buffer is split.
pub(super) struct Fields {
    pub(super) method: Method,
    pub(super) method_span: Span,
    pub(super) target: Span,
    /// The path within the target, found once while parsing (empty for an
    /// absolute-form target without one, which means `/`).
    pub(super) path: Span,
    pub(super) plain_path: bool,
    pub(super) version: Version,
    pub(super) headers: HeaderSpans,
    pub(super) host: Option<Span>,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
    pub(super) expect_continue: bool,
}

impl Fields {
    pub(super) fn into_head(self, raw: Bytes) -> RequestHead {
        RequestHead {
            raw,
            method: self.method,
            method_span: self.method_span,
            target: self.target,
            path: self.path,
            plain_path: self.plain_path,
            version: self.version,
            headers: self.headers,
            host: self.host,
            framing: self.framing,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            extensions: Extensions::new(),
        }
    }
}

/// A head's request line (after any empty lines before it, which a server
/// ignores: RFC 9112 §2.2) without its line end, and what follows it.
/// For logs: it reads raw bytes, parsed or not.
pub(crate) fn split_request_line(head: &[u8]) -> (&[u8], &[u8]) {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let head = &head[start..];
    let end = memchr::memchr2(b'\r', b'\n', head).unwrap_or(head.len());
    head.split_at(end)
}
