//! Configuration in two tiers, as ripgrep does it: [`Flags`] is the
//! command line as written (every field optional, nothing filled in), and
//! [`Config`] the values the server runs with: defaults (each written once,
//! in a `Default` impl) with what was given laid over them, then checked
//! by [`Config::validate`] without touching the file system. A last step,
//! [`Config::prepare`], opens what the configuration names (the mounts'
//! directories) and says which setting a failure came from.
//!
//! A configuration file ([`ConfigFile`], TOML) slots in between:
//! defaults < file < flags ([`Config::load`]).

mod file;
mod flags;
mod units;

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

pub use file::ConfigFile;
pub use flags::{Command, Flags};
pub use units::{parse_duration, parse_size, show_duration, show_size};

use crate::access_log::Outlet;
pub use crate::access_log::{
    Format as AccessLogFormat, Settings as AccessLogSettings, Target as AccessLogTarget,
};
pub use crate::conn::{
    Timeouts, BODY_RATE_GRACE, DEFAULT_BODY_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MIN_BODY_RATE, DEFAULT_WRITE_TIMEOUT,
};
pub use crate::http::Limits;
use crate::http::{
    LimitError, MAX_HEAD, MAX_MAX_BODY, MAX_MAX_HEADERS, MIN_MAX_HEADER_BYTES, MIN_MAX_URI,
};
use crate::middleware::{
    AuthConfig, AuthSettings, CompressSettings, Cors, CorsSettings, RateLimitSettings,
    SecurityHeaders, SecuritySettings,
};
use crate::proxy::{PreparedProxy, ProxySettings};
use crate::static_files::{
    CachePolicy, MountConfig, Resolver, StaticConfig, DEFAULT_CACHE_ENTRIES, DEFAULT_INLINE_MAX,
};

/// Default listen address: every IPv4 interface, port 8080, as a developer
/// running `cargo run` expects to reach `http://127.0.0.1:8080/`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);
/// Default listen backlog (connections): deep enough to absorb a burst of
/// 4096 simultaneous connects per shard without SYN retries.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// Default connections per shard: 10 000 idle keep-alive connections cost
/// a few MiB (a few hundred bytes each), well within an edge node's memory.
pub const DEFAULT_MAX_CONNS: NonZeroUsize = match NonZeroUsize::new(10_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// The configuration the server runs with.
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
    /// Static files: mounts and their settings.
    pub static_files: StaticSettings,
    /// The binary's middleware (the library's own handlers use what they
    /// are given; `builtin::app` reads this).
    pub middleware: MiddlewareSettings,
    /// The access log, which connections write (off by default; the
    /// `edgeshard` binary defaults to stdout).
    pub access_log: AccessLogSettings,
    /// Proxy mounts (`--proxy`), in front of the static files.
    pub proxy: ProxySettings,
    /// After SIGTERM, how long the server keeps accepting and serving
    /// (with `/readyz` answering 503) before the drain closes the
    /// listeners: longer than a load balancer's health-check interval,
    /// so it stops sending new connections first. Default 0.
    pub shutdown_delay: std::time::Duration,
    /// Count requests by route and time them, and answer `GET /metrics`
    /// (the binary's). On by default.
    pub metrics: bool,
    /// Serve `/metrics` (and `/readyz`, `/healthz`) on this address
    /// instead of the main listener: an admin address kept off the
    /// public interface. One shard listens there.
    pub metrics_listen: Option<SocketAddr>,
}

