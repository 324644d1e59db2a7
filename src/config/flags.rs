//! The command line as written: every setting optional, no defaults
//! filled in, so "not given" is told from "given the default value" (a
//! configuration file will need that). Each flag's help shows its default,
//! read from the `Default` impls where the value is written once.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::units::{parse_duration, parse_size, show_duration, show_size};
use super::{invalid, AccessLogFormat, AccessLogTarget, Config, ConfigError, MountSpec};
use crate::middleware::{
    parse_rate, AuthRule, Cidr, CompressSettings, CorsSettings, Origins, RateLimitSettings,
};
use crate::proxy::{Balance, HostMode, MountSettings, UpstreamUrl};
use crate::static_files::CachePolicy;

/// `PREFIX=URL[,URL…]`.
fn parse_proxy(s: &str) -> Result<(String, Vec<UpstreamUrl>), String> {
    let (prefix, urls) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected PREFIX=URL[,URL…]"))?;
    if !prefix.starts_with('/') {
        return Err(format!("{prefix:?}: a prefix starts with /"));
    }
    let urls = urls
        .split(',')
        .map(|u| UpstreamUrl::parse(u.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prefix.to_string(), urls))
}

pub(super) fn parse_host_mode(s: &str) -> Result<HostMode, String> {
    match s {
        "upstream" => Ok(HostMode::Upstream),
        "client" => Ok(HostMode::Client),
        _ => Err(format!("{s:?}: expected upstream or client")),
    }
}

pub(super) fn parse_balance(s: &str) -> Result<Balance, String> {
    match s {
        "round-robin" => Ok(Balance::RoundRobin),
        "least-outstanding" | "least-conn" => Ok(Balance::LeastOutstanding),
        _ => Err(format!("{s:?}: expected round-robin or least-outstanding")),
    }
}

/// What the binary does other than serve.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Check a configuration file without starting anything (keys and
    /// values parse, directories and files exist and are readable,
    /// upstream URLs are well formed); print the configuration in effect
    /// and exit 0, or say what is wrong and exit 2.
    #[command(name = "check-config")]
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
}

