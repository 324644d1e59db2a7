//! Shared by the static-file tests: a fixture directory, a server running
//! the binary's app (routes + static fallback) configured from real flags,
//! and a client that returns one response's head and body.
#![allow(dead_code, unused_imports)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use edgeshard::config::Flags;
use edgeshard::Config;

pub use crate::common::{normalize, read_response, read_to_close};

/// Modification time given to fixture files: RFC 9110's example date.
pub const MTIME: u64 = 784_111_777;
/// `MTIME` as an HTTP-date.
pub const MTIME_TEXT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// A directory under the system temp dir, removed on drop.
pub struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("edgeshard-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Fixture {
            dir: dir.canonicalize().unwrap(),
        }
    }

    /// Writes a file (creating parent directories) with mtime [`MTIME`].
    pub fn file(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        set_mtime(&path, MTIME);
        path
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// The strong ETag edgeshard derives for a file: inode, size, mtime.
pub fn etag_of(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    format!(
        "\"{:x}-{:x}-{:x}.{:x}\"",
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    )
}

/// The server the static tests run: the binary's app (routes, then static
/// files) on one shard at an ephemeral loopback port.
pub use crate::common::TestServer as Server;

/// The binary's configuration from these flags, on one shard at an
/// ephemeral loopback port, without the security headers (these tests are
/// about what the app answers; tests/it/middleware.rs checks the headers).
pub fn config_from(flags: &[&str]) -> Config {
    let mut argv = vec![
        "edgeshard",
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "1",
        "--security-headers=false",
    ];
    argv.extend_from_slice(flags);
    Config::from_flags(Flags::parse_from(argv)).expect("valid flags")
}

impl Server {
    /// The binary's app with these command-line flags.
    pub fn with_flags(flags: &[&str]) -> Server {
        Server::app(config_from(flags))
    }

    /// The binary's app with `config`.
    pub fn app(config: Config) -> Server {
        Server::with_handler(config, edgeshard::builtin::app)
    }

    /// Sends `GET path` with extra header lines on a new connection;
    /// returns the normalized head and the raw body.
    pub fn get(&self, path: &str, headers: &str) -> (String, Vec<u8>) {
        self.request("GET", path, headers)
    }

    pub fn request(&self, method: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
        let mut s = self.connect();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").unwrap();
        split(&read_response(&mut s))
    }

    /// `file_opens` summed over the shards, from `/api/stats`.
    pub fn file_opens(&self) -> u64 {
        let (_, body) = self.get("/api/stats", "");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["file_opens"].as_u64().unwrap())
            .sum()
    }
}

/// Splits a raw response into its normalized head and its body.
pub fn split(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    (normalize(&raw[..end]), raw[end..].to_vec())
}

/// The value of a header in a normalized head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
