//! The `Handler` abstraction: an async function from a [`Request`] to
//! anything that converts into a [`Response`].
//!
//! Handlers run on one shard and need not be `Send`: each shard builds its
//! own instance, so per-shard state can live in `Rc`/`Cell` without locks.

use std::borrow::Cow;
use std::future::Future;

use bytes::Bytes;
use edgeshard_routing::{DecodedBytes, Params};

use crate::http::{Method, RequestHead, Version};
use crate::response::{IntoResponse, Response};

/// Wildcards captured by the route: names from the route table, values as
/// byte ranges of the request path (no copies until asked for).
#[derive(Debug, Clone, Copy)]
pub struct RouteParams {
    names: &'static [Cow<'static, str>],
    ranges: Params,
}

impl RouteParams {
    /// Captures for a route whose wildcards are `names`.
    pub fn new(names: &'static [Cow<'static, str>], ranges: Params) -> Self {
        RouteParams { names, ranges }
    }

    const EMPTY: RouteParams = RouteParams {
        names: &[],
        ranges: Params::new(),
    };
}

/// A request: its head (all fields slices of one buffer), its whole body,
/// and the wildcards its route captured.
#[derive(Debug, Clone)]
pub struct Request {
    head: RequestHead,
    body: Bytes,
    params: RouteParams,
}

impl Request {
    /// Builds a request from a parsed head and its decoded body.
    pub fn new(head: RequestHead, body: Bytes) -> Request {
        Request {
            head,
            body,
            params: RouteParams::EMPTY,
        }
    }

    /// Records what the route captured (the router does this).
    pub fn set_params(&mut self, params: RouteParams) {
        self.params = params;
    }

    /// A captured wildcard by name, percent-decoded (`%2F` becomes `/`
    /// here, though it never split a segment while matching).
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        let i = self.params.names.iter().position(|n| n == name)?;
        let raw = &self.path()[self.params.ranges.get(i)?];
        Some(percent_decoded(raw))
    }

    /// All captured wildcards, in pattern order, percent-decoded.
    pub fn params(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.params
            .names
            .iter()
            .enumerate()
            .filter_map(move |(i, n)| {
                let raw = &self.path()[self.params.ranges.get(i)?];
                Some((n.as_ref(), percent_decoded(raw)))
            })
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

fn percent_decoded(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let bytes: Vec<u8> = DecodedBytes::new(raw.as_bytes()).collect();
    match String::from_utf8(bytes) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Something that answers requests on one shard.
pub trait Handler: 'static {
    /// Answers one request.
    fn call(&self, req: Request) -> impl Future<Output = Response>;
}

/// Any `Fn(Request) -> impl Future<Output = impl IntoResponse>` is a handler.
impl<F, Fut, R> Handler for F
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        crate::route::IntoResponseFuture::new(self(req))
    }
}