/// The command line as written.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "edgeshard",
    version,
    about = "Thread-per-core HTTP/1.1 origin server on io_uring",
    long_about = "Thread-per-core HTTP/1.1 origin server on io_uring.\n\n\
        Sizes accept a plain byte count or a suffix (K, KiB, M, MiB, G, GiB);\n\
        durations accept ms, s, m or h (a bare number means seconds)."
)]
pub struct Flags {
    /// Read settings from this TOML file; flags given as well override it
    /// (defaults < file < flags). See deploy/edgeshard.toml.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do other than serve.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address to listen on (repeat for several). Every shard listens on each
    /// with SO_REUSEPORT, so the kernel spreads connections over the shards.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// Number of shards (one executor thread pinned to one core each).
    /// Default: the number of CPUs this process may run on.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Listen backlog of each shard's socket.
    #[arg(long, value_name = "N")]
    pub backlog: Option<u32>,
    /// Open connections per shard; at the cap a shard stops accepting until one closes.
    #[arg(long = "max-conns", value_name = "N")]
    pub max_conns: Option<usize>,
    /// Longest request line (method, target, version); longer → 414.
    #[arg(long = "max-uri", value_name = "SIZE", value_parser = parse_size)]
    pub max_uri: Option<usize>,
    /// Largest header section; larger → 431. With --max-uri at most 64 KiB in all.
    #[arg(long = "max-header-bytes", value_name = "SIZE", value_parser = parse_size)]
    pub max_header_bytes: Option<usize>,
    /// Most header fields in one request; more → 431.
    #[arg(long = "max-headers", value_name = "N")]
    pub max_headers: Option<usize>,
    /// Largest request body; larger → 413 and close.
    #[arg(long = "max-body", value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<usize>,
    /// Time allowed to receive a whole request head; slower → 408 and close.
    #[arg(long = "header-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Time allowed to receive a whole request body; slower → 408 and close.
    #[arg(long = "body-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Slowest average body rate accepted after the first 5 s (0 disables); slower → 408.
    #[arg(long = "min-body-rate", value_name = "SIZE_PER_SEC", value_parser = parse_size)]
    pub min_body_rate: Option<usize>,
    /// Time an idle keep-alive connection stays open.
    #[arg(long = "idle-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Time a response write may make no progress before the connection closes.
    #[arg(long = "write-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub write_timeout: Option<Duration>,
    /// Time in-flight requests get after SIGTERM/SIGINT before connections are closed.
    #[arg(long = "drain-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// After SIGTERM, keep accepting and serving this long, with /readyz
    /// answering 503, before the drain starts: set it above the load
    /// balancer's health-check interval.
    #[arg(long = "shutdown-delay", value_name = "DURATION", value_parser = parse_duration)]
    pub shutdown_delay: Option<Duration>,
    /// Serve this directory at `/` (instead of the embedded demo site).
    /// Same as `--mount /=DIR`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Serve a directory under a URL prefix: `PREFIX=DIR`, optionally
    /// `PREFIX=DIR:immutable` for fingerprinted assets (Cache-Control:
    /// public, max-age=31536000, immutable; the default is no-cache).
    /// Repeatable; the longest matching prefix wins, and routes win over mounts.
    #[arg(long = "mount", value_name = "PREFIX=DIR[:immutable]")]
    pub mounts: Vec<String>,
    /// List directories that have no index.html (`--autoindex=false` turns it off).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub autoindex: Option<bool>,
    /// Serve dotfiles (names starting with `.`); `/.well-known/` is always served.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dotfiles: Option<bool>,
    /// Static files up to this size are kept in memory by each shard's file
    /// cache and leave in one write with their head; larger files are sent
    /// with sendfile. 0 sends every file with sendfile.
    #[arg(long = "file-inline-max", value_name = "SIZE", value_parser = parse_size)]
    pub file_inline_max: Option<usize>,
    /// Most cached file lookups per mount and shard.
    #[arg(long = "file-cache", value_name = "N")]
    pub file_cache: Option<usize>,
    /// Put an `X-Request-Id` on every response (an incoming one is kept if
    /// it is short and of safe characters; else one is made), also in the
    /// request's extensions for handlers.
    #[arg(long = "request-id", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub request_id: Option<bool>,
    /// Send `X-Content-Type-Options: nosniff` and a `Referrer-Policy` on
    /// responses that do not set them (`--security-headers=false` turns both off).
    #[arg(long = "security-headers", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub security_headers: Option<bool>,
    /// The `Referrer-Policy` value sent with the security headers.
    #[arg(long = "referrer-policy", value_name = "POLICY")]
    pub referrer_policy: Option<String>,
    /// Send `Strict-Transport-Security: max-age=<this>; includeSubDomains`
    /// (meaningful behind TLS only).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub hsts: Option<Duration>,
    /// Send this `Content-Security-Policy`.
    #[arg(long, value_name = "POLICY")]
    pub csp: Option<String>,
    /// Allow cross-origin reads from these origins (`https://a.example,https://b.example`)
    /// or any (`*`): CORS headers, and preflights answered with 204.
    #[arg(long, value_name = "ORIGIN[,ORIGIN...]|*")]
    pub cors: Option<String>,
    /// Methods a CORS preflight may ask for.
    #[arg(
        long = "cors-methods",
        value_name = "METHOD[,METHOD...]",
        value_delimiter = ','
    )]
    pub cors_methods: Option<Vec<String>>,
    /// Request headers a CORS preflight may ask for.
    #[arg(
        long = "cors-headers",
        value_name = "NAME[,NAME...]",
        value_delimiter = ','
    )]
    pub cors_headers: Option<Vec<String>>,
    /// Response headers cross-origin scripts may read.
    #[arg(
        long = "cors-expose",
        value_name = "NAME[,NAME...]",
        value_delimiter = ','
    )]
    pub cors_expose: Option<Vec<String>>,
    /// Allow credentials (cookies, Authorization) in CORS requests; not with `--cors '*'`.
    #[arg(long = "cors-credentials", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub cors_credentials: Option<bool>,
    /// How long browsers may cache a CORS preflight's answer.
    #[arg(long = "cors-max-age", value_name = "DURATION", value_parser = parse_duration)]
    pub cors_max_age: Option<Duration>,
    /// Limit each client IP to this rate (`100/s`, `600/m`, `2/h`), per
    /// shard: over it, 429 with Retry-After. A client whose connections
    /// land on several shards can reach that many times the rate.
    #[arg(long = "rate-limit", value_name = "RATE", value_parser = parse_rate)]
    pub rate_limit: Option<f64>,
    /// Requests a client may send at once before the rate applies.
    /// Default: one second's worth of the rate (at least 1).
    #[arg(long = "rate-burst", value_name = "N")]
    pub rate_burst: Option<u32>,
    /// Believe `Forwarded` / `X-Forwarded-For` from peers in this block
    /// (`10.0.0.0/8`, `::1`; repeatable): the client is the nearest address
    /// in it that is not a trusted proxy.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<Cidr>,
    /// Time a handler may take to answer; past it the handler is cancelled
    /// and the client gets 503. Default: no limit.
    #[arg(long = "handler-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub handler_timeout: Option<Duration>,
    /// Guard a path prefix: `PREFIX=bearer:FILE` (one token per line),
    /// `PREFIX=basic:HTPASSWD` (bcrypt or argon2id) or `PREFIX=jwt:KEYFILE`
    /// (PEM public key for RS256/EdDSA, or an HS256 secret). Repeatable;
    /// the longest matching prefix rules.
    #[arg(long = "auth", value_name = "PREFIX=SCHEME:FILE", value_parser = AuthRule::parse)]
    pub auth: Vec<AuthRule>,
    /// Forward a path prefix to upstream servers: `PREFIX=URL[,URL…]`
    /// with `http://host:port[/base]` URLs (repeatable). The prefix is
    /// stripped unless --proxy-keep-prefix; requests are spread over the
    /// upstreams (--proxy-balance) and an upstream that fails is skipped
    /// for a while (--proxy-max-fails, --proxy-fail-timeout).
    #[arg(long = "proxy", value_name = "PREFIX=URL[,URL…]", value_parser = parse_proxy)]
    pub proxy: Vec<(String, Vec<UpstreamUrl>)>,
    /// Pass the mount's prefix on to the upstream rather than strip it.
    #[arg(long = "proxy-keep-prefix", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub proxy_keep_prefix: Option<bool>,
    /// The Host the upstream gets: `upstream` (its own, as Go's proxy) or `client`.
    #[arg(long = "proxy-host", value_name = "upstream|client", value_parser = parse_host_mode)]
    pub proxy_host: Option<HostMode>,
    /// How requests are spread: `round-robin` or `least-outstanding`.
    #[arg(long = "proxy-balance", value_name = "POLICY", value_parser = parse_balance)]
    pub proxy_balance: Option<Balance>,
    /// Failures in a row (connect errors, timeouts, bad answers, 5xx) that
    /// take an upstream out of rotation. Default: 1 (nginx's).
    #[arg(long = "proxy-max-fails", value_name = "N")]
    pub proxy_max_fails: Option<u32>,
    /// How long a failed upstream is skipped before one request tries it again. Default: 10s.
    #[arg(long = "proxy-fail-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub proxy_fail_timeout: Option<Duration>,
    /// Time allowed to connect to an upstream. Default: 5s.
    #[arg(long = "proxy-connect-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub proxy_connect_timeout: Option<Duration>,
    /// Time allowed for the response head, and between response body bytes
    /// (and the idle time of a tunnel after an upgrade). Default: 60s.
    #[arg(long = "proxy-read-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub proxy_read_timeout: Option<Duration>,
    /// Largest request body a proxy mount passes on (streamed; not --max-body). Default: 1 TiB.
    #[arg(long = "proxy-max-body", value_name = "SIZE", value_parser = parse_size)]
    pub proxy_max_body: Option<usize>,
    /// Idle connections kept per upstream and shard. Default: 64.
    #[arg(long = "proxy-max-idle", value_name = "N")]
    pub proxy_max_idle: Option<usize>,
    /// How long an idle upstream connection is kept. Default: 30s.
    #[arg(long = "proxy-idle-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub proxy_idle_timeout: Option<Duration>,
    /// Add `Via: 1.1 edgeshard` to proxied requests and responses.
    #[arg(long = "proxy-via", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub proxy_via: Option<bool>,
    /// How often upstream host names are resolved again, on a thread of
    /// their own (requests never wait on DNS). Default: 30s.
    #[arg(long = "proxy-resolve-every", value_name = "DURATION", value_parser = parse_duration)]
    pub proxy_resolve_every: Option<Duration>,
    /// A JWT must carry this `iss` (else 403).
    #[arg(long = "jwt-issuer", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// A JWT must carry this `aud` (else 403).
    #[arg(long = "jwt-audience", value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Compress responses on the fly (br, zstd or gzip, as the client
    /// prefers) when their type compresses and nothing compressed them before.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub compress: Option<bool>,
    /// Smallest body compressed; smaller ones are sent as they are.
    #[arg(long = "compress-min", value_name = "SIZE", value_parser = parse_size)]
    pub compress_min: Option<usize>,
    /// Access log: `-` (stdout), `off`, or a file to append to (reopened on
    /// SIGHUP, for logrotate). Default: `-` for `edgeshard`, off for the
    /// library and the benchmark binary.
    #[arg(long = "access-log", value_name = "-|off|PATH", value_parser = AccessLogTarget::parse)]
    pub access_log: Option<AccessLogTarget>,
    /// Access log lines: `combined` (nginx's, then the request time in µs,
    /// the shard and the request id) or `json`.
    #[arg(long = "access-log-format", value_name = "FORMAT", value_parser = AccessLogFormat::parse)]
    pub access_log_format: Option<AccessLogFormat>,
    /// Count requests by route, method and status, time them, and answer
    /// `GET /metrics` in the Prometheus text format (`--metrics=false`
    /// turns it off: then a request costs one counter).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub metrics: Option<bool>,
    /// Serve /metrics (and /readyz, /healthz) on this address instead of
    /// the main listener, e.g. 127.0.0.1:9090.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Print the route table (methods, pattern, handler) and exit.
    #[arg(long = "print-routes")]
    pub print_routes: bool,
}

