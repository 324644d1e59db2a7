//! The reverse proxy: a path prefix forwarded to one or more upstream
//! HTTP/1.1 servers, as Go's `httputil.ReverseProxy` behind `StripPrefix`
//! or nginx's `proxy_pass` do it, thread-per-core. Each shard has its own
//! [`Proxy`] per mount, with its own idle connections, requests-in-flight
//! counts and health view of every upstream: nothing is shared or locked
//! on the request path.
//!
//! By stage: [`upstream`] (URLs, names, passive health), [`pool`] (idle
//! connections), `forward` (the heads both ways), `relay` (the response
//! body, streamed), `tunnel` (after a `101`); this file chooses the
//! upstream, sends the request and reads the answer, retrying as nginx's
//! `proxy_next_upstream error` does.

mod forward;
pub mod pool;
mod relay;
mod tunnel;
pub mod upstream;

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::AsyncWriteExt;

use self::forward::{request_head, response_lines, Forwarding, OutBody};
use self::pool::{Pool, UpConn};
use self::relay::{Lease, UpstreamBody};
use self::upstream::{start_resolver, Upstream};
pub use self::upstream::{Health, Resolved, UpstreamUrl};
use crate::deadline::Deadline;
use crate::handler::{BodyReadError, Handler, Request, RequestBody};
use crate::http::client::{parse_response_head, ResponseHead};
use crate::http::encode::encode_chunk;
use crate::http::field::list_has;
use crate::http::{Framing, Method, StatusCode};
use crate::middleware::Cidr;
use crate::poller::Poller;
use crate::response::{Body, RelayBody, Response};
use crate::transport::Transport;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for a response head, and between response body bytes.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default idle connections kept per upstream and shard.
pub const DEFAULT_MAX_IDLE: usize = 64;
/// Default time an idle upstream connection is kept: below the 60 s or
/// more that common servers keep one (nginx 75 s, Go none, edgeshard 60 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest request body a mount passes on.
pub const DEFAULT_MAX_BODY: u64 = 1 << 40;
/// Default passive health: nginx's `max_fails=1 fail_timeout=10s`.
pub const DEFAULT_HEALTH: Health = Health {
    max_fails: 1,
    fail_timeout: Duration::from_secs(10),
};
/// Default interval between resolutions of upstream host names.
pub const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// Largest upstream response head (bytes).
pub const MAX_UPSTREAM_HEAD: usize = 64 * 1024;
/// How long a request with `Expect: 100-continue` waits for the
/// upstream's `100` before sending its body anyway (curl waits 1 s).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);
/// A whole body up to this size goes in the same write as the head.
const BODY_WITH_HEAD: usize = 16 * 1024;

/// Which `Host` the upstream gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostMode {
    /// The upstream's own (`host[:port]` from its URL), as Go's proxy does.
    #[default]
    Upstream,
    /// The client's, as nginx's `proxy_set_header Host $http_host`.
    Client,
}

/// How a mount spreads requests over its upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In turn.
    #[default]
    RoundRobin,
    /// To the one with the fewest requests in flight (from this shard).
    LeastOutstanding,
}

/// One proxy mount as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct MountSettings {
    /// The path prefix, with a trailing slash (`/app1/`).
    pub prefix: String,
    /// Where requests go.
    pub upstreams: Vec<UpstreamUrl>,
    /// Pass the prefix on (default: stripped, as `StripPrefix` does).
    pub keep_prefix: bool,
    /// Which `Host` the upstream gets.
    pub host: HostMode,
    /// How requests are spread.
    pub balance: Balance,
    /// When an upstream is skipped.
    pub health: Health,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Wait for the response head, and between body bytes.
    pub read_timeout: Duration,
    /// Largest request body passed on (bytes).
    pub max_body: u64,
    /// Idle connections kept per upstream and shard.
    pub max_idle: usize,
    /// How long an idle upstream connection is kept.
    pub idle_timeout: Duration,
    /// Add `Via: 1.1 edgeshard` both ways.
    pub via: bool,
    /// Pass `Upgrade` requests (WebSocket) on and tunnel after a `101`.
    pub upgrades: bool,
    /// Where the mount was configured (`--proxy`, `proxy[1]` in a file),
    /// named in errors.
    pub origin: std::borrow::Cow<'static, str>,
}

