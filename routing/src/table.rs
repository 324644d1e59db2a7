//! The routing table as flat arrays: what `routes!` emits as `static` data
//! at compile time, and what [`crate::build()`] returns at run time.
//!
//! A node holds its literal children (sorted, binary-searched), at most one
//! `{name}` child, at most one `{name...}`/trailing-slash leaf and the leaf
//! for paths that end exactly at it. Lookup is a depth-first walk trying a
//! literal, then `{name}`, then `{name...}` at each segment, and at a leaf
//! the request's method, then GET for HEAD, then any method. For route sets
//! without conflicts the first leaf found is the most specific pattern, as
//! in Go's ServeMux. Nothing is allocated.

use std::borrow::Cow;
use std::cell::Cell;

use crate::{Matcher, Params, RouteInfo};

/// "No such node, leaf or route."
pub const NONE: u32 = u32::MAX;

/// A trie node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// First of this node's literal children in [`Table::lits`].
    pub lit_start: u32,
    /// Number of literal children.
    pub lit_len: u32,
    /// The `{name}` child node, or [`NONE`].
    pub single: u32,
    /// The leaf of a `{name...}` or trailing-slash pattern here, or [`NONE`].
    pub multi: u32,
    /// The leaf of patterns that end exactly here, or [`NONE`].
    pub end: u32,
}

/// A literal child: the decoded segment and the node it leads to.
/// Children are sorted by `(len, key)`, so a lookup compares integers and
/// touches the bytes past the eighth only for the candidate it lands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lit<'a> {
    /// The segment, percent-decoded (`"/"` for `{$}`).
    pub seg: Cow<'a, str>,
    /// The child node.
    pub node: u32,
    /// The segment's length in bytes.
    pub len: u32,
    /// Its first eight bytes, big-endian, zero-padded ([`prefix_key`]).
    pub key: u64,
}

/// The first eight bytes of a segment as one integer (zero-padded).
#[inline]
pub fn prefix_key(b: &[u8]) -> u64 {
    if let Some(first8) = b.first_chunk::<8>() {
        return u64::from_be_bytes(*first8);
    }
    let mut k = 0u64;
    for (i, &x) in b.iter().take(8).enumerate() {
        k |= u64::from(x) << (56 - 8 * i);
    }
    k
}

/// Longest percent-decoded segment looked up without allocating (bytes).
const DECODE_BUF: usize = 256;

/// Where patterns end: per-method routes and the any-method route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// First of this leaf's methods in [`Table::leaf_methods`].
    pub meth_start: u32,
    /// Number of methods.
    pub meth_len: u32,
    /// The route for any method, or [`NONE`].
    pub any: u32,
}

/// One method's route at a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafMethod<'a> {
    /// The method.
    pub method: Cow<'a, str>,
    /// The route.
    pub route: u32,
    /// [`prefix_key`] of the method, compared before its bytes.
    pub key: u64,
}

/// The root of a host's trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot<'a> {
    /// The host, lower-cased.
    pub host: Cow<'a, str>,
    /// Its root node.
    pub root: u32,
}

/// A compiled routing table. `Cow` lets the same type be `static` data
/// (emitted by `routes!`) or owned (built at run time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<'a> {
    /// Host-specific tries, sorted by host.
    pub hosts: Cow<'a, [HostRoot<'a>]>,
    /// Root of the trie of patterns without a host, or [`NONE`].
    pub root: u32,
    /// All nodes.
    pub nodes: Cow<'a, [Node]>,
    /// All literal children, grouped by node and sorted within a node.
    pub lits: Cow<'a, [Lit<'a>]>,
    /// All leaves.
    pub leaves: Cow<'a, [Leaf]>,
    /// All leaf methods, grouped by leaf.
    pub leaf_methods: Cow<'a, [LeafMethod<'a>]>,
    /// The routes, in the order they were given.
    pub routes: Cow<'a, [RouteInfo<'a>]>,
}

/// The next segment of the path being matched.
struct Next<'p> {
    /// The segment (`"/"` for a trailing slash).
    seg: &'p str,
    /// What follows it (`""` or starting with `/`).
    after: &'p str,
    /// Whether a virtual trailing slash is still to come.
    tail: bool,
}

/// Splits the next segment off `rest` (`""` or starting with `/`), with a
/// virtual trailing slash when `tail` is set. A trailing `/` is the segment `"/"`.
#[inline]
fn next_segment(rest: &str, tail: bool) -> Option<Next<'_>> {
    let slash = |tail| Next {
        seg: "/",
        after: "",
        tail,
    };
    if rest.is_empty() {
        return tail.then(|| slash(false));
    }
    // `rest` starts with '/', so one byte means it is exactly "/".
    if rest.len() == 1 {
        return Some(slash(tail));
    }
    // Segments are short: a plain loop beats a memchr call here.
    let body = &rest.as_bytes()[1..];
    let end = body
        .iter()
        .position(|&b| b == b'/')
        .map_or(rest.len(), |i| i + 1);
    Some(Next {
        seg: &rest[1..end],
        after: &rest[end..],
        tail,
    })
}

