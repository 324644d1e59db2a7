//! Upstreams: their URLs as configured, their addresses (names resolved
//! at start and refreshed off the shard threads), and each shard's view of
//! one: its idle connections, requests in flight and passive health.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pool::Pool;
use crate::log;
use crate::metrics::UpstreamStats;

/// An upstream as configured: `http://host[:port][/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// The host as written (a name, an IPv4 address or a bracketed IPv6 one).
    pub host: String,
    /// The port (80 when not given).
    pub port: u16,
    /// The path requests go under, without a trailing slash (`""` for none).
    pub base: String,
}

impl UpstreamUrl {
    /// Parses `http://host[:port][/base]`. No user info, query or
    /// fragment; `https://` is not supported (yet).
    pub fn parse(s: &str) -> Result<UpstreamUrl, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("{s:?} is not an http:// URL"))?;
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{s:?} has no host"));
        }
        if authority.contains('@') || base.contains(['?', '#']) || s.contains(char::is_whitespace) {
            return Err(format!(
                "{s:?}: user info, a query or a fragment is not allowed in an upstream URL"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: unbalanced '[' in the host"))?;
            addr.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{s:?}: junk after the IPv6 address"))?,
                ),
            };
            (format!("[{addr}]"), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let valid_host = host.starts_with('[')
            || (!host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
        if !valid_host {
            return Err(format!("{s:?}: {host:?} is not a host name or address"));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("{s:?}: {p:?} is not a port"))?,
        };
        let base = base.trim_end_matches('/').to_string();
        Ok(UpstreamUrl { host, port, base })
    }

    /// `host[:port]` as a `Host` header names it (the port left out when 80).
    pub fn authority(&self) -> String {
        match self.port {
            80 => self.host.clone(),
            p => format!("{}:{p}", self.host),
        }
    }

    fn is_literal(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<IpAddr>().is_ok()
    }

    fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<_> = (host, self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(std::io::Error::other("the name has no addresses"));
        }
        Ok(addrs)
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.base)
    }
}

/// An upstream's addresses, shared by the shards: written by the resolver
/// thread, read by a shard when the generation it saw has moved on (one
/// relaxed load per pick; no lock on the request path).
#[derive(Debug)]
pub struct Resolved {
    url: UpstreamUrl,
    addrs: Mutex<Arc<[SocketAddr]>>,
    generation: AtomicU64,
}

impl Resolved {
    /// Resolves `url` now (blocking: at start, before any shard runs).
    pub fn resolve(url: UpstreamUrl) -> Result<Arc<Resolved>, String> {
        let addrs = url
            .resolve()
            .map_err(|e| format!("{url}: cannot resolve {:?}: {e}", url.host))?;
        Ok(Arc::new(Resolved {
            url,
            addrs: Mutex::new(addrs.into()),
            generation: AtomicU64::new(0),
        }))
    }

    /// The URL.
    pub fn url(&self) -> &UpstreamUrl {
        &self.url
    }