impl MountSettings {
    /// A mount of `prefix` (a trailing slash is added) on `upstreams`,
    /// with the defaults.
    pub fn new(prefix: &str, upstreams: Vec<UpstreamUrl>) -> MountSettings {
        MountSettings {
            prefix: normalize_prefix(prefix),
            upstreams,
            keep_prefix: false,
            host: HostMode::default(),
            balance: Balance::default(),
            health: DEFAULT_HEALTH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_idle: DEFAULT_MAX_IDLE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            via: false,
            upgrades: true,
            origin: std::borrow::Cow::Borrowed("--proxy"),
        }
    }
}

/// `/app1` and `/app1/` are both `/app1/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    format!("{trimmed}/")
}

/// Proxying as configured: the mounts and the peers whose forwarding
/// fields are believed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// The mounts.
    pub mounts: Vec<MountSettings>,
    /// Peers whose `X-Forwarded-*` and `Forwarded` fields are kept and
    /// extended (else they are replaced).
    pub trusted: Vec<Cidr>,
    /// How often upstream host names are resolved again (off the shards).
    pub resolve_every: Duration,
}

impl Default for ProxySettings {
    fn default() -> ProxySettings {
        ProxySettings {
            mounts: Vec::new(),
            trusted: Vec::new(),
            resolve_every: DEFAULT_RESOLVE_EVERY,
        }
    }
}

/// A mount with its upstreams' names resolved.
#[derive(Debug)]
pub struct PreparedMount {
    settings: MountSettings,
    resolved: Vec<Arc<Resolved>>,
    trusted: Arc<[Cidr]>,
    /// `proxy PREFIX`, the mount's route in the metrics (made once per
    /// mount and process).
    route: &'static str,
}

