//! Routing with Go 1.22 `net/http.ServeMux` semantics, shared by the
//! `routes!` macro (which builds a [`Table`] at compile time) and edgeshard
//! (which walks it, and builds tries from configuration at run time).
//!
//! - [`pattern`]: `[METHOD ][HOST]/PATH` patterns, precedence and conflicts.
//! - [`table`]: the flat table and its lookup; [`mod@build`] checks patterns
//!   and builds one.
//! - [`decide`]: one request → route, redirect, 405 or 404, for any [`Matcher`].
//! - [`percent`]: percent-escapes and dot segments, for the matchers and
//!   for edgeshard's static files.
#![deny(missing_docs)]

use std::borrow::Cow;

pub mod build;
pub mod pattern;
pub mod percent;
pub mod runtime;
pub mod table;

pub use build::{build, check_conflicts, check_new, BuildError};
pub use pattern::{Pattern, PatternError, Relation, Segment};
pub use percent::DecodedBytes;
pub use runtime::{InsertError, RuntimeTrie};
pub use table::Table;

/// Most wildcards in one pattern: captures live in a fixed array.
pub const MAX_PARAMS: usize = 16;

/// Longest path any route matches (bytes): capture offsets are `u16`.
/// Longer paths are not found (edgeshard's request heads are shorter).
pub const MAX_PATH: usize = u16::MAX as usize;

/// Byte ranges of captured wildcards in the request path, in pattern order.
/// Offsets are `u16`, which halves the size of every request that carries
/// them: both matchers match no path longer than [`MAX_PATH`].
#[derive(Debug, Clone, Copy)]
pub struct Params {
    ranges: [(u16, u16); MAX_PARAMS],
    len: u8,
}

/// Equal when the live captures are; slots past `len` are scratch.
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.ranges[..self.len()] == other.ranges[..other.len()]
    }
}

impl Eq for Params {}

impl Default for Params {
    fn default() -> Self {
        Params::new()
    }
}

impl Params {
    /// No captures.
    pub const fn new() -> Params {
        Params {
            ranges: [(0, 0); MAX_PARAMS],
            len: 0,
        }
    }

    /// Forgets all captures.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds a capture; `false` if full (patterns are checked to fit) or if
    /// `end` is past [`MAX_PATH`] (the matchers refuse such paths first).
    #[inline]
    pub fn push(&mut self, start: usize, end: usize) -> bool {
        if self.len as usize == MAX_PARAMS || end > MAX_PATH {
            return false;
        }
        self.ranges[self.len as usize] = (start as u16, end as u16);
        self.len += 1;
        true
    }

    /// Keeps only the first `len` captures.
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len as u8);
    }

    /// Number of captures.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th capture as a byte range of the path.
    pub fn get(&self, i: usize) -> Option<std::ops::Range<usize>> {
        (i < self.len()).then(|| self.ranges[i].0 as usize..self.ranges[i].1 as usize)
    }
}

/// What a table knows about one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo<'a> {
    /// The pattern as written.
    pub pattern: Cow<'a, str>,
    /// The method, or `None` for all.
    pub method: Option<Cow<'a, str>>,
    /// The handler's name (as written in `routes!`).
    pub handler: Cow<'a, str>,
    /// Wildcard names, in capture order.
    pub params: Cow<'a, [Cow<'a, str>]>,
    /// Number of path segments (Go's count, trailing slash included).
    pub segments: u32,
    /// Ends in `{name...}` or a trailing slash.
    pub ends_in_multi: bool,
    /// Ends in a named `{name...}` (which captures).
    pub multi_named: bool,
}

impl RouteInfo<'_> {
    /// (path segments, ends in `{name...}` or a trailing slash): what
    /// deciding an exact match needs.
    pub fn shape(&self) -> (u32, bool) {
        (self.segments, self.ends_in_multi)
    }
}

impl RouteInfo<'static> {
    /// The info of a parsed pattern.
    pub fn from_pattern(p: &Pattern, handler: &str) -> RouteInfo<'static> {
        RouteInfo {
            pattern: Cow::Owned(p.text.clone()),
            method: p.method.clone().map(Cow::Owned),
            handler: Cow::Owned(handler.to_string()),
            params: Cow::Owned(p.param_names().map(|n| Cow::Owned(n.to_string())).collect()),
            segments: p.segments.len() as u32,
            ends_in_multi: p.ends_in_multi(),
            multi_named: matches!(p.segments.last(), Some(Segment::Multi(Some(_)))),
        }
    }
}

