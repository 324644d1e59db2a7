//! Configuration in two steps: [`Args`] is the command line as written,
//! [`Config`] the validated values the server runs with.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Parser;

use crate::static_files::{CachePolicy, MountConfig, StaticConfig};

/// Default listen address: every IPv4 interface, port 8080, as a developer
/// running `cargo run` expects to reach `http://127.0.0.1:8080/`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default listen backlog (connections): deep enough to absorb a burst of
/// 4096 simultaneous connects per shard without SYN retries.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// Default connections per shard: 10 000 idle keep-alive connections cost
/// a few tens of MiB, well within an edge node's memory.
pub const DEFAULT_MAX_CONNS: usize = 10_000;
/// Default request-line limit (bytes): nginx's `large_client_header_buffers`.
pub const DEFAULT_MAX_URI: usize = 8 * 1024;
/// Default header-section limit (bytes): twice nginx's, room for big cookies.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default header count limit: more than 100 headers is an attack, not a browser.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default request-body limit (bytes): a small JSON API needs far less.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default time to receive a whole request head: nginx's `client_header_timeout` is 60 s;
/// 10 s is generous for a real client and short for a slowloris.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default total time allowed for one request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default minimum body rate (bytes/s), enforced after [`BODY_RATE_GRACE`]:
/// 1 KiB/s is slower than any real uplink and faster than a slow-body attack.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;
/// Time a body gets before its average rate is checked.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(5);
/// Default idle keep-alive timeout: nginx's `keepalive_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default time a write may make no progress before the connection closes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time in-flight requests get to finish after SIGTERM/SIGINT.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The command line as written.
#[derive(Debug, Parser)]
#[command(
    name = "edgeshard",
    version,
    about = "Thread-per-core HTTP/1.1 origin server on io_uring",
    long_about = "Thread-per-core HTTP/1.1 origin server on io_uring.\n\n\
        Sizes accept a plain byte count or a suffix (K, KiB, M, MiB, G, GiB);\n\
        durations accept ms, s, m or h (a bare number means seconds)."
)]
pub struct Args {
    /// Address to listen on (repeat for several). Every shard listens on each
    /// with SO_REUSEPORT, so the kernel spreads connections over the shards.
    #[arg(long = "listen", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: Vec<SocketAddr>,
    /// Number of shards (one executor thread pinned to one core each).
    /// Default: the number of CPUs this process may run on.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Listen backlog of each shard's socket.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG)]
    pub backlog: u32,
    /// Open connections per shard; at the cap a shard stops accepting until one closes.
    #[arg(long = "max-conns", value_name = "N", default_value_t = DEFAULT_MAX_CONNS)]
    pub max_conns: usize,
    /// Longest request line (method, target, version); longer → 414.
    #[arg(long = "max-uri", value_name = "SIZE", default_value = "8KiB", value_parser = parse_size)]
    pub max_uri: usize,
    /// Largest header section; larger → 431. With --max-uri at most 64 KiB in all.
    #[arg(long = "max-header-bytes", value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub max_header_bytes: usize,
    /// Most header fields in one request; more → 431.
    #[arg(long = "max-headers", value_name = "N", default_value_t = DEFAULT_MAX_HEADERS)]
    pub max_headers: usize,
    /// Largest request body; larger → 413 and close.
    #[arg(long = "max-body", value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Time allowed to receive a whole request head; slower → 408 and close.
    #[arg(long = "header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time allowed to receive a whole request body; slower → 408 and close.
    #[arg(long = "body-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Slowest average body rate accepted after the first 5 s (0 disables); slower → 408.
    #[arg(long = "min-body-rate", value_name = "SIZE_PER_SEC", default_value = "1KiB", value_parser = parse_size)]
    pub min_body_rate: usize,
    /// Time an idle keep-alive connection stays open.
    #[arg(long = "idle-timeout", value_name = "DURATION", default_value = "75s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time a response write may make no progress before the connection closes.
    #[arg(long = "write-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Time in-flight requests get after SIGTERM/SIGINT before connections are closed.
    #[arg(long = "drain-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Serve this directory at `/` (instead of the embedded demo site).
    /// Same as `--mount /=DIR`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    /// Serve a directory under a URL prefix: `PREFIX=DIR`, optionally
    /// `PREFIX=DIR:immutable` for fingerprinted assets (Cache-Control:
    /// public, max-age=31536000, immutable; the default is no-cache).
    /// Repeatable; the longest matching prefix wins, and routes win over mounts.
    #[arg(long = "mount", value_name = "PREFIX=DIR[:immutable]")]
    pub mounts: Vec<String>,
    /// List directories that have no index.html.
    #[arg(long)]
    pub autoindex: bool,
    /// Serve dotfiles (names starting with `.`); `/.well-known/` is always served.
    #[arg(long)]
    pub dotfiles: bool,
    /// Static files up to this size are kept in memory by each shard's file
    /// cache and leave in one write with their head; larger files are sent
    /// with sendfile. 0 sends every file with sendfile.
    #[arg(long = "file-inline-max", value_name = "SIZE", default_value = "16KiB", value_parser = parse_size)]
    pub file_inline_max: usize,
    /// Most cached file lookups per mount and shard.
    #[arg(long = "file-cache", value_name = "N", default_value_t = crate::static_files::DEFAULT_CACHE_ENTRIES)]
    pub file_cache: usize,
    /// Print the route table (methods, pattern, handler) and exit.
    #[arg(long = "print-routes")]
    pub print_routes: bool,
}