impl PreparedMount {
    /// Resolves the upstreams' names (blocking; at start).
    pub fn new(settings: MountSettings, trusted: &[Cidr]) -> Result<PreparedMount, String> {
        if settings.upstreams.is_empty() {
            return Err(format!("proxy mount {}: no upstreams", settings.prefix));
        }
        let resolved = settings
            .upstreams
            .iter()
            .map(|u| Resolved::resolve(u.clone()))
            .collect::<Result<_, _>>()?;
        let route = Box::leak(format!("proxy {}", settings.prefix).into_boxed_str());
        Ok(PreparedMount {
            settings,
            resolved,
            trusted: trusted.into(),
            route,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &MountSettings {
        &self.settings
    }
}

/// Every mount, prepared; names are resolved again in the background.
#[derive(Debug, Default)]
pub struct PreparedProxy {
    /// The mounts, longest prefix first.
    pub mounts: Vec<PreparedMount>,
}

impl PreparedProxy {
    /// Resolves every mount's upstreams and starts the thread that keeps
    /// their names fresh.
    pub fn prepare(settings: &ProxySettings) -> Result<PreparedProxy, String> {
        let mut mounts = settings
            .mounts
            .iter()
            .map(|m| PreparedMount::new(m.clone(), &settings.trusted))
            .collect::<Result<Vec<_>, _>>()?;
        mounts.sort_by_key(|m| std::cmp::Reverse(m.settings.prefix.len()));
        start_resolver(
            mounts
                .iter()
                .flat_map(|m| m.resolved.iter().cloned())
                .collect(),
            settings.resolve_every,
        );
        Ok(PreparedProxy { mounts })
    }
}

/// One mount on one shard.
#[derive(Debug)]
pub(crate) struct MountState {
    settings: MountSettings,
    trusted: Arc<[Cidr]>,
    upstreams: Vec<Upstream>,
    next: std::cell::Cell<usize>,
    poller: Rc<Poller>,
    route: &'static str,
}

/// A proxy mount's handler on one shard: usable as a route in
/// `routes!`, as a fallback, or under [`ProxyMounts`]. Cheap to clone
/// (the clones share the shard's pools).
#[derive(Debug, Clone)]
pub struct Proxy {
    state: Rc<MountState>,
}

impl Proxy {
    /// The mount's handler for the shard whose poller is `poller`.
    pub fn new(mount: &PreparedMount, poller: Rc<Poller>) -> Proxy {
        let s = &mount.settings;
        let upstreams = mount
            .resolved
            .iter()
            .map(|r| {
                Upstream::new(
                    r.clone(),
                    Pool::new(s.max_idle, s.idle_timeout),
                    mount.route,
                )
            })
            .collect();
        Proxy {
            state: Rc::new(MountState {
                settings: s.clone(),
                trusted: mount.trusted.clone(),
                upstreams,
                next: std::cell::Cell::new(0),
                poller,
                route: mount.route,
            }),
        }
    }

    /// The mount's prefix.
    pub fn prefix(&self) -> &str {
        &self.state.settings.prefix
    }

    /// Idle connections this shard keeps to each upstream, in order.
    pub fn idle_connections(&self) -> Vec<usize> {
        self.state.upstreams.iter().map(|u| u.pool.len()).collect()
    }
}

impl Handler for Proxy {
    /// Boxed: the exchange's state is large, and inline it would enlarge
    /// the future of every request that could reach the proxy (a router's
    /// fallback is part of every route's future), proxied or not.
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        req.conn_key().note_route(self.state.route);
        Box::pin(MountState::forward(self.state.clone(), req))
    }
}

/// A route function's shape, so a [`Proxy`] can be named in `routes!`.
/// The future owns what it needs (it is boxed: a route's future may not
/// borrow the router's copy of the proxy).
#[allow(refining_impl_trait)]
impl<S> crate::route::RouteHandler<S, Proxy> for Proxy {
    fn call_route(
        &self,
        req: Request,
        _state: S,
    ) -> std::pin::Pin<Box<dyn Future<Output = Response>>> {
        Box::pin(MountState::forward(self.state.clone(), req))
    }
}

/// The mounts on one shard in front of `fallback` (the static files):
/// a request under a mount's prefix goes to its upstreams, the longest
/// prefix winning; `/app1` (the prefix without its slash) too.
#[derive(Debug)]
pub struct ProxyMounts<F> {
    mounts: Vec<Proxy>,
    fallback: F,
}

impl<F: Handler> ProxyMounts<F> {
    /// Every mount of `prepared` for the shard whose poller is `poller`.
    pub fn new(prepared: &PreparedProxy, poller: &Rc<Poller>, fallback: F) -> ProxyMounts<F> {
        ProxyMounts {
            mounts: prepared
                .mounts
                .iter()
                .map(|m| Proxy::new(m, poller.clone()))
                .collect(),
            fallback,
        }
    }
}

/// Whether `path` is under `prefix` (`/app1/`): `/app1/…` or `/app1`.
fn under(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix) || path == &prefix[..prefix.len() - 1]
}

impl<F: Handler> Handler for ProxyMounts<F> {
    fn call(&self, req: Request) -> impl Future<Output = Response> {
        let path = req.path();
        match self.mounts.iter().find(|m| under(path, m.prefix())) {
            Some(m) => crate::future::Either::Left { inner: m.call(req) },
            None => crate::future::Either::Right {
                inner: self.fallback.call(req),
            },
        }
    }
}

/// Why one try at an upstream failed.
#[derive(Debug)]
enum Failure {
    /// Nothing was answered and the connection was a reused one: the
    /// request may be tried again on a fresh connection.
    Stale,
    /// No answer in time.
    TimedOut,
    /// The connection failed, or the answer was not HTTP.
    Broken(&'static str),
    /// The client's body failed: the connection answers that.
    Body(BodyReadError),
}

/// A response head, or the `100 Continue` a body waits for.
enum Head {
    Final(ResponseHead),
    Continue,
}

impl MountState {
    async fn forward(self: Rc<Self>, mut req: Request) -> Response {
        let s = &self.settings;
        let head_only = req.method() == Method::Head;
        let mut stream = req.take_body_stream();
        if let Some(body) = &mut stream {
            body.set_limit(s.max_body);
        }
        let whole = req.body().clone();
        let out_body = match &stream {
            Some(b) => b.length().map_or(OutBody::Chunked, OutBody::Length),
            None if req.head().framing() == Framing::None => OutBody::None,
            None => OutBody::Length(whole.len() as u64),
        };
        let upgrade = match (s.upgrades, req.header("upgrade")) {
            (true, Some(u))
                if req
                    .header("connection")
                    .is_some_and(|c| list_has(c, b"upgrade")) =>
            {
                Some(Bytes::copy_from_slice(u))
            }
            _ => None,
        };
        let idempotent = matches!(
            req.method(),
            Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options
        );
        let expect_continue = stream.is_some() && req.head().expects_continue();
        let peer = req.peer_addr().ip();
        let key = req.conn_key();
        let trusted = self.trusted.iter().any(|n| n.contains(peer));
        let mut head_buf = Vec::with_capacity(1024);
        let mut tried = 0u64;
        let mut fresh_only = false;
        let mut last = "no upstream could be reached";
        // Each upstream once, and one retry on a fresh connection: a bound
        // that holds even past the 64 upstreams `tried` can mark.
        let mut tries = self.upstreams.len() + 1;
        loop {
            let picked = if tries == 0 { None } else { self.pick(tried) };
            tries = tries.saturating_sub(1);
            let Some(i) = picked else {
                return bad_gateway(last);
            };
            let up = &self.upstreams[i];
            up.picked();
            let lease = Lease::new(self.clone(), i);
            let pooled = if fresh_only { None } else { up.take_idle() };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(c) => c,
                None => match self.connect(up).await {
                    Ok(c) => c,
                    Err(why) => {
                        // Nothing was sent: the next upstream gets it.
                        up.failed(&s.health, why);
                        key.note_upstream(note(&up.authority, why));
                        tried |= 1u64.checked_shl(i as u32).unwrap_or(0);
                        last = why;
                        if tried.count_ones() as usize >= self.upstreams.len().min(64) {
                            return bad_gateway(last);
                        }
                        continue;
                    }
                },
            };
            head_buf.clear();
            let client_host = req.header("host").unwrap_or(b"");
            let fwd = Forwarding {
                peer,
                trusted,
                host: match s.host {
                    HostMode::Upstream => &up.authority,
                    HostMode::Client => client_host,
                },
                via: s.via,
                upgrade: upgrade.as_deref(),
            };
            let target = [
                up.resolved.url().base.as_str(),
                self.rest_of(req.path()),
                if req.query().is_some() { "?" } else { "" },
                req.query().unwrap_or(""),
            ];
            request_head(&mut head_buf, &req, &target, &fwd, out_body);
            let together = !whole.is_empty() && whole.len() <= BODY_WITH_HEAD;
            if together {
                head_buf.extend_from_slice(&whole);
            }
            let body_taken = stream.as_ref().is_some_and(|b| b.received() > 0);
            let sent = Instant::now();
            let result = self
                .exchange(
                    &mut conn,
                    &head_buf,
                    (!together).then_some(&whole),
                    stream.as_mut(),
                    expect_continue,
                    head_only,
                    reused,
                )
                .await;
            key.note_upstream(up.authority.clone());
            let head = match result {
                Ok(head) => {
                    up.stats.answered_in(sent.elapsed());
                    head
                }
                Err(Failure::Stale)
                    if !fresh_only && (idempotent || stream.is_none() || !body_taken) =>
                {
                    // A reused connection the upstream had closed: once more,
                    // on a fresh one.
                    fresh_only = true;
                    continue;
                }
                Err(Failure::Stale) => {
                    let why = "connection closed before a response";
                    up.failed(&s.health, why);
                    key.note_upstream(note(&up.authority, why));
                    return bad_gateway("the upstream closed the connection");
                }
                Err(Failure::Body(e)) => return Response::error(e.status(), &e.to_string()),
                Err(Failure::TimedOut) => {
                    up.failed(&s.health, "timed out");
                    key.note_upstream(note(&up.authority, "timed out"));
                    return Response::error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the upstream did not answer in time",
                    );
                }
                Err(Failure::Broken(why)) => {
                    up.failed(&s.health, why);
                    key.note_upstream(note(&up.authority, why));
                    return bad_gateway(why);
                }
            };
            return self.respond(head, conn, lease, head_only, upgrade.is_some());
        }
    }

