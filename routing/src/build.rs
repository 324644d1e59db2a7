//! Building a [`Table`] at run time (and, in the macro, at compile time):
//! Go's registration-time checks (wildcard count, duplicates, conflicts),
//! then a tree of the patterns flattened into the table's arrays.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::pattern::{Pattern, Segment};
use crate::table::{prefix_key, HostRoot, Leaf, LeafMethod, Lit, Node, Table, NONE};
use crate::{RouteInfo, MAX_PARAMS};

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
    (0..patterns.len()).try_for_each(|i| check_new(&patterns[..i], &patterns[i]))
}

/// Whether `new` may join `existing`: not too many wildcards, and no
/// duplicate of or conflict with any of them.
pub fn check_new(existing: &[Pattern], new: &Pattern) -> Result<(), BuildError> {
    if new.param_names().count() > MAX_PARAMS {
        return Err(BuildError::TooManyParams(new.text.clone()));
    }
    let Some(old) = existing.iter().find(|old| old.conflicts_with(new)) else {
        return Ok(());
    };
    let (first, second) = (old.text.clone(), new.text.clone());
    if old.compare(new) == crate::pattern::Relation::Equivalent {
        return Err(BuildError::Duplicate { first, second });
    }
    let (method, path) = old.common_request(new);
    Err(BuildError::Conflict {
        first,
        second,
        method,
        path,
    })
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
                key: prefix_key(method.as_bytes()),
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
        let mut children: Vec<Lit<'static>> = n
            .lits
            .into_iter()
            .map(|(seg, child)| Lit {
                node: self.node(child),
                len: seg.len() as u32,
                key: prefix_key(seg.as_bytes()),
                seg: Cow::Owned(seg),
            })
            .collect();
        children.sort_by(|a, b| (a.len, a.key, &a.seg).cmp(&(b.len, b.key, &b.seg)));
        let single = n.single.map_or(NONE, |s| self.node(*s));
        let lit_start = self.lits.len() as u32;
        self.lits.extend(children);
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
