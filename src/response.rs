//! Responses as handlers build them, and the conversions that let a handler
//! return a `&'static str`, a `String`, `Bytes`, a status, or a pair.

use std::fmt;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use futures_lite::Stream;

use crate::http::field::{is_safe_value, is_token};
use crate::http::{Method, StatusCode};

/// `text/plain; charset=utf-8`
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `application/octet-stream`
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A response body. More kinds may come: match with a catch-all arm.
#[non_exhaustive]
pub enum Body {
    /// No body.
    Empty,
    /// A body known in full; sent with `Content-Length`.
    Full(Bytes),
    /// A body produced piece by piece; sent chunked (HTTP/1.1) or delimited
    /// by close (HTTP/1.0).
    Stream(Pin<Box<dyn Stream<Item = Bytes>>>),
    /// Byte ranges of an open file (sent with sendfile) interleaved with
    /// bytes from memory (multipart boundaries); sent with `Content-Length`.
    File(FileBody),
    /// A body relayed from elsewhere as it arrives (the proxy's upstream),
    /// which may fail part way.
    Relay(RelayBody),
    /// After a `101 Switching Protocols`: the connection is no longer
    /// HTTP, and its bytes are copied both ways to and from this socket.
    /// (Boxed: rare, and larger than the other kinds.)
    Tunnel(Box<Upgraded>),
}

/// The other end of a connection taken over after `101`: a socket on the
/// shard's poller, the bytes it sent after its own `101` head, how long
/// the tunnel may sit idle, and whatever must live as long as the tunnel
/// (the proxy's count of requests in flight).
pub struct Upgraded {
    socket: crate::poller::Socket,
    early: Bytes,
    idle: std::time::Duration,
    _keep: Box<dyn std::any::Any>,
}

impl Upgraded {
    /// A tunnel to `socket`, which has sent `early` already.
    pub fn new(
        socket: crate::poller::Socket,
        early: Bytes,
        idle: std::time::Duration,
        keep: Box<dyn std::any::Any>,
    ) -> Upgraded {
        Upgraded {
            socket,
            early,
            idle,
            _keep: keep,
        }
    }

    /// The socket, the bytes it sent already, and the idle timeout; `keep`
    /// lives on in the caller until the tunnel ends.
    pub fn into_parts(
        self,
    ) -> (
        crate::poller::Socket,
        Bytes,
        std::time::Duration,
        Box<dyn std::any::Any>,
    ) {
        (self.socket, self.early, self.idle, self._keep)
    }
}

/// What a [`RelayBody`] reads from.
pub type RelayStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

/// A body passed on as it arrives from a source that can fail: sent with
/// `Content-Length` when its length is known, else chunked (or until
/// close). A failure, or a source that ends short of its length, aborts
/// the connection without completing the framing, so the client sees an
/// incomplete body rather than a short one that looks whole.
pub struct RelayBody {
    len: Option<u64>,
    stream: RelayStream,
}

impl RelayBody {
    /// A body of `len` bytes (`None`: unknown) read from `stream`.
    pub fn new(
        len: Option<u64>,
        stream: impl Stream<Item = std::io::Result<Bytes>> + 'static,
    ) -> RelayBody {
        RelayBody {
            len,
            stream: Box::pin(stream),
        }
    }

    /// The length promised, if known.
    pub fn length(&self) -> Option<u64> {
        self.len
    }

    /// The stream, and the length promised.
    pub fn into_parts(self) -> (Option<u64>, RelayStream) {
        (self.len, self.stream)
    }
}

/// A body that is (mostly) an open file: what static files answer with.
#[derive(Debug, Clone)]
pub struct FileBody {
    file: Rc<OwnedFd>,
    parts: Vec<FilePart>,
    len: u64,
}

/// One piece of a [`FileBody`].
#[derive(Debug, Clone)]
pub enum FilePart {
    /// Bytes from memory.
    Bytes(Bytes),
    /// `len` bytes of the file from `offset`.
    Range {
        /// Where the bytes start in the file.
        offset: u64,
        /// How many.
        len: u64,
    },
}

impl FileBody {
    /// `len` bytes of `file` from `offset`.
    pub fn range(file: Rc<OwnedFd>, offset: u64, len: u64) -> FileBody {
        FileBody {
            file,
            parts: vec![FilePart::Range { offset, len }],
            len,
        }
    }