    /// The path the upstream gets after its base: the prefix stripped
    /// (`/app1/x` → `/x`, `/app1` → `/`) unless kept.
    fn rest_of<'p>(&self, path: &'p str) -> &'p str {
        let prefix = &self.settings.prefix;
        if self.settings.keep_prefix {
            return path;
        }
        match path.get(prefix.len() - 1..) {
            Some(rest) if path.starts_with(prefix) => rest,
            _ if path == &prefix[..prefix.len() - 1] => "/",
            // Not under the prefix (a route that names the proxy for
            // another path): as it came.
            _ => path,
        }
    }

    /// The upstream to try next, skipping those tried and (while others
    /// are healthy) those ejected.
    fn pick(&self, tried: u64) -> Option<usize> {
        let n = self.upstreams.len();
        let untried = |i: usize| i >= 64 || tried & (1 << i) == 0;
        if n == 1 {
            return untried(0).then_some(0);
        }
        let start = self.next.get();
        self.next.set(start.wrapping_add(1));
        let mut now = None;
        let candidates = (0..n).map(|k| (start + k) % n).filter(|&i| untried(i));
        let mut healthy = candidates
            .clone()
            .filter(|&i| self.upstreams[i].available(&mut now));
        let chosen = match self.settings.balance {
            Balance::RoundRobin => healthy.next(),
            Balance::LeastOutstanding => {
                healthy.min_by_key(|&i| self.upstreams[i].outstanding.get())
            }
        };
        // All ejected: the one back soonest, rather than certain failure.
        chosen.or_else(|| candidates.min_by_key(|&i| self.upstreams[i].ejected_until()))
    }

    /// A new connection to `up`: each of its addresses in turn (a name
    /// may have several, say IPv6 and IPv4) until one connects.
    async fn connect(&self, up: &Upstream) -> Result<UpConn, &'static str> {
        let mut why = "connect failed";
        for _ in 0..up.address_count() {
            let addr = up.addr();
            match within(self.settings.connect_timeout, self.poller.connect(addr)).await {
                Some(Ok(sock)) => {
                    return Ok(UpConn {
                        sock,
                        buf: bytes::BytesMut::new(),
                    })
                }
                Some(Err(_)) => why = "connect failed",
                None => why = CONNECT_TIMED_OUT,
            }
        }
        Err(why)
    }

    /// Sends the request (head, then the body as it comes) and reads the
    /// response head.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        conn: &mut UpConn,
        head: &[u8],
        whole: Option<&Bytes>,
        stream: Option<&mut RequestBody>,
        expect_continue: bool,
        head_only: bool,
        reused: bool,
    ) -> Result<ResponseHead, Failure> {
        let t = self.settings.read_timeout;
        let stale = |reused: bool, why| {
            if reused {
                Failure::Stale
            } else {
                Failure::Broken(why)
            }
        };
        write(conn, head, t)
            .await
            .map_err(|_| stale(reused, "cannot send the request"))?;
        if let Some(body) = whole.filter(|b| !b.is_empty()) {
            write(conn, body, t)
                .await
                .map_err(|_| Failure::Broken("cannot send the request body"))?;
        }
        if let Some(body) = stream {
            if expect_continue {
                // The upstream may refuse the body (401, 413): wait a
                // moment for its word before asking the client for it.
                match read_head(conn, CONTINUE_WAIT, head_only).await {
                    Ok(Some(Head::Continue)) | Err(Failure::TimedOut) => {}
                    Ok(Some(Head::Final(h))) => return Ok(h),
                    Ok(None) => return Err(stale(reused, "closed before answering")),
                    Err(e) => return Err(e),
                }
            }
            let chunked = body.length().is_none();
            let mut framed = Vec::new();
            loop {
                let piece = body.chunk().await.map_err(Failure::Body)?;
                let Some(piece) = piece else {
                    break;
                };
                let sent = if chunked {
                    framed.clear();
                    encode_chunk(&mut framed, &piece);
                    write(conn, &framed, t).await
                } else {
                    write(conn, &piece, t).await
                };
                if sent.is_err() {
                    // The upstream may have answered early and closed:
                    // its answer, if there is one, is what the client gets.
                    return match read_head(conn, t, head_only).await {
                        Ok(Some(Head::Final(h))) => Ok(h),
                        _ => Err(Failure::Broken("the upstream stopped reading the body")),
                    };
                }
            }
            if chunked {
                write(conn, b"0\r\n\r\n", t)
                    .await
                    .map_err(|_| Failure::Broken("cannot send the request body"))?;
            }
        }
        loop {
            match read_head(conn, t, head_only).await? {
                Some(Head::Final(h)) => return Ok(h),
                Some(Head::Continue) => continue,
                None => return Err(stale(reused, "closed before answering")),
            }
        }
    }

    /// The client's response, from the upstream's head; its body follows
    /// from the upstream connection as the client takes it.
    fn respond(
        &self,
        head: ResponseHead,
        conn: UpConn,
        lease: Lease,
        head_only: bool,
        upgrading: bool,
    ) -> Response {
        let up = &self.upstreams[lease.i];
        let status = head.status();
        if status.as_u16() >= 500 {
            up.failed(&self.settings.health, "5xx answer");
        } else {
            up.succeeded();
        }
        let via = self.settings.via.then_some(&b"1.1 edgeshard"[..]);
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if !upgrading {
                return bad_gateway("101 to a request that did not ask to upgrade");
            }
            let lines = response_lines(&head, via);
            return Response::new(status)
                .with_preformatted(lines)
                .with_raw_body(Body::Tunnel(Box::new(tunnel::tunnel(
                    conn,
                    lease,
                    self.settings.read_timeout,
                ))));
        }
        let lines = response_lines(&head, via);
        let resp = Response::new(status).with_preformatted(lines);
        use crate::http::client::ResponseFraming as F;
        let body = match head.framing() {
            F::None => {
                if head.keep_alive() {
                    lease.put_back(conn);
                }
                // A HEAD's length is the GET's; a relayed body, though
                // empty, marks the fields as the upstream's.
                let len = if head_only {
                    head.content_length()
                } else {
                    Some(0)
                };
                Body::Relay(RelayBody::new(len, futures_lite::stream::empty()))
            }
            framing => {
                let len = match framing {
                    F::Length(n) => Some(n),
                    _ => None,
                };
                let t = self.settings.read_timeout;
                Body::Relay(RelayBody::new(
                    len,
                    UpstreamBody::new(conn, framing, head.keep_alive(), t, lease),
                ))
            }
        };
        resp.with_raw_body(body)
    }
}