    /// The addresses now.
    pub fn addrs(&self) -> Arc<[SocketAddr]> {
        match self.addrs.lock() {
            Ok(a) => a.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Resolves again; a failure keeps the old addresses (and is logged).
    fn refresh(&self) {
        match self.url.resolve() {
            Ok(new) => {
                let mut cur = match self.addrs.lock() {
                    Ok(a) => a,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if cur[..] != new[..] {
                    *cur = new.into();
                    self.generation.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => log::warning!(
                "{}: cannot resolve {:?} again ({e}); keeping its addresses",
                self.url,
                self.url.host
            ),
        }
    }
}

/// Starts the thread that resolves upstream names again every `every`,
/// if any upstream has a name (addresses need none).
pub fn start_resolver(all: Vec<Arc<Resolved>>, every: Duration) {
    let names: Vec<_> = all.into_iter().filter(|r| !r.url.is_literal()).collect();
    if names.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("edgeshard-dns".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            for r in &names {
                r.refresh();
            }
        });
    if let Err(e) = spawned {
        log::warning!(
            "cannot start the upstream resolver thread ({e}); names stay as resolved at start"
        );
    }
}

/// Passive health settings: after `max_fails` failures in a row
/// (connects, timeouts, malformed answers, 5xx), an upstream is skipped
/// for `fail_timeout`, then given one request to prove itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Failures in a row that eject an upstream.
    pub max_fails: u32,
    /// How long an ejected upstream is skipped.
    pub fail_timeout: Duration,
}

/// One shard's view of one upstream.
#[derive(Debug)]
pub(super) struct Upstream {
    pub(super) resolved: Arc<Resolved>,
    /// The addresses this shard uses, and the generation they came from.
    addrs: RefCell<(u64, Arc<[SocketAddr]>)>,
    /// Next address to connect to (round robin over a name's addresses).
    next_addr: Cell<usize>,
    pub(super) pool: Pool,
    /// Requests sent and not yet finished.
    pub(super) outstanding: Cell<u32>,
    fails: Cell<u32>,
    ejected_until: Cell<Option<Instant>>,
    /// An ejected upstream's one trial request is under way.
    probing: Cell<bool>,
    /// `Host` for [`HostMode::Upstream`](super::HostMode::Upstream).
    pub(super) authority: bytes::Bytes,
    /// Its ejections, pooled connections and latency, for the metrics.
    pub(super) stats: Rc<UpstreamStats>,
}

impl Upstream {
    pub(super) fn new(resolved: Arc<Resolved>, pool: Pool, mount: &'static str) -> Upstream {
        let addrs = (resolved.generation(), resolved.addrs());
        let authority = bytes::Bytes::from(resolved.url.authority());
        let stats = crate::metrics::upstream_stats(mount, resolved.url.to_string());
        Upstream {
            resolved,
            addrs: RefCell::new(addrs),
            next_addr: Cell::new(0),
            pool,
            outstanding: Cell::new(0),
            fails: Cell::new(0),
            ejected_until: Cell::new(None),
            probing: Cell::new(false),
            authority,
            stats,
        }
    }

    /// Takes up the resolver's latest addresses if they changed; the idle
    /// connections go with the old ones (they may lead where the name no
    /// longer points). One relaxed load when nothing changed.
    fn sync_addrs(&self) {
        let generation = self.resolved.generation();
        let mut addrs = self.addrs.borrow_mut();
        if addrs.0 != generation {
            *addrs = (generation, self.resolved.addrs());
            self.pool.clear();
            self.stats.set_idle(0);
        }
    }

    /// The newest idle connection, if any (and the name still points
    /// where it did when the connection was made).
    pub(super) fn take_idle(&self) -> Option<super::pool::UpConn> {
        self.sync_addrs();
        let conn = self.pool.take();
        self.stats.set_idle(self.pool.len());
        conn
    }

    /// The address to connect to next.
    pub(super) fn addr(&self) -> SocketAddr {
        self.sync_addrs();
        let addrs = self.addrs.borrow();
        let i = self.next_addr.get();
        self.next_addr.set(i.wrapping_add(1));
        addrs.1[i % addrs.1.len()]
    }

    /// How many addresses it has now.
    pub(super) fn address_count(&self) -> usize {
        self.addrs.borrow().1.len().max(1)
    }

    /// Whether it may be picked now; an ejected one whose time is up may
    /// take one trial request (see [`Upstream::picked`]).
    pub(super) fn available(&self, now: &mut Option<Instant>) -> bool {
        match self.ejected_until.get() {
            None => true,
            Some(until) => !self.probing.get() && *now.get_or_insert_with(Instant::now) >= until,
        }
    }

    /// When its ejection ends (`None`: not ejected).
    pub(super) fn ejected_until(&self) -> Option<Instant> {
        self.ejected_until.get()
    }

    /// It was picked: an ejected one's request is its trial.
    pub(super) fn picked(&self) {
        if self.ejected_until.get().is_some() {
            self.probing.set(true);
        }
    }

    /// A request it answered well enough (below 500).
    pub(super) fn succeeded(&self) {
        self.fails.set(0);
        if self.ejected_until.take().is_some() {
            self.probing.set(false);
            log::warning!("upstream {} is back", self.resolved.url);
        }
    }

    /// A failed request; ejects it after `max_fails` in a row, or again
    /// after a failed trial.
    pub(super) fn failed(&self, health: &Health, why: &str) {
        let fails = self.fails.get() + 1;
        self.fails.set(fails);
        let trial = self.probing.replace(false);
        if trial || (fails >= health.max_fails && self.ejected_until.get().is_none()) {
            self.ejected_until
                .set(Some(Instant::now() + health.fail_timeout));
            self.pool.clear();
            self.stats.set_idle(0);
            self.stats.ejected();
            log::warning!(
                "upstream {} skipped for {:?} after {fails} failure(s) in a row (last: {why})",
                self.resolved.url,
                health.fail_timeout
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = UpstreamUrl::parse("http://127.0.0.1:9000/v1/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base.as_str()),
            ("127.0.0.1", 9000, "/v1")
        );
        assert_eq!(u.authority(), "127.0.0.1:9000");
        let u = UpstreamUrl::parse("http://[::1]:81").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base.as_str()),
            ("[::1]", 81, "")
        );
        let u = UpstreamUrl::parse("http://app.internal").unwrap();
        assert_eq!((u.port, u.authority().as_str()), (80, "app.internal"));
        for bad in [
            "htp://x",
            "https://x",
            "http://",
            "http://x:0",
            "http://x:99999",
            "http://u@x",
            "http://x/a?b",
            "http://[::1",
            "http://a b",
            "http://x:/",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
