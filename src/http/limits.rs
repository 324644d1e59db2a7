//! Request size limits: what the head parser and the body reader enforce.
//! Each default is written once, here; the flags' help text reads it.

use super::head::MAX_HEAD;

/// Default request-line limit (bytes): nginx's `large_client_header_buffers`.
pub const DEFAULT_MAX_URI: usize = 8 * 1024;
/// Default header-section limit (bytes): twice nginx's, room for big cookies.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default header count limit: more than 100 headers is an attack, not a browser.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default request-body limit (bytes): a small JSON API needs far less.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Smallest request-line limit that still fits a request line (bytes).
pub const MIN_MAX_URI: usize = 16;
/// Smallest header-section limit that still fits a Host header (bytes).
pub const MIN_MAX_HEADER_BYTES: usize = 64;
/// Most header fields a limit may allow: httparse needs a slot per field.
pub const MAX_MAX_HEADERS: usize = 10_000;
/// Largest body limit (bytes): bodies are held whole in memory.
pub const MAX_MAX_BODY: usize = 1 << 30;

/// Request size limits, in bytes unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line; longer → 414.
    pub max_uri: usize,
    /// Largest header section (after the request line); larger → 431.
    pub max_header_bytes: usize,
    /// Most header fields; more → 431.
    pub max_headers: usize,
    /// Largest decoded request body; larger → 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri: DEFAULT_MAX_URI,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// Which limit is out of range, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// `max_uri` below [`MIN_MAX_URI`].
    MaxUri,
    /// `max_header_bytes` below [`MIN_MAX_HEADER_BYTES`].
    MaxHeaderBytes,
    /// `max_uri + max_header_bytes` does not fit in a head ([`MAX_HEAD`]).
    HeadTooLarge,
    /// `max_headers` is 0 or above [`MAX_MAX_HEADERS`].
    MaxHeaders,
    /// `max_body` above [`MAX_MAX_BODY`].
    MaxBody,
}

impl Limits {
    /// Checks that the parser can enforce these limits.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.max_uri < MIN_MAX_URI {
            return Err(LimitError::MaxUri);
        }
        if self.max_header_bytes < MIN_MAX_HEADER_BYTES {
            return Err(LimitError::MaxHeaderBytes);
        }
        // +2: the empty line that ends the head.
        if self.max_uri + self.max_header_bytes + 2 > MAX_HEAD {
            return Err(LimitError::HeadTooLarge);
        }
        if self.max_headers == 0 || self.max_headers > MAX_MAX_HEADERS {
            return Err(LimitError::MaxHeaders);
        }
        if self.max_body > MAX_MAX_BODY {
            return Err(LimitError::MaxBody);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_each_bound_is_checked() {
        assert_eq!(Limits::default().check(), Ok(()));
        let with = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.check()
        };
        assert_eq!(with(|l| l.max_uri = 15), Err(LimitError::MaxUri));
        assert_eq!(
            with(|l| l.max_header_bytes = 63),
            Err(LimitError::MaxHeaderBytes)
        );
        assert_eq!(
            with(|l| {
                l.max_uri = 32 * 1024;
                l.max_header_bytes = 32 * 1024;
            }),
            Err(LimitError::HeadTooLarge)
        );
        assert_eq!(
            with(|l| {
                l.max_uri = 16 * 1024;
                l.max_header_bytes = 47 * 1024;
            }),
            Ok(())
        );
        assert_eq!(with(|l| l.max_headers = 0), Err(LimitError::MaxHeaders));
        assert_eq!(
            with(|l| l.max_body = (1 << 30) + 1),
            Err(LimitError::MaxBody)
        );
    }
}