/// A routing structure that can be asked Go's questions.
pub trait Matcher {
    /// The most specific route for the request (`path` clean, `tail` adds a
    /// virtual trailing slash), filling `params`.
    fn find(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        tail: bool,
        params: &mut Params,
    ) -> Option<u32>;
    /// [`Matcher::find`] with `tail` false, and whether the search reached a
    /// place where some pattern ends: the path's end, or a `{name...}`.
    /// When it did not, no route matches the path under any method, nor the
    /// path with a slash added, so [`decide`] skips asking. The default
    /// always says `true`, which is never wrong, only slower.
    fn find_reaching(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        params: &mut Params,
    ) -> (Option<u32>, bool) {
        (self.find(host, method, path, false, params), true)
    }
    /// Methods of every route whose path matches, and whether an any-method route does.
    fn methods_for(&self, host: Option<&str>, path: &str) -> (Vec<String>, bool);
    /// A route's shape: (path segments, ends in `{name...}` or a trailing slash).
    fn shape(&self, route: u32) -> (u32, bool);
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Call this route; its captures are in the `Params` passed to [`decide`].
    Route(u32),
    /// Redirect (301 for GET/HEAD, 308 otherwise) to this path and query.
    Redirect(String),
    /// 405 with this `Allow` value.
    MethodNotAllowed(String),
    /// 404.
    NotFound,
}

/// Decides a request the way Go's `ServeMux.findHandler` does: an unclean
/// path redirects to its clean form; a path that only matches as a subtree
/// root without its slash redirects to it with the slash; a path that
/// matches only under other methods is a 405; else the route or a 404.
pub fn decide<M: Matcher>(
    m: &M,
    host: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    params: &mut Params,
) -> Decision {
    decide_knowing(m, host, method, path, query, params, false)
}

/// [`decide`], told whether the caller already knows the path
/// [`is_clean`] (edgeshard's parser sees it while looking for the query):
/// then the path's segments are not looked at again.
pub fn decide_knowing<M: Matcher>(
    m: &M,
    host: Option<&str>,
    method: &str,
    path: &str,
    query: Option<&str>,
    params: &mut Params,
    known_clean: bool,
) -> Decision {
    debug_assert!(!known_clean || is_clean(path), "{path:?} is not clean");
    if !known_clean && !is_clean(path) {
        let cleaned = clean(path);
        let target = slash_redirect(m, host, method, &cleaned).unwrap_or(cleaned);
        return Decision::Redirect(with_query(target, query));
    }
    // One lookup; the trailing-slash probe runs only when it is not exact,
    // and with the 405 probe not at all when the lookup hit a dead end.
    let (found, reached) = m.find_reaching(host, method, path, params);
    if !reached {
        return Decision::NotFound;
    }
    let exact = found.is_some_and(|r| is_exact(m.shape(r), path, false));
    if !exact {
        if let Some(target) = slash_target(m, host, method, path) {
            return Decision::Redirect(with_query(target, query));
        }
    }
    if let Some(r) = found {
        return Decision::Route(r);
    }
    let (mut methods, _) = m.methods_for(host, path);
    // Go's `matchingMethods`: the path with a slash added counts too, as
    // the redirect to it would for a method that matched (`PUT /r` with
    // only `GET /r/` is a 405, not a 404).
    if !path.ends_with('/') {
        methods.extend(m.methods_for(host, &format!("{path}/")).0);
    }
    if methods.is_empty() {
        return Decision::NotFound;
    }
    if methods.iter().any(|x| x == "GET") {
        methods.push("HEAD".to_string());
    }
    methods.sort();
    methods.dedup();
    Decision::MethodNotAllowed(methods.join(", "))
}