/// `upstream why`, for the access log.
#[cold]
fn note(upstream: &Bytes, why: &str) -> Bytes {
    let mut n = upstream.to_vec();
    n.push(b' ');
    n.extend_from_slice(why.as_bytes());
    n.into()
}

#[cold]
/// No upstream answered: `502`, or `504` when the last one tried did not
/// even accept the connection in time (nginx's answer too: the upstream
/// is too slow rather than broken).
fn bad_gateway(why: &str) -> Response {
    let status = if why == CONNECT_TIMED_OUT {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    Response::error(status, why)
}

const CONNECT_TIMED_OUT: &str = "connect timed out";

/// `fut`'s output, or `None` once `limit` has passed. The deadline is
/// armed only if `fut` is not ready at once (a write to an upstream nearly
/// always is); see [`Deadline`] for what it costs and how late it may be.
fn within<F: Future>(limit: Duration, fut: F) -> Within<F> {
    Within {
        fut,
        limit,
        timer: None,
    }
}

pin_project_lite::pin_project! {
    struct Within<F> {
        #[pin]
        fut: F,
        limit: Duration,
        timer: Option<Deadline>,
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let limit = *this.limit;
        let timer = this.timer.get_or_insert_with(|| Deadline::after(limit));
        match timer.poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

async fn write(conn: &mut UpConn, data: &[u8], limit: Duration) -> std::io::Result<()> {
    match within(limit, conn.sock.write_all(data)).await {
        Some(r) => r,
        None => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Reads the next response head (`Ok(None)`: closed before any byte of
/// it). A `100` is [`Head::Continue`]; other 1xx (102, 103) are skipped.
async fn read_head(
    conn: &mut UpConn,
    limit: Duration,
    head_only: bool,
) -> Result<Option<Head>, Failure> {
    // Set at the first wait (most heads come in one read).
    let mut deadline = None;
    loop {
        match parse_response_head(&mut conn.buf, MAX_UPSTREAM_HEAD, head_only) {
            Ok(Some(h)) => match h.status().as_u16() {
                100 => return Ok(Some(Head::Continue)),
                101 => return Ok(Some(Head::Final(h))),
                102..=199 => continue,
                _ => return Ok(Some(Head::Final(h))),
            },
            Ok(None) => {}
            Err(e) => return Err(Failure::Broken(e.reason())),
        }
        // One clock read per wait.
        let left = match deadline {
            None => {
                deadline = Some(Instant::now() + limit);
                limit
            }
            Some(at) => at.saturating_duration_since(Instant::now()),
        };
        let read =
            std::future::poll_fn(|cx| conn.sock.poll_read_onto(cx, &mut conn.buf, 16 * 1024));
        match within(left, read).await {
            None => return Err(Failure::TimedOut),
            Some(Ok(0)) if conn.buf.is_empty() => return Ok(None),
            Some(Ok(0)) => return Err(Failure::Broken("truncated response head")),
            Some(Ok(_)) => {}
            Some(Err(_)) if conn.buf.is_empty() => return Ok(None),
            Some(Err(_)) => return Err(Failure::Broken("connection failed in the response head")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("/app1"), "/app1/");
        assert_eq!(normalize_prefix("/app1/"), "/app1/");
        assert_eq!(normalize_prefix("/"), "/");
        assert!(under("/app1/x", "/app1/"));
        assert!(under("/app1", "/app1/"));
        assert!(!under("/app10", "/app1/"));
    }
}
