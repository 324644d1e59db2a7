//! What a path resolves to, and the per-shard cache of it: open files,
//! their metadata, small files' bytes and preformatted header lines.
//!
//! Entries are reloaded from the file system when they are older than
//! [`REVALIDATE_MS`], so a changed file is served fresh, and a deleted one
//! stops being served, within a second. Missing paths are cached too (for
//! the same time), so a flood of 404s for one path costs one `openat2` a
//! second. The cache is bounded; when full, the least recently used half
//! is dropped.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
// Seeded per process, and several times faster than SipHash on short paths.
use foldhash::HashMap;

use super::CachePolicy;
use crate::http::coding::Coding;
use crate::http::date::format_imf_fixdate;
use crate::metrics::Metrics;
use crate::sys::{self, FileMeta, Resolver};

/// An entry older than this (milliseconds) is reloaded before use.
pub const REVALIDATE_MS: u64 = 900;

/// Where a representation's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    /// In memory: small files (read once per load) and embedded files.
    Memory(Bytes),
    /// An open file, sent with sendfile.
    File(Rc<OwnedFd>),
}

/// One representation of a file: the file itself or a precompressed variant.
#[derive(Debug)]
pub struct Rep {
    /// Length in bytes.
    pub len: u64,
    /// Last modification, seconds since the Unix epoch.
    pub modified: u64,
    /// Strong entity tag, with its quotes.
    pub etag: Bytes,
    /// The bytes.
    pub content: Content,
    /// Header lines for 304s: Last-Modified, ETag, Cache-Control, Vary.
    pub lines_304: Bytes,
    /// Header lines for 200/206: Content-Type, Content-Encoding and
    /// Accept-Ranges, then the 304's lines.
    pub lines_200: Bytes,
    /// Length of the Content-Type line that starts `lines_200`.
    pub content_type_len: usize,
}

/// What a path names.
#[derive(Debug)]
pub enum Kind {
    /// A regular file, and the precompressed variants found beside it.
    File(Box<FileReps>),
    /// A directory.
    Dir,
    /// Nothing there: 404.
    Missing,
    /// There, but not ours to serve (permissions, a symlink leading out of
    /// the root, a device or FIFO): 403.
    Forbidden,
    /// The file system failed: 500.
    Failed,
}

/// A file's representations.
#[derive(Debug)]
pub struct FileReps {
    /// `Content-Type` value, from the file's extension.
    pub content_type: Bytes,
    /// The file itself.
    pub identity: Rep,
    /// `file.br`, `file.zst`, `file.gz` where present (indexed like [`Coding::ALL`]).
    pub variants: [Option<Rep>; 3],
}

/// A cached lookup.
#[derive(Debug)]
pub struct Entry {
    /// What the path names.
    pub kind: Kind,
    /// When it was loaded ([`sys::coarse_millis`]).
    loaded: u64,
    /// The source's lookup count at its last use.
    last_used: Cell<u64>,
}

impl Entry {
    /// An entry that never goes stale (embedded files).
    pub fn permanent(kind: Kind) -> Rc<Entry> {
        Rc::new(Entry {
            kind,
            loaded: u64::MAX,
            last_used: Cell::new(0),
        })
    }
}

/// A representation's header lines: (`lines_200`, `lines_304`, length of
/// the Content-Type line that starts `lines_200`).
pub fn rep_lines(
    content_type: &[u8],
    modified: u64,
    etag: &[u8],
    coding: Option<Coding>,
    policy: CachePolicy,
    vary: bool,
) -> (Bytes, Bytes, usize) {
    let mut l304 = Vec::with_capacity(160);
    l304.extend_from_slice(b"Last-Modified: ");
    l304.extend_from_slice(&format_imf_fixdate(modified));
    l304.extend_from_slice(b"\r\nETag: ");
    l304.extend_from_slice(etag);
    l304.extend_from_slice(b"\r\nCache-Control: ");
    l304.extend_from_slice(policy.header_value().as_bytes());
    l304.extend_from_slice(b"\r\n");
    if vary {
        l304.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
    let mut l200 = Vec::with_capacity(l304.len() + 96);
    l200.extend_from_slice(b"Content-Type: ");
    l200.extend_from_slice(content_type);
    l200.extend_from_slice(b"\r\n");
    let content_type_len = l200.len();
    if let Some(c) = coding {
        l200.extend_from_slice(b"Content-Encoding: ");
        l200.extend_from_slice(c.token().as_bytes());
        l200.extend_from_slice(b"\r\n");
    }
    l200.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    l200.extend_from_slice(&l304);
    (Bytes::from(l200), Bytes::from(l304), content_type_len)
}

/// `Content-Type` for a file name, from its extension; text types get
/// `charset=utf-8`; unknown extensions are `application/octet-stream`.
pub fn content_type_for(name: &[u8]) -> Bytes {
    let ext = std::str::from_utf8(name)
        .ok()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e);
    let mime = ext.and_then(|e| mime_guess::from_ext(e).first_raw());
    let Some(mime) = mime else {
        return Bytes::from_static(b"application/octet-stream");
    };
    let texty = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if texty {
        Bytes::from(format!("{mime}; charset=utf-8"))
    } else {
        Bytes::from_static(mime.as_bytes())
    }
}