    /// A body assembled from parts of `file` and bytes in memory.
    pub fn parts(file: Rc<OwnedFd>, parts: Vec<FilePart>) -> FileBody {
        let len = parts
            .iter()
            .map(|p| match p {
                FilePart::Bytes(b) => b.len() as u64,
                FilePart::Range { len, .. } => *len,
            })
            .sum();
        FileBody { file, parts, len }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file.
    pub fn file(&self) -> &Rc<OwnedFd> {
        &self.file
    }

    /// The parts, in order.
    pub fn into_parts(self) -> (Rc<OwnedFd>, Vec<FilePart>) {
        (self.file, self.parts)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            Body::Stream(_) => f.write_str("Stream"),
            Body::File(b) => f.debug_tuple("File").field(&b.len()).finish(),
            Body::Relay(b) => f.debug_tuple("Relay").field(&b.length()).finish(),
            Body::Tunnel(_) => f.write_str("Tunnel"),
        }
    }
}

/// An HTTP response. Framing headers (`Content-Length`, `Transfer-Encoding`,
/// `Connection`), `Date` and `Server` are the server's to write.
///
/// Kept within 128 bytes: responses move through several async frames per
/// request, and past that size each move becomes a `memcpy` call.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    close: bool,
    invalid: Option<Invalid>,
    lines: Lines,
    headers: Vec<(Bytes, Bytes)>,
    body: Body,
}

/// The content type, or whole header lines the server formatted in advance
/// (static files), which start with the `Content-Type` line when they have one.
#[derive(Debug, Clone)]
enum Lines {
    None,
    ContentType(Bytes),
    /// `Name: value\r\n`…, built and checked by the server.
    Preformatted(Bytes),
}

/// Why a handler's header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    Name,
    Value,
    Owned,
}

impl Invalid {
    fn reason(self) -> &'static str {
        match self {
            Invalid::Name => "invalid header name",
            Invalid::Value => "header value contains CR, LF or NUL",
            Invalid::Owned => "framing and Date/Server headers are written by the server",
        }
    }
}