/// [`prefix_key`] of the segment `path[start..start + len]` (which must lie
/// inside `path`) with one 8-byte load: from the segment's start (masked)
/// when the path has the bytes, else the 8 bytes ending at the segment (shifted).
#[inline]
fn segment_key(path: &[u8], start: usize, len: usize) -> u64 {
    let load = |at: usize| {
        path.get(at..at + 8)
            .and_then(|c| c.try_into().ok())
            .map(u64::from_be_bytes)
    };
    if len == 0 {
        return 0;
    }
    let drop_bits = 8 * (8 - len.min(8)) as u32;
    if let Some(word) = load(start) {
        // Keep the segment's bytes, zero the rest (no-op for 8 or more).
        return word.checked_shr(drop_bits).map_or(0, |w| w << drop_bits);
    }
    match (start + len).checked_sub(8).and_then(load) {
        Some(word) => word << drop_bits,
        None => prefix_key(path.get(start..start + len).unwrap_or(&[])),
    }
}

/// Looks up a decoded segment with key `want` among sorted literal children.
#[inline]
fn find_decoded(lits: &[Lit<'_>], seg: &[u8], key: u64) -> Option<u32> {
    let want = (seg.len() as u32, key);
    // Most nodes have a few children: a scan beats a binary search there.
    let first = if lits.len() <= 8 {
        lits.iter().position(|l| (l.len, l.key) == want)?
    } else {
        lits.partition_point(|l| (l.len, l.key) < want)
    };
    lits[first..]
        .iter()
        .take_while(|l| (l.len, l.key) == want)
        .find(|l| seg.len() <= 8 || l.seg.as_bytes()[8..] == seg[8..])
        .map(|l| l.node)
}

/// A request method with its [`prefix_key`], computed once per lookup.
struct Method<'m> {
    name: &'m str,
    key: u64,
}

impl<'m> Method<'m> {
    fn new(name: &'m str) -> Self {
        Method {
            name,
            key: prefix_key(name.as_bytes()),
        }
    }

    #[inline]
    fn is(&self, m: &LeafMethod<'_>) -> bool {
        m.key == self.key
            && m.method.len() == self.name.len()
            && (self.name.len() <= 8 || m.method == self.name)
    }
}

/// The table's arrays as plain slices, taken once per lookup, and the
/// request being matched.
struct Walk<'t, 'd, 'r> {
    nodes: &'t [Node],
    lits: &'t [Lit<'d>],
    leaves: &'t [Leaf],
    leaf_methods: &'t [LeafMethod<'d>],
    routes: &'t [RouteInfo<'d>],
    path: &'r str,
    /// The path holds a `%` somewhere: segments may need decoding.
    encoded: bool,
    method: Method<'r>,
    /// The walk got to the path's end at some node, or to a `{name...}`.
    reached: Cell<bool>,
}

