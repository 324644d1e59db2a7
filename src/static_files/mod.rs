//! Static files: mounts (a URL prefix → a directory, or the embedded
//! site), path safety, the per-shard file cache, conditionals, ranges,
//! precompressed variants and directory handling. Bodies leave through
//! [`Body::File`] (sendfile) or, for small and embedded files, from memory.
//!
//! The handler is meant as a router's fallback: compiled routes win, then
//! the longest matching mount, then 404.

mod cache;
mod cond;
mod embedded;
mod listing;
mod path;
mod range;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::handler::{Handler, Request};
use crate::http::{coding, Method, RequestHead, StatusCode};
use crate::metrics::Metrics;
use crate::response::{Body, FileBody, FilePart, IntoResponse, Response};
pub use crate::sys::Resolver;
use cache::{Content, DirSource, Entry, Kind, Rep};
use cond::{Outcome, Validators};
use path::{decode_path, is_hidden, PathError};
use range::Ranges;

/// How clients may cache what a mount serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// `Cache-Control: no-cache`: store, but revalidate before each use
    /// (a 304 when unchanged). The default.
    Revalidate,
    /// `Cache-Control: public, max-age=31536000, immutable`: for
    /// fingerprinted assets whose names change when their content does.
    Immutable,
}

impl CachePolicy {
    /// The `Cache-Control` value.
    pub fn header_value(self) -> &'static str {
        match self {
            CachePolicy::Revalidate => "no-cache",
            CachePolicy::Immutable => "public, max-age=31536000, immutable",
        }
    }
}

/// A directory served under a URL prefix, opened.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// URL prefix, starting and ending with `/`.
    pub prefix: String,
    /// The directory as given.
    pub dir: PathBuf,
    /// Its canonical path (for the path-walk fallback and messages).
    pub real_dir: PathBuf,
    /// The directory, opened once at start and shared by the shards.
    pub fd: Arc<OwnedFd>,
    /// Cache-Control policy.
    pub policy: CachePolicy,
    /// List directories without an `index.html` (`None`: as
    /// [`StaticConfig::autoindex`] says).
    pub autoindex: Option<bool>,
}

impl MountConfig {
    /// Opens `dir` to serve under `prefix` (which starts and ends with `/`).
    pub fn open(prefix: String, dir: PathBuf, policy: CachePolicy) -> std::io::Result<MountConfig> {
        let real_dir = std::fs::canonicalize(&dir)?;
        let fd = crate::sys::open_dir(&real_dir)?;
        Ok(MountConfig {
            prefix,
            dir,
            real_dir,
            fd: Arc::new(fd),
            policy,
            autoindex: None,
        })
    }
}

/// Static-file settings shared by every shard, with the mounts' directories open.
#[derive(Debug, Clone)]
pub struct StaticConfig {
    /// Directory mounts; empty means the embedded demo site at `/`.
    pub mounts: Vec<MountConfig>,
    /// How files are opened beneath a mount.
    pub resolver: Resolver,
    /// List directories without an `index.html`.
    pub autoindex: bool,
    /// Serve dotfiles (names starting with `.`).
    pub dotfiles: bool,
    /// Files up to this size are kept in memory by the cache (bytes);
    /// larger ones are sent with sendfile. 0: always sendfile.
    pub inline_max: u64,
    /// Most cached lookups per mount and shard.
    pub cache_entries: usize,
}

/// Default [`StaticConfig::inline_max`] (bytes): a file this small costs
/// less to copy from memory behind its head than a second syscall.
pub const DEFAULT_INLINE_MAX: u64 = 16 * 1024;
/// Default [`StaticConfig::cache_entries`]: with 16 KiB inline files, at
/// most 64 MiB per mount and shard, and room for a large site's paths.
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;
/// Most directory entries a listing shows.
const LISTING_MAX: usize = 10_000;