/// Request size limits, in bytes unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line; longer → 414.
    pub max_uri: usize,
    /// Largest header section (after the request line); larger → 431.
    pub max_header_bytes: usize,
    /// Most header fields; more → 431.
    pub max_headers: usize,
    /// Largest decoded request body; larger → 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_uri: DEFAULT_MAX_URI,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// Connection timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request head must arrive whole within this time of its first byte
    /// (or of the accept, for a connection's first request).
    pub header: Duration,
    /// A request body must arrive whole within this time of its head.
    pub body: Duration,
    /// Minimum average body rate in bytes/s after [`BODY_RATE_GRACE`]; 0 disables.
    pub min_body_rate: u64,
    /// An idle keep-alive connection is closed after this long.
    pub idle: Duration,
    /// A write that makes no progress for this long closes the connection.
    pub write: Duration,
    /// After a shutdown signal, in-flight requests get this long.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: DEFAULT_HEADER_TIMEOUT,
            body: DEFAULT_BODY_TIMEOUT,
            min_body_rate: DEFAULT_MIN_BODY_RATE,
            idle: DEFAULT_IDLE_TIMEOUT,
            write: DEFAULT_WRITE_TIMEOUT,
            drain: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// The shortest timeout: the per-shard deadline tick is derived from it.
    pub fn shortest(&self) -> Duration {
        [self.header, self.body, self.idle, self.write, self.drain]
            .into_iter()
            .min()
            .unwrap_or(DEFAULT_HEADER_TIMEOUT)
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses every shard listens on.
    pub listen: Vec<SocketAddr>,
    /// Number of shards; `None` means one per CPU this process may run on.
    pub shards: Option<NonZeroUsize>,
    /// Listen backlog per shard socket.
    pub backlog: u32,
    /// Open connections per shard.
    pub max_conns: NonZeroUsize,
    /// Request size limits.
    pub limits: Limits,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Static-file mounts and settings.
    pub static_files: StaticConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 8080))],
            shards: None,
            backlog: DEFAULT_BACKLOG,
            max_conns: NonZeroUsize::new(DEFAULT_MAX_CONNS).unwrap_or(NonZeroUsize::MIN),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            static_files: StaticConfig::default(),
        }
    }
}

/// A configuration value that cannot be used, with the flag it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, e.g. `--shards`.
    pub flag: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        reason: reason.into(),
    }
}

/// The largest body we buffer (bytes): bodies are held whole in memory.
const MAX_BODY_BYTES: usize = 1 << 30;

impl Config {
    /// Validates the command line.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let shards = match args.shards {
            None => None,
            Some(n) => Some(
                NonZeroUsize::new(n).ok_or_else(|| invalid("--shards", "must be at least 1"))?,
            ),
        };
        let max_conns = NonZeroUsize::new(args.max_conns)
            .ok_or_else(|| invalid("--max-conns", "must be at least 1"))?;
        if args.backlog == 0 || args.backlog > i32::MAX as u32 {
            return Err(invalid("--backlog", "must be between 1 and 2^31-1"));
        }
        if args.max_uri < 16 {
            return Err(invalid("--max-uri", "must be at least 16 bytes"));
        }
        if args.max_header_bytes < 64 {
            return Err(invalid("--max-header-bytes", "must be at least 64 bytes"));
        }
        // +2: the empty line that ends the head.
        if args.max_uri + args.max_header_bytes + 2 > crate::http::parse::MAX_HEAD {
            return Err(invalid(
                "--max-header-bytes",
                "request line plus headers must fit in 64 KiB (--max-uri + --max-header-bytes <= 65533)",
            ));
        }
        if args.max_headers == 0 || args.max_headers > 10_000 {
            return Err(invalid("--max-headers", "must be between 1 and 10000"));
        }
        if args.max_body > MAX_BODY_BYTES {
            return Err(invalid(
                "--max-body",
                "must be at most 1GiB (bodies are buffered)",
            ));
        }
        let nonzero = |flag: &'static str, d: Duration| {
            if d.is_zero() {
                Err(invalid(flag, "must be greater than zero"))
            } else {
                Ok(d)
            }
        };
        let timeouts = Timeouts {
            header: nonzero("--header-timeout", args.header_timeout)?,
            body: nonzero("--body-timeout", args.body_timeout)?,
            min_body_rate: args.min_body_rate as u64,
            idle: nonzero("--idle-timeout", args.idle_timeout)?,
            write: nonzero("--write-timeout", args.write_timeout)?,
            drain: nonzero("--drain-timeout", args.drain_timeout)?,
        };
        if args.listen.is_empty() {
            return Err(invalid("--listen", "at least one address is needed"));
        }
        let static_files = static_config(&args)?;
        let mut listen = args.listen;
        listen.dedup();
        Ok(Config {
            listen,
            shards,
            backlog: args.backlog,
            max_conns,
            limits: Limits {
                max_uri: args.max_uri,
                max_header_bytes: args.max_header_bytes,
                max_headers: args.max_headers,
                max_body: args.max_body,
            },
            timeouts,
            static_files,
        })
    }
}

