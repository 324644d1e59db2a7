//! Route patterns as Go 1.22's `net/http.ServeMux` reads them:
//! `[METHOD ][HOST]/[PATH]`, and the relation between two patterns that
//! decides precedence and conflicts.

use std::fmt;

/// One path segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A literal segment, percent-decoded. `{$}` is the literal `"/"`: the
    /// trailing slash that must end the path.
    Lit(String),
    /// `{name}`: exactly one non-empty segment.
    Wild(String),
    /// `{name...}`, or the anonymous wildcard of a trailing `/` (`None`): the
    /// rest of the path.
    Multi(Option<String>),
}

impl Segment {
    /// Whether this segment matches the rest of the path.
    pub fn is_multi(&self) -> bool {
        matches!(self, Segment::Multi(_))
    }

    /// The wildcard's name, if it captures one.
    pub fn param_name(&self) -> Option<&str> {
        match self {
            Segment::Wild(n) | Segment::Multi(Some(n)) => Some(n),
            _ => None,
        }
    }
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written.
    pub text: String,
    /// The method, or `None` for every method.
    pub method: Option<String>,
    /// The host, lower-cased, or `None` for every host.
    pub host: Option<String>,
    /// The path segments.
    pub segments: Vec<Segment>,
}

/// Why a pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid route pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl Pattern {
    /// Parses `[METHOD ][HOST]/[PATH]`.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |reason: &str| PatternError {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(err("empty pattern"));
        }
        let (method, rest) = match trimmed.find([' ', '\t']) {
            Some(i) => (Some(&trimmed[..i]), trimmed[i..].trim_start()),
            None => (None, trimmed),
        };
        if let Some(m) = method {
            if !m.bytes().all(is_token_byte) {
                return Err(err("the method must be an HTTP token, like GET"));
            }
        }
        let slash = rest
            .find('/')
            .ok_or_else(|| err("the path must start with /"))?;
        let (host, path) = rest.split_at(slash);
        if host.contains('{') {
            return Err(err("the host cannot contain wildcards"));
        }
        if host.contains(|c: char| c.is_whitespace()) {
            return Err(err("unexpected space in the host or path"));
        }
        let segments = parse_path(path).map_err(|r| err(&r))?;
        Ok(Pattern {
            text: text.to_string(),
            method: method.map(str::to_string),
            host: (!host.is_empty()).then(|| host.to_ascii_lowercase()),
            segments,
        })
    }

    /// Whether the path ends in a `{name...}` wildcard or a trailing `/`.
    pub fn ends_in_multi(&self) -> bool {
        self.segments.last().is_some_and(Segment::is_multi)
    }

    /// Names of the wildcards, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(Segment::param_name)
    }

    /// Go's relationship between the request sets of two patterns with the
    /// same host: method and path compared separately, then combined.
    pub fn compare(&self, other: &Pattern) -> Relation {
        let mrel = compare_methods(self.method.as_deref(), other.method.as_deref());
        if mrel == Relation::Disjoint {
            return Relation::Disjoint;
        }
        mrel.combine(compare_paths(&self.segments, &other.segments))
    }

    /// Whether the two cannot both be registered: same host, and either
    /// the same request set or overlapping ones with neither more specific.
    /// A pattern with a host never conflicts with one without: it wins.
    pub fn conflicts_with(&self, other: &Pattern) -> bool {
        self.host == other.host
            && matches!(
                self.compare(other),
                Relation::Equivalent | Relation::Overlaps
            )
    }

    /// A request that both patterns match, for error messages: `(method, path)`.
    pub fn common_request(&self, other: &Pattern) -> (String, String) {
        let method = match (&self.method, &other.method) {
            (Some(a), Some(b)) if a == "GET" && b == "HEAD" => b.clone(),
            (Some(a), _) => a.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => "GET".to_string(),
        };
        (method, common_path(&self.segments, &other.segments))
    }

    /// Whether this pattern alone matches the request (`path` as sent,
    /// percent-encoded, and already clean). A slow reference matcher.
    pub fn matches(&self, host: Option<&str>, method: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(h) => host.is_some_and(|r| r.eq_ignore_ascii_case(h)),
        };
        let method_ok = match self.method.as_deref() {
            None => true,
            Some(m) => m == method || (m == "GET" && method == "HEAD"),
        };
        host_ok && method_ok && match_segments(&self.segments, path)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut rest = &path[1..];
    loop {
        if rest.is_empty() {
            // A trailing slash (or the pattern "/"): the whole subtree.
            segments.push(Segment::Multi(None));
            break;
        }
        let end = rest.find('/').unwrap_or(rest.len());
        let seg = &rest[..end];
        rest = &rest[end..];
        if !seg.contains('{') && !seg.contains('}') {
            let decoded = crate::percent::decode(seg.as_bytes())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("bad percent-encoding in segment {seg:?}"))?;
            if decoded.is_empty() || decoded == "." || decoded == ".." {
                return Err("the path must be clean: no empty, \".\" or \"..\" segments".into());
            }
            segments.push(Segment::Lit(decoded));
        } else {
            let name = seg
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .ok_or_else(|| format!("a wildcard must be a whole segment: {seg:?}"))?;
            if name == "$" {
                if !rest.is_empty() {
                    return Err("{$} must be at the end of the path".into());
                }
                segments.push(Segment::Lit("/".into()));
                return Ok(segments);
            }
            let (name, multi) = match name.strip_suffix("...") {
                Some(n) => (n, true),
                None => (name, false),
            };
            if multi && !rest.is_empty() {
                return Err(format!("{{{name}...}} must be at the end of the path"));
            }
            if !is_ident(name) {
                return Err(format!("bad wildcard name {name:?}"));
            }
            if names.contains(&name) {
                return Err(format!("duplicate wildcard name {name:?}"));
            }
            names.push(name);
            segments.push(if multi {
                Segment::Multi(Some(name.to_string()))
            } else {
                Segment::Wild(name.to_string())
            });
            if multi {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    Ok(segments)
}

/// How the request sets of two patterns relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Same requests.
    Equivalent,
    /// The first matches a strict superset of the second's requests.
    MoreGeneral,
    /// The first matches a strict subset of the second's requests.
    MoreSpecific,
    /// Some requests in common, neither contains the other.
    Overlaps,
    /// No request in common.
    Disjoint,
}

