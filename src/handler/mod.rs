//! The `Handler` abstraction: an async function from a [`Request`] to
//! anything that converts into a [`Response`].
//!
//! Handlers run on one shard and need not be `Send`: each shard builds its
//! own instance, so per-shard state can live in `Rc`/`Cell` without locks.

mod conn_info;
mod request;

use std::future::Future;

pub(crate) use conn_info::ConnEntry;
pub use conn_info::ConnInfo;
pub use request::{Request, RouteParams};

use crate::future::IntoResponseFuture;
use crate::response::{IntoResponse, Response};

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
        IntoResponseFuture::new(self(req))
    }
}
