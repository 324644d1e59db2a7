//! The `Handler` abstraction: an async function from a [`Request`] to
//! anything that converts into a [`Response`](crate::Response).
//!
//! Handlers run on one shard and need not be `Send`: each shard builds its
//! own instance, so per-shard state can live in `Rc`/`Cell` without locks.

use std::future::Future;

use bytes::Bytes;

use crate::http::{Method, RequestHead, Version};
use crate::response::{IntoResponse, Response};

/// A request: its head (all fields slices of one buffer) and its whole body.
#[derive(Debug, Clone)]
pub struct Request {
    head: RequestHead,
    body: Bytes,
}

impl Request {
    /// Builds a request from a parsed head and its decoded body.
    pub fn new(head: RequestHead, body: Bytes) -> Request {
        Request { head, body }
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
    async fn call(&self, req: Request) -> Response {
        self(req).await.into_response()
    }
}