impl Default for StaticConfig {
    fn default() -> Self {
        StaticConfig {
            mounts: Vec::new(),
            resolver: Resolver::Openat2,
            autoindex: false,
            dotfiles: false,
            inline_max: DEFAULT_INLINE_MAX,
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }
}

impl StaticConfig {
    /// How this kernel opens files beneath a mount: probed once, on the
    /// first mount's directory (openat2 unless the kernel lacks it).
    pub fn detect_resolver(mounts: &[MountConfig]) -> Resolver {
        match mounts.first() {
            Some(m) => crate::sys::detect_resolver(m.fd.as_fd()),
            None => Resolver::Openat2,
        }
    }
}

enum Source {
    Dir(DirSource),
    Embedded {
        entries: HashMap<&'static [u8], Rc<Entry>>,
        missing: Rc<Entry>,
    },
}

struct Mount {
    /// Decoded prefix, starting and ending with `/`.
    prefix: Box<[u8]>,
    source: Source,
    /// List directories without an `index.html`.
    autoindex: bool,
}

/// The static-file handler for one shard.
pub struct StaticFiles {
    mounts: Vec<Mount>,
    dotfiles: bool,
    /// Counts the file-system opens (`/api/stats`'s `file_opens`).
    metrics: Rc<Metrics>,
    boundary_seed: std::cell::Cell<u64>,
}

impl std::fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticFiles")
            .field("mounts", &self.mounts.len())
            .finish()
    }
}

impl StaticFiles {
    /// The handler for `config`'s mounts, or the embedded site when there
    /// are none, counting its file-system opens in `metrics` (the shard's).
    pub fn new(config: &StaticConfig, metrics: Rc<Metrics>) -> StaticFiles {
        let mut mounts: Vec<Mount> = config
            .mounts
            .iter()
            .map(|m| Mount {
                prefix: m.prefix.as_bytes().into(),
                autoindex: m.autoindex.unwrap_or(config.autoindex),
                source: Source::Dir(DirSource::new(
                    m.fd.clone(),
                    m.real_dir.clone(),
                    config.resolver,
                    m.policy,
                    config.inline_max,
                    config.cache_entries,
                )),
            })
            .collect();
        if mounts.is_empty() {
            mounts.push(Mount {
                prefix: (*b"/").into(),
                source: Source::Embedded {
                    entries: embedded::entries(),
                    missing: Entry::permanent(Kind::Missing),
                },
                autoindex: false,
            });
        }
        // Longest prefix first.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        let seed = metrics.shard() as u64 ^ 0x9e37_79b9_7f4a_7c15;
        StaticFiles {
            mounts,
            dotfiles: config.dotfiles,
            metrics,
            boundary_seed: std::cell::Cell::new(seed ^ crate::sys::coarse_millis()),
        }
    }

    /// Answers one request.
    pub fn serve(&self, head: &RequestHead) -> Response {
        let raw = head.path();
        let decoded = match decode_path(raw) {
            Ok(d) => d,
            Err(PathError::BadRequest(why)) => {
                return Response::error(StatusCode::BAD_REQUEST, why)
            }
            Err(PathError::NotFound) => return not_found(),
        };
        // `/assets` for the mount `/assets/`: the mount's directory.
        if self
            .mounts
            .iter()
            .any(|m| m.prefix.len() > 1 && *decoded == m.prefix[..m.prefix.len() - 1])
        {
            return redirect_to(head, "/");
        }
        let Some(mount) = self.mounts.iter().find(|m| decoded.starts_with(&m.prefix)) else {
            return not_found();
        };
        if !matches!(head.method(), Method::Get | Method::Head) {
            return Response::method_not_allowed("GET, HEAD");
        }
        let rel = &decoded[mount.prefix.len()..];
        if !self.dotfiles && is_hidden(rel) {
            return not_found();
        }
        if rel.is_empty() || rel.ends_with(b"/") {
            let dir = rel.strip_suffix(b"/").unwrap_or(rel);
            self.serve_dir(head, mount, dir)
        } else {
            let entry = self.lookup(mount, rel);
            match &entry.kind {
                Kind::Dir => redirect_to(head, "/"),
                // `/dir/index.html` → `/dir/` (as sent: an encoded spelling
                // such as `index%2ehtml` is just served).
                Kind::File(_) if head.path().ends_with("/index.html") => {
                    let path = head.path();
                    let dir = &path[..path.len() - "index.html".len()];
                    redirect_with_query(head, dir.to_string())
                }
                _ => self.serve_entry(head, &entry),
            }
        }
    }