/// The middleware the binary puts around its app, outermost first. By
/// default: security headers only.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MiddlewareSettings {
    /// `X-Request-Id` on every response (an incoming short, safe one
    /// kept); off by default.
    pub request_id: bool,
    /// Security headers on every response that lacks them.
    pub security: SecuritySettings,
    /// CORS, when origins are configured.
    pub cors: Option<CorsSettings>,
    /// Rate limiting per client IP, when a rate is configured.
    pub rate_limit: Option<RateLimitSettings>,
    /// Compression on the fly, when switched on.
    pub compress: Option<CompressSettings>,
    /// Authentication per path prefix (none by default).
    pub auth: AuthSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![DEFAULT_LISTEN],
            shards: None,
            backlog: DEFAULT_BACKLOG,
            max_conns: DEFAULT_MAX_CONNS,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            static_files: StaticSettings::default(),
            middleware: MiddlewareSettings::default(),
            access_log: AccessLogSettings::default(),
            proxy: ProxySettings::default(),
            shutdown_delay: std::time::Duration::ZERO,
            metrics: true,
            metrics_listen: None,
        }
    }
}

/// Static files as configured: nothing opened yet (see [`Config::prepare`]).
#[derive(Debug, Clone)]
pub struct StaticSettings {
    /// Directories to serve; none means the embedded demo site at `/`.
    pub mounts: Vec<MountSpec>,
    /// How files are opened beneath a mount; `None`: probe the kernel
    /// (openat2 where it has it).
    pub resolver: Option<Resolver>,
    /// List directories that have no `index.html`.
    pub autoindex: bool,
    /// Serve dotfiles (names starting with `.`).
    pub dotfiles: bool,
    /// Files up to this size are kept in memory by each shard's cache
    /// (bytes); larger ones are sent with sendfile. 0: always sendfile.
    pub inline_max: u64,
    /// Most cached lookups per mount and shard.
    pub cache_entries: usize,
}

impl Default for StaticSettings {
    fn default() -> Self {
        StaticSettings {
            mounts: Vec::new(),
            resolver: None,
            autoindex: false,
            dotfiles: false,
            inline_max: DEFAULT_INLINE_MAX,
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }
}

/// A directory to serve under a URL prefix, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// URL prefix, starting with `/` (a `/` is added at the end if missing).
    pub prefix: String,
    /// The directory.
    pub dir: PathBuf,
    /// How clients may cache what it serves.
    pub policy: CachePolicy,
    /// List directories without an `index.html` (`None`: as
    /// [`StaticSettings::autoindex`] says).
    pub autoindex: Option<bool>,
    /// Where the mount was configured (`--root`, `--mount`, `static[2]`
    /// in a file), named in errors.
    pub origin: Cow<'static, str>,
}

impl MountSpec {
    /// `dir` under `prefix`, revalidated by clients (`Cache-Control: no-cache`).
    pub fn new(prefix: impl Into<String>, dir: impl Into<PathBuf>) -> MountSpec {
        MountSpec {
            prefix: prefix.into(),
            dir: dir.into(),
            policy: CachePolicy::Revalidate,
            autoindex: None,
            origin: Cow::Borrowed("mount"),
        }
    }

    /// The prefix with its final `/`, if it is a clean path starting with `/`.
    fn normalized_prefix(&self) -> Option<String> {
        let p = &self.prefix;
        let clean = p.starts_with('/')
            && !p.contains(['%', '\\', '?', '#'])
            && !p.split('/').any(|s| s == "." || s == "..")
            && !p.contains("//");
        clean.then(|| match p.ends_with('/') {
            true => p.clone(),
            false => format!("{p}/"),
        })
    }
}

/// What [`Config::prepare`] opened: the mounts' directories and the access
/// log (later, key and certificate files). Shared by every shard.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The static files, their directories open.
    pub static_files: StaticConfig,
    /// The access log's target, checked writable (its writer thread
    /// started for stdout or a pipe); `None` when it is off.
    pub access_log: Option<Arc<Outlet>>,
    /// The auth files, read and checked; `None` without auth rules.
    pub auth: Option<Arc<AuthConfig>>,
    /// The proxy mounts, their upstreams' names resolved.
    pub proxy: Arc<PreparedProxy>,
}

