//! A request as handlers see it: its head and body, the wildcards and the
//! pattern of the route that matched, its connection, and its extensions.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use edgeshard_routing::percent::decode_lossy;
use edgeshard_routing::{Params, RouteInfo};

use super::body::{BodyReadError, Pipe, RequestBody};
use super::conn_info::{ConnInfo, ConnKey};
use crate::http::{Extensions, Method, RequestHead, Version};

/// The route a request matched: its table entry (pattern and wildcard
/// names) and the wildcards' byte ranges in the path (no copies until
/// asked for).
#[derive(Debug, Clone, Copy)]
pub struct RouteParams {
    route: Option<&'static RouteInfo<'static>>,
    ranges: Params,
}

impl RouteParams {
    /// What matching `route` captured.
    pub fn new(route: &'static RouteInfo<'static>, ranges: Params) -> Self {
        RouteParams {
            route: Some(route),
            ranges,
        }
    }

    const NONE: RouteParams = RouteParams {
        route: None,
        ranges: Params::new(),
    };

    fn names(&self) -> &'static [Cow<'static, str>] {
        self.route.map_or(&[], |r| &r.params)
    }
}

/// A body still on the connection, kept in the request's extensions: a
/// field of its own would change the request's layout (it costs every
/// request about 500 instructions of copies, measured with callgrind),
/// while extensions cost nothing until something is put there.
#[derive(Debug, Clone)]
struct PendingBody(Rc<Pipe>);

/// A request: its head (all fields slices of one buffer, and the
/// extensions), its body (whole, or still on the connection), the route it
/// matched, and a key to its connection's facts.
#[derive(Debug, Clone)]
pub struct Request {
    head: RequestHead,
    body: Bytes,
    route: RouteParams,
    conn: ConnKey,
}

impl Request {
    /// Builds a request from a parsed head and its decoded body, as if it
    /// came on no connection ([`ConnInfo::UNKNOWN`]).
    pub fn new(head: RequestHead, body: Bytes) -> Request {
        Request::on(head, body, ConnKey::NONE)
    }

    /// A request that came on the connection `conn` leads to.
    /// The key of the connection this request came on.
    pub(crate) fn conn_key(&self) -> ConnKey {
        self.conn
    }

    pub(crate) fn on(head: RequestHead, body: Bytes, conn: ConnKey) -> Request {
        Request {
            head,
            body,
            route: RouteParams::NONE,
            conn,
        }
    }

    /// Marks the body as still on the connection, behind `pipe` (the
    /// request was built with an empty body). Not part of building the
    /// request: a second way to build it cost every request copies.
    #[cold]
    pub(crate) fn set_pending(&mut self, pipe: Rc<Pipe>) {
        self.head.extensions_mut().insert(PendingBody(pipe));
    }

    /// Whether the body is still on the connection: [`Request::body`] is
    /// empty until it is read ([`Request::read_body`]) or streamed
    /// ([`Request::take_body_stream`]). Route functions and closures never
    /// see such a request: their body is read for them.
    #[inline]
    pub fn body_pending(&self) -> bool {
        let ext = self.head.extensions();
        !ext.is_empty() && ext.get::<PendingBody>().is_some()
    }

    /// Reads a pending body whole, up to `--max-body` (or the limit set on
    /// it), so [`Request::body`] has it; nothing to do if it was read.
    /// Fails as the body does; the connection then answers the failure
    /// itself (413, 400 or 408) and closes.
    pub async fn read_body(&mut self) -> Result<(), BodyReadError> {
        if let Some(PendingBody(pipe)) = self.head.extensions_mut().remove::<PendingBody>() {
            self.body = RequestBody::new(pipe).whole().await?;
        }
        Ok(())
    }

    /// The body as a stream, when it is still on the connection (`None`
    /// when it came whole: [`Request::body`] has it). For handlers that
    /// pass a body on as it arrives, such as the proxy.
    pub fn take_body_stream(&mut self) -> Option<RequestBody> {
        if self.head.extensions().is_empty() {
            return None;
        }
        let PendingBody(pipe) = self.head.extensions_mut().remove::<PendingBody>()?;
        Some(RequestBody::new(pipe))
    }

    /// Records the route that matched and what it captured (the router
    /// does this).
    pub fn set_params(&mut self, params: RouteParams) {
        self.route = params;
    }

    /// The pattern of the route that matched, as written in `routes!`
    /// (`"GET /users/{id}"`), like Go 1.23's `Request.Pattern`; `None`
    /// before routing or when no route matched (a fallback's request).
    pub fn pattern(&self) -> Option<&'static str> {
        self.route.route.map(|r| r.pattern.as_ref())
    }

    /// A captured wildcard by name, percent-decoded (`%2F` becomes `/`
    /// here, though it never split a segment while matching).
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        let i = self.route.names().iter().position(|n| n == name)?;
        let raw = &self.path()[self.route.ranges.get(i)?];
        Some(decode_lossy(raw))
    }

    /// All captured wildcards, in pattern order, percent-decoded.
    pub fn params(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.route
            .names()
            .iter()
            .enumerate()
            .filter_map(move |(i, n)| {
                let raw = &self.path()[self.route.ranges.get(i)?];
                Some((n.as_ref(), decode_lossy(raw)))
            })
    }

    /// The connection the request came on: its addresses and id, while it
    /// is open ([`ConnInfo::UNKNOWN`] once it has closed, or for a request
    /// built by hand).
    pub fn conn(&self) -> ConnInfo {
        self.conn.info()
    }

    /// The client's address (or the balancer's in front of it).
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn().peer
    }

    /// Typed values middleware and handlers attached to this request
    /// (they live in its head).
    pub fn extensions(&self) -> &Extensions {
        self.head.extensions()
    }

    /// Typed values, to attach one.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        self.head.extensions_mut()
    }

    /// The host the request is for (absolute-form authority or `Host`), without port.
    pub fn host(&self) -> Option<&str> {
        self.head.host()
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.head.method()
    }

    /// The path, still percent-encoded.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.head.version()
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// The parsed head.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The decoded body (empty when there is none, or while it is pending:
    /// see [`Request::body_pending`]).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body (empty while pending).
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Limits};

    fn request(raw: &str) -> Request {
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        let head = parse_head(&mut buf, &Limits::default())
            .expect("valid")
            .expect("complete");
        Request::new(head, Bytes::new())
    }

    #[test]
    fn a_request_built_by_hand_has_no_connection_route_or_extensions() {
        let req = request("GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(req.conn(), ConnInfo::UNKNOWN);
        assert_eq!(req.peer_addr().to_string(), "0.0.0.0:0");
        assert_eq!(req.pattern(), None);
        assert!(req.extensions().is_empty());
        assert_eq!(req.param("id"), None);
    }

    #[test]
    fn a_request_stays_small() {
        // Moved through several frames per request: 328 bytes before it
        // carried its connection (a 16-byte key) and extensions (a pointer,
        // in the head), and the route's names became one pointer to its
        // table entry (8 bytes fewer).
        eprintln!("Request: {} bytes", std::mem::size_of::<Request>());
        assert!(std::mem::size_of::<Request>() <= 344);
    }
}