impl Response {
    /// A response with this status and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            close: false,
            invalid: None,
            lines: Lines::None,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK).with_body(TEXT_PLAIN, body)
    }

    /// A small, clear error: `<code> <reason>: <detail>\n` as plain text.
    /// Every error the server itself answers with is built here (the
    /// connection's rejections, the router's, the static files').
    #[cold]
    pub fn error(status: StatusCode, detail: &str) -> Response {
        Response::new(status).with_body(TEXT_PLAIN, format!("{status}: {detail}\n"))
    }

    /// A redirect to `location` (a path and query, already encoded): 301
    /// for GET and HEAD (cacheable; a client may change the method), 308
    /// for the rest (the method and body must be kept).
    #[cold]
    pub fn redirect(method: Method, location: String) -> Response {
        let status = match method {
            Method::Get | Method::Head => StatusCode::MOVED_PERMANENTLY,
            _ => StatusCode::PERMANENT_REDIRECT,
        };
        Response::new(status)
            .with_body(TEXT_PLAIN, format!("{status}: {location}\n"))
            .with_header("Location", location)
    }

    /// 405 with the methods the resource does allow (`Allow`).
    #[cold]
    pub fn method_not_allowed(allow: impl Into<Bytes>) -> Response {
        StatusCode::METHOD_NOT_ALLOWED
            .into_response()
            .with_header("Allow", allow)
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Sets the body and its content type.
    pub fn with_body(mut self, content_type: &'static str, body: impl Into<Bytes>) -> Response {
        self.lines = Lines::ContentType(Bytes::from_static(content_type.as_bytes()));
        self.body = Body::Full(body.into());
        self
    }

    /// Sets a streamed body and its content type.
    pub fn with_stream(
        mut self,
        content_type: &'static str,
        stream: impl Stream<Item = Bytes> + 'static,
    ) -> Response {
        self.lines = Lines::ContentType(Bytes::from_static(content_type.as_bytes()));
        self.body = Body::Stream(Box::pin(stream));
        self
    }

    /// Adds a header. A name that is not a token, a value with CR, LF or NUL,
    /// or a framing header the server owns turns the response into a 500
    /// (and is reported), so a handler bug cannot split a response.
    pub fn with_header(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Response {
        let (name, value) = (name.into(), value.into());
        if let Err(why) = check_header(&name, &value) {
            self.invalid.get_or_insert(why);
            return self;
        }
        if name.eq_ignore_ascii_case(b"content-type") {
            self.lines = Lines::ContentType(value);
        } else {
            self.headers.push((name, value));
        }
        self
    }

    /// [`Response::with_header`] for a header the server built and checked
    /// once, when it was configured (the middleware's own): no check per
    /// response. Never `Content-Type`, nor a header the server owns.
    #[inline]
    pub(crate) fn with_checked_header(mut self, name: Bytes, value: Bytes) -> Response {
        debug_assert!(check_header(&name, &value).is_ok());
        debug_assert!(!name.eq_ignore_ascii_case(b"content-type"));
        self.headers.push((name, value));
        self
    }

    /// Takes the body out, leaving none.
    pub(crate) fn take_body(&mut self) -> Body {
        std::mem::replace(&mut self.body, Body::Empty)
    }

    /// Sets a body without touching the content type.
    pub(crate) fn with_raw_body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    /// Replaces the content type with header lines that the server
    /// formatted itself (each `Name: value\r\n`, checked when they were
    /// built; a `Content-Type` line first if there is one). They are written
    /// before `Content-Length` and any [`Response::with_header`] headers.
    pub(crate) fn with_preformatted(mut self, lines: Bytes) -> Response {
        self.lines = Lines::Preformatted(lines);
        self
    }

    /// The first value of header `name` (any case), wherever it is kept:
    /// the content type, the server's preformatted lines or the headers.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-type") {
            return self.content_type();
        }
        self.preformatted_header(name).or_else(|| {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| &v[..])
        })
    }

    /// The first value of `name` (any case) among the preformatted lines.
    pub(crate) fn preformatted_header(&self, name: &[u8]) -> Option<&[u8]> {
        self.preformatted().split(|&b| b == b'\n').find_map(|line| {
            let (n, v) = split_line(line)?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    /// The preformatted lines turned into ordinary headers (ahead of the
    /// others), so a middleware can change them; nothing else changes.
    pub(crate) fn without_preformatted(mut self) -> Response {
        let Lines::Preformatted(lines) = std::mem::replace(&mut self.lines, Lines::None) else {
            return self;
        };
        let mut spread = Vec::with_capacity(self.headers.len() + 6);
        for line in lines.split(|&b| b == b'\n') {
            let Some((name, value)) = split_line(line) else {
                continue;
            };
            let (name, value) = (lines.slice_ref(name), lines.slice_ref(value));
            if name.eq_ignore_ascii_case(b"content-type") {
                self.lines = Lines::ContentType(value);
            } else {
                spread.push((name, value));
            }
        }
        spread.append(&mut self.headers);
        self.headers = spread;
        self
    }

    /// Replaces the value of every header `name` (any case) with what `f`
    /// makes of it. Not for the preformatted lines: spread them first.
    pub(crate) fn map_header(mut self, name: &str, f: impl Fn(&Bytes) -> Bytes) -> Response {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                *v = f(v);
            }
        }
        self
    }

    /// The preformatted header lines, if any (empty otherwise).
    pub fn preformatted(&self) -> &[u8] {
        match &self.lines {
            Lines::Preformatted(b) => b,
            _ => &[],
        }
    }

    /// Closes the connection after this response.
    pub fn with_close(mut self) -> Response {
        self.close = true;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The content type, if set.
    pub fn content_type(&self) -> Option<&[u8]> {
        match &self.lines {
            Lines::None => None,
            Lines::ContentType(ct) => Some(ct),
            Lines::Preformatted(lines) => {
                let rest = lines.strip_prefix(b"Content-Type: ")?;
                rest.iter()
                    .position(|&b| b == b'\r')
                    .map(|end| &rest[..end])
            }
        }
    }

    /// The content type to write as its own line (`None` when it is part of
    /// the preformatted lines).
    pub(crate) fn content_type_line(&self) -> Option<&[u8]> {
        match &self.lines {
            Lines::ContentType(ct) => Some(ct),
            _ => None,
        }
    }

    /// Extra headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|(n, v)| (&n[..], &v[..]))
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    pub(crate) fn into_body(self) -> Body {
        self.body
    }

    /// Whether the connection closes after this response.
    pub fn closes(&self) -> bool {
        self.close
    }

    /// Why the response is invalid, if a header was rejected.
    pub fn invalid(&self) -> Option<&'static str> {
        self.invalid.map(Invalid::reason)
    }
}

/// `Name: value\r` (a preformatted line without its `\n`) → name, value.
fn split_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = memchr::memchr(b':', line)?;
    Some((&line[..colon], line[colon + 1..].trim_ascii()))
}