/// A mount's directory and the cache of lookups beneath it.
#[derive(Debug)]
pub struct DirSource {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
    resolver: Resolver,
    policy: CachePolicy,
    inline_max: u64,
    capacity: usize,
    entries: RefCell<HashMap<Box<[u8]>, Rc<Entry>>>,
    /// Counts lookups: an entry's `last_used` is this count at its last
    /// use, so recency has no ties (the coarse clock would have many).
    uses: Cell<u64>,
}

impl DirSource {
    /// A source for the directory `root` (open) at `root_path` (canonical).
    pub fn new(
        root: Arc<OwnedFd>,
        root_path: PathBuf,
        resolver: Resolver,
        policy: CachePolicy,
        inline_max: u64,
        capacity: usize,
    ) -> DirSource {
        DirSource {
            root,
            root_path,
            resolver,
            policy,
            inline_max,
            capacity: capacity.max(1),
            entries: RefCell::new(HashMap::default()),
            uses: Cell::new(0),
        }
    }

    /// The entry for `rel` (no leading `/`, no trailing `/`; empty for the
    /// root), from the cache if fresh.
    pub fn lookup(&self, rel: &[u8], metrics: &Metrics) -> Rc<Entry> {
        let now = sys::coarse_millis();
        let use_no = self.uses.get() + 1;
        self.uses.set(use_no);
        if let Some(e) = self.entries.borrow().get(rel) {
            if now.saturating_sub(e.loaded) < REVALIDATE_MS {
                e.last_used.set(use_no);
                metrics.count_file_cache(true);
                return e.clone();
            }
        }
        metrics.count_file_cache(false);
        let entry = Rc::new(Entry {
            kind: self.load(rel, metrics),
            loaded: now,
            last_used: Cell::new(use_no),
        });
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.capacity && !entries.contains_key(rel) {
            evict_half(&mut entries);
        }
        entries.insert(rel.into(), entry.clone());
        entry
    }

    /// Opens `rel` beneath the root (counted in `metrics`).
    pub fn open(&self, rel: &[u8], metrics: &Metrics) -> io::Result<OwnedFd> {
        metrics.count_file_open();
        sys::open_beneath(self.resolver, self.root.as_fd(), &self.root_path, rel)
    }

    fn load(&self, rel: &[u8], metrics: &Metrics) -> Kind {
        let (fd, meta) = match self.open(rel, metrics).and_then(|fd| {
            let meta = sys::file_meta(fd.as_fd())?;
            Ok((fd, meta))
        }) {
            Ok(x) => x,
            Err(e) => return kind_of_error(&e),
        };
        if meta.is_dir {
            return Kind::Dir;
        }
        if !meta.is_file {
            return Kind::Forbidden;
        }
        let already_compressed = Coding::ALL
            .iter()
            .any(|c| rel.ends_with(c.suffix().as_bytes()));
        let mut variants: [Option<(OwnedFd, FileMeta)>; 3] = [None, None, None];
        if !already_compressed {
            for c in Coding::ALL {
                let mut name = rel.to_vec();
                name.extend_from_slice(c.suffix().as_bytes());
                if let Ok(fd) = self.open(&name, metrics) {
                    if let Ok(m) = sys::file_meta(fd.as_fd()) {
                        if m.is_file {
                            variants[c.index()] = Some((fd, m));
                        }
                    }
                }
            }
        }
        let vary = variants.iter().any(Option::is_some);
        let content_type = content_type_for(rel);
        let Ok(identity) = self.rep(&content_type, fd, meta, None, vary) else {
            return Kind::Failed;
        };
        let mut reps: [Option<Rep>; 3] = [None, None, None];
        for (c, v) in Coding::ALL.into_iter().zip(variants) {
            if let Some((fd, m)) = v {
                reps[c.index()] = self.rep(&content_type, fd, m, Some(c), vary).ok();
            }
        }
        Kind::File(Box::new(FileReps {
            content_type,
            identity,
            variants: reps,
        }))
    }