impl Relation {
    fn inverse(self) -> Relation {
        match self {
            Relation::MoreGeneral => Relation::MoreSpecific,
            Relation::MoreSpecific => Relation::MoreGeneral,
            r => r,
        }
    }

    /// The relation of two patterns from the relations of two independent
    /// parts of them (Go's `combineRelationships`).
    pub fn combine(self, other: Relation) -> Relation {
        use Relation::*;
        match self {
            Equivalent => other,
            Disjoint => Disjoint,
            Overlaps if other == Disjoint => Disjoint,
            Overlaps => Overlaps,
            MoreGeneral | MoreSpecific => match other {
                Equivalent => self,
                o if o == self.inverse() => Overlaps,
                o => o,
            },
        }
    }
}

fn compare_methods(a: Option<&str>, b: Option<&str>) -> Relation {
    match (a, b) {
        _ if a == b => Relation::Equivalent,
        (None, _) => Relation::MoreGeneral,
        (_, None) => Relation::MoreSpecific,
        (Some("GET"), Some("HEAD")) => Relation::MoreGeneral,
        (Some("HEAD"), Some("GET")) => Relation::MoreSpecific,
        _ => Relation::Disjoint,
    }
}

fn compare_segments(a: &Segment, b: &Segment) -> Relation {
    use Segment::*;
    match (a, b) {
        (Multi(_), Multi(_)) => Relation::Equivalent,
        (Multi(_), _) => Relation::MoreGeneral,
        (_, Multi(_)) => Relation::MoreSpecific,
        (Wild(_), Wild(_)) => Relation::Equivalent,
        // A single wildcard never matches the trailing slash of `{$}`.
        (Wild(_), Lit(s)) | (Lit(s), Wild(_)) if s == "/" => Relation::Disjoint,
        (Wild(_), Lit(_)) => Relation::MoreGeneral,
        (Lit(_), Wild(_)) => Relation::MoreSpecific,
        (Lit(x), Lit(y)) if x == y => Relation::Equivalent,
        (Lit(_), Lit(_)) => Relation::Disjoint,
    }
}