    fn lookup(&self, mount: &Mount, rel: &[u8]) -> Rc<Entry> {
        match &mount.source {
            Source::Dir(d) => d.lookup(rel, &self.metrics),
            Source::Embedded { entries, missing } => entries.get(rel).unwrap_or(missing).clone(),
        }
    }

    fn serve_dir(&self, head: &RequestHead, mount: &Mount, dir: &[u8]) -> Response {
        let entry = self.lookup(mount, dir);
        match entry.kind {
            Kind::Dir => {}
            // `/file.txt/`: not a directory.
            Kind::File(_) => return not_found(),
            _ => return self.serve_entry(head, &entry),
        }
        let mut index: smallvec::SmallVec<[u8; 256]> = smallvec::SmallVec::new();
        index.extend_from_slice(dir);
        if !dir.is_empty() {
            index.push(b'/');
        }
        index.extend_from_slice(b"index.html");
        let idx = self.lookup(mount, &index);
        match idx.kind {
            Kind::File(_) => self.serve_entry(head, &idx),
            Kind::Missing if mount.autoindex => self.listing(head, mount, dir),
            Kind::Missing => {
                Response::error(StatusCode::FORBIDDEN, "directory listing is disabled")
            }
            _ => self.serve_entry(head, &idx),
        }
    }

    fn listing(&self, head: &RequestHead, mount: &Mount, dir: &[u8]) -> Response {
        let Source::Dir(source) = &mount.source else {
            return Response::error(StatusCode::FORBIDDEN, "directory listing is disabled");
        };
        let names = source
            .open(dir, &self.metrics)
            .and_then(|fd| crate::sys::read_dir_names(std::os::fd::AsFd::as_fd(&fd), LISTING_MAX));
        match names {
            Ok(names) => {
                let html = listing::render(head.path(), names, self.dotfiles);
                Response::new(StatusCode::OK)
                    .with_body("text/html; charset=utf-8", html)
                    .with_header("Cache-Control", "no-cache")
            }
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                Response::error(StatusCode::FORBIDDEN, "directory not readable")
            }
            Err(_) => Response::error(StatusCode::INTERNAL_SERVER_ERROR, "directory read failed"),
        }
    }

    fn serve_entry(&self, head: &RequestHead, entry: &Entry) -> Response {
        let (content_type, identity, variants) = match &entry.kind {
            Kind::File(f) => (&f.content_type, &f.identity, &f.variants),
            Kind::Dir | Kind::Missing => return not_found(),
            Kind::Forbidden => return Response::error(StatusCode::FORBIDDEN, "access denied"),
            Kind::Failed => {
                return Response::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the file could not be read",
                )
            }
        };
        let available = [0, 1, 2].map(|i| variants[i].is_some());
        let rep = match coding::choose(head.header("accept-encoding"), available) {
            Some(c) => variants[c.index()].as_ref().unwrap_or(identity),
            None => identity,
        };
        let v = Validators {
            etag: &rep.etag,
            modified: rep.modified,
        };
        // One pass tells whether any precondition or range is present:
        // most requests (first loads, benchmarks) carry neither.
        let conditional = head.headers().any(|(n, _)| {
            n.len() >= 5
                && (n.as_bytes()[..3].eq_ignore_ascii_case(b"if-")
                    || n.eq_ignore_ascii_case("range"))
        });
        if !conditional {
            return whole(rep);
        }
        match cond::evaluate(head, v) {
            Outcome::Proceed => {}
            Outcome::NotModified => {
                return Response::new(StatusCode::NOT_MODIFIED)
                    .with_preformatted(rep.lines_304.clone())
            }
            Outcome::Failed => {
                return Response::error(StatusCode::PRECONDITION_FAILED, "precondition failed")
            }
        }
        let ranges = match head.header("range") {
            Some(r) if cond::if_range_holds(head, v) => range::parse(r, rep.len),
            _ => Ranges::Whole,
        };
        match ranges {
            Ranges::Whole => whole(rep),
            Ranges::Unsatisfiable => {
                Response::error(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
                    .with_header("Content-Range", format!("bytes */{}", rep.len))
                    .with_header("Accept-Ranges", "bytes")
            }
            Ranges::Some(list) if list.len() == 1 => {
                let (a, b) = list[0];
                Response::new(StatusCode::PARTIAL_CONTENT)
                    .with_preformatted(rep.lines_200.clone())
                    .with_header("Content-Range", format!("bytes {a}-{}/{}", b - 1, rep.len))
                    .with_raw_body(body_of(rep, a, b - a))
            }
            Ranges::Some(list) => self.multipart(content_type, rep, &list),
        }
    }

    /// A `multipart/byteranges` body: the file's ranges with a part header
    /// before each (RFC 9110 §14.6).
    fn multipart(&self, content_type: &Bytes, rep: &Rep, list: &[(u64, u64)]) -> Response {
        let boundary = self.next_boundary();
        let mut parts = Vec::with_capacity(list.len() * 2 + 1);
        let mut memory = Vec::new();
        for (i, &(a, b)) in list.iter().enumerate() {
            let mut h = Vec::with_capacity(128);
            if i > 0 {
                h.extend_from_slice(b"\r\n");
            }
            h.extend_from_slice(b"--");
            h.extend_from_slice(boundary.as_bytes());
            h.extend_from_slice(b"\r\nContent-Type: ");
            h.extend_from_slice(content_type);
            h.extend_from_slice(
                format!("\r\nContent-Range: bytes {a}-{}/{}\r\n\r\n", b - 1, rep.len).as_bytes(),
            );
            match &rep.content {
                Content::Memory(bytes) => {
                    memory.extend_from_slice(&h);
                    memory.extend_from_slice(&bytes[a as usize..b as usize]);
                }
                Content::File(_) => {
                    parts.push(FilePart::Bytes(Bytes::from(h)));
                    parts.push(FilePart::Range {
                        offset: a,
                        len: b - a,
                    });
                }
            }
        }
        let tail = format!("\r\n--{boundary}--\r\n");
        let mut lines =
            format!("Content-Type: multipart/byteranges; boundary={boundary}\r\n").into_bytes();
        lines.extend_from_slice(&rep.lines_200[rep.content_type_len..]);
        let resp = Response::new(StatusCode::PARTIAL_CONTENT).with_preformatted(Bytes::from(lines));
        match &rep.content {
            Content::Memory(_) => {
                memory.extend_from_slice(tail.as_bytes());
                resp.with_raw_body(Body::Full(Bytes::from(memory)))
            }
            Content::File(fd) => {
                parts.push(FilePart::Bytes(Bytes::from(tail)));
                resp.with_raw_body(Body::File(FileBody::parts(fd.clone(), parts)))
            }
        }
    }

    fn next_boundary(&self) -> String {
        // xorshift64*: boundaries need only be unlikely to occur in the file.
        let mut x = self.boundary_seed.get() | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.boundary_seed.set(x);
        format!("edgeshard-{:016x}", x.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }
}

