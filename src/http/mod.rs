//! The HTTP/1.x wire format: parsing request heads, decoding bodies,
//! encoding responses, and the per-shard Date cache.

pub mod body;
pub mod date;
pub mod encode;
pub mod error;
pub mod parse;
pub mod status;

pub use error::{BodyError, ParseError};
pub use parse::{parse_head, Framing, Method, RequestHead, Version};
pub use status::StatusCode;
