//! Conditional requests, RFC 9110 §13: the preconditions in the order
//! §13.2.2 gives, entity-tag comparison, and `If-Range`.

use crate::http::date::parse_http_date;
use crate::http::RequestHead;

/// What the preconditions decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the representation (ranges may still apply).
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// The validators of the representation being served.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The strong entity tag, quotes included: `"…"`.
    pub etag: &'a [u8],
    /// Last modification, seconds since the Unix epoch.
    pub modified: u64,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since` for a GET or HEAD, in §13.2.2's order:
///
/// 1. `If-Match` false → 412; without it, `If-Unmodified-Since` false → 412.
/// 2. `If-None-Match` false → 304; without it, `If-Modified-Since` false → 304.
///
/// A date that does not parse makes its header ignored (§13.1.3, §13.1.4).
pub fn evaluate(head: &RequestHead, v: Validators<'_>) -> Outcome {
    let mut if_match = head_values(head, "if-match").peekable();
    if if_match.peek().is_some() {
        // Strong comparison: a weak tag never matches.
        if !list_matches(if_match, |tag| !tag.weak && tag.opaque == v.etag) {
            return Outcome::Failed;
        }
    } else if let Some(date) = head.header("if-unmodified-since").and_then(parse_http_date) {
        if v.modified > date {
            return Outcome::Failed;
        }
    }
    let mut if_none = head_values(head, "if-none-match").peekable();
    if if_none.peek().is_some() {
        // Weak comparison: `W/"x"` matches `"x"`.
        if list_matches(if_none, |tag| tag.opaque == v.etag) {
            return Outcome::NotModified;
        }
    } else if let Some(date) = head.header("if-modified-since").and_then(parse_http_date) {
        if v.modified <= date {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// Whether a `Range` should be honoured given `If-Range` (§13.1.5): absent,
/// or an entity tag that matches strongly, or a date equal to the
/// representation's Last-Modified. Anything else sends the whole file.
pub fn if_range_holds(head: &RequestHead, v: Validators<'_>) -> bool {
    let Some(value) = head.header("if-range") else {
        return true;
    };
    let value = value.trim_ascii();
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        let mut tags = EntityTags { rest: value };
        return matches!(tags.next(), Some(Ok(tag)) if !tag.weak && tag.opaque == v.etag)
            && tags.next().is_none();
    }
    parse_http_date(value) == Some(v.modified)
}

/// Every value of a (possibly repeated) list header, in order.
fn head_values<'h>(head: &'h RequestHead, name: &'static str) -> impl Iterator<Item = &'h [u8]> {
    head.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Whether `*` or any entity tag in the header values satisfies `matches`.
/// A malformed list matches nothing.
fn list_matches<'a>(
    values: impl Iterator<Item = &'a [u8]>,
    matches: impl Fn(&EntityTag<'a>) -> bool,
) -> bool {
    let mut any = false;
    for value in values {
        if value.trim_ascii() == b"*" {
            // The representation exists (we only get here for one).
            return true;
        }
        for tag in (EntityTags { rest: value }) {
            match tag {
                Ok(tag) => any |= matches(&tag),
                Err(()) => return false,
            }
        }
    }
    any
}

/// An entity tag as sent: `opaque` keeps its quotes.
#[derive(Debug, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// Splits `W/"a", "b"` into tags. Commas may appear inside the quotes.
struct EntityTags<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EntityTags<'a> {
    type Item = Result<EntityTag<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self
            .rest
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t' | b','))?;
        let mut s = &self.rest[start..];
        let weak = s.starts_with(b"W/");
        if weak {
            s = &s[2..];
        }
        if s.first() != Some(&b'"') {
            self.rest = &[];
            return Some(Err(()));
        }
        let Some(close) = s[1..].iter().position(|&b| b == b'"') else {
            self.rest = &[];
            return Some(Err(()));
        };
        let (opaque, rest) = s.split_at(close + 2);
        // Only whitespace may come before the next comma.
        let after = rest.iter().position(|&b| !matches!(b, b' ' | b'\t'));
        if let Some(i) = after {
            if rest[i] != b',' {
                self.rest = &[];
                return Some(Err(()));
            }
        }
        self.rest = rest;
        Some(Ok(EntityTag { weak, opaque }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;
    use crate::http::Limits;
    use bytes::BytesMut;

    const ETAG: &[u8] = b"\"1a-2b-3c\"";
    const MODIFIED: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const V: Validators<'static> = Validators {
        etag: ETAG,
        modified: MODIFIED,
    };

    fn head(headers: &str) -> RequestHead {
        let raw = format!("GET /f HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_head(&mut buf, &Limits::default())
            .expect("valid head")
            .expect("complete head")
    }

    fn eval(headers: &str) -> Outcome {
        evaluate(&head(headers), V)
    }

    #[test]
    fn if_match() {
        assert_eq!(eval("If-Match: \"1a-2b-3c\"\r\n"), Outcome::Proceed);
        assert_eq!(eval("If-Match: \"x\", \"1a-2b-3c\"\r\n"), Outcome::Proceed);
        assert_eq!(eval("If-Match: *\r\n"), Outcome::Proceed);
        assert_eq!(eval("If-Match: \"x\"\r\n"), Outcome::Failed);
        // Strong comparison: a weak tag fails.
        assert_eq!(eval("If-Match: W/\"1a-2b-3c\"\r\n"), Outcome::Failed);
        // Repeated header lines form one list.
        assert_eq!(
            eval("If-Match: \"x\"\r\nIf-Match: \"1a-2b-3c\"\r\n"),
            Outcome::Proceed
        );
        assert_eq!(eval("If-Match: garbage\r\n"), Outcome::Failed);
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(
            eval("If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            Outcome::Proceed
        );
        assert_eq!(
            eval("If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"),
            Outcome::Failed
        );
        // Ignored when If-Match is present (and holds).
        assert_eq!(
            eval("If-Match: *\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"),
            Outcome::Proceed
        );
        // An invalid date is ignored.
        assert_eq!(eval("If-Unmodified-Since: soon\r\n"), Outcome::Proceed);
    }

    #[test]
    fn if_none_match() {
        assert_eq!(
            eval("If-None-Match: \"1a-2b-3c\"\r\n"),
            Outcome::NotModified
        );
        // Weak comparison: W/ matches.
        assert_eq!(
            eval("If-None-Match: W/\"1a-2b-3c\"\r\n"),
            Outcome::NotModified
        );
        assert_eq!(eval("If-None-Match: *\r\n"), Outcome::NotModified);
        assert_eq!(eval("If-None-Match: \"a,b\", \"c\"\r\n"), Outcome::Proceed);
        assert_eq!(
            eval("If-None-Match: \"a,b\", \"1a-2b-3c\"\r\n"),
            Outcome::NotModified
        );
        // If-None-Match wins over If-Modified-Since (which would say 304).
        assert_eq!(
            eval("If-None-Match: \"old\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            Outcome::Proceed
        );
        // A failed If-Match wins over a matching If-None-Match: 412 first.
        assert_eq!(
            eval("If-Match: \"x\"\r\nIf-None-Match: \"1a-2b-3c\"\r\n"),
            Outcome::Failed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            eval("If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
            Outcome::NotModified
        );
        assert_eq!(
            eval("If-Modified-Since: Sunday, 06-Nov-94 08:49:38 GMT\r\n"),
            Outcome::NotModified
        );
        assert_eq!(
            eval("If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n"),
            Outcome::Proceed
        );
        assert_eq!(eval("If-Modified-Since: never\r\n"), Outcome::Proceed);
    }

    #[test]
    fn if_range() {
        let holds = |h: &str| if_range_holds(&head(h), V);
        assert!(holds(""));
        assert!(holds("If-Range: \"1a-2b-3c\"\r\n"));
        assert!(!holds("If-Range: W/\"1a-2b-3c\"\r\n"));
        assert!(!holds("If-Range: \"other\"\r\n"));
        assert!(holds("If-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
        assert!(!holds("If-Range: Sun, 06 Nov 1994 08:49:38 GMT\r\n"));
        assert!(!holds("If-Range: junk\r\n"));
    }
}
