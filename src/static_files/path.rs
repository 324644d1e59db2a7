//! Request path → file path beneath a mount. The path is percent-decoded
//! exactly once and must come out clean; anything that could name a file
//! outside the mount, or that only an attacker sends, is refused here,
//! before the file system is touched.

use std::borrow::Cow;

use edgeshard_routing::percent::{self, PathDecodeError};

/// Longest decoded path we look up (bytes): Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;
/// Longest path segment (bytes): Linux's `NAME_MAX`.
pub const MAX_SEGMENT: usize = 255;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Malformed or hostile: 400.
    BadRequest(&'static str),
    /// Cannot name a servable file (too long): 404.
    NotFound,
}

/// Decodes `raw` (the request path, still percent-encoded, starting with
/// `/`) and checks it. Refused: a backslash; an encoded `/`, `\` or NUL;
/// a bad escape; a `.` or `..` segment (raw ones were already redirected
/// by the router's clean-path rule, so these came encoded); an empty
/// segment inside the path; paths longer than [`MAX_PATH`] or segments
/// longer than [`MAX_SEGMENT`]. Borrows `raw` when it has no escapes.
pub fn decode_path(raw: &str) -> Result<Cow<'_, [u8]>, PathError> {
    let raw = raw.as_bytes();
    if raw.first() != Some(&b'/') {
        return Err(PathError::BadRequest("the path must start with /"));
    }
    if raw.len() > 3 * MAX_PATH {
        return Err(PathError::NotFound);
    }
    let decoded = percent::decode_path(raw).map_err(|e| match e {
        PathDecodeError::Malformed => {
            PathError::BadRequest("malformed percent-encoding in the path")
        }
        PathDecodeError::EncodedSeparator => {
            PathError::BadRequest("encoded /, \\ or NUL in the path")
        }
    })?;
    if decoded.len() > MAX_PATH {
        return Err(PathError::NotFound);
    }
    if decoded.iter().any(|&b| b == b'\\' || b == 0) {
        return Err(PathError::BadRequest("backslash or NUL in the path"));
    }
    let body = &decoded[1..];
    let segments = body.split(|&b| b == b'/');
    let count = body.split(|&b| b == b'/').count();
    for (i, seg) in segments.enumerate() {
        match seg {
            _ if percent::is_dot_segment(seg) => {
                return Err(PathError::BadRequest("dot segment in the path"));
            }
            // The last segment is empty for a directory path (`/dir/`).
            b"" if i + 1 < count => {
                return Err(PathError::BadRequest("empty segment in the path"));
            }
            _ if seg.len() > MAX_SEGMENT => return Err(PathError::NotFound),
            _ => {}
        }
    }
    Ok(decoded)
}

/// Whether a relative path (no leading `/`) names a dotfile or passes
/// through a dot-directory. `/.well-known/` (RFC 8615: ACME challenges,
/// security.txt) is not hidden.
pub fn is_hidden(rel: &[u8]) -> bool {
    let rel = rel.strip_prefix(b".well-known/").unwrap_or(rel);
    rel.split(|&b| b == b'/').any(|s| s.first() == Some(&b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<u8> {
        decode_path(raw).expect(raw).into_owned()
    }

    #[test]
    fn plain_and_decoded_paths() {
        assert_eq!(ok("/"), b"/");
        assert_eq!(ok("/a/b.txt"), b"/a/b.txt");
        assert_eq!(ok("/dir/"), b"/dir/");
        assert_eq!(ok("/hello%20world.txt"), b"/hello world.txt");
        assert_eq!(ok("/caf%C3%A9"), "/café".as_bytes());
        // `%2e` inside a name is just a dot.
        assert_eq!(ok("/a%2etxt"), b"/a.txt");
        assert!(matches!(decode_path("/a/b"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn hostile_paths_are_refused() {
        use PathError::*;
        for raw in [
            "/%2e%2e/etc/passwd",
            "/a/%2E%2E/%2e%2e/x",
            "/%2e/x",
            "/..%2fetc/passwd",
            "/a%2Fb",
            "/a%5cb",
            "/a%00b",
            "/a\\b",
            "/a//b",
            "/%zz",
            "/%4",
            "relative",
        ] {
            assert!(
                matches!(decode_path(raw), Err(BadRequest(_))),
                "{raw} should be refused"
            );
        }
        let long = format!("/{}", "a/".repeat(MAX_PATH));
        assert_eq!(decode_path(&long), Err(NotFound));
        let long_segment = format!("/{}", "a".repeat(MAX_SEGMENT + 1));
        assert_eq!(decode_path(&long_segment), Err(NotFound));
        let max_segment = format!("/{}", "a".repeat(MAX_SEGMENT));
        assert!(decode_path(&max_segment).is_ok());
    }

    #[test]
    fn dotfiles() {
        assert!(is_hidden(b".env"));
        assert!(is_hidden(b"a/.git/config"));
        assert!(!is_hidden(b"a/b.txt"));
        assert!(!is_hidden(b".well-known/acme-challenge/x"));
        assert!(is_hidden(b".well-known/.secret"));
    }
}