impl Flags {
    /// Whether the setting a [`ConfigError`] names came from these flags
    /// (else, with a configuration file, it came from the file).
    pub fn gave(&self, setting: &str) -> bool {
        match setting {
            "--access-log" => self.access_log.is_some(),
            "--auth" => !self.auth.is_empty(),
            "--trusted-proxy" => !self.trusted_proxies.is_empty(),
            other => other.starts_with("--"),
        }
    }
}

impl Flags {
    /// The command line parser, each flag's help ending with its default
    /// as [`Config::default`] has it.
    pub fn command() -> clap::Command {
        let d = Config::default();
        let cors = CorsSettings::new(Origins::Any);
        let listen: Vec<String> = d.listen.iter().map(ToString::to_string).collect();
        let shown = [
            ("listen", listen.join(", ")),
            ("backlog", d.backlog.to_string()),
            ("max_conns", d.max_conns.to_string()),
            ("max_uri", show_size(d.limits.max_uri as u64)),
            (
                "max_header_bytes",
                show_size(d.limits.max_header_bytes as u64),
            ),
            ("max_headers", d.limits.max_headers.to_string()),
            ("max_body", show_size(d.limits.max_body as u64)),
            ("header_timeout", show_duration(d.timeouts.header)),
            ("body_timeout", show_duration(d.timeouts.body)),
            ("min_body_rate", show_size(d.timeouts.min_body_rate)),
            ("idle_timeout", show_duration(d.timeouts.idle)),
            ("write_timeout", show_duration(d.timeouts.write)),
            ("drain_timeout", show_duration(d.timeouts.drain)),
            ("shutdown_delay", show_duration(d.shutdown_delay)),
            ("autoindex", d.static_files.autoindex.to_string()),
            ("dotfiles", d.static_files.dotfiles.to_string()),
            ("file_inline_max", show_size(d.static_files.inline_max)),
            ("file_cache", d.static_files.cache_entries.to_string()),
            ("request_id", d.middleware.request_id.to_string()),
            ("metrics", d.metrics.to_string()),
            ("access_log_format", d.access_log.format.to_string()),
            ("compress", d.middleware.compress.is_some().to_string()),
            (
                "compress_min",
                show_size(CompressSettings::default().min_size as u64),
            ),
            (
                "security_headers",
                (d.middleware.security.nosniff || d.middleware.security.referrer_policy.is_some())
                    .to_string(),
            ),
            (
                "referrer_policy",
                d.middleware
                    .security
                    .referrer_policy
                    .clone()
                    .unwrap_or_default(),
            ),
            ("cors_methods", cors.methods.join(",")),
            ("cors_headers", cors.headers.join(",")),
            ("cors_credentials", cors.credentials.to_string()),
            (
                "cors_max_age",
                cors.max_age.map(show_duration).unwrap_or_default(),
            ),
        ];
        let mut command = <Flags as CommandFactory>::command();
        for (id, default) in shown {
            command = command.mut_arg(id, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {default}]"))
            });
        }
        command
    }

    /// Parses the process's arguments; `--help`, `--version` and errors
    /// print and exit, as clap does.
    pub fn from_env() -> Flags {
        let matches = Flags::command().get_matches();
        Flags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Lays what was given over `config`; what was not given stays as it
    /// is. Only values that cannot even be held (zero shards) and mounts
    /// that cannot be read (`--mount` without `=`) fail here; the rest is
    /// [`Config::validate`]'s.
    pub fn apply(self, config: &mut Config) -> Result<(), ConfigError> {
        if self.command.is_some() {
            return Err(invalid("check-config", "takes no flags but the file"));
        }
        if !self.listen.is_empty() {
            let mut listen = self.listen;
            listen.dedup();
            config.listen = listen;
        }
        if let Some(n) = self.shards {
            config.shards = Some(
                NonZeroUsize::new(n).ok_or_else(|| invalid("--shards", "must be at least 1"))?,
            );
        }
        if let Some(n) = self.max_conns {
            config.max_conns =
                NonZeroUsize::new(n).ok_or_else(|| invalid("--max-conns", "must be at least 1"))?;
        }
        set(&mut config.backlog, self.backlog);
        let limits = &mut config.limits;
        set(&mut limits.max_uri, self.max_uri);
        set(&mut limits.max_header_bytes, self.max_header_bytes);
        set(&mut limits.max_headers, self.max_headers);
        set(&mut limits.max_body, self.max_body);
        let timeouts = &mut config.timeouts;
        set(&mut timeouts.header, self.header_timeout);
        set(&mut timeouts.body, self.body_timeout);
        set(
            &mut timeouts.min_body_rate,
            self.min_body_rate.map(|n| n as u64),
        );
        set(&mut timeouts.idle, self.idle_timeout);
        set(&mut timeouts.write, self.write_timeout);
        set(&mut timeouts.drain, self.drain_timeout);
        set(&mut config.shutdown_delay, self.shutdown_delay);
        set(&mut config.metrics, self.metrics);
        if self.metrics_listen.is_some() {
            config.metrics_listen = self.metrics_listen;
        }
        if self.handler_timeout.is_some() {
            timeouts.handler = self.handler_timeout;
        }
        let files = &mut config.static_files;
        if self.root.is_some() || !self.mounts.is_empty() {
            files.mounts = mounts(self.root, &self.mounts)?;
        }
        set(&mut files.autoindex, self.autoindex);
        set(&mut files.dotfiles, self.dotfiles);
        set(
            &mut files.inline_max,
            self.file_inline_max.map(|n| n as u64),
        );
        set(&mut files.cache_entries, self.file_cache);
        set(&mut config.access_log.target, self.access_log);
        set(&mut config.access_log.format, self.access_log_format);
        let mw = &mut config.middleware;
        set(&mut mw.request_id, self.request_id);
        if !self.auth.is_empty() {
            mw.auth.rules = self.auth;
        }
        if self.jwt_issuer.is_some() {
            mw.auth.jwt_issuer = self.jwt_issuer;
        }
        if self.jwt_audience.is_some() {
            mw.auth.jwt_audience = self.jwt_audience;
        }
        match self.compress {
            Some(true) => {
                mw.compress.get_or_insert_with(CompressSettings::default);
            }
            Some(false) => mw.compress = None,
            None => {}
        }
        if let Some(min) = self.compress_min {
            match &mut mw.compress {
                Some(c) => c.min_size = min,
                None => return Err(invalid("--compress-min", "needs --compress")),
            }
        }
        if let Some(on) = self.security_headers {
            mw.security.nosniff = on;
            if !on {
                mw.security.referrer_policy = None;
            }
        }
        if let Some(p) = self.referrer_policy {
            mw.security.referrer_policy = Some(p);
        }
        if self.hsts.is_some() {
            mw.security.hsts = self.hsts;
        }
        if self.csp.is_some() {
            mw.security.csp = self.csp;
        }
        if let Some(list) = self.cors {
            let origins = match list.trim() {
                "*" => Origins::Any,
                "" => return Err(invalid("--cors", "give origins, or * for any")),
                list => Origins::List(list.split(',').map(|o| o.trim().to_string()).collect()),
            };
            mw.cors = Some(CorsSettings::new(origins));
        }
        if let Some(rate) = self.rate_limit {
            let mut rl = RateLimitSettings::new(rate);
            set(&mut rl.burst, self.rate_burst);
            rl.trusted_proxies = self.trusted_proxies.clone();
            mw.rate_limit = Some(rl);
        } else if self.rate_burst.is_some() {
            return Err(invalid("--rate-limit", "--rate-burst needs --rate-limit"));
        } else if !self.trusted_proxies.is_empty() && self.proxy.is_empty() {
            return Err(invalid(
                "--trusted-proxy",
                "needs --rate-limit or --proxy (it says whose forwarding headers they believe)",
            ));
        }
        let proxy = &mut config.proxy;
        if !self.trusted_proxies.is_empty() {
            proxy.trusted = self.trusted_proxies;
        }
        if !self.proxy.is_empty() {
            proxy.mounts = self
                .proxy
                .into_iter()
                .map(|(prefix, ups)| MountSettings::new(&prefix, ups))
                .collect();
        }
        let proxy_flags = self.proxy_keep_prefix.is_some()
            || self.proxy_host.is_some()
            || self.proxy_balance.is_some()
            || self.proxy_max_fails.is_some()
            || self.proxy_fail_timeout.is_some()
            || self.proxy_connect_timeout.is_some()
            || self.proxy_read_timeout.is_some()
            || self.proxy_max_body.is_some()
            || self.proxy_max_idle.is_some()
            || self.proxy_idle_timeout.is_some()
            || self.proxy_via.is_some()
            || self.proxy_resolve_every.is_some();
        if proxy_flags && proxy.mounts.is_empty() {
            return Err(invalid("--proxy", "the --proxy-* settings need --proxy"));
        }
        if self.proxy_max_fails == Some(0) {
            return Err(invalid("--proxy-max-fails", "must be at least 1"));
        }
        for (flag, d) in [
            ("--proxy-fail-timeout", self.proxy_fail_timeout),
            ("--proxy-connect-timeout", self.proxy_connect_timeout),
            ("--proxy-read-timeout", self.proxy_read_timeout),
            ("--proxy-idle-timeout", self.proxy_idle_timeout),
            ("--proxy-resolve-every", self.proxy_resolve_every),
        ] {
            if d == Some(Duration::ZERO) {
                return Err(invalid(flag, "must be greater than zero"));
            }
        }
        set(&mut proxy.resolve_every, self.proxy_resolve_every);
        for m in &mut proxy.mounts {
            set(&mut m.keep_prefix, self.proxy_keep_prefix);
            set(&mut m.host, self.proxy_host);
            set(&mut m.balance, self.proxy_balance);
            set(&mut m.health.max_fails, self.proxy_max_fails);
            set(&mut m.health.fail_timeout, self.proxy_fail_timeout);
            set(&mut m.connect_timeout, self.proxy_connect_timeout);
            set(&mut m.read_timeout, self.proxy_read_timeout);
            set(&mut m.max_body, self.proxy_max_body.map(|n| n as u64));
            set(&mut m.max_idle, self.proxy_max_idle);
            set(&mut m.idle_timeout, self.proxy_idle_timeout);
            set(&mut m.via, self.proxy_via);
        }
        let cors_flags = self.cors_methods.is_some()
            || self.cors_headers.is_some()
            || self.cors_expose.is_some()
            || self.cors_credentials.is_some()
            || self.cors_max_age.is_some();
        match &mut mw.cors {
            Some(cors) => {
                set(&mut cors.methods, self.cors_methods);
                set(&mut cors.headers, self.cors_headers);
                set(&mut cors.expose, self.cors_expose);
                set(&mut cors.credentials, self.cors_credentials);
                if self.cors_max_age.is_some() {
                    cors.max_age = self.cors_max_age;
                }
            }
            None if cors_flags => {
                return Err(invalid("--cors", "the --cors-* settings need --cors"));
            }
            None => {}
        }
        Ok(())
    }
}

fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *field = v;
    }
}

/// `--root` and `--mount PREFIX=DIR[:immutable]`, in that order.
fn mounts(root: Option<PathBuf>, given: &[String]) -> Result<Vec<MountSpec>, ConfigError> {
    let mut specs = Vec::with_capacity(given.len() + 1);
    if let Some(dir) = root {
        specs.push(MountSpec {
            origin: Cow::Borrowed("--root"),
            ..MountSpec::new("/", dir)
        });
    }
    for m in given {
        let (prefix, dir) = m
            .split_once('=')
            .ok_or_else(|| invalid("--mount", format!("`{m}`: expected PREFIX=DIR")))?;
        let (dir, policy) = match dir.rsplit_once(':') {
            Some((d, "immutable")) => (d, CachePolicy::Immutable),
            Some((d, "revalidate")) => (d, CachePolicy::Revalidate),
            _ => (dir, CachePolicy::Revalidate),
        };
        specs.push(MountSpec {
            policy,
            origin: Cow::Borrowed("--mount"),
            ..MountSpec::new(prefix, dir)
        });
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_is_consistent_and_every_default_is_shown() {
        let command = Flags::command();
        command.clone().debug_assert();
        let help = command.clone().render_help().to_string();
        for default in [
            "[default: 0.0.0.0:8080]",
            "[default: 4096]",
            "[default: 10000]",
            "[default: 8KiB]",
            "[default: 16KiB]",
            "[default: 100]",
            "[default: 1MiB]",
            "[default: 10s]",
            "[default: 1m]",
            "[default: 1KiB]",
            "[default: 75s]",
            "[default: 30s]",
            "[default: false]",
        ] {
            assert!(help.contains(default), "no {default} in:\n{help}");
        }
    }

    #[test]
    fn a_flag_not_given_is_none_and_one_given_the_default_is_some() {
        let none = Flags::parse_from(["edgeshard"]);
        assert_eq!(none.max_uri, None);
        assert_eq!(none.header_timeout, None);
        assert_eq!(none.autoindex, None);
        assert!(none.listen.is_empty());
        let given = Flags::parse_from(["edgeshard", "--max-uri", "8KiB", "--autoindex"]);
        assert_eq!(given.max_uri, Some(8 * 1024));
        assert_eq!(given.autoindex, Some(true));
        let off = Flags::parse_from(["edgeshard", "--autoindex=false"]);
        assert_eq!(off.autoindex, Some(false));
    }

    #[test]
    fn what_is_not_given_keeps_what_was_there() {
        // As a file's values will be kept where no flag overrides them.
        let mut config = Config::default();
        config.limits.max_body = 5;
        config.static_files.dotfiles = true;
        Flags::parse_from(["edgeshard", "--max-uri", "4KiB"])
            .apply(&mut config)
            .expect("applies");
        assert_eq!(config.limits.max_uri, 4096);
        assert_eq!(config.limits.max_body, 5);
        assert!(config.static_files.dotfiles);
    }
}
