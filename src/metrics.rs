//! Per-shard counters: plain `Cell`s and arrays, bumped by the shard's
//! own connections and handlers with no lock and no atomic, read when
//! the shard answers `/api/stats` or `/metrics`, and gathered from the
//! other shards by message ([`crate::mesh`]).
//!
//! Requests are counted by route: the pattern of the `routes!` route that
//! matched, `static`, `proxy PREFIX`, or `other` (the router's own 404s,
//! 405s and redirects, `OPTIONS *`). Each route has its row in an array,
//! found by the address of its label (the labels are `'static`).

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::http::{Method, StatusCode};

/// Upper bounds of the request duration histogram's buckets (seconds),
/// the last one `+Inf`.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];
const BUCKET_MICROS: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000, 30_000_000,
];

/// The methods counted apart; the rest are `OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];

fn method_index(m: Method) -> usize {
    match m {
        Method::Get => 0,
        Method::Head => 1,
        Method::Post => 2,
        Method::Put => 3,
        Method::Delete => 4,
        Method::Patch => 5,
        Method::Options => 6,
        _ => 7,
    }
}

/// The route label of requests no route, mount or static handler claimed.
pub const OTHER_ROUTE: &str = "other";

/// Durations by bucket (as [`DURATION_BUCKETS`], then `+Inf`; not
/// cumulative) and their sum.
#[derive(Debug, Clone, Copy, Default)]
pub struct Histogram {
    /// Counts by bucket.
    pub buckets: [u64; 15],
    /// Sum of the durations (µs).
    pub sum_micros: u64,
}

