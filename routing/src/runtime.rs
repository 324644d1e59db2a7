//! A routing trie built at run time, for routes that come from
//! configuration. Same semantics as the compiled [`Table`](crate::Table),
//! written independently (hash-map children, registration one pattern at a
//! time with Go's conflict check) so each can check the other.

use std::collections::HashMap;

use crate::build::BuildError;
use crate::pattern::{Pattern, Segment};
use crate::{Matcher, Params, RouteInfo};

#[derive(Debug, Default)]
struct Leaf {
    methods: HashMap<String, u32>,
    any: Option<u32>,
}

impl Leaf {
    fn pick(&self, method: &str) -> Option<u32> {
        self.methods
            .get(method)
            .or_else(|| {
                (method == "HEAD")
                    .then(|| self.methods.get("GET"))
                    .flatten()
            })
            .copied()
            .or(self.any)
    }
}

#[derive(Debug, Default)]
struct Node {
    lits: HashMap<String, Node>,
    single: Option<Box<Node>>,
    multi: Option<Leaf>,
    end: Option<Leaf>,
}

/// A routing trie that accepts patterns one at a time.
#[derive(Debug, Default)]
pub struct RuntimeTrie {
    default: Node,
    hosts: HashMap<String, Node>,
    patterns: Vec<Pattern>,
    routes: Vec<RouteInfo<'static>>,
}

/// Why a pattern could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertError {
    /// It does not parse.
    Pattern(crate::PatternError),
    /// It conflicts with, or duplicates, one already added.
    Build(BuildError),
}

impl std::fmt::Display for InsertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InsertError::Pattern(e) => e.fmt(f),
            InsertError::Build(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InsertError {}

impl RuntimeTrie {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pattern served by `handler`; returns its route index.
    pub fn insert(&mut self, pattern: &str, handler: &str) -> Result<u32, InsertError> {
        let p = Pattern::parse(pattern).map_err(InsertError::Pattern)?;
        crate::build::check_new(&self.patterns, &p).map_err(InsertError::Build)?;
        let index = self.patterns.len() as u32;
        let mut node = match &p.host {
            Some(h) => self.hosts.entry(h.clone()).or_default(),
            None => &mut self.default,
        };
        let mut leaf = None;
        for seg in &p.segments {
            match seg {
                Segment::Lit(s) => node = node.lits.entry(s.clone()).or_default(),
                Segment::Wild(_) => node = node.single.get_or_insert_with(Box::default),
                Segment::Multi(_) => leaf = Some(node.multi.get_or_insert_with(Leaf::default)),
            }
        }
        let leaf = match leaf {
            Some(l) => l,
            None => node.end.get_or_insert_with(Leaf::default),
        };
        match &p.method {
            Some(m) => {
                leaf.methods.insert(m.clone(), index);
            }
            None => leaf.any = Some(index),
        }
        self.routes.push(RouteInfo::from_pattern(&p, handler));
        self.patterns.push(p);
        Ok(index)
    }

    /// The routes, in insertion order.
    pub fn routes(&self) -> &[RouteInfo<'static>] {
        &self.routes
    }

    fn node_for(&self, host: Option<&str>) -> impl Iterator<Item = &Node> {
        let by_host = host.and_then(|h| self.hosts.get(&h.to_ascii_lowercase()));
        by_host.into_iter().chain(std::iter::once(&self.default))
    }
}

/// The path as (segment, start, end): `start` is just after the segment's
/// leading slash. A trailing slash is the segment `"/"`, as is the virtual
/// one that `tail` adds after the path.
fn segments(path: &str, tail: bool) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 1;
    for seg in path[1..].split('/') {
        let name = if seg.is_empty() { "/" } else { seg };
        out.push((name.to_string(), pos, pos + seg.len()));
        pos += seg.len() + 1;
    }
    if tail {
        out.push(("/".to_string(), pos, pos));
    }
    out
}

fn decoded(seg: &str) -> String {
    crate::percent::decode_lossy(seg).into_owned()
}

impl Node {
    fn find(
        &self,
        segs: &[(String, usize, usize)],
        path_len: usize,
        method: &str,
        routes: &[RouteInfo<'static>],
        caps: &mut Vec<(usize, usize)>,
    ) -> Option<u32> {
        let Some(((seg, start, end), rest)) = segs.split_first() else {
            return self.end.as_ref()?.pick(method);
        };
        // The literal "/" of `{$}` must not match an encoded slash.
        let key = if seg == "/" {
            seg.clone()
        } else {
            decoded(seg)
        };
        if let Some(child) = self.lits.get(&key) {
            if let Some(r) = child.find(rest, path_len, method, routes, caps) {
                return Some(r);
            }
        }
        if seg != "/" && !seg.is_empty() {
            if let Some(single) = &self.single {
                caps.push((*start, *end));
                if let Some(r) = single.find(rest, path_len, method, routes, caps) {
                    return Some(r);
                }
                caps.pop();
            }
        }
        let r = self.multi.as_ref()?.pick(method)?;
        if routes[r as usize].multi_named {
            // Everything after this segment's leading slash (empty at a trailing slash).
            caps.push(((*start).min(path_len), path_len));
        }
        Some(r)
    }

    fn methods(&self, segs: &[(String, usize, usize)], out: &mut Vec<String>, any: &mut bool) {
        let mut take = |leaf: &Option<Leaf>| {
            if let Some(l) = leaf {
                out.extend(l.methods.keys().cloned());
                *any |= l.any.is_some();
            }
        };
        let Some(((seg, _, _), rest)) = segs.split_first() else {
            take(&self.end);
            return;
        };
        take(&self.multi);
        let key = if seg == "/" {
            seg.clone()
        } else {
            decoded(seg)
        };
        if let Some(child) = self.lits.get(&key) {
            child.methods(rest, out, any);
        }
        if seg != "/" && !seg.is_empty() {
            if let Some(single) = &self.single {
                single.methods(rest, out, any);
            }
        }
    }
}

impl Matcher for RuntimeTrie {
    fn find(
        &self,
        host: Option<&str>,
        method: &str,
        path: &str,
        tail: bool,
        params: &mut Params,
    ) -> Option<u32> {
        if path.len() > crate::MAX_PATH {
            return None;
        }
        let segs = segments(path, tail);
        for node in self.node_for(host) {
            let mut caps = Vec::new();
            if let Some(r) = node.find(&segs, path.len(), method, &self.routes, &mut caps) {
                params.clear();
                for (s, e) in caps {
                    params.push(s, e);
                }
                return Some(r);
            }
        }
        None
    }

    fn methods_for(&self, host: Option<&str>, path: &str) -> (Vec<String>, bool) {
        let (mut out, mut any) = (Vec::new(), false);
        if path.len() > crate::MAX_PATH {
            return (out, any);
        }
        let segs = segments(path, false);
        for node in self.node_for(host) {
            node.methods(&segs, &mut out, &mut any);
        }
        (out, any)
    }

    fn shape(&self, route: u32) -> (u32, bool) {
        self.routes[route as usize].shape()
    }
}