/// `--root`, `--mount` and friends → mounts with their directories open.
fn static_config(args: &Args) -> Result<StaticConfig, ConfigError> {
    let mut specs: Vec<(&'static str, String, std::path::PathBuf, CachePolicy)> = Vec::new();
    if let Some(root) = &args.root {
        specs.push(("--root", "/".into(), root.clone(), CachePolicy::Revalidate));
    }
    for m in &args.mounts {
        let (prefix, dir) = m
            .split_once('=')
            .ok_or_else(|| invalid("--mount", format!("`{m}`: expected PREFIX=DIR")))?;
        let (dir, policy) = match dir.rsplit_once(':') {
            Some((d, "immutable")) => (d, CachePolicy::Immutable),
            Some((d, "revalidate")) => (d, CachePolicy::Revalidate),
            _ => (dir, CachePolicy::Revalidate),
        };
        specs.push(("--mount", prefix.to_string(), dir.into(), policy));
    }
    let mut mounts: Vec<MountConfig> = Vec::new();
    for (flag, prefix, dir, policy) in specs {
        let ok_prefix = prefix.starts_with('/')
            && !prefix.contains(['%', '\\', '?', '#'])
            && !prefix.split('/').any(|s| s == "." || s == "..")
            && !prefix.contains("//");
        if !ok_prefix {
            return Err(invalid(
                flag,
                format!("`{prefix}`: a prefix is a clean path starting with / (like /assets/)"),
            ));
        }
        let prefix = if prefix.ends_with('/') {
            prefix
        } else {
            format!("{prefix}/")
        };
        if mounts.iter().any(|m| m.prefix == prefix) {
            return Err(invalid(flag, format!("`{prefix}` is mounted twice")));
        }
        let real_dir = std::fs::canonicalize(&dir)
            .map_err(|e| invalid(flag, format!("{}: {e}", dir.display())))?;
        let fd = crate::sys::open_dir(&real_dir)
            .map_err(|e| invalid(flag, format!("{}: {e}", dir.display())))?;
        mounts.push(MountConfig {
            prefix,
            dir,
            real_dir,
            fd: std::sync::Arc::new(fd),
            policy,
        });
    }
    let resolver = match mounts.first() {
        Some(m) => crate::sys::detect_resolver(std::os::fd::AsFd::as_fd(&*m.fd)),
        None => crate::sys::Resolver::Openat2,
    };
    if args.file_cache == 0 {
        return Err(invalid("--file-cache", "must be at least 1"));
    }
    Ok(StaticConfig {
        mounts,
        resolver,
        autoindex: args.autoindex,
        dotfiles: args.dotfiles,
        inline_max: args.file_inline_max as u64,
        cache_entries: args.file_cache,
    })
}

/// Parses a size: a byte count with an optional K/KiB/M/MiB/G/GiB suffix
/// (binary multiples; `KB`, `MB` and `GB` are read as binary too).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{s}` is not a size (try 16KiB or 1048576)"));
    }
    let n: usize = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use K, KiB, M, MiB, G, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration: a number with an optional ms/s/m/h suffix (seconds if none).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{s}` is not a duration (try 10s or 500ms)"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn defaults_validate() {
        let args = Args::parse_from(["edgeshard"]);
        let cfg = Config::from_args(args).expect("defaults are valid");
        assert_eq!(cfg.limits, Limits::default());
        assert_eq!(cfg.timeouts, Timeouts::default());
        assert_eq!(cfg.backlog, DEFAULT_BACKLOG);
        assert_eq!(cfg.max_conns.get(), DEFAULT_MAX_CONNS);
    }

    #[test]
    fn a_head_larger_than_64_kib_is_refused() {
        let args = Args::parse_from([
            "edgeshard",
            "--max-uri",
            "32KiB",
            "--max-header-bytes",
            "32KiB",
        ]);
        let err = Config::from_args(args).unwrap_err();
        assert_eq!(err.flag, "--max-header-bytes");
        let args = Args::parse_from([
            "edgeshard",
            "--max-uri",
            "16KiB",
            "--max-header-bytes",
            "47KiB",
        ]);
        assert!(Config::from_args(args).is_ok());
    }

    #[test]
    fn zero_shards_is_an_error_naming_the_flag() {
        let args = Args::parse_from(["edgeshard", "--shards", "0"]);
        let err = Config::from_args(args).unwrap_err();
        assert_eq!(err.flag, "--shards");
    }
}