/// `200 OK` with the whole representation.
fn whole(rep: &Rep) -> Response {
    Response::new(StatusCode::OK)
        .with_preformatted(rep.lines_200.clone())
        .with_raw_body(body_of(rep, 0, rep.len))
}

fn body_of(rep: &Rep, offset: u64, len: u64) -> Body {
    if len == 0 {
        return Body::Empty;
    }
    match &rep.content {
        Content::Memory(b) => Body::Full(b.slice(offset as usize..(offset + len) as usize)),
        Content::File(fd) => Body::File(FileBody::range(fd.clone(), offset, len)),
    }
}

impl Handler for StaticFiles {
    fn call(&self, req: Request) -> impl std::future::Future<Output = Response> {
        req.conn_key().note_route(ROUTE);
        std::future::ready(self.serve(req.head()))
    }
}

/// The route label of static files in the metrics.
pub const ROUTE: &str = "static";

#[cold]
fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Redirects to the request's path plus `suffix`, keeping the query.
#[cold]
fn redirect_to(head: &RequestHead, suffix: &str) -> Response {
    redirect_with_query(head, format!("{}{suffix}", head.path()))
}

#[cold]
fn redirect_with_query(head: &RequestHead, mut location: String) -> Response {
    if let Some(q) = head.query() {
        location.push('?');
        location.push_str(q);
    }
    Response::redirect(head.method(), location)
}