fn compare_paths(a: &[Segment], b: &[Segment]) -> Relation {
    let a_multi = a.last().is_some_and(Segment::is_multi);
    let b_multi = b.last().is_some_and(Segment::is_multi);
    if a.len() != b.len() && !a_multi && !b_multi {
        return Relation::Disjoint;
    }
    let mut rel = Relation::Equivalent;
    for (x, y) in a.iter().zip(b) {
        rel = rel.combine(compare_segments(x, y));
        if rel == Relation::Disjoint {
            return rel;
        }
    }
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => rel,
        std::cmp::Ordering::Less if a_multi => rel.combine(Relation::MoreGeneral),
        std::cmp::Ordering::Greater if b_multi => rel.combine(Relation::MoreSpecific),
        _ => Relation::Disjoint,
    }
}

fn write_segment(out: &mut String, s: &Segment) {
    out.push('/');
    match s {
        Segment::Lit(l) if l == "/" => {}
        Segment::Lit(l) => out.push_str(l),
        Segment::Wild(n) => out.push_str(n),
        Segment::Multi(_) => {}
    }
}

fn common_path(a: &[Segment], b: &[Segment]) -> String {
    let mut out = String::new();
    for (x, y) in a.iter().zip(b) {
        write_segment(
            &mut out,
            if matches!(x, Segment::Wild(_) | Segment::Multi(_)) {
                y
            } else {
                x
            },
        );
    }
    let n = a.len().min(b.len());
    for s in a[n..].iter().chain(&b[n..]) {
        write_segment(&mut out, s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Reference matcher: walks the segments of `path` against the pattern.
fn match_segments(segs: &[Segment], path: &str) -> bool {
    let mut rest = path;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match seg {
            Segment::Multi(_) => return rest.starts_with('/'),
            Segment::Lit(l) if l == "/" => return rest == "/",
            _ => {}
        }
        let Some(r) = rest.strip_prefix('/') else {
            return false;
        };
        let end = r.find('/').unwrap_or(r.len());
        let (s, after) = (&r[..end], &r[end..]);
        let ok = match seg {
            Segment::Lit(l) => crate::percent::decode(s.as_bytes())
                .map_or(s.as_bytes() == l.as_bytes(), |d| d == l.as_bytes()),
            Segment::Wild(_) => !s.is_empty(),
            Segment::Multi(_) => unreachable!("handled above"),
        };
        if !ok {
            return false;
        }
        rest = after;
        if last {
            return rest.is_empty();
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_go_syntax() {
        let pat = p("GET example.com/b/{bucket}/o/{objectname...}");
        assert_eq!(pat.method.as_deref(), Some("GET"));
        assert_eq!(pat.host.as_deref(), Some("example.com"));
        assert_eq!(
            pat.segments,
            vec![
                Segment::Lit("b".into()),
                Segment::Wild("bucket".into()),
                Segment::Lit("o".into()),
                Segment::Multi(Some("objectname".into())),
            ]
        );
        assert_eq!(p("/").segments, vec![Segment::Multi(None)]);
        assert_eq!(p("/{$}").segments, vec![Segment::Lit("/".into())]);
        assert_eq!(
            p("/static/").segments,
            vec![Segment::Lit("static".into()), Segment::Multi(None)]
        );
        assert_eq!(
            p("/a/{$}").segments,
            vec![Segment::Lit("a".into()), Segment::Lit("/".into())]
        );
        assert_eq!(p("/a%20b").segments, vec![Segment::Lit("a b".into())]);
        assert_eq!(p("POST\t/x").method.as_deref(), Some("POST"));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "",
            "GET",
            "x",
            "/a{x}",
            "/{x}a",
            "/{x...}/b",
            "/{$}/b",
            "/{}",
            "/{1x}",
            "/{x}/{x}",
            "/a//b",
            "/a/./b",
            "/../a",
            "G@T /",
            "{x}/",
            "/a%zz",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    fn rel(a: &str, b: &str) -> Relation {
        p(a).compare(&p(b))
    }

    #[test]
    fn relations() {
        use Relation::*;
        assert_eq!(rel("/a", "/a"), Equivalent);
        assert_eq!(rel("/a/{x}", "/a/{y}"), Equivalent);
        assert_eq!(rel("/images/thumbnails/", "/images/"), MoreSpecific);
        assert_eq!(rel("/", "/index.html"), MoreGeneral);
        assert_eq!(rel("GET /", "/index.html"), Overlaps);
        assert_eq!(rel("POST /foo", "/foo"), MoreSpecific);
        assert_eq!(rel("GET /x", "POST /x"), Disjoint);
        assert_eq!(rel("HEAD /x", "GET /x"), MoreSpecific);
        assert_eq!(rel("/a/{x}", "/{y}/b"), Overlaps);
        assert_eq!(rel("/a/{x}", "/a/{$}"), Disjoint);
        assert_eq!(rel("/a/", "/a/{$}"), MoreGeneral);
        assert_eq!(rel("/a/{x...}", "/a/"), Equivalent);
        assert_eq!(rel("/a", "/a/"), Disjoint);
        assert_eq!(rel("/posts/{id}", "/posts/latest"), MoreGeneral);
        assert_eq!(rel("/a/b", "/a/b/c"), Disjoint);
    }

    #[test]
    fn conflicts_and_host_exception() {
        assert!(p("GET /").conflicts_with(&p("/index.html")));
        assert!(p("/a").conflicts_with(&p("/a")));
        assert!(!p("example.com/").conflicts_with(&p("GET /")));
        assert!(!p("/images/thumbnails/").conflicts_with(&p("/images/")));
        let (m, path) = p("GET /").common_request(&p("/index.html"));
        assert_eq!((m.as_str(), path.as_str()), ("GET", "/index.html"));
        let (_, path) = p("/a/{x}").common_request(&p("/{y}/b"));
        assert_eq!(path, "/a/b");
    }

    #[test]
    fn reference_matcher() {
        let pat = p("/b/{bucket}/o/{objectname...}");
        assert!(pat.matches(None, "GET", "/b/x/o/a/b/c"));
        assert!(pat.matches(None, "GET", "/b/x/o/"));
        assert!(!pat.matches(None, "GET", "/b/x/o"));
        assert!(!pat.matches(None, "GET", "/b//o/x"));
        assert!(p("/a/{$}").matches(None, "GET", "/a/"));
        assert!(!p("/a/{$}").matches(None, "GET", "/a/b"));
        assert!(p("/").matches(None, "PUT", "/any/thing"));
        assert!(p("GET /x").matches(None, "HEAD", "/x"));
        assert!(!p("HEAD /x").matches(None, "GET", "/x"));
        assert!(p("example.com/").matches(Some("EXAMPLE.com"), "GET", "/"));
        assert!(!p("example.com/").matches(None, "GET", "/"));
        assert!(p("/a%2Fb").matches(None, "GET", "/a%2fb"));
        assert!(!p("/a/b").matches(None, "GET", "/a%2Fb"));
    }
}