impl Histogram {
    /// One duration.
    #[inline]
    pub fn observe(&mut self, took: Duration) {
        let micros = took
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(took.subsec_micros()));
        // The first bucket whose bound is not below it (`+Inf` past the last).
        let bucket = BUCKET_MICROS.partition_point(|&b| b < micros);
        self.buckets[bucket] += 1;
        self.sum_micros += micros;
    }

    fn add(&mut self, other: &Histogram) {
        for (b, n) in other.buckets.iter().enumerate() {
            self.buckets[b] += n;
        }
        self.sum_micros += other.sum_micros;
    }

    /// Its lines in the text format: `name_bucket{labels,le=…}`, `_sum`, `_count`.
    fn write(&self, w: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = match DURATION_BUCKETS.get(b) {
                Some(le) => le.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(w, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(w, "{name}_sum{{{labels}}} {}", self.sum_micros as f64 / 1e6);
        let _ = writeln!(w, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// One route's counters on one shard.
#[derive(Debug, Clone)]
pub struct RouteRow {
    /// The route's label.
    pub route: &'static str,
    /// Responses by method (as [`METHODS`]) and status class (1xx–5xx).
    pub counts: [[u64; 5]; 8],
    /// Their durations.
    pub durations: Histogram,
}

impl RouteRow {
    fn new(route: &'static str) -> RouteRow {
        RouteRow {
            route,
            counts: [[0; 5]; 8],
            durations: Histogram::default(),
        }
    }
}

/// One upstream of one proxy mount, on one shard: what the proxy counts
/// for it besides its requests.
#[derive(Debug)]
pub struct UpstreamStats {
    mount: &'static str,
    upstream: String,
    ejections: Cell<u64>,
    idle: Cell<u64>,
    latency: RefCell<Histogram>,
}

impl UpstreamStats {
    /// It was taken out of rotation.
    pub(crate) fn ejected(&self) {
        self.ejections.set(self.ejections.get() + 1);
    }

    /// It has `n` idle connections in this shard's pool.
    pub(crate) fn set_idle(&self, n: usize) {
        self.idle.set(n as u64);
    }

    /// It answered with a response head `took` after the request left.
    pub(crate) fn answered_in(&self, took: Duration) {
        self.latency.borrow_mut().observe(took);
    }

    fn row(&self) -> UpstreamRow {
        UpstreamRow {
            mount: self.mount,
            upstream: self.upstream.clone(),
            ejections: self.ejections.get(),
            idle: self.idle.get(),
            latency: *self.latency.borrow(),
        }
    }
}

/// [`UpstreamStats`] as sent between shards.
#[derive(Debug, Clone)]
pub struct UpstreamRow {
    /// The mount's route label (`proxy /app1/`).
    pub mount: &'static str,
    /// The upstream (`http://host:port`).
    pub upstream: String,
    /// Times taken out of rotation.
    pub ejections: u64,
    /// Idle pooled connections.
    pub idle: u64,
    /// Time from the request sent to the response head.
    pub latency: Histogram,
}

thread_local! {
    /// The shard's counters, for what is built per shard without being
    /// handed them (a proxy mount registers its upstreams here).
    static CURRENT: RefCell<Option<Rc<Metrics>>> = const { RefCell::new(None) };
}

/// Makes `metrics` this thread's (the shard's) counters.
pub(crate) fn set_current(metrics: Rc<Metrics>) {
    let _ = CURRENT.try_with(|c| *c.borrow_mut() = Some(metrics));
}

/// Counters for an upstream of `mount`, registered with this shard's
/// metrics when there are any (outside a shard they count for nobody).
///
/// A reload builds the proxy anew: an upstream it still has keeps its
/// counters (the same row is handed out again), and rows no proxy holds
/// any more (upstreams a reload removed) are dropped.
pub(crate) fn upstream_stats(mount: &'static str, upstream: String) -> Rc<UpstreamStats> {
    let fresh = || {
        Rc::new(UpstreamStats {
            mount,
            upstream: upstream.clone(),
            ejections: Cell::new(0),
            idle: Cell::new(0),
            latency: RefCell::new(Histogram::default()),
        })
    };
    CURRENT
        .try_with(|c| {
            let current = c.borrow();
            let Some(m) = &*current else {
                return fresh();
            };
            let mut rows = m.upstream_stats.borrow_mut();
            rows.retain(|r| Rc::strong_count(r) > 1);
            if let Some(r) = rows
                .iter()
                .find(|r| r.mount == mount && r.upstream == upstream)
            {
                return r.clone();
            }
            let stats = fresh();
            rows.push(stats.clone());
            stats
        })
        .unwrap_or_else(|_| fresh())
}

/// One shard's counters.
#[derive(Debug)]
pub struct Metrics {
    shard: usize,
    core: usize,
    started: Instant,
    /// Responses sent, the server's own error answers included.
    requests: Cell<u64>,
    /// Files and directories the static-file handler opened.
    file_opens: Cell<u64>,
    /// Static-file lookups the shard's cache answered, and those it did
    /// not (a first look, or an entry due for revalidation).
    file_cache: [Cell<u64>; 2],
    /// Whether requests are timed and counted by route (`[metrics]`).
    enabled: bool,
    /// One row per route seen, and its label's address for finding it.
    routes: RefCell<(Vec<usize>, Vec<RouteRow>)>,
    /// Connections accepted.
    connections: Cell<u64>,
    /// Bytes read from clients.
    received: Cell<u64>,
    /// Response body bytes sent (what the access log counts).
    body_sent: Cell<u64>,
    /// Requests the connection refused itself (bad requests, limits,
    /// timeouts), by status code.
    rejected: RefCell<Vec<(u16, u64)>>,
    /// Proxied requests by upstream and outcome (`ADDR` or `ADDR failure`,
    /// as the access log has it).
    upstreams: RefCell<Vec<(Bytes, u64)>>,
    /// The proxy mounts' upstreams on this shard.
    upstream_stats: RefCell<Vec<Rc<UpstreamStats>>>,
}

impl Metrics {
    /// Counters for shard `shard`, pinned to CPU `core`, starting now.
    pub fn new(shard: usize, core: usize) -> Metrics {
        Metrics {
            shard,
            core,
            started: Instant::now(),
            requests: Cell::new(0),
            file_opens: Cell::new(0),
            file_cache: [Cell::new(0), Cell::new(0)],
            enabled: true,
            routes: RefCell::new((Vec::new(), Vec::new())),
            connections: Cell::new(0),
            received: Cell::new(0),
            body_sent: Cell::new(0),
            rejected: RefCell::new(Vec::new()),
            upstreams: RefCell::new(Vec::new()),
            upstream_stats: RefCell::new(Vec::new()),
        }
    }

    /// Counters that do not time or count requests by route (`[metrics]
    /// enabled = false`): the per-request cost is one increment.
    pub fn without_routes(mut self) -> Metrics {
        self.enabled = false;
        self
    }

    /// Whether requests are timed and counted by route.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One response of `route` to a `method` request, `status`, `took`
    /// from its head to its response head.
    pub(crate) fn observe(
        &self,
        route: &'static str,
        method: Method,
        status: StatusCode,
        took: Duration,
    ) {
        let mut routes = self.routes.borrow_mut();
        let (keys, rows) = &mut *routes;
        let key = route.as_ptr() as usize;
        let at = match keys.iter().position(|&k| k == key) {
            Some(at) => at,
            None => {
                keys.push(key);
                rows.push(RouteRow::new(route));
                rows.len() - 1
            }
        };
        let row = &mut rows[at];
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        row.counts[method_index(method)][class] += 1;
        row.durations.observe(took);
    }

    /// One static-file lookup, answered by the cache (`hit`) or not.
    #[inline]
    pub(crate) fn count_file_cache(&self, hit: bool) {
        let c = &self.file_cache[usize::from(!hit)];
        c.set(c.get() + 1);
    }

    /// One connection accepted.
    pub(crate) fn count_connection(&self) {
        self.connections.set(self.connections.get() + 1);
    }

    /// `n` bytes read from a client.
    #[inline]
    pub(crate) fn count_received(&self, n: usize) {
        self.received.set(self.received.get() + n as u64);
    }

    /// `n` response body bytes sent.
    #[inline]
    pub(crate) fn count_body_sent(&self, n: u64) {
        self.body_sent.set(self.body_sent.get() + n);
    }

    /// A request the connection refused with `status`.
    pub(crate) fn count_rejected(&self, status: StatusCode) {
        let code = status.as_u16();
        let mut r = self.rejected.borrow_mut();
        match r.iter_mut().find(|(c, _)| *c == code) {
            Some(e) => e.1 += 1,
            None => r.push((code, 1)),
        }
    }

    /// A proxied request, as the access log names its upstream.
    pub(crate) fn count_upstream(&self, noted: &Bytes) {
        let mut u = self.upstreams.borrow_mut();
        match u.iter_mut().find(|(k, _)| k == noted) {
            Some(e) => e.1 += 1,
            None => u.push((noted.clone(), 1)),
        }
    }

    /// Everything, for `/metrics` (to be sent to another shard).
    pub fn snapshot(&self, connections_open: usize) -> Snapshot {
        Snapshot {
            stats: self.stats(connections_open),
            connections_total: self.connections.get(),
            received: self.received.get(),
            file_cache: [self.file_cache[0].get(), self.file_cache[1].get()],
            body_sent: self.body_sent.get(),
            routes: self.routes.borrow().1.clone(),
            rejected: self.rejected.borrow().clone(),
            upstreams: self
                .upstreams
                .borrow()
                .iter()
                .map(|(k, n)| (String::from_utf8_lossy(k).into_owned(), *n))
                .collect(),
            upstream_rows: self
                .upstream_stats
                .borrow()
                .iter()
                .map(|u| u.row())
                .collect(),
        }
    }

    /// The shard these counters belong to.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// When the shard started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests answered by this shard.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Files and directories the static-file handler opened.
    pub fn file_opens(&self) -> u64 {
        self.file_opens.get()
    }

    /// One request answered.
    #[inline]
    pub(crate) fn count_request(&self) {
        self.requests.set(self.requests.get() + 1);
    }

    /// One file-system open by the static-file handler (or an attempt).
    pub(crate) fn count_file_open(&self) {
        self.file_opens.set(self.file_opens.get() + 1);
    }

    /// The counters as `/api/stats` reports them, with the shard's open
    /// connections (which its connection table counts).
    pub fn stats(&self, connections: usize) -> ShardStats {
        ShardStats {
            shard: self.shard,
            core: self.core,
            requests: self.requests(),
            connections,
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            file_opens: self.file_opens(),
        }
    }
}

/// One shard's counters, as reported to `/api/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShardStats {
    /// Shard number.
    pub shard: usize,
    /// The CPU it runs on.
    pub core: usize,
    /// Requests answered.
    pub requests: u64,
    /// Open connections.
    pub connections: usize,
    /// Seconds since the shard started.
    pub uptime_seconds: f64,
    /// Files and directories the static-file handler opened (cache misses
    /// and once-a-second revalidations).
    pub file_opens: u64,
}

/// One shard's counters for `/metrics`, owned (sent between shards).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What `/api/stats` reports.
    pub stats: ShardStats,
    /// Connections accepted.
    pub connections_total: u64,
    /// Bytes read from clients.
    pub received: u64,
    /// Static-file cache hits and misses.
    pub file_cache: [u64; 2],
    /// Response body bytes sent.
    pub body_sent: u64,
    /// Requests by route.
    pub routes: Vec<RouteRow>,
    /// Refused requests by status code.
    pub rejected: Vec<(u16, u64)>,
    /// Proxied requests by upstream (and failure).
    pub upstreams: Vec<(String, u64)>,
    /// The proxy mounts' upstreams: ejections, idle connections, latency.
    pub upstream_rows: Vec<UpstreamRow>,
}

/// A label value, escaped as the text format wants (`\`, `"`, newline).
fn label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Every shard's snapshot in the Prometheus text format (0.0.4). Routes
/// and upstreams are summed over the shards; what differs by shard
/// (requests, connections) carries a `shard` label.
pub fn render(shards: &[Snapshot], shards_total: usize) -> String {
    // Routes, summed over the shards, in the order first seen.
    let mut routes: Vec<RouteRow> = Vec::new();
    for s in shards {
        for r in &s.routes {
            match routes.iter_mut().find(|m| m.route == r.route) {
                Some(m) => {
                    for (mi, row) in r.counts.iter().enumerate() {
                        for (ci, n) in row.iter().enumerate() {
                            m.counts[mi][ci] += n;
                        }
                    }
                    m.durations.add(&r.durations);
                }
                None => routes.push(r.clone()),
            }
        }
    }
    let mut w = String::with_capacity(4096);
    let head = |w: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(w, "# HELP {name} {help}");
        let _ = writeln!(w, "# TYPE {name} {kind}");
    };
    // A family of one sample without labels.
    let single = |w: &mut String, name: &str, kind: &str, help: &str, v: &dyn std::fmt::Display| {
        head(w, name, kind, help);
        let _ = writeln!(w, "{name} {v}");
    };
    head(
        &mut w,
        "edgeshard_requests_total",
        "counter",
        "Responses by route (routes! pattern, static, proxy PREFIX or other), method and status class.",
    );
    for r in &routes {
        for (mi, row) in r.counts.iter().enumerate() {
            for (ci, n) in row.iter().enumerate() {
                if *n > 0 {
                    let _ = writeln!(
                        w,
                        "edgeshard_requests_total{{route=\"{}\",method=\"{}\",status=\"{}xx\"}} {n}",
                        label(r.route),
                        METHODS[mi],
                        ci + 1
                    );
                }
            }
        }
    }
    head(
        &mut w,
        "edgeshard_request_duration_seconds",
        "histogram",
        "Time from a request's head to its response head, by route.",
    );
    for r in &routes {
        let labels = format!("route=\"{}\"", label(r.route));
        r.durations
            .write(&mut w, "edgeshard_request_duration_seconds", &labels);
    }
    let per_shard =
        |w: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&Snapshot) -> String| {
            head(w, name, kind, help);
            for s in shards {
                let _ = writeln!(w, "{name}{{shard=\"{}\"}} {}", s.stats.shard, f(s));
            }
        };
    per_shard(
        &mut w,
        "edgeshard_shard_requests_total",
        "counter",
        "Responses sent by each shard, the server's own error answers included.",
        &|s| s.stats.requests.to_string(),
    );
    per_shard(
        &mut w,
        "edgeshard_connections_open",
        "gauge",
        "Open client connections, by shard.",
        &|s| s.stats.connections.to_string(),
    );
    per_shard(
        &mut w,
        "edgeshard_connections_total",
        "counter",
        "Client connections accepted, by shard.",
        &|s| s.connections_total.to_string(),
    );
    let total = |f: &dyn Fn(&Snapshot) -> u64| shards.iter().map(f).sum::<u64>();
    single(
        &mut w,
        "edgeshard_received_bytes_total",
        "counter",
        "Bytes read from clients.",
        &total(&|s| s.received),
    );
    single(
        &mut w,
        "edgeshard_response_body_bytes_total",
        "counter",
        "Response body bytes sent to clients (as the access log counts them).",
        &total(&|s| s.body_sent),
    );
    head(
        &mut w,
        "edgeshard_rejected_requests_total",
        "counter",
        "Requests the server refused before a handler (malformed, over a limit, too slow), by status.",
    );
    let mut rejected: Vec<(u16, u64)> = Vec::new();
    for s in shards {
        for &(code, n) in &s.rejected {
            match rejected.iter_mut().find(|(c, _)| *c == code) {
                Some(e) => e.1 += n,
                None => rejected.push((code, n)),
            }
        }
    }
    rejected.sort_unstable();
    for (code, n) in rejected {
        let _ = writeln!(
            w,
            "edgeshard_rejected_requests_total{{status=\"{code}\"}} {n}"
        );
    }
    single(
        &mut w,
        "edgeshard_static_file_opens_total",
        "counter",
        "Files and directories the static-file handler opened (cache misses and revalidations).",
        &total(&|s| s.stats.file_opens),
    );
    head(
        &mut w,
        "edgeshard_static_cache_lookups_total",
        "counter",
        "Static-file lookups by whether the shard's cache answered them (a miss opens the file).",
    );
    for (i, result) in ["hit", "miss"].into_iter().enumerate() {
        let _ = writeln!(
            w,
            "edgeshard_static_cache_lookups_total{{result=\"{result}\"}} {}",
            total(&|s| s.file_cache[i])
        );
    }
    head(
        &mut w,
        "edgeshard_upstream_requests_total",
        "counter",
        "Proxied requests by upstream address and outcome (ok, or how it failed).",
    );
    let mut upstreams: Vec<(String, String, u64)> = Vec::new();
    for s in shards {
        for (noted, n) in &s.upstreams {
            let (addr, outcome) = match noted.split_once(' ') {
                Some((a, why)) => (a.to_string(), why.to_string()),
                None => (noted.clone(), "ok".to_string()),
            };
            match upstreams
                .iter_mut()
                .find(|(a, o, _)| *a == addr && *o == outcome)
            {
                Some(e) => e.2 += n,
                None => upstreams.push((addr, outcome, *n)),
            }
        }
    }
    upstreams.sort();
    for (addr, outcome, n) in upstreams {
        let _ = writeln!(
            w,
            "edgeshard_upstream_requests_total{{upstream=\"{}\",outcome=\"{}\"}} {n}",
            label(&addr),
            label(&outcome)
        );
    }
    head(
        &mut w,
        "edgeshard_upstream_ejections_total",
        "counter",
        "Times an upstream was taken out of rotation after failing (passive health), by mount.",
    );
    let mut rows: Vec<UpstreamRow> = Vec::new();
    for s in shards {
        for u in &s.upstream_rows {
            match rows
                .iter_mut()
                .find(|r| r.mount == u.mount && r.upstream == u.upstream)
            {
                Some(r) => {
                    r.ejections += u.ejections;
                    r.idle += u.idle;
                    r.latency.add(&u.latency);
                }
                None => rows.push(u.clone()),
            }
        }
    }
    let up_labels = |r: &UpstreamRow| {
        format!(
            "mount=\"{}\",upstream=\"{}\"",
            label(r.mount.trim_start_matches("proxy ")),
            label(&r.upstream)
        )
    };
    for r in &rows {
        let _ = writeln!(
            w,
            "edgeshard_upstream_ejections_total{{{}}} {}",
            up_labels(r),
            r.ejections
        );
    }
    head(
        &mut w,
        "edgeshard_upstream_idle_connections",
        "gauge",
        "Idle connections pooled for an upstream, by shard.",
    );
    for s in shards {
        for u in &s.upstream_rows {
            let _ = writeln!(
                w,
                "edgeshard_upstream_idle_connections{{{},shard=\"{}\"}} {}",
                up_labels(u),
                s.stats.shard,
                u.idle
            );
        }
    }
    head(
        &mut w,
        "edgeshard_upstream_response_seconds",
        "histogram",
        "Time from a request sent upstream to the upstream's response head.",
    );
    for r in &rows {
        r.latency
            .write(&mut w, "edgeshard_upstream_response_seconds", &up_labels(r));
    }
    head(
        &mut w,
        "edgeshard_shards",
        "gauge",
        "Shards in the server, and how many answered this scrape.",
    );
    let _ = writeln!(w, "edgeshard_shards{{state=\"configured\"}} {shards_total}");
    let _ = writeln!(w, "edgeshard_shards{{state=\"answered\"}} {}", shards.len());
    let uptime = shards
        .iter()
        .map(|s| s.stats.uptime_seconds)
        .fold(0.0, f64::max);
    single(
        &mut w,
        "edgeshard_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &uptime,
    );
    w
}
