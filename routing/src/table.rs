//! The routing table as flat arrays: what `routes!` emits as `static` data
//! at compile time, and what [`build`] returns at run time for tests.
//!
//! A node holds its literal children (sorted, binary-searched), at most one
//! `{name}` child, at most one `{name...}`/trailing-slash leaf and the leaf
//! for paths that end exactly at it. Lookup is a depth-first walk trying a
//! literal, then `{name}`, then `{name...}` at each segment, and at a leaf
//! the request's method, then GET for HEAD, then any method. For route sets
//! without conflicts the first leaf found is the most specific pattern, as
//! in Go's ServeMux. Nothing is allocated.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::pattern::{Pattern, Segment};
use crate::{Matcher, Params, RouteInfo, MAX_PARAMS};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lit<'a> {
    /// The segment, percent-decoded (`"/"` for `{$}`).
    pub seg: Cow<'a, str>,
    /// The child node.
    pub node: u32,
}

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

/// Why a set of patterns cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// Two patterns are the same.
    Duplicate {
        /// The first pattern.
        first: String,
        /// The second pattern.
        second: String,
    },
    /// Two patterns overlap and neither is more specific.
    Conflict {
        /// The first pattern.
        first: String,
        /// The second pattern.
        second: String,
        /// A request both match: method.
        method: String,
        /// A request both match: path.
        path: String,
    },
    /// A pattern has more wildcards than a lookup can hold.
    TooManyParams(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Duplicate { first, second } => {
                write!(f, "route {second:?} duplicates route {first:?}")
            }
            BuildError::Conflict {
                first,
                second,
                method,
                path,
            } => write!(
                f,
                "route {second:?} conflicts with route {first:?}: both match {method} {path} and neither is more specific"
            ),
            BuildError::TooManyParams(p) => {
                write!(f, "route {p:?} has more than {MAX_PARAMS} wildcards")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Checks every pair of patterns (Go's registration-time check).
pub fn check_conflicts(patterns: &[Pattern]) -> Result<(), BuildError> {
    for (i, b) in patterns.iter().enumerate() {
        if b.param_names().count() > MAX_PARAMS {
            return Err(BuildError::TooManyParams(b.text.clone()));
        }
        for a in &patterns[..i] {
            if !a.conflicts_with(b) {
                continue;
            }
            if a.compare(b) == crate::pattern::Relation::Equivalent {
                return Err(BuildError::Duplicate {
                    first: a.text.clone(),
                    second: b.text.clone(),
                });
            }
            let (method, path) = a.common_request(b);
            return Err(BuildError::Conflict {
                first: a.text.clone(),
                second: b.text.clone(),
                method,
                path,
            });
        }
    }
    Ok(())
}

#[derive(Default)]
struct TreeLeaf {
    methods: BTreeMap<String, u32>,
    any: Option<u32>,
}

#[derive(Default)]
struct TreeNode {
    lits: BTreeMap<String, TreeNode>,
    single: Option<Box<TreeNode>>,
    multi: Option<TreeLeaf>,
    end: Option<TreeLeaf>,
}

impl TreeNode {
    fn insert(&mut self, segs: &[Segment], method: Option<&str>, route: u32) {
        let leaf = match segs.first() {
            None => self.end.get_or_insert_with(TreeLeaf::default),
            Some(Segment::Multi(_)) => self.multi.get_or_insert_with(TreeLeaf::default),
            Some(Segment::Lit(s)) => {
                return self
                    .lits
                    .entry(s.clone())
                    .or_default()
                    .insert(&segs[1..], method, route)
            }
            Some(Segment::Wild(_)) => {
                return self.single.get_or_insert_with(Box::default).insert(
                    &segs[1..],
                    method,
                    route,
                )
            }
        };
        match method {
            Some(m) => {
                leaf.methods.insert(m.to_string(), route);
            }
            None => leaf.any = Some(route),
        }
    }
}

struct Flattener {
    nodes: Vec<Node>,
    lits: Vec<Lit<'static>>,
    leaves: Vec<Leaf>,
    leaf_methods: Vec<LeafMethod<'static>>,
}

impl Flattener {
    fn leaf(&mut self, l: Option<TreeLeaf>) -> u32 {
        let Some(l) = l else { return NONE };
        let meth_start = self.leaf_methods.len() as u32;
        for (method, route) in l.methods {
            self.leaf_methods.push(LeafMethod {
                method: Cow::Owned(method),
                route,
            });
        }
        self.leaves.push(Leaf {
            meth_start,
            meth_len: self.leaf_methods.len() as u32 - meth_start,
            any: l.any.unwrap_or(NONE),
        });
        self.leaves.len() as u32 - 1
    }

    fn node(&mut self, n: TreeNode) -> u32 {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            lit_start: 0,
            lit_len: 0,
            single: NONE,
            multi: NONE,
            end: NONE,
        });
        let multi = self.leaf(n.multi);
        let end = self.leaf(n.end);
        // Children first, then this node's literal run, so the run is contiguous.
        let children: Vec<(String, u32)> = n
            .lits
            .into_iter()
            .map(|(seg, child)| (seg, self.node(child)))
            .collect();
        let single = n.single.map_or(NONE, |s| self.node(*s));
        let lit_start = self.lits.len() as u32;
        for (seg, node) in children {
            self.lits.push(Lit {
                seg: Cow::Owned(seg),
                node,
            });
        }
        self.nodes[idx] = Node {
            lit_start,
            lit_len: self.lits.len() as u32 - lit_start,
            single,
            multi,
            end,
        };
        idx as u32
    }
}

/// Builds the table for `routes` (pattern, handler name), after checking
/// them for conflicts.
pub fn build(routes: &[(Pattern, String)]) -> Result<Table<'static>, BuildError> {
    let patterns: Vec<Pattern> = routes.iter().map(|(p, _)| p.clone()).collect();
    check_conflicts(&patterns)?;
    let mut default: Option<TreeNode> = None;
    let mut hosts: BTreeMap<String, TreeNode> = BTreeMap::new();
    for (i, p) in patterns.iter().enumerate() {
        let tree = match &p.host {
            Some(h) => hosts.entry(h.clone()).or_default(),
            None => default.get_or_insert_with(TreeNode::default),
        };
        tree.insert(&p.segments, p.method.as_deref(), i as u32);
    }
    let mut f = Flattener {
        nodes: Vec::new(),
        lits: Vec::new(),
        leaves: Vec::new(),
        leaf_methods: Vec::new(),
    };
    let root = default.map_or(NONE, |t| f.node(t));
    let host_roots: Vec<HostRoot<'static>> = hosts
        .into_iter()
        .map(|(host, t)| HostRoot {
            host: Cow::Owned(host),
            root: f.node(t),
        })
        .collect();
    let infos = routes
        .iter()
        .map(|(p, handler)| RouteInfo::from_pattern(p, handler))
        .collect();
    Ok(Table {
        hosts: Cow::Owned(host_roots),
        root,
        nodes: Cow::Owned(f.nodes),
        lits: Cow::Owned(f.lits),
        leaves: Cow::Owned(f.leaves),
        leaf_methods: Cow::Owned(f.leaf_methods),
        routes: Cow::Owned(infos),
    })
}

