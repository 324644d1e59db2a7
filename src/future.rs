//! Named futures that handlers, the router and (later) middleware hand
//! back instead of wrapping one another in `async` blocks. Each `async`
//! layer between the connection and a handler keeps its own copy of the
//! `Request` (over 300 bytes) for as long as the request runs, and copies
//! it once per request; these types add no copy.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::response::{IntoResponse, Response};

pin_project! {
    /// One of two futures with the same output. `routes!` nests these into
    /// a balanced tree with one leaf per route, so dispatch is a few
    /// branches and the futures share their storage.
    #[project = EitherProj]
    #[derive(Debug)]
    // The macro takes no docs on variant fields; each `inner` is the future.
    #[allow(missing_docs)]
    pub enum Either<A, B> {
        /// The first kind.
        Left { #[pin] inner: A },
        /// The second kind.
        Right { #[pin] inner: B },
    }
}

impl<A, B> Future for Either<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    type Output = A::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A::Output> {
        match self.project() {
            EitherProj::Left { inner } => inner.poll(cx),
            EitherProj::Right { inner } => inner.poll(cx),
        }
    }
}

pin_project! {
    /// A handler's future, its output turned into a [`Response`].
    #[derive(Debug)]
    pub struct IntoResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F> IntoResponseFuture<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        IntoResponseFuture { inner }
    }
}

impl<F> Future for IntoResponseFuture<F>
where
    F: Future,
    F::Output: IntoResponse,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        self.project()
            .inner
            .poll(cx)
            .map(IntoResponse::into_response)
    }
}