fn check_header(name: &[u8], value: &[u8]) -> Result<(), Invalid> {
    if !is_token(name) {
        return Err(Invalid::Name);
    }
    if !is_safe_value(value) {
        return Err(Invalid::Value);
    }
    const OWNED: [&[u8]; 6] = [
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"date",
        b"server",
        b"keep-alive",
    ];
    if OWNED.iter().any(|o| name.eq_ignore_ascii_case(o)) {
        return Err(Invalid::Owned);
    }
    Ok(())
}

/// Anything a handler may return.
pub trait IntoResponse {
    /// Converts into a response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(Bytes::from_static(self.as_bytes()))
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::new(StatusCode::OK).with_body(OCTET_STREAM, self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Bytes::from(self).into_response()
    }
}

/// A bare status: an empty body for 1xx–3xx, `"<code> <reason>\n"` for errors.
impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        if self.as_u16() < 400 {
            return Response::new(self);
        }
        // Registered codes: a static body, so a flood of 404s allocates nothing.
        match self.plain_body() {
            Some(body) => Response::new(self).with_body(TEXT_PLAIN, body),
            None => Response::new(self).with_body(TEXT_PLAIN, format!("{self}\n")),
        }
    }
}

impl<B: IntoResponse> IntoResponse for (StatusCode, B) {
    fn into_response(self) -> Response {
        self.1.into_response().with_status(self.0)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(t) => t.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let r = "hi".into_response();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.content_type(), Some(TEXT_PLAIN.as_bytes()));
        let r = (StatusCode::CREATED, String::from("made")).into_response();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = StatusCode::NOT_FOUND.into_response();
        assert!(matches!(r.body(), Body::Full(b) if &b[..] == b"404 Not Found\n"));
        let r = StatusCode::NO_CONTENT.into_response();
        assert!(matches!(r.body(), Body::Empty));
    }

    fn body_text(r: &Response) -> &[u8] {
        match r.body() {
            Body::Full(b) => b,
            _ => b"",
        }
    }

    #[test]
    fn the_servers_own_answers() {
        let r = Response::error(StatusCode::BAD_REQUEST, "malformed request line");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.content_type(), Some(TEXT_PLAIN.as_bytes()));
        assert_eq!(body_text(&r), b"400 Bad Request: malformed request line\n");
        for (method, status) in [
            (Method::Get, StatusCode::MOVED_PERMANENTLY),
            (Method::Head, StatusCode::MOVED_PERMANENTLY),
            (Method::Post, StatusCode::PERMANENT_REDIRECT),
            (Method::Other, StatusCode::PERMANENT_REDIRECT),
        ] {
            let r = Response::redirect(method, "/dir/?q=1".into());
            assert_eq!(r.status(), status, "{method:?}");
            assert_eq!(
                r.headers().collect::<Vec<_>>(),
                [(&b"Location"[..], &b"/dir/?q=1"[..])]
            );
            assert_eq!(body_text(&r), format!("{status}: /dir/?q=1\n").as_bytes());
        }
        let r = Response::method_not_allowed("GET, HEAD");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            r.headers().collect::<Vec<_>>(),
            [(&b"Allow"[..], &b"GET, HEAD"[..])]
        );
        assert_eq!(body_text(&r), b"405 Method Not Allowed\n");
    }

    #[test]
    fn a_response_fits_in_128_bytes() {
        assert!(
            std::mem::size_of::<Response>() <= 128,
            "{}",
            std::mem::size_of::<Response>()
        );
    }

    #[test]
    fn preformatted_lines_carry_the_content_type() {
        let r = Response::new(StatusCode::OK).with_preformatted(Bytes::from_static(
            b"Content-Type: text/css\r\nETag: \"x\"\r\n",
        ));
        assert_eq!(r.content_type(), Some(&b"text/css"[..]));
        assert_eq!(r.content_type_line(), None);
        let r = Response::new(StatusCode::NOT_MODIFIED)
            .with_preformatted(Bytes::from_static(b"ETag: \"x\"\r\n"));
        assert_eq!(r.content_type(), None);
    }

    #[test]
    fn header_injection_is_refused() {
        let r = Response::text("x").with_header("X-A", "ok\r\nSet-Cookie: evil=1");
        assert_eq!(r.invalid(), Some("header value contains CR, LF or NUL"));
        let r = Response::text("x").with_header("Bad Name", "v");
        assert_eq!(r.invalid(), Some("invalid header name"));
        let r = Response::text("x").with_header("Content-Length", "5");
        assert!(r.invalid().is_some());
        let r = Response::text("x").with_header("Content-Type", "text/html");
        assert_eq!(r.invalid(), None);
        assert_eq!(r.content_type(), Some(&b"text/html"[..]));
    }
}
