//! A request as handlers see it: its head and body, the wildcards and the
//! pattern of the route that matched, its connection, and its extensions.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use bytes::Bytes;
use edgeshard_routing::percent::decode_lossy;
use edgeshard_routing::{Params, RouteInfo};

use super::extensions::Extensions;
use crate::http::{Method, RequestHead, Version};

/// What a request knows about the connection it came on: the addresses of
/// both ends and an id unique in the process (room for TLS facts later).
/// Shared by the connection's requests: a request holds a pointer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The client's address (or the balancer's in front of it).
    pub peer: SocketAddr,
    /// The address the connection was accepted on.
    pub local: SocketAddr,
    /// The connection's id: the shard's number in the top 16 bits, that
    /// shard's count of accepted connections below.
    pub id: u64,
}

/// Addresses for a request that came on no socket (built in a test).
const NOWHERE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl ConnInfo {
    /// The facts of one connection.
    pub fn new(peer: SocketAddr, local: SocketAddr, id: u64) -> ConnInfo {
        ConnInfo { peer, local, id }
    }

    /// For a request that came on no connection (built by hand, in tests):
    /// `0.0.0.0:0` at both ends, id 0.
    pub const UNKNOWN: ConnInfo = ConnInfo {
        peer: NOWHERE,
        local: NOWHERE,
        id: 0,
    };
}

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

/// A request: its head (all fields slices of one buffer), its whole body,
/// the route it matched, its connection and its extensions.
#[derive(Debug, Clone)]
pub struct Request {
    head: RequestHead,
    body: Bytes,
    route: RouteParams,
    /// `None` for a request built by hand ([`ConnInfo::UNKNOWN`]).
    conn: Option<Rc<ConnInfo>>,
    extensions: Extensions,
}

impl Request {
    /// Builds a request from a parsed head and its decoded body, as if it
    /// came on no connection ([`ConnInfo::UNKNOWN`]).
    pub fn new(head: RequestHead, body: Bytes) -> Request {
        Request {
            head,
            body,
            route: RouteParams::NONE,
            conn: None,
            extensions: Extensions::new(),
        }
    }

    /// A request that came on the connection `conn`.
    pub(crate) fn on(head: RequestHead, body: Bytes, conn: Rc<ConnInfo>) -> Request {
        Request {
            conn: Some(conn),
            ..Request::new(head, body)
        }
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

    /// The connection the request came on.
    pub fn conn(&self) -> &ConnInfo {
        self.conn.as_deref().unwrap_or(&ConnInfo::UNKNOWN)
    }

    /// The client's address (or the balancer's in front of it).
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn().peer
    }

    /// Typed values middleware and handlers attached to this request.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Typed values, to attach one.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
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

    /// The decoded body (empty when there is none).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
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
        assert_eq!(req.conn(), &ConnInfo::UNKNOWN);
        assert_eq!(req.peer_addr().to_string(), "0.0.0.0:0");
        assert_eq!(req.pattern(), None);
        assert!(req.extensions().is_empty());
        assert_eq!(req.param("id"), None);
    }

    #[test]
    fn a_request_stays_small() {
        // Moved through several frames per request: what it gained for
        // its connection, pattern and extensions is two pointers, and the
        // route's names became one pointer to its table entry.
        eprintln!("Request: {} bytes", std::mem::size_of::<Request>());
        assert!(std::mem::size_of::<Request>() <= 336);
    }
}