/// A configuration value that cannot be used, with the setting it came
/// from (a flag, such as `--shards`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the value came from, e.g. `--shards`.
    pub flag: Cow<'static, str>,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn invalid(
    flag: impl Into<Cow<'static, str>>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError {
        flag: flag.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// The defaults with the command line laid over them, validated.
    pub fn from_flags(flags: Flags) -> Result<Config, ConfigError> {
        Config::from_flags_over(Config::default(), flags)
    }

    /// `defaults` < `file` < `flags`, validated. An error in what the
    /// file sets names the file, the line and the key; one in what the
    /// flags set names the flag.
    pub fn load(
        defaults: Config,
        file: Option<&ConfigFile>,
        flags: Flags,
    ) -> Result<Config, ConfigError> {
        let mut config = defaults;
        if let Some(f) = file {
            f.apply(&mut config)?;
            config.validate().map_err(|e| f.relocate(e))?;
        }
        flags.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration in the file's format, every key with the value
    /// in effect (what `edgeshard check-config` prints).
    pub fn to_toml(&self) -> String {
        file::effective(self)
    }

    /// What can be checked without binding or starting anything: each
    /// mount's directory opens, the auth files load, the access log's
    /// file (or its directory) is writable. Upstream URLs were checked
    /// when read; their names are not resolved here.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        for m in &self.static_files.mounts {
            MountConfig::open(m.prefix.clone(), m.dir.clone(), m.policy)
                .map_err(|e| invalid(m.origin.clone(), format!("{}: {e}", m.dir.display())))?;
        }
        AuthConfig::load(&self.middleware.auth).map_err(|e| invalid("--auth", e.0))?;
        if let AccessLogTarget::Path(path) = &self.access_log.target {
            let writable = match std::fs::metadata(path) {
                Ok(_) => std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map(drop)
                    .map_err(|e| format!("{}: {e}", path.display())),
                Err(_) => {
                    let dir = match path.parent() {
                        Some(d) if !d.as_os_str().is_empty() => d,
                        _ => std::path::Path::new("."),
                    };
                    match std::fs::metadata(dir) {
                        Ok(m) if m.is_dir() && !m.permissions().readonly() => Ok(()),
                        Ok(_) => Err(format!("{}: not a writable directory", dir.display())),
                        Err(e) => Err(format!("{}: {e}", dir.display())),
                    }
                }
            };
            writable.map_err(|e| invalid("--access-log", e))?;
        }
        Ok(())
    }

    /// [`Config::from_flags`] over other defaults (a binary's own, such as
    /// `edgeshard`'s access log to stdout).
    pub fn from_flags_over(defaults: Config, flags: Flags) -> Result<Config, ConfigError> {
        let mut config = defaults;
        flags.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value without touching the file system: the errors
    /// name the flag a value is set with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mw = &self.middleware;
        if let Some(rl) = &mw.rate_limit {
            rl.check().map_err(|e| invalid("--rate-limit", e))?;
        }
        if let Some(cors) = &mw.cors {
            Cors::new(cors).map_err(|e| invalid("--cors", e.to_string()))?;
        }
        SecurityHeaders::new(&mw.security).map_err(|e| {
            let flag = match e.header {
                "Referrer-Policy" => "--referrer-policy",
                _ => "--csp",
            };
            invalid(flag, e.to_string())
        })?;
        if self.backlog == 0 || self.backlog > i32::MAX as u32 {
            return Err(invalid("--backlog", "must be between 1 and 2^31-1"));
        }
        self.limits.check().map_err(|e| match e {
            LimitError::MaxUri => {
                invalid("--max-uri", format!("must be at least {MIN_MAX_URI} bytes"))
            }
            LimitError::MaxHeaderBytes => invalid(
                "--max-header-bytes",
                format!("must be at least {MIN_MAX_HEADER_BYTES} bytes"),
            ),
            LimitError::HeadTooLarge => invalid(
                "--max-header-bytes",
                format!(
                    "request line plus headers must fit in 64 KiB (--max-uri + --max-header-bytes <= {})",
                    MAX_HEAD - 2
                ),
            ),
            LimitError::MaxHeaders => invalid(
                "--max-headers",
                format!("must be between 1 and {MAX_MAX_HEADERS}"),
            ),
            LimitError::MaxBody => invalid(
                "--max-body",
                format!(
                    "must be at most {} (bodies are buffered)",
                    show_size(MAX_MAX_BODY as u64)
                ),
            ),
        })?;
        if let Some(which) = self.timeouts.zero() {
            return Err(invalid(
                format!("--{which}-timeout"),
                "must be greater than zero",
            ));
        }
        if self.listen.is_empty() {
            return Err(invalid("--listen", "at least one address is needed"));
        }
        if let Some(admin) = self.metrics_listen {
            if !self.metrics {
                return Err(invalid("--metrics-listen", "needs the metrics on"));
            }
            // Port 0 is a fresh port each time: never the same.
            let clash = self.listen.iter().any(|l| {
                admin.port() != 0
                    && l.port() == admin.port()
                    && (l.ip() == admin.ip()
                        || l.ip().is_unspecified()
                        || admin.ip().is_unspecified())
            });
            if clash {
                return Err(invalid(
                    "--metrics-listen",
                    format!("{admin} overlaps a --listen address; give it a port of its own"),
                ));
            }
        }
        let files = &self.static_files;
        let mut prefixes: Vec<String> = Vec::with_capacity(files.mounts.len());
        for m in &files.mounts {
            let Some(prefix) = m.normalized_prefix() else {
                return Err(invalid(
                    m.origin.clone(),
                    format!(
                        "`{}`: a prefix is a clean path starting with / (like /assets/)",
                        m.prefix
                    ),
                ));
            };
            if prefixes.contains(&prefix) {
                return Err(invalid(
                    m.origin.clone(),
                    format!("`{prefix}` is mounted twice"),
                ));
            }
            prefixes.push(prefix);
        }
        if files.cache_entries == 0 {
            return Err(invalid("--file-cache", "must be at least 1"));
        }
        let mut proxied: Vec<&str> = Vec::new();
        for m in &self.proxy.mounts {
            let p = m.prefix.as_str();
            let clean = p.starts_with('/')
                && !p.contains("//")
                && !p.split('/').any(|seg| seg == "." || seg == "..");
            if !clean {
                return Err(invalid(
                    m.origin.clone(),
                    format!("`{p}`: a prefix is a clean path starting with / (like /app1/)"),
                ));
            }
            if proxied.contains(&p) {
                return Err(invalid(m.origin.clone(), format!("`{p}` is proxied twice")));
            }
            if prefixes.iter().any(|s| s == p) {
                return Err(invalid(
                    m.origin.clone(),
                    format!(
                        "`{p}` is both a proxy mount and a static mount; give each its own prefix"
                    ),
                ));
            }
            if m.upstreams.is_empty() {
                return Err(invalid(m.origin.clone(), format!("`{p}` has no upstreams")));
            }
            proxied.push(p);
        }
        Ok(())
    }

    /// Refuses proxy mounts that routes would shadow: a route on a
    /// mount's prefix, or under it (`routes` are the app's, as
    /// `--print-routes` shows them).
    pub fn check_routes(&self, routes: &[crate::route::RouteInfo<'_>]) -> Result<(), ConfigError> {
        for m in &self.proxy.mounts {
            let bare = &m.prefix[..m.prefix.len() - 1];
            for r in routes {
                let pattern = r.pattern.as_ref();
                let path = pattern.rsplit(' ').next().unwrap_or(pattern);
                let path = &path[path.find('/').unwrap_or(0)..];
                if path.starts_with(&m.prefix) || path == bare {
                    return Err(invalid(
                        m.origin.clone(),
                        format!(
                            "`{}` is both a proxy mount and the route `{pattern}`; give each its own prefix",
                            m.prefix
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Opens what the configuration names: each mount's directory (an
    /// error names the mount's flag and the directory). Call after
    /// [`Config::validate`].
    pub fn prepare(&self) -> Result<Prepared, ConfigError> {
        let mut prepared = self.prepare_without_log()?;
        prepared.access_log =
            Outlet::open(&self.access_log).map_err(|e| invalid("--access-log", e))?;
        Ok(prepared)
    }

    /// As [`Config::prepare`], leaving the access log alone (`None`): a
    /// reload keeps the running server's.
    pub fn prepare_without_log(&self) -> Result<Prepared, ConfigError> {
        let files = &self.static_files;
        let mut mounts = Vec::with_capacity(files.mounts.len());
        for m in &files.mounts {
            let prefix = m.normalized_prefix().ok_or_else(|| {
                invalid(
                    m.origin.clone(),
                    format!("`{}` is not a clean prefix", m.prefix),
                )
            })?;
            let mut mount = MountConfig::open(prefix, m.dir.clone(), m.policy)
                .map_err(|e| invalid(m.origin.clone(), format!("{}: {e}", m.dir.display())))?;
            mount.autoindex = m.autoindex;
            mounts.push(mount);
        }
        let resolver = files
            .resolver
            .unwrap_or_else(|| StaticConfig::detect_resolver(&mounts));
        let auth = AuthConfig::load(&self.middleware.auth).map_err(|e| invalid("--auth", e.0))?;
        let proxy = PreparedProxy::prepare(&self.proxy).map_err(|e| invalid("--proxy", e))?;
        Ok(Prepared {
            access_log: None,
            auth,
            proxy: Arc::new(proxy),
            static_files: StaticConfig {
                mounts,
                resolver,
                autoindex: files.autoindex,
                dotfiles: files.dotfiles,
                inline_max: files.inline_max,
                cache_entries: files.cache_entries,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn from(argv: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["edgeshard"];
        full.extend_from_slice(argv);
        Config::from_flags(Flags::parse_from(full))
    }

    #[test]
    fn a_proxy_mount_on_a_route_is_refused_naming_both() {
        let cfg = from(&["--proxy", "/api/=http://127.0.0.1:1"]).expect("valid alone");
        let err = cfg
            .check_routes(crate::builtin::routes())
            .expect_err("/api/ holds routes");
        assert_eq!(err.flag, "--proxy");
        assert!(
            err.reason.contains("/api/") && err.reason.contains("GET /api/stats"),
            "{}",
            err.reason
        );
        let cfg = from(&["--proxy", "/app1/=http://127.0.0.1:1"]).expect("valid");
        assert!(cfg.check_routes(crate::builtin::routes()).is_ok());
    }

    #[test]
    fn defaults_validate() {
        let cfg = from(&[]).expect("defaults are valid");
        assert_eq!(cfg.limits, Limits::default());
        assert_eq!(cfg.timeouts, Timeouts::default());
        assert_eq!(cfg.backlog, DEFAULT_BACKLOG);
        assert_eq!(cfg.max_conns, DEFAULT_MAX_CONNS);
        assert_eq!(cfg.listen, [DEFAULT_LISTEN]);
    }

    #[test]
    fn a_head_larger_than_64_kib_is_refused() {
        let err = from(&["--max-uri", "32KiB", "--max-header-bytes", "32KiB"]).unwrap_err();
        assert_eq!(err.flag, "--max-header-bytes");
        assert!(from(&["--max-uri", "16KiB", "--max-header-bytes", "47KiB"]).is_ok());
    }

    #[test]
    fn zero_shards_is_an_error_naming_the_flag() {
        let err = from(&["--shards", "0"]).unwrap_err();
        assert_eq!(err.flag, "--shards");
    }

    #[test]
    fn each_invalid_value_names_its_flag() {
        for (argv, flag) in [
            (&["--backlog", "0"][..], "--backlog"),
            (&["--max-conns", "0"], "--max-conns"),
            (&["--max-uri", "15"], "--max-uri"),
            (&["--max-header-bytes", "63"], "--max-header-bytes"),
            (&["--max-headers", "0"], "--max-headers"),
            (&["--max-body", "2GiB"], "--max-body"),
            (&["--header-timeout", "0s"], "--header-timeout"),
            (&["--body-timeout", "0"], "--body-timeout"),
            (&["--idle-timeout", "0ms"], "--idle-timeout"),
            (&["--write-timeout", "0"], "--write-timeout"),
            (&["--drain-timeout", "0"], "--drain-timeout"),
            (&["--handler-timeout", "0"], "--handler-timeout"),
            (&["--rate-limit", "0/s"], "--rate-limit"),
            (
                &["--rate-limit", "5/s", "--rate-burst", "0"],
                "--rate-limit",
            ),
            (&["--rate-burst", "3"], "--rate-limit"),
            (&["--trusted-proxy", "10.0.0.0/8"], "--trusted-proxy"),
            (&["--proxy-via"], "--proxy"),
            (
                &["--proxy", "/a=http://127.0.0.1:1", "--proxy-max-fails", "0"],
                "--proxy-max-fails",
            ),
            (
                &["--proxy", "/a=http://127.0.0.1:1", "--mount", "/a=/tmp"],
                "--proxy",
            ),
            (
                &[
                    "--proxy",
                    "/a=http://127.0.0.1:1",
                    "--proxy",
                    "/a/=http://127.0.0.1:2",
                ],
                "--proxy",
            ),
            (&["--proxy", "/a/../b=http://127.0.0.1:1"], "--proxy"),
            (&["--csp", "a\nb"], "--csp"),
            (&["--referrer-policy", ""], "--referrer-policy"),
            (&["--cors", "*", "--cors-credentials"], "--cors"),
            (&["--cors", "https://a.example/x"], "--cors"),
            (&["--cors-headers", "X"], "--cors"),
            (&["--file-cache", "0"], "--file-cache"),
            (
                &[
                    "--listen",
                    "127.0.0.1:9000",
                    "--metrics-listen",
                    "0.0.0.0:9000",
                ],
                "--metrics-listen",
            ),
            (
                &["--metrics=false", "--metrics-listen", "127.0.0.1:9001"],
                "--metrics-listen",
            ),
            (&["--mount", "/a/../b=/tmp"], "--mount"),
        ] {
            assert_eq!(from(argv).unwrap_err().flag, flag, "{argv:?}");
        }
    }

    #[test]
    fn validation_touches_no_file_system_and_prepare_names_the_mount() {
        // A directory that does not exist passes validation: only prepare opens it.
        let cfg = from(&["--root", "/definitely/not/here"]).expect("pure validation");
        let err = cfg.prepare().unwrap_err();
        assert_eq!(err.flag, "--root");
        assert!(err.reason.contains("/definitely/not/here"), "{err}");
        let cfg = from(&["--mount", "/assets=/definitely/not/here:immutable"]).expect("valid");
        assert_eq!(cfg.static_files.mounts[0].policy, CachePolicy::Immutable);
        assert_eq!(cfg.prepare().unwrap_err().flag, "--mount");
    }

    #[test]
    fn prepare_opens_mounts_with_their_final_slash() {
        let dir = std::env::temp_dir();
        let mut cfg = Config::default();
        cfg.static_files.mounts.push(MountSpec::new("/files", &dir));
        cfg.validate().expect("valid");
        let prepared = cfg.prepare().expect("temp dir opens");
        let m = &prepared.static_files.mounts[0];
        assert_eq!(m.prefix, "/files/");
        assert_eq!(m.real_dir, std::fs::canonicalize(&dir).unwrap());
        // `/files` and `/files/` are one mount.
        cfg.static_files
            .mounts
            .push(MountSpec::new("/files/", &dir));
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            (err.flag.as_ref(), err.reason.as_str()),
            ("mount", "`/files/` is mounted twice")
        );
    }
}