    fn rep(
        &self,
        content_type: &[u8],
        fd: OwnedFd,
        meta: FileMeta,
        coding: Option<Coding>,
        vary: bool,
    ) -> io::Result<Rep> {
        let etag = Bytes::from(format!(
            "\"{:x}-{:x}-{:x}.{:x}\"",
            meta.ino, meta.size, meta.mtime, meta.mtime_nsec
        ));
        let modified = meta.mtime.max(0) as u64;
        let content = if meta.size <= self.inline_max {
            let mut buf = vec![0; meta.size as usize];
            let n = sys::pread_full(fd.as_fd(), &mut buf, 0)?;
            // Shrank between fstat and read: serve what we promised next time.
            if n != buf.len() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Content::Memory(Bytes::from(buf))
        } else {
            Content::File(Rc::new(fd))
        };
        let (lines_200, lines_304, content_type_len) =
            rep_lines(content_type, modified, &etag, coding, self.policy, vary);
        Ok(Rep {
            len: meta.size,
            modified,
            etag,
            content,
            lines_304,
            lines_200,
            content_type_len,
        })
    }
}

/// Maps an open error to what the client is told.
fn kind_of_error(e: &io::Error) -> Kind {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => Kind::Missing,
        // EXDEV: openat2 refused a path leaving the root; ELOOP: too many
        // links or a magic link; EACCES/EPERM: permissions (or the path
        // walk's own refusal).
        Some(libc::EACCES | libc::EPERM | libc::EXDEV | libc::ELOOP) => Kind::Forbidden,
        _ => Kind::Failed,
    }
}

/// Drops the least recently used half of the entries (at least one).
/// `last_used` values are distinct lookup numbers, so exactly that many go.
fn evict_half(entries: &mut HashMap<Box<[u8]>, Rc<Entry>>) {
    let drop = entries.len().div_ceil(2);
    if drop == 0 {
        return;
    }
    let mut ages: Vec<u64> = entries.values().map(|e| e.last_used.get()).collect();
    let (_, cut, _) = ages.select_nth_unstable(drop - 1);
    let cut = *cut;
    entries.retain(|_, e| e.last_used.get() > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_map_to_what_the_client_is_told() {
        let kind = |errno| kind_of_error(&io::Error::from_raw_os_error(errno));
        for errno in [libc::ENOENT, libc::ENOTDIR, libc::ENAMETOOLONG] {
            assert!(matches!(kind(errno), Kind::Missing), "{errno}");
        }
        // EXDEV is openat2's answer to a path or symlink leaving the root.
        for errno in [libc::EACCES, libc::EPERM, libc::EXDEV, libc::ELOOP] {
            assert!(matches!(kind(errno), Kind::Forbidden), "{errno}");
        }
        for errno in [libc::EIO, libc::EMFILE, libc::ENOMEM] {
            assert!(matches!(kind(errno), Kind::Failed), "{errno}");
        }
    }

    #[test]
    fn content_types() {
        for (name, want) in [
            (&b"a/index.html"[..], &b"text/html; charset=utf-8"[..]),
            (b"app.js", b"text/javascript; charset=utf-8"),
            (b"x.json", b"application/json; charset=utf-8"),
            (b"logo.svg", b"image/svg+xml; charset=utf-8"),
            (b"photo.JPG", b"image/jpeg"),
            (b"README", b"application/octet-stream"),
            (b"x.unknownext", b"application/octet-stream"),
        ] {
            assert_eq!(&content_type_for(name)[..], want, "{name:?}");
        }
    }
}
