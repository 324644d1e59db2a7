//! Percent-escapes and dot segments: the one place that decodes `%XX` and
//! recognises `.` and `..`, for route patterns and matching, Go's
//! clean-path rule, captured params, and static-file paths (the server's
//! `static_files::path` applies its own rules on top of [`decode_path`]).
//!
//! Two ways to decode, for two jobs: matching and display are lenient (a
//! malformed escape stays as written, as Go's mux treats it), while a path
//! that is about to name a file is strict ([`decode_path`]).

use std::borrow::Cow;

/// The value of one hex digit.
#[inline]
pub fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes bytes lazily; a malformed escape stays as written.
#[derive(Debug, Clone)]
pub struct DecodedBytes<'a> {
    rest: &'a [u8],
}

impl<'a> DecodedBytes<'a> {
    /// Decodes `s`.
    pub fn new(s: &'a [u8]) -> Self {
        DecodedBytes { rest: s }
    }
}

impl Iterator for DecodedBytes<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        if b == b'%' {
            if let [h, l, tail @ ..] = rest {
                if let (Some(h), Some(l)) = (hex(*h), hex(*l)) {
                    self.rest = tail;
                    return Some(h << 4 | l);
                }
            }
        }
        self.rest = rest;
        Some(b)
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Leniently decoded text (malformed escapes kept, invalid UTF-8 replaced);
/// borrows `s` when it has no `%`.
pub fn decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes: Vec<u8> = DecodedBytes::new(s.as_bytes()).collect();
    match String::from_utf8(bytes) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Why [`decode_path`] refused a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathDecodeError {
    /// A `%` not followed by two hex digits.
    Malformed,
    /// An encoded `/`, `\` or NUL: decoded, it would change which file
    /// the path names (or end it early), so it is never taken as data.
    EncodedSeparator,
}

/// Strictly decodes a request path that is about to name a file: every
/// escape must be well formed, and none may stand for `/`, `\` or NUL.
/// Borrows `raw` when it has no `%`.
pub fn decode_path(raw: &[u8]) -> Result<Cow<'_, [u8]>, PathDecodeError> {
    if memchr::memchr(b'%', raw).is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathDecodeError::Malformed);
        };
        let c = h << 4 | l;
        if matches!(c, b'/' | b'\\' | 0) {
            return Err(PathDecodeError::EncodedSeparator);
        }
        out.push(c);
        i += 3;
    }
    Ok(Cow::Owned(out))
}

/// Whether a segment that has been decoded already is `.` or `..`.
#[inline]
pub fn is_dot_segment(decoded: &[u8]) -> bool {
    matches!(decoded, b"." | b"..")
}

/// How many dots a raw segment is, when it is `.` or `..` written
/// literally or with `%2e`: `Some(1)`, `Some(2)`, else `None`.
pub fn dot_segment(seg: &str) -> Option<usize> {
    if !seg.contains(['.', '%']) {
        return None;
    }
    let mut dots = 0;
    for b in DecodedBytes::new(seg.as_bytes()) {
        if b != b'.' || dots == 2 {
            return None;
        }
        dots += 1;
    }
    (dots > 0).then_some(dots)
}

/// Whether a raw path has a `.` or `..` segment spelled with `%2e`. Go's
/// mux would clean it like a literal one and redirect
/// (`/%2e%2e/etc/passwd` → `/etc/passwd`); no real client encodes dots,
/// so edgeshard refuses such a path instead.
pub fn has_encoded_dot_segment(path: &str) -> bool {
    if memchr::memchr(b'%', path.as_bytes()).is_none() {
        return false;
    }
    path.split('/')
        .any(|seg| seg.contains('%') && dot_segment(seg).is_some())
}

/// Whether resolving a raw path's dot-segments (literal or `%2e`) would
/// climb above the root: `/../x`, `/a/../../x`. Empty segments count for
/// nothing, as in [`crate::clean`] (Go's `path.Clean`), which such a path
/// would otherwise be redirected to. Browsers resolve dot-segments before
/// they send a path, so only scanners and attacks send these.
///
/// One pass over the bytes for the common path, in which no segment starts
/// with `.` or `%`; the segments are walked only when one does.
pub fn climbs_above_root(path: &str) -> bool {
    let b = path.as_bytes();
    let mut prev = 0u8;
    let suspicious = b.iter().any(|&c| {
        let hit = prev == b'/' && (c == b'.' || c == b'%');
        prev = c;
        hit
    });
    suspicious && climbs_slow(path)
}

#[cold]
fn climbs_slow(path: &str) -> bool {
    let mut depth = 0usize;
    for seg in path.split('/') {
        match dot_segment(seg) {
            _ if seg.is_empty() => {}
            Some(1) => {}
            Some(_) if depth == 0 => return true,
            Some(_) => depth -= 1,
            None => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing_paths_are_told_from_paths_that_stay_inside() {
        for p in [
            "/..",
            "/../",
            "/../etc/passwd",
            "/a/../../x",
            "/a/./../../x",
            "/%2e%2e/x",
            "/a/%2E./.%2e/b",
            "//../x",
            "/a//../../x",
        ] {
            assert!(climbs_above_root(p), "{p}");
        }
        for p in [
            "",
            "/",
            "/x",
            "//x",
            "/a/./b",
            "/a/../b",
            "/a/..",
            "/a/b/../../c",
            "/style.css",
            "/.well-known/x",
            "/...",
            "/..a/b",
            "/%2e%2ex",
            "/caf%C3%A9",
            "/a%2F..%2F..%2Fb",
        ] {
            assert!(!climbs_above_root(p), "{p}");
        }
    }

    #[test]
    fn lenient_decoding_keeps_malformed_escapes() {
        let d: Vec<u8> = DecodedBytes::new(b"a%2Fb%zz%4").collect();
        assert_eq!(d, b"a/b%zz%4");
        assert_eq!(decode_lossy("caf%C3%A9"), "café");
        assert_eq!(decode_lossy("%FF"), "\u{fffd}");
        assert!(matches!(decode_lossy("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn strict_decoding() {
        assert_eq!(decode(b"a%20b").as_deref(), Some(&b"a b"[..]));
        assert_eq!(decode(b"a%2"), None);
        assert_eq!(decode_path(b"/a%2eb").as_deref(), Ok(&b"/a.b"[..]));
        assert!(matches!(decode_path(b"/a/b"), Ok(Cow::Borrowed(_))));
        for bad in [&b"/a%2Fb"[..], b"/a%5cb", b"/a%00b"] {
            assert_eq!(decode_path(bad), Err(PathDecodeError::EncodedSeparator));
        }
        for bad in [&b"/%zz"[..], b"/%4", b"/%"] {
            assert_eq!(decode_path(bad), Err(PathDecodeError::Malformed));
        }
    }

    #[test]
    fn dot_segments_literal_and_encoded() {
        assert_eq!(dot_segment("."), Some(1));
        assert_eq!(dot_segment("%2E%2e"), Some(2));
        assert_eq!(dot_segment(".%2e"), Some(2));
        assert_eq!(dot_segment("..."), None);
        assert_eq!(dot_segment("a."), None);
        assert!(has_encoded_dot_segment("/a/%2e%2e/b"));
        assert!(!has_encoded_dot_segment("/a/../b"));
        assert!(!has_encoded_dot_segment("/a%2eb/c"));
        assert!(is_dot_segment(b".."));
        // Decoded once only: `%2e` that was `%252e` is a name, not a dot.
        assert!(!is_dot_segment(b"%2e"));
    }
}