impl Walk<'_, '_, '_> {
    fn pick(&self, leaf: u32) -> Option<u32> {
        let l = self.leaves.get(leaf as usize)?;
        let methods =
            &self.leaf_methods[l.meth_start as usize..(l.meth_start + l.meth_len) as usize];
        if let Some(m) = methods.iter().find(|m| self.method.is(m)) {
            return Some(m.route);
        }
        if self.method.name == "HEAD" {
            let get = Method::new("GET");
            if let Some(m) = methods.iter().find(|m| get.is(m)) {
                return Some(m.route);
            }
        }
        (l.any != NONE).then_some(l.any)
    }

    fn find_lit(&self, node: &Node, seg: &str) -> Option<u32> {
        let lits = &self.lits[node.lit_start as usize..(node.lit_start + node.lit_len) as usize];
        let bytes = seg.as_bytes();
        if !self.encoded || !bytes.contains(&b'%') {
            let key = match bytes {
                // Includes the virtual trailing slash, which is not inside the path.
                [one] => u64::from(*one) << 56,
                _ => {
                    let start = seg.as_ptr() as usize - self.path.as_ptr() as usize;
                    segment_key(self.path.as_bytes(), start, bytes.len())
                }
            };
            return find_decoded(lits, bytes, key);
        }
        let mut buf = [0u8; DECODE_BUF];
        let mut n = 0;
        for b in crate::DecodedBytes::new(bytes) {
            if n == DECODE_BUF {
                // Longer than any literal we expect: compare one by one.
                return lits
                    .iter()
                    .find(|l| crate::DecodedBytes::new(bytes).eq(l.seg.bytes()))
                    .map(|l| l.node);
            }
            buf[n] = b;
            n += 1;
        }
        find_decoded(lits, &buf[..n], prefix_key(&buf[..n]))
    }

    /// Depth-first: literal, then `{name}`, then `{name...}`. Recurses only
    /// where a later alternative exists; a lone child is followed in the loop.
    fn walk(&self, mut n: u32, mut rest: &str, mut tail: bool, params: &mut Params) -> Option<u32> {
        let mark = params.len();
        let found = loop {
            let Some(node) = self.nodes.get(n as usize) else {
                break None;
            };
            let Some(next) = next_segment(rest, tail) else {
                self.reached.set(true);
                break self.pick(node.end);
            };
            let seg = next.seg;
            let single_ok = node.single != NONE && seg != "/" && !seg.is_empty();
            if node.lit_len > 0 {
                if let Some(child) = self.find_lit(node, seg) {
                    if !single_ok && node.multi == NONE {
                        (n, rest, tail) = (child, next.after, next.tail);
                        continue;
                    }
                    if let Some(r) = self.walk(child, next.after, next.tail, params) {
                        break Some(r);
                    }
                }
            }
            if single_ok {
                let start = seg.as_ptr() as usize - self.path.as_ptr() as usize;
                let before = params.len();
                if params.push(start, start + seg.len()) {
                    if node.multi == NONE {
                        (n, rest, tail) = (node.single, next.after, next.tail);
                        continue;
                    }
                    if let Some(r) = self.walk(node.single, next.after, next.tail, params) {
                        break Some(r);
                    }
                    params.truncate(before);
                }
            }
            if node.multi != NONE {
                self.reached.set(true);
            }
            let Some(r) = self.pick(node.multi) else {
                break None;
            };
            if self.routes[r as usize].multi_named {
                // The rest after its leading slash; empty when only the virtual slash is left.
                let pos = rest.as_ptr() as usize - self.path.as_ptr() as usize;
                if !params.push((pos + 1).min(pos + rest.len()), pos + rest.len()) {
                    break None;
                }
            }
            break Some(r);
        };
        if found.is_none() {
            params.truncate(mark);
        }
        found
    }

    fn collect_methods(&self, n: u32, rest: &str, out: &mut Vec<String>, any: &mut bool) {
        let Some(node) = self.nodes.get(n as usize) else {
            return;
        };
        let mut take = |leaf: u32| {
            if let Some(l) = self.leaves.get(leaf as usize) {
                *any |= l.any != NONE;
                let ms =
                    &self.leaf_methods[l.meth_start as usize..(l.meth_start + l.meth_len) as usize];
                out.extend(ms.iter().map(|m| m.method.to_string()));
            }
        };
        let Some(Next { seg, after, .. }) = next_segment(rest, false) else {
            take(node.end);
            return;
        };
        take(node.multi);
        if let Some(child) = self.find_lit(node, seg) {
            self.collect_methods(child, after, out, any);
        }
        if node.single != NONE && seg != "/" && !seg.is_empty() {
            self.collect_methods(node.single, after, out, any);
        }
    }
}

impl<'d> Table<'d> {
    fn walker<'s, 'r>(&'s self, method: &'r str, path: &'r str) -> Walk<'s, 'd, 'r> {
        Walk {
            nodes: &self.nodes,
            lits: &self.lits,
            leaves: &self.leaves,
            leaf_methods: &self.leaf_methods,
            routes: &self.routes,
            path,
            encoded: crate::find_byte(b'%', path.as_bytes()).is_some(),
            method: Method::new(method),
            reached: Cell::new(false),
        }
    }

    fn roots(&self, host: Option<&str>) -> impl Iterator<Item = u32> + '_ {
        let host_root = host.and_then(|h| {
            self.hosts
                .iter()
                .find(|r| r.host.eq_ignore_ascii_case(h))
                .map(|r| r.root)
        });
        host_root
            .into_iter()
            .chain((self.root != NONE).then_some(self.root))
    }
}

impl Table<'_> {
    /// The lookup behind `find` and `find_reaching`: the route found, and
    /// whether the walk reached a place where some pattern ends.
    fn search(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        tail: bool,
        params: &mut Params,
    ) -> (Option<u32>, bool) {
        if path.len() > crate::MAX_PATH {
            return (None, false);
        }
        let w = self.walker(method, path);
        let found = self.roots(host).find_map(|root| {
            params.clear();
            w.walk(root, path, tail, params)
        });
        (found, w.reached.get())
    }
}

impl Matcher for Table<'_> {
    fn find(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        tail: bool,
        params: &mut Params,
    ) -> Option<u32> {
        self.search(host, method, path, tail, params).0
    }

    fn find_reaching(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        params: &mut Params,
    ) -> (Option<u32>, bool) {
        self.search(host, method, path, false, params)
    }

    fn methods_for(&self, host: Option<&str>, path: &str) -> (Vec<String>, bool) {
        let (mut out, mut any) = (Vec::new(), false);
        if path.len() > crate::MAX_PATH {
            return (out, any);
        }
        let w = self.walker("", path);
        for root in self.roots(host) {
            w.collect_methods(root, path, &mut out, &mut any);
        }
        (out, any)
    }

    fn shape(&self, route: u32) -> (u32, bool) {
        self.routes[route as usize].shape()
    }
}