/// Splits the next segment off `rest` (`""` or starting with `/`), with a
/// virtual trailing slash when `tail` is set. A trailing `/` is the segment `"/"`.
#[inline]
fn next_segment(rest: &str, tail: bool) -> Option<(&str, &str, bool)> {
    if rest.is_empty() {
        return tail.then_some(("/", "", false));
    }
    if rest == "/" {
        return Some(("/", "", tail));
    }
    let body = &rest[1..];
    let end = body.find('/').unwrap_or(body.len());
    Some((&body[..end], &body[end..], tail))
}

/// Compares a request segment (maybe percent-encoded) with a decoded literal.
#[inline]
fn seg_cmp(seg: &str, lit: &str) -> std::cmp::Ordering {
    if !seg.as_bytes().contains(&b'%') {
        return seg.as_bytes().cmp(lit.as_bytes());
    }
    let mut decoded = crate::DecodedBytes::new(seg.as_bytes());
    let mut lit = lit.bytes();
    loop {
        match (decoded.next(), lit.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(a), Some(b)) if a != b => return a.cmp(&b),
            _ => {}
        }
    }
}

impl Table<'_> {
    fn pick(&self, leaf: u32, method: &str) -> Option<u32> {
        let l = self.leaves.get(leaf as usize)?;
        let methods =
            &self.leaf_methods[l.meth_start as usize..(l.meth_start + l.meth_len) as usize];
        if let Some(m) = methods.iter().find(|m| m.method == method) {
            return Some(m.route);
        }
        if method == "HEAD" {
            if let Some(m) = methods.iter().find(|m| m.method == "GET") {
                return Some(m.route);
            }
        }
        (l.any != NONE).then_some(l.any)
    }

    fn find_lit(&self, node: &Node, seg: &str) -> Option<u32> {
        let lits = &self.lits[node.lit_start as usize..(node.lit_start + node.lit_len) as usize];
        lits.binary_search_by(|l| seg_cmp(seg, &l.seg).reverse())
            .ok()
            .map(|i| lits[i].node)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        n: u32,
        base: usize,
        rest: &str,
        tail: bool,
        method: &str,
        params: &mut Params,
    ) -> Option<u32> {
        let node = self.nodes.get(n as usize)?;
        let Some((seg, after, tail)) = next_segment(rest, tail) else {
            return self.pick(node.end, method);
        };
        if node.lit_len > 0 {
            if let Some(child) = self.find_lit(node, seg) {
                if let Some(r) = self.walk(child, base, after, tail, method, params) {
                    return Some(r);
                }
            }
        }
        if node.single != NONE && seg != "/" && !seg.is_empty() {
            let start = seg.as_ptr() as usize - base;
            if params.push(start, start + seg.len()) {
                if let Some(r) = self.walk(node.single, base, after, tail, method, params) {
                    return Some(r);
                }
                params.pop();
            }
        }
        let r = self.pick(node.multi, method)?;
        if self.routes[r as usize].multi_named {
            // The rest after its leading slash; empty when only the virtual slash is left.
            let pos = rest.as_ptr() as usize - base;
            params.push((pos + 1).min(pos + rest.len()), pos + rest.len());
        }
        Some(r)
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
        let Some((seg, after, _)) = next_segment(rest, false) else {
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

impl Matcher for Table<'_> {
    fn find(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        tail: bool,
        params: &mut Params,
    ) -> Option<u32> {
        let base = path.as_ptr() as usize;
        self.roots(host).find_map(|root| {
            params.clear();
            self.walk(root, base, path, tail, method, params)
        })
    }

    fn methods_for(&self, host: Option<&str>, path: &str) -> (Vec<String>, bool) {
        let (mut out, mut any) = (Vec::new(), false);
        for root in self.roots(host) {
            self.collect_methods(root, path, &mut out, &mut any);
        }
        (out, any)
    }

    fn shape(&self, route: u32) -> (u32, bool) {
        let r = &self.routes[route as usize];
        (r.segments, r.ends_in_multi)
    }
}
