//! The configuration file: TOML, laid over the defaults before the
//! command line is (defaults < file < flags). Every flag has a key, its
//! name in snake case less what its section already says (`--max-uri` is
//! `[limits] max_uri`, `--header-timeout` is `[timeouts] header`,
//! `--proxy-keep-prefix` is `[[proxy]] keep_prefix`); the README lists
//! them. Unknown keys, wrong types and bad values are refused with the
//! file, the line and the dotted key (`edgeshard.toml:12:
//! proxy[1].upstreams[0]: "htp://x" is not an http:// URL`), and so are
//! conflicts that only [`Config::validate`] sees (two mounts on one
//! prefix), traced back to the key that set them.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::units::{parse_duration, parse_size};
use super::{
    invalid, AccessLogFormat, AccessLogTarget, Config, ConfigError, MountSpec, StaticSettings,
};
use crate::middleware::{
    parse_rate, AuthRule, AuthScheme, Cidr, CompressSettings, CorsSettings, Origins,
    RateLimitSettings,
};
use crate::proxy::{Balance, HostMode, MountSettings, UpstreamUrl};
use crate::static_files::CachePolicy;

/// A value read from a string (or, where it says so, a number) with one
/// of the parsers the flags use, so the file and the command line accept
/// the same spellings and refuse with the same words.
macro_rules! parsed {
    ($name:ident, $t:ty, $parse:expr, $expecting:literal, numbers: $numbers:literal) => {
        #[derive(Debug, Clone)]
        struct $name($t);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        ($parse)(s).map($name).map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$name, E> {
                        if !$numbers {
                            return Err(E::invalid_type(de::Unexpected::Signed(n), &self));
                        }
                        self.visit_str(&n.to_string())
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$name, E> {
                        self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

parsed!(Size, usize, parse_size, "a size (a byte count, or a string such as \"16KiB\")", numbers: true);
parsed!(Dur, Duration, parse_duration, "a duration (a string such as \"10s\" or \"500ms\")", numbers: true);
parsed!(Addr, SocketAddr, |s: &str| s.parse::<SocketAddr>().map_err(|_| format!("{s:?} is not an address (try \"0.0.0.0:8080\" or \"[::]:8080\")")), "an address such as \"0.0.0.0:8080\"", numbers: false);
parsed!(Url, UpstreamUrl, UpstreamUrl::parse, "an http:// URL", numbers: false);
parsed!(Net, Cidr, |s: &str| s.parse::<Cidr>(), "an address or block such as \"10.0.0.0/8\"", numbers: false);
parsed!(Rate, f64, parse_rate, "a rate such as \"100/s\"", numbers: false);
parsed!(LogTarget, AccessLogTarget, AccessLogTarget::parse, "\"-\", \"off\" or a path", numbers: false);
parsed!(LogFormat, AccessLogFormat, AccessLogFormat::parse, "\"combined\" or \"json\"", numbers: false);
parsed!(Host, HostMode, super::flags::parse_host_mode, "\"upstream\" or \"client\"", numbers: false);
parsed!(Policy, Balance, super::flags::parse_balance, "\"round-robin\" or \"least-outstanding\"", numbers: false);

/// The file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Vec<Addr>>,
    shards: Option<usize>,
    backlog: Option<u32>,
    max_conns: Option<usize>,
    trusted_proxies: Option<Vec<Net>>,
    request_id: Option<bool>,
    proxy_resolve_every: Option<Dur>,
    limits: Option<LimitsSection>,
    timeouts: Option<TimeoutsSection>,
    log: Option<LogSection>,
    files: Option<FilesSection>,
    #[serde(rename = "static")]
    statics: Option<Vec<StaticSection>>,
    proxy: Option<Vec<ProxySection>>,
    auth: Option<Vec<AuthSection>>,
    security: Option<SecuritySection>,
    compress: Option<CompressSection>,
    cors: Option<CorsSection>,
    rate_limit: Option<RateLimitSection>,
    metrics: Option<MetricsSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsSection {
    enabled: Option<bool>,
    listen: Option<Addr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_uri: Option<Size>,
    max_header_bytes: Option<Size>,
    max_headers: Option<usize>,
    max_body: Option<Size>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsSection {
    header: Option<Dur>,
    body: Option<Dur>,
    min_body_rate: Option<Size>,
    idle: Option<Dur>,
    write: Option<Dur>,
    drain: Option<Dur>,
    handler: Option<Dur>,
    shutdown_delay: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    access: Option<LogTarget>,
    format: Option<LogFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesSection {
    autoindex: Option<bool>,
    dotfiles: Option<bool>,
    inline_max: Option<Size>,
    cache: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticSection {
    prefix: String,
    root: PathBuf,
    immutable: Option<bool>,
    autoindex: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxySection {
    prefix: String,
    upstreams: Vec<Url>,
    keep_prefix: Option<bool>,
    host: Option<Host>,
    balance: Option<Policy>,
    max_fails: Option<u32>,
    fail_timeout: Option<Dur>,
    connect_timeout: Option<Dur>,
    read_timeout: Option<Dur>,
    max_body: Option<Size>,
    max_idle: Option<usize>,
    idle_timeout: Option<Dur>,
    via: Option<bool>,
    upgrades: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum SchemeName {
    Bearer,
    Basic,
    Jwt,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthSection {
    prefix: String,
    scheme: SchemeName,
    /// The tokens, the htpasswd file or the JWT key.
    file: PathBuf,
    /// JWTs must carry this `iss` (`jwt` only; one value for all).
    issuer: Option<String>,
    /// JWTs must carry this among their `aud` (`jwt` only; one value for all).
    audience: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecuritySection {
    headers: Option<bool>,
    referrer_policy: Option<String>,
    hsts: Option<Dur>,
    csp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressSection {
    enabled: Option<bool>,
    min: Option<Size>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorsSection {
    /// `"*"` or a list of origins.
    origins: OriginsValue,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    expose: Option<Vec<String>>,
    credentials: Option<bool>,
    max_age: Option<Dur>,
}

#[derive(Debug)]
struct OriginsValue(Origins);

impl<'de> Deserialize<'de> for OriginsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OriginsValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"*\" or a list of origins")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OriginsValue, E> {
                match s {
                    "*" => Ok(OriginsValue(Origins::Any)),
                    _ => Err(E::custom(format!(
                        "{s:?}: give \"*\" or a list, such as [\"https://a.example\"]"
                    ))),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OriginsValue, A::Error> {
                let mut list = Vec::new();
                while let Some(o) = seq.next_element::<String>()? {
                    list.push(o);
                }
                if list.is_empty() {
                    return Err(de::Error::custom("give at least one origin, or \"*\""));
                }
                Ok(OriginsValue(Origins::List(list)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitSection {
    rate: Rate,
    burst: Option<u32>,
}

/// A configuration file as read: its path and text, for saying where a
/// key is.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(path.display().to_string(), format!("cannot read it: {e}")))?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            text,
        })
    }

    /// A source from text (for tests, and `path` only names it).
    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// `file:line: key`, for an error about `key` (dotted, with `[i]`
    /// for array entries); the line is where the key is set, or the
    /// nearest enclosing table that is in the file.
    fn locate(&self, key: &str) -> String {
        match self.span_of(key) {
            Some(at) => format!("{}:{}: {key}", self.path.display(), self.line_of(at)),
            None => format!("{}: {key}", self.path.display()),
        }
    }

    fn line_of(&self, at: usize) -> usize {
        let at = at.min(self.text.len());
        self.text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// Where `key` (or the deepest part of it that exists) starts.
    fn span_of(&self, key: &str) -> Option<usize> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut best = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut value: Option<&Spanned<DeValue<'_>>> = None;
        for part in split_key(key) {
            match part {
                KeyPart::Name(name) => {
                    let t = match value {
                        None => table?,
                        Some(v) => match v.get_ref() {
                            DeValue::Table(t) => t,
                            _ => return best,
                        },
                    };
                    let (k, v) = t.get_key_value(name)?;
                    best = Some(k.span().start);
                    value = Some(v);
                    table = None;
                }
                KeyPart::Index(i) => {
                    let Some(DeValue::Array(a)) = value.map(Spanned::get_ref) else {
                        return best;
                    };
                    let Some(v) = a.get(i) else { return best };
                    best = Some(v.span().start);
                    value = Some(v);
                }
            }
        }
        best
    }
}

enum KeyPart<'k> {
    Name(&'k str),
    Index(usize),
}

/// `proxy[1].upstreams[0]` → proxy, 1, upstreams, 0.
fn split_key(key: &str) -> Vec<KeyPart<'_>> {
    let mut parts = Vec::new();
    for segment in key.split('.') {
        let mut rest = segment;
        if let Some(open) = rest.find('[') {
            parts.push(KeyPart::Name(&rest[..open]));
            rest = &rest[open..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some(close) = r.find(']') else { break };
                if let Ok(i) = r[..close].parse() {
                    parts.push(KeyPart::Index(i));
                }
                rest = &r[close + 1..];
            }
        } else {
            parts.push(KeyPart::Name(rest));
        }
    }
    parts
}

/// Which key of the file each flag's setting has, for saying where a
/// value that [`Config::validate`] refuses was set.
const KEY_OF_FLAG: &[(&str, &str)] = &[
    ("--listen", "listen"),
    ("--shards", "shards"),
    ("--backlog", "backlog"),
    ("--max-conns", "max_conns"),
    ("--trusted-proxy", "trusted_proxies"),
    ("--max-uri", "limits.max_uri"),
    ("--max-header-bytes", "limits.max_header_bytes"),
    ("--max-headers", "limits.max_headers"),
    ("--max-body", "limits.max_body"),
    ("--header-timeout", "timeouts.header"),
    ("--body-timeout", "timeouts.body"),
    ("--idle-timeout", "timeouts.idle"),
    ("--write-timeout", "timeouts.write"),
    ("--drain-timeout", "timeouts.drain"),
    ("--handler-timeout", "timeouts.handler"),
    ("--access-log", "log.access"),
    ("--file-cache", "files.cache"),
    ("--referrer-policy", "security.referrer_policy"),
    ("--csp", "security.csp"),
    ("--cors", "cors"),
    ("--rate-limit", "rate_limit"),
    ("--auth", "auth"),
    ("--proxy", "proxy"),
    ("--metrics-listen", "metrics.listen"),
];

impl ConfigFile {
    /// Parses the file and lays it over `config`. Errors name this file,
    /// the line and the key.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        let de = toml::de::Deserializer::parse(&self.text).map_err(|e| self.toml_error(&e, ""))?;
        let file: FileConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            self.toml_error(e.inner(), if path == "." { "" } else { &path })
        })?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Absolute, so the configuration in effect says where it points
        // whatever the directory it is read from.
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        file.apply(config, &base).map_err(|e| self.relocate(e))
    }

    /// A validation error about a value from this file, made to name the
    /// file, the line and the key rather than the flag.
    pub fn relocate(&self, e: ConfigError) -> ConfigError {
        if e.flag.starts_with(&format!("{}:", self.path.display())) {
            return e;
        }
        let key = KEY_OF_FLAG
            .iter()
            .find(|(flag, _)| *flag == e.flag)
            .map_or(e.flag.as_ref(), |(_, key)| key);
        invalid(self.locate(key), e.reason)
    }

    fn toml_error(&self, e: &toml::de::Error, path: &str) -> ConfigError {
        let reason = e.message().trim_end().to_string();
        // An unknown key is best shown at itself, not at its table.
        let unknown = reason
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next());
        // The path of an unknown key ends in the key itself (or not,
        // depending on where the table was visited).
        let key = match unknown {
            Some(name) if path.is_empty() => name.to_string(),
            Some(name) if path == name || path.ends_with(&format!(".{name}")) => path.to_string(),
            Some(name) => format!("{path}.{name}"),
            None => path.to_string(),
        };
        let line = match (unknown, e.span()) {
            (None, Some(span)) => Some(self.line_of(span.start)),
            _ => self.span_of(&key).map(|at| self.line_of(at)),
        };
        let at = match line {
            Some(l) => format!("{}:{l}", self.path.display()),
            None => self.path.display().to_string(),
        };
        match key.is_empty() {
            true => invalid(at, reason),
            false => invalid(format!("{at}: {key}"), reason),
        }
    }
}

fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *field = v;
    }
}

impl FileConfig {
    /// Lays the file over `config`; errors name the key (the caller adds
    /// the file and the line). Relative paths are taken from `base`, the
    /// file's directory, so a file under version control can name what
    /// sits beside it wherever the server is started.
    fn apply(self, config: &mut Config, base: &Path) -> Result<(), ConfigError> {
        let path = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        if let Some(listen) = self.listen {
            let mut listen: Vec<SocketAddr> = listen.into_iter().map(|a| a.0).collect();
            listen.dedup();
            config.listen = listen;
        }
        if let Some(n) = self.shards {
            config.shards =
                Some(NonZeroUsize::new(n).ok_or_else(|| invalid("shards", "must be at least 1"))?);
        }
        if let Some(n) = self.max_conns {
            config.max_conns =
                NonZeroUsize::new(n).ok_or_else(|| invalid("max_conns", "must be at least 1"))?;
        }
        set(&mut config.backlog, self.backlog);
        set(&mut config.middleware.request_id, self.request_id);
        let trusted: Vec<Cidr> = self
            .trusted_proxies
            .map(|t| t.into_iter().map(|n| n.0).collect())
            .unwrap_or_default();
        set(
            &mut config.proxy.resolve_every,
            self.proxy_resolve_every.map(|d| d.0),
        );
        if let Some(l) = self.limits {
            let limits = &mut config.limits;
            set(&mut limits.max_uri, l.max_uri.map(|s| s.0));
            set(
                &mut limits.max_header_bytes,
                l.max_header_bytes.map(|s| s.0),
            );
            set(&mut limits.max_headers, l.max_headers);
            set(&mut limits.max_body, l.max_body.map(|s| s.0));
        }
        if let Some(t) = self.timeouts {
            let timeouts = &mut config.timeouts;
            set(&mut timeouts.header, t.header.map(|d| d.0));
            set(&mut timeouts.body, t.body.map(|d| d.0));
            set(
                &mut timeouts.min_body_rate,
                t.min_body_rate.map(|s| s.0 as u64),
            );
            set(&mut timeouts.idle, t.idle.map(|d| d.0));
            set(&mut timeouts.write, t.write.map(|d| d.0));
            set(&mut timeouts.drain, t.drain.map(|d| d.0));
            if let Some(h) = t.handler {
                timeouts.handler = Some(h.0);
            }
            set(&mut config.shutdown_delay, t.shutdown_delay.map(|d| d.0));
        }
        if let Some(log) = self.log {
            let target = log.access.map(|t| match t.0 {
                AccessLogTarget::Path(p) => AccessLogTarget::Path(path(p)),
                other => other,
            });
            set(&mut config.access_log.target, target);
            set(&mut config.access_log.format, log.format.map(|f| f.0));
        }
        let files: &mut StaticSettings = &mut config.static_files;
        if let Some(f) = self.files {
            set(&mut files.autoindex, f.autoindex);
            set(&mut files.dotfiles, f.dotfiles);
            set(&mut files.inline_max, f.inline_max.map(|s| s.0 as u64));
            set(&mut files.cache_entries, f.cache);
        }
        if let Some(statics) = self.statics {
            files.mounts = statics
                .into_iter()
                .enumerate()
                .map(|(i, s)| MountSpec {
                    policy: match s.immutable {
                        Some(true) => CachePolicy::Immutable,
                        _ => CachePolicy::Revalidate,
                    },
                    autoindex: s.autoindex,
                    origin: Cow::Owned(format!("static[{i}]")),
                    ..MountSpec::new(s.prefix, path(s.root))
                })
                .collect();
        }
        let mw = &mut config.middleware;
        if let Some(s) = self.security {
            if let Some(on) = s.headers {
                mw.security.nosniff = on;
                if !on {
                    mw.security.referrer_policy = None;
                }
            }
            if s.referrer_policy.is_some() {
                mw.security.referrer_policy = s.referrer_policy;
            }
            if let Some(h) = s.hsts {
                mw.security.hsts = Some(h.0);
            }
            if s.csp.is_some() {
                mw.security.csp = s.csp;
            }
        }
        if let Some(c) = self.compress {
            match c.enabled {
                Some(false) => mw.compress = None,
                _ => {
                    let settings = mw.compress.get_or_insert_with(CompressSettings::default);
                    set(&mut settings.min_size, c.min.map(|s| s.0));
                }
            }
        }
        if let Some(c) = self.cors {
            let mut cors = CorsSettings::new(c.origins.0);
            set(&mut cors.methods, c.methods);
            set(&mut cors.headers, c.headers);
            set(&mut cors.expose, c.expose);
            set(&mut cors.credentials, c.credentials);
            if let Some(age) = c.max_age {
                cors.max_age = Some(age.0);
            }
            mw.cors = Some(cors);
        }
        if let Some(r) = self.rate_limit {
            let mut rl = RateLimitSettings::new(r.rate.0);
            set(&mut rl.burst, r.burst);
            rl.trusted_proxies = trusted.clone();
            mw.rate_limit = Some(rl);
        }
        if let Some(rules) = self.auth {
            mw.auth.rules = Vec::with_capacity(rules.len());
            for (i, a) in rules.into_iter().enumerate() {
                let rule = AuthRule::parse(&format!(
                    "{}={}:{}",
                    a.prefix,
                    match a.scheme {
                        SchemeName::Bearer => "bearer",
                        SchemeName::Basic => "basic",
                        SchemeName::Jwt => "jwt",
                    },
                    path(a.file).display()
                ))
                .map_err(|e| invalid(format!("auth[{i}]"), e))?;
                let jwt = matches!(rule.scheme, AuthScheme::Jwt(_));
                for (name, value, slot) in [
                    ("issuer", a.issuer, &mut mw.auth.jwt_issuer),
                    ("audience", a.audience, &mut mw.auth.jwt_audience),
                ] {
                    let Some(value) = value else { continue };
                    let key = format!("auth[{i}].{name}");
                    if !jwt {
                        return Err(invalid(key, "only for scheme = \"jwt\""));
                    }
                    match slot {
                        Some(other) if *other != value => {
                            return Err(invalid(
                                key,
                                format!(
                                    "{value:?}: every jwt rule has one {name} ({other:?} before)"
                                ),
                            ))
                        }
                        _ => *slot = Some(value),
                    }
                }
                mw.auth.rules.push(rule);
            }
        }
        if !trusted.is_empty() && mw.rate_limit.is_none() && self.proxy.is_none() {
            return Err(invalid(
                "trusted_proxies",
                "needs [rate_limit] or [[proxy]] (it says whose forwarding headers they believe)",
            ));
        }
        let proxy = &mut config.proxy;
        if !trusted.is_empty() {
            proxy.trusted = trusted;
        }
        if let Some(mounts) = self.proxy {
            proxy.mounts = Vec::with_capacity(mounts.len());
            for (i, p) in mounts.into_iter().enumerate() {
                let key = |k: &str| format!("proxy[{i}].{k}");
                if !p.prefix.starts_with('/') {
                    return Err(invalid(
                        key("prefix"),
                        format!("{:?}: a prefix starts with /", p.prefix),
                    ));
                }
                let mut m =
                    MountSettings::new(&p.prefix, p.upstreams.into_iter().map(|u| u.0).collect());
                m.origin = Cow::Owned(format!("proxy[{i}]"));
                set(&mut m.keep_prefix, p.keep_prefix);
                set(&mut m.host, p.host.map(|h| h.0));
                set(&mut m.balance, p.balance.map(|b| b.0));
                if p.max_fails == Some(0) {
                    return Err(invalid(key("max_fails"), "must be at least 1"));
                }
                set(&mut m.health.max_fails, p.max_fails);
                for (name, d, slot) in [
                    ("fail_timeout", p.fail_timeout, &mut m.health.fail_timeout),
                    ("connect_timeout", p.connect_timeout, &mut m.connect_timeout),
                    ("read_timeout", p.read_timeout, &mut m.read_timeout),
                    ("idle_timeout", p.idle_timeout, &mut m.idle_timeout),
                ] {
                    if let Some(Dur(d)) = d {
                        if d.is_zero() {
                            return Err(invalid(key(name), "must be greater than zero"));
                        }
                        *slot = d;
                    }
                }
                set(&mut m.max_body, p.max_body.map(|s| s.0 as u64));
                set(&mut m.max_idle, p.max_idle);
                set(&mut m.via, p.via);
                set(&mut m.upgrades, p.upgrades);
                proxy.mounts.push(m);
            }
        }
        if let Some(m) = self.metrics {
            set(&mut config.metrics, m.enabled);
            if let Some(a) = m.listen {
                config.metrics_listen = Some(a.0);
            }
        }
        if config.proxy.resolve_every.is_zero() {
            return Err(invalid("proxy_resolve_every", "must be greater than zero"));
        }
        Ok(())
    }
}

/// The configuration as a file would say it: every key this module
/// reads, with the value in effect (defaults included), in the file's
/// spelling, so that it reads back as the same configuration.
pub fn effective(config: &Config) -> String {
    use super::units::{show_duration, show_size};
    use toml::{Table, Value};
    let s = |v: String| Value::String(v);
    let dur = |d: Duration| Value::String(show_duration(d));
    let size = |n: u64| Value::String(show_size(n));
    let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let mut top = Table::new();
    top.insert(
        "listen".into(),
        Value::Array(config.listen.iter().map(|a| s(a.to_string())).collect()),
    );
    if let Some(n) = config.shards {
        top.insert("shards".into(), int(n.get() as u64));
    }
    top.insert("backlog".into(), int(u64::from(config.backlog)));
    top.insert("max_conns".into(), int(config.max_conns.get() as u64));
    let mw = &config.middleware;
    top.insert("request_id".into(), Value::Boolean(mw.request_id));
    let mut trusted: Vec<String> = config.proxy.trusted.iter().map(|c| c.to_string()).collect();
    if let Some(rl) = &mw.rate_limit {
        for c in &rl.trusted_proxies {
            if !trusted.contains(&c.to_string()) {
                trusted.push(c.to_string());
            }
        }
    }
    if !trusted.is_empty() {
        top.insert("trusted_proxies".into(), strings(&trusted));
    }
    top.insert(
        "proxy_resolve_every".into(),
        dur(config.proxy.resolve_every),
    );

    let l = &config.limits;
    let mut limits = Table::new();
    limits.insert("max_uri".into(), size(l.max_uri as u64));
    limits.insert("max_header_bytes".into(), size(l.max_header_bytes as u64));
    limits.insert("max_headers".into(), int(l.max_headers as u64));
    limits.insert("max_body".into(), size(l.max_body as u64));
    top.insert("limits".into(), Value::Table(limits));

    let t = &config.timeouts;
    let mut timeouts = Table::new();
    timeouts.insert("header".into(), dur(t.header));
    timeouts.insert("body".into(), dur(t.body));
    timeouts.insert("min_body_rate".into(), size(t.min_body_rate));
    timeouts.insert("idle".into(), dur(t.idle));
    timeouts.insert("write".into(), dur(t.write));
    timeouts.insert("drain".into(), dur(t.drain));
    if let Some(h) = t.handler {
        timeouts.insert("handler".into(), dur(h));
    }
    timeouts.insert("shutdown_delay".into(), dur(config.shutdown_delay));
    top.insert("timeouts".into(), Value::Table(timeouts));

    let mut log = Table::new();
    log.insert("access".into(), s(config.access_log.target.to_string()));
    log.insert("format".into(), s(config.access_log.format.to_string()));
    top.insert("log".into(), Value::Table(log));

    let f = &config.static_files;
    let mut files = Table::new();
    files.insert("autoindex".into(), Value::Boolean(f.autoindex));
    files.insert("dotfiles".into(), Value::Boolean(f.dotfiles));
    files.insert("inline_max".into(), size(f.inline_max));
    files.insert("cache".into(), int(f.cache_entries as u64));
    top.insert("files".into(), Value::Table(files));

    let sec = &mw.security;
    let mut security = Table::new();
    security.insert(
        "headers".into(),
        Value::Boolean(sec.nosniff || sec.referrer_policy.is_some()),
    );
    if let Some(p) = &sec.referrer_policy {
        security.insert("referrer_policy".into(), s(p.clone()));
    }
    if let Some(h) = sec.hsts {
        security.insert("hsts".into(), dur(h));
    }
    if let Some(c) = &sec.csp {
        security.insert("csp".into(), s(c.clone()));
    }
    top.insert("security".into(), Value::Table(security));

    let mut compress = Table::new();
    compress.insert("enabled".into(), Value::Boolean(mw.compress.is_some()));
    if let Some(c) = &mw.compress {
        compress.insert("min".into(), size(c.min_size as u64));
    }
    top.insert("compress".into(), Value::Table(compress));

    if let Some(c) = &mw.cors {
        let mut cors = Table::new();
        cors.insert(
            "origins".into(),
            match &c.origins {
                Origins::Any => s("*".into()),
                Origins::List(l) => strings(l),
            },
        );
        cors.insert("methods".into(), strings(&c.methods));
        cors.insert("headers".into(), strings(&c.headers));
        cors.insert("expose".into(), strings(&c.expose));
        cors.insert("credentials".into(), Value::Boolean(c.credentials));
        if let Some(a) = c.max_age {
            cors.insert("max_age".into(), dur(a));
        }
        top.insert("cors".into(), Value::Table(cors));
    }
    if let Some(r) = &mw.rate_limit {
        let mut rl = Table::new();
        // In the unit that makes the count whole, as it was likely written.
        let rate = [("s", 1.0), ("m", 60.0), ("h", 3600.0)]
            .iter()
            .map(|&(unit, secs)| (unit, r.per_second * secs))
            .find(|(_, n)| (n - n.round()).abs() < 1e-9)
            .map_or(format!("{}/s", r.per_second), |(unit, n)| {
                format!("{}/{unit}", n.round())
            });
        rl.insert("rate".into(), s(rate));
        rl.insert("burst".into(), int(u64::from(r.burst)));
        top.insert("rate_limit".into(), Value::Table(rl));
    }

    if !f.mounts.is_empty() {
        let mounts = f
            .mounts
            .iter()
            .map(|m| {
                let mut t = Table::new();
                t.insert("prefix".into(), s(m.prefix.clone()));
                t.insert("root".into(), s(m.dir.display().to_string()));
                t.insert(
                    "immutable".into(),
                    Value::Boolean(m.policy == CachePolicy::Immutable),
                );
                if let Some(a) = m.autoindex {
                    t.insert("autoindex".into(), Value::Boolean(a));
                }
                Value::Table(t)
            })
            .collect();
        top.insert("static".into(), Value::Array(mounts));
    }
    if !config.proxy.mounts.is_empty() {
        let mounts = config
            .proxy
            .mounts
            .iter()
            .map(|m| {
                let mut t = Table::new();
                t.insert("prefix".into(), s(m.prefix.clone()));
                t.insert(
                    "upstreams".into(),
                    Value::Array(m.upstreams.iter().map(|u| s(u.to_string())).collect()),
                );
                t.insert("keep_prefix".into(), Value::Boolean(m.keep_prefix));
                let host = match m.host {
                    HostMode::Upstream => "upstream",
                    HostMode::Client => "client",
                };
                t.insert("host".into(), s(host.into()));
                let balance = match m.balance {
                    Balance::RoundRobin => "round-robin",
                    Balance::LeastOutstanding => "least-outstanding",
                };
                t.insert("balance".into(), s(balance.into()));
                t.insert("max_fails".into(), int(u64::from(m.health.max_fails)));
                t.insert("fail_timeout".into(), dur(m.health.fail_timeout));
                t.insert("connect_timeout".into(), dur(m.connect_timeout));
                t.insert("read_timeout".into(), dur(m.read_timeout));
                t.insert("max_body".into(), size(m.max_body));
                t.insert("max_idle".into(), int(m.max_idle as u64));
                t.insert("idle_timeout".into(), dur(m.idle_timeout));
                t.insert("via".into(), Value::Boolean(m.via));
                t.insert("upgrades".into(), Value::Boolean(m.upgrades));
                Value::Table(t)
            })
            .collect();
        top.insert("proxy".into(), Value::Array(mounts));
    }
    if !mw.auth.rules.is_empty() {
        let rules = mw
            .auth
            .rules
            .iter()
            .map(|r| {
                let mut t = Table::new();
                t.insert("prefix".into(), s(r.prefix.clone()));
                let (scheme, file) = match &r.scheme {
                    AuthScheme::Bearer(f) => ("bearer", f),
                    AuthScheme::Basic(f) => ("basic", f),
                    AuthScheme::Jwt(f) => ("jwt", f),
                };
                t.insert("scheme".into(), s(scheme.into()));
                t.insert("file".into(), s(file.display().to_string()));
                if scheme == "jwt" {
                    if let Some(i) = &mw.auth.jwt_issuer {
                        t.insert("issuer".into(), s(i.clone()));
                    }
                    if let Some(a) = &mw.auth.jwt_audience {
                        t.insert("audience".into(), s(a.clone()));
                    }
                }
                Value::Table(t)
            })
            .collect();
        top.insert("auth".into(), Value::Array(rules));
    }
    let mut metrics = Table::new();
    metrics.insert("enabled".into(), Value::Boolean(config.metrics));
    if let Some(a) = config.metrics_listen {
        metrics.insert("listen".into(), s(a.to_string()));
    }
    top.insert("metrics".into(), Value::Table(metrics));
    toml::to_string(&top).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let file = ConfigFile::from_text("/etc/e.toml", text);
        let mut config = Config::default();
        file.apply(&mut config).map_err(|e| e.to_string())?;
        config
            .validate()
            .map_err(|e| file.relocate(e).to_string())?;
        Ok(config)
    }

    #[test]
    fn every_section_lands_in_the_configuration() {
        let c = load(
            r#"
listen = ["127.0.0.1:8081", "[::1]:8081"]
shards = 3
backlog = 128
max_conns = 50
trusted_proxies = ["10.0.0.0/8"]
request_id = true
proxy_resolve_every = "5s"
[limits]
max_uri = "4KiB"
max_header_bytes = 20000
max_headers = 50
max_body = "2MiB"
[timeouts]
header = "3s"
body = "4s"
min_body_rate = "2KiB"
idle = "5s"
write = "6s"
drain = "7s"
handler = "8s"
[log]
access = "access.log"
format = "json"
[files]
autoindex = true
dotfiles = true
inline_max = "4KiB"
cache = 9
[[static]]
prefix = "/assets"
root = "www/assets"
immutable = true
autoindex = false
[[proxy]]
prefix = "/app1/"
upstreams = ["http://127.0.0.1:9001/base"]
keep_prefix = true
host = "client"
balance = "least-outstanding"
max_fails = 3
fail_timeout = "20s"
connect_timeout = "1s"
read_timeout = "2s"
max_body = "1GiB"
max_idle = 8
idle_timeout = "9s"
via = true
upgrades = false
[[auth]]
prefix = "/app1/"
scheme = "jwt"
file = "/etc/key.pem"
issuer = "me"
[security]
headers = false
csp = "default-src 'self'"
[compress]
min = "2KiB"
[cors]
origins = ["https://a.example"]
credentials = true
[rate_limit]
rate = "10/s"
burst = 5
"#,
        )
        .expect("valid");
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.shards.map(NonZeroUsize::get), Some(3));
        assert_eq!((c.backlog, c.max_conns.get()), (128, 50));
        assert_eq!(c.limits.max_uri, 4096);
        assert_eq!(c.limits.max_header_bytes, 20000);
        assert_eq!(c.limits.max_body, 2 << 20);
        assert_eq!(c.timeouts.min_body_rate, 2048);
        assert_eq!(c.timeouts.handler, Some(Duration::from_secs(8)));
        assert_eq!(c.timeouts.drain, Duration::from_secs(7));
        assert_eq!(
            c.access_log.target,
            AccessLogTarget::Path("/etc/access.log".into()),
            "relative to the file's directory"
        );
        assert_eq!(c.access_log.format, AccessLogFormat::Json);
        let f = &c.static_files;
        assert!(f.autoindex && f.dotfiles);
        assert_eq!((f.inline_max, f.cache_entries), (4096, 9));
        let m = &f.mounts[0];
        assert_eq!(m.dir, PathBuf::from("/etc/www/assets"));
        assert_eq!(
            (m.policy, m.autoindex),
            (CachePolicy::Immutable, Some(false))
        );
        assert_eq!(m.origin, "static[0]");
        let p = &c.proxy.mounts[0];
        assert_eq!(p.prefix, "/app1/");
        assert_eq!(p.upstreams[0].base, "/base");
        assert!(p.keep_prefix && p.via && !p.upgrades);
        assert_eq!(
            (p.host, p.balance),
            (HostMode::Client, Balance::LeastOutstanding)
        );
        assert_eq!(p.health.max_fails, 3);
        assert_eq!(p.read_timeout, Duration::from_secs(2));
        assert_eq!((p.max_body, p.max_idle), (1 << 30, 8));
        assert_eq!(c.proxy.trusted.len(), 1);
        assert_eq!(c.proxy.resolve_every, Duration::from_secs(5));
        let mw = &c.middleware;
        assert!(mw.request_id && !mw.security.nosniff);
        assert_eq!(mw.security.referrer_policy, None);
        assert_eq!(mw.compress.as_ref().map(|c| c.min_size), Some(2048));
        assert!(mw.cors.as_ref().is_some_and(|c| c.credentials));
        let rl = mw.rate_limit.as_ref().expect("rate limit");
        assert_eq!(
            (rl.per_second, rl.burst, rl.trusted_proxies.len()),
            (10.0, 5, 1)
        );
        assert_eq!(mw.auth.rules.len(), 1);
        assert_eq!(mw.auth.jwt_issuer.as_deref(), Some("me"));
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        for (text, error) in [
            (
                "shards = 2\n[limits]\nmax_urii = 5\n",
                "/etc/e.toml:3: limits.max_urii: unknown field `max_urii`, expected one of \
                 `max_uri`, `max_header_bytes`, `max_headers`, `max_body`",
            ),
            (
                "\nshards = \"two\"\n",
                "/etc/e.toml:2: shards: invalid type: string \"two\", expected usize",
            ),
            (
                "[[proxy]]\nprefix = \"/a/\"\nupstreams = [\"http://h:1\"]\n\
                 [[proxy]]\nprefix = \"/b/\"\nupstreams = [\"http://h:1\", \"htp://x\"]\n",
                "/etc/e.toml:6: proxy[1].upstreams[1]: \"htp://x\" is not an http:// URL",
            ),
            (
                "[timeouts]\nidle = \"soon\"\n",
                "/etc/e.toml:2: timeouts.idle: `soon` is not a duration (try 10s or 500ms)",
            ),
            (
                "[limits]\n\nmax_uri = 10\n",
                "/etc/e.toml:3: limits.max_uri: must be at least 16 bytes",
            ),
            (
                "[[static]]\nprefix = \"/a/\"\nroot = \"/tmp\"\n\
                 [[static]]\nprefix = \"/a\"\nroot = \"/srv\"\n",
                "/etc/e.toml:4: static[1]: `/a/` is mounted twice",
            ),
            (
                "[[static]]\nprefix = \"/a/\"\nroot = \"/tmp\"\n\
                 [[proxy]]\nprefix = \"/a\"\nupstreams = [\"http://h:1\"]\n",
                "/etc/e.toml:4: proxy[0]: `/a/` is both a proxy mount and a static mount; \
                 give each its own prefix",
            ),
            (
                "[[auth]]\nprefix = \"/a/\"\nscheme = \"basic\"\nfile = \"p\"\nissuer = \"x\"\n",
                "/etc/e.toml:5: auth[0].issuer: only for scheme = \"jwt\"",
            ),
            (
                "trusted_proxies = [\"10.0.0.0/8\"]\n",
                "/etc/e.toml:1: trusted_proxies: needs [rate_limit] or [[proxy]] \
                 (it says whose forwarding headers they believe)",
            ),
            (
                "listen = [\n",
                "/etc/e.toml:1: unclosed array, expected `]`",
            ),
        ] {
            assert_eq!(load(text).unwrap_err(), error, "{text}");
        }
    }

    #[test]
    fn the_flags_override_the_file_and_the_file_the_defaults() {
        use clap::Parser;
        let file = ConfigFile::from_text("e.toml", "[limits]\nmax_body = 5\nmax_uri = \"4KiB\"\n");
        let flags = super::super::Flags::parse_from(["edgeshard", "--max-body", "7"]);
        let c = Config::load(Config::default(), Some(&file), flags).expect("valid");
        assert_eq!(c.limits.max_body, 7);
        assert_eq!(c.limits.max_uri, 4096);
        assert_eq!(c.limits.max_headers, Config::default().limits.max_headers);
    }

    #[test]
    fn the_configuration_in_effect_reads_back_as_itself() {
        let text = "listen = [\"127.0.0.1:1\"]\n[[proxy]]\nprefix = \"/p/\"\n\
                    upstreams = [\"http://h:1\"]\nbalance = \"least-outstanding\"\n\
                    [cors]\norigins = \"*\"\n[rate_limit]\nrate = \"2/m\"\n\
                    [[static]]\nprefix = \"/s/\"\nroot = \"/srv\"\nimmutable = true\n";
        let first = load(text).expect("valid").to_toml();
        let again = load(&first).expect("what it prints is valid").to_toml();
        assert_eq!(first, again);
        assert!(first.contains("rate = \"2/m\""), "{first}");
    }
}