/// `path + "/"` if the path has no exact match and the slashed path has one.
fn slash_redirect<M: Matcher>(
    m: &M,
    host: Option<&str>,
    method: &str,
    path: &str,
) -> Option<String> {
    let mut scratch = Params::new();
    let exact = m
        .find(host, method, path, false, &mut scratch)
        .is_some_and(|r| is_exact(m.shape(r), path, false));
    if exact {
        return None;
    }
    slash_target(m, host, method, path)
}

/// `path + "/"` if the slashed path (not ending in `/` already) matches exactly.
fn slash_target<M: Matcher>(m: &M, host: Option<&str>, method: &str, path: &str) -> Option<String> {
    if path.ends_with('/') {
        return None;
    }
    let mut scratch = Params::new();
    let r = m.find(host, method, path, true, &mut scratch)?;
    is_exact(m.shape(r), path, true).then(|| format!("{path}/"))
}

/// Go's `exactMatch`: the route matches the path itself, not as a subtree member.
fn is_exact((segments, ends_in_multi): (u32, bool), path: &str, tail: bool) -> bool {
    if !ends_in_multi {
        return true;
    }
    if !tail && !path.ends_with('/') {
        return false;
    }
    let slashes = path.bytes().filter(|&b| b == b'/').count() + usize::from(tail);
    segments as usize == slashes
}

fn with_query(mut path: String, query: Option<&str>) -> String {
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// The first `needle` in `hay`. Request paths are mostly shorter than a
/// vector: below 32 bytes a plain loop costs a third of a `memchr` call's
/// set-up and dispatch; longer haystacks go to `memchr`.
#[inline]
pub fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < 32 {
        hay.iter().position(|&b| b == needle)
    } else {
        memchr::memchr(needle, hay)
    }
}

/// Whether `path` is already in the form [`clean`] would give: one pass
/// over the bytes, looking closer only at segments that start with `.` or `%`.
pub fn is_clean(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let start = i + 1;
        let end = b[start..]
            .iter()
            .position(|&c| c == b'/')
            .map_or(b.len(), |n| start + n);
        let seg = &path[start..end];
        if seg.is_empty() && end < b.len() {
            return false;
        }
        if matches!(seg.as_bytes().first(), Some(b'.' | b'%'))
            && percent::dot_segment(seg).is_some()
        {
            return false;
        }
        i = end;
    }
    true
}

/// Go's `cleanPath`: `path.Clean` (no `//`, `.` or `..`; `..` stops at the
/// root), keeping a trailing slash. Encoded dots count as dots; every other
/// segment is kept as written.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let body = path.strip_prefix('/').unwrap_or(path);
    let mut trailing = path.ends_with('/');
    for seg in body.split('/') {
        match percent::dot_segment(seg) {
            Some(2) => {
                out.pop();
                trailing |= false;
            }
            Some(_) => {}
            None if seg.is_empty() => {}
            None => out.push(seg),
        }
    }
    // `/a/.` and `/a/..` name a directory but Go's Clean drops the slash.
    let last = body.rsplit('/').next().unwrap_or("");
    if percent::dot_segment(last).is_some() {
        trailing = false;
    }
    let mut cleaned = String::with_capacity(path.len());
    for seg in &out {
        cleaned.push('/');
        cleaned.push_str(seg);
    }
    if cleaned.is_empty() || trailing {
        cleaned.push('/');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_agrees_with_memchr_on_both_sides_of_the_cutoff() {
        for len in [0, 1, 31, 32, 33, 100] {
            let mut hay = vec![b'a'; len];
            assert_eq!(find_byte(b'%', &hay), None);
            for at in [0, len / 2, len.saturating_sub(1)] {
                if len > 0 {
                    hay[at] = b'%';
                    assert_eq!(find_byte(b'%', &hay), memchr::memchr(b'%', &hay));
                    assert_eq!(find_byte(b'%', &hay), hay.iter().position(|&b| b == b'%'));
                }
            }
        }
    }

    #[test]
    fn cleaning_matches_go() {
        for (input, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//a", "/a"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../a", "/a"),
            ("/a/b/..", "/a"),
            ("/a/b/.", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a//", "/a/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e/", "/"),
            ("/a%2Fb/../c", "/c"),
            ("/.hidden/x", "/.hidden/x"),
            ("/a/...", "/a/..."),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
            assert_eq!(is_clean(input), input == want, "is_clean({input:?})");
        }
    }
}
