//! The HTTP/1.x wire format: request heads (parsed), request bodies
//! (decoded), response heads (encoded), the per-shard Date cache, status
//! codes and the request size limits the parser enforces.
//!
//! The public part is what a handler or a configuration names: methods,
//! versions, status codes, a parsed [`RequestHead`] with its
//! [`Extensions`], and the [`Limits`].

pub(crate) mod body;
pub mod client;
pub(crate) mod coding;
pub(crate) mod date;
pub(crate) mod encode;
mod error;
mod extensions;
pub(crate) mod field;
mod head;
mod limits;
pub(crate) mod parse;
mod status;

pub use body::MAX_CHUNK_LINE;
pub use error::{BodyError, ParseError};
pub use extensions::Extensions;
pub(crate) use head::split_request_line;
pub use head::{Framing, Method, RequestHead, Version, MAX_HEAD};
pub use limits::{
    LimitError, Limits, DEFAULT_MAX_BODY, DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_URI, MAX_MAX_BODY, MAX_MAX_HEADERS, MIN_MAX_HEADER_BYTES, MIN_MAX_URI,
};
pub(crate) use parse::parse_head;
pub use status::StatusCode;
