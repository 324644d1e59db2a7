//! The demo site compiled into the binary (`site/` in the source tree):
//! what `cargo run` serves at `/` when no `--root` or `--mount` is given.
//! `build.rs` embeds each file with a content hash for its ETag and the
//! brotli, zstd and gzip variants it compressed at build time (kept only
//! when smaller), so embedded files get the same headers, conditionals,
//! ranges and content negotiation as files on disk.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

use super::cache::{content_type_for, rep_lines, Content, Entry, FileReps, Kind, Rep};
use super::CachePolicy;
use crate::http::coding::Coding;

/// One embedded file, as `build.rs` generated it.
#[derive(Debug)]
pub struct EmbeddedFile {
    /// Path beneath the site root, without a leading `/`.
    pub path: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// 64-bit FNV-1a hash of the bytes, for the ETag.
    pub hash: u64,
    /// Last modification (the source file's mtime), seconds since the epoch.
    pub modified: u64,
    /// Precompressed variants, indexed like [`Coding::ALL`].
    pub variants: [Option<&'static [u8]>; 3],
}

include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));

/// Cache entries for every embedded file and the directories that hold them.
pub fn entries() -> HashMap<&'static [u8], Rc<Entry>> {
    let mut map = HashMap::new();
    map.insert(&b""[..], Entry::permanent(Kind::Dir));
    for f in FILES {
        let vary = f.variants.iter().any(Option::is_some);
        let content_type = content_type_for(f.path.as_bytes());
        let rep = |body: &'static [u8], coding: Option<Coding>| {
            let etag = match coding {
                None => format!("\"{:016x}\"", f.hash),
                Some(c) => format!("\"{:016x}-{}\"", f.hash, c.token()),
            };
            let (lines_200, lines_304, content_type_len) = rep_lines(
                &content_type,
                f.modified,
                etag.as_bytes(),
                coding,
                CachePolicy::Revalidate,
                vary,
            );
            Rep {
                len: body.len() as u64,
                modified: f.modified,
                etag: Bytes::from(etag),
                content: Content::Memory(Bytes::from_static(body)),
                lines_304,
                lines_200,
                content_type_len,
            }
        };
        let variants = [0, 1, 2].map(|i| f.variants[i].map(|b| rep(b, Some(Coding::ALL[i]))));
        map.insert(
            f.path.as_bytes(),
            Entry::permanent(Kind::File(Box::new(FileReps {
                content_type: content_type.clone(),
                identity: rep(f.body, None),
                variants,
            }))),
        );
        let mut dir = f.path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            map.entry(parent.as_bytes())
                .or_insert_with(|| Entry::permanent(Kind::Dir));
            dir = parent;
        }
    }
    map
}
