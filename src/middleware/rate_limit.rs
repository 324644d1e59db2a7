//! Rate limiting per client IP: GCRA (a token bucket kept as one
//! timestamp per client), `429 Too Many Requests` with `Retry-After`.
//!
//! Each shard keeps its own table and enforces the full rate and burst:
//! nothing crosses shards on the request path. The kernel spreads a
//! client's connections over the shards (SO_REUSEPORT), so a client whose
//! connections land on every shard can reach up to `shards ×` the rate in
//! all; one connection stays on one shard and gets exactly the rate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Middleware;
use crate::handler::Request;
use crate::http::StatusCode;
use crate::response::Response;

/// Most clients one shard tracks by default (each entry is some 40 bytes).
pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is
/// its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an address or CIDR block"))?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// What [`RateLimit`] allows.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    /// Sustained requests per second per client (per shard).
    pub per_second: f64,
    /// Requests a client may send at once before the rate applies.
    pub burst: u32,
    /// Peers whose `Forwarded` / `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Most clients tracked per shard.
    pub max_clients: usize,
}

impl RateLimitSettings {
    /// `per_second` with a burst of as many (at least 1).
    pub fn new(per_second: f64) -> RateLimitSettings {
        RateLimitSettings {
            per_second,
            burst: (per_second.ceil() as u32).max(1),
            trusted_proxies: Vec::new(),
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }

    /// Why these settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err("the rate must be above zero".into());
        }
        if self.per_second > 1e6 {
            return Err("the rate must be at most 1000000/s".into());
        }
        if self.burst == 0 {
            return Err("the burst must be at least 1".into());
        }
        if self.max_clients == 0 {
            return Err("at least one client must be tracked".into());
        }
        Ok(())
    }
}

/// Parses `100/s`, `600/m`, `2/h` (or a bare number: per second).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, per) = match s.split_once('/') {
        Some((n, unit)) => (
            n,
            match unit {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(format!("{s:?}: the unit must be /s, /m or /h")),
            },
        ),
        None => (s, 1.0),
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate like 100/s"))?;
    Ok(n / per)
}

/// The rate-limit middleware of one shard.
#[derive(Debug)]
pub struct RateLimit {
    /// Time between requests at the sustained rate (µs).
    interval: u64,
    /// How far ahead of now a client's next slot may be (µs).
    window: u64,
    trusted: Vec<Cidr>,
    max_clients: usize,
    /// Each client's theoretical arrival time (µs since the process's base).
    clients: RefCell<HashMap<IpAddr, u64, foldhash::fast::RandomState>>,
}

/// Microseconds since a base instant shared by the process.
fn now_micros() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    Instant::now().duration_since(base).as_micros() as u64
}

impl RateLimit {
    /// The middleware for checked `settings` (see [`RateLimitSettings::check`]).
    pub fn new(settings: &RateLimitSettings) -> RateLimit {
        let interval = (1e6 / settings.per_second).round().max(1.0) as u64;
        RateLimit {
            interval,
            window: interval * u64::from(settings.burst),
            trusted: settings.trusted_proxies.clone(),
            max_clients: settings.max_clients,
            clients: RefCell::new(HashMap::default()),
        }
    }

    /// The client: the peer, or (when the peer is a trusted proxy) the
    /// nearest untrusted address its forwarding header names.
    fn client(&self, req: &Request) -> IpAddr {
        let peer = req.peer_addr().ip().to_canonical();
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = match req.header("forwarded") {
            Some(v) => forwarded_for(v),
            None => req
                .header("x-forwarded-for")
                .map(x_forwarded_for)
                .unwrap_or_default(),
        };
        // From the nearest hop back: the first address not ours is the client.
        chain
            .iter()
            .rev()
            .copied()
            .find(|&ip| !self.is_trusted(ip))
            .or_else(|| chain.first().copied())
            .unwrap_or(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// GCRA at time `now`: `Ok` and the slot is taken, or `Err` with the
    /// time until one is free.
    fn admit(&self, client: IpAddr, now: u64) -> Result<(), Duration> {
        let mut clients = self.clients.borrow_mut();
        if clients.len() >= self.max_clients && !clients.contains_key(&client) {
            sweep(&mut clients, now, self.window, self.max_clients);
        }
        let tat = clients.get(&client).copied().unwrap_or(now).max(now) + self.interval;
        if tat - now > self.window {
            return Err(Duration::from_micros(tat - now - self.window));
        }
        clients.insert(client, tat);
        Ok(())
    }

    /// Clients tracked now (tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.borrow().len()
    }
}

/// Makes room in a full table: clients whose bucket has refilled go
/// first, then those less than half limited, then (if all are still
/// limited) everyone. Each sweep frees a good part of the table, so a
/// flood of new addresses costs amortised constant time per request.
fn sweep<S: std::hash::BuildHasher>(
    clients: &mut HashMap<IpAddr, u64, S>,
    now: u64,
    window: u64,
    max: usize,
) {
    clients.retain(|_, tat| *tat > now);
    if clients.len() >= max {
        clients.retain(|_, tat| *tat > now + window / 2);
    }
    if clients.len() >= max {
        clients.clear();
    }
}

/// The `for=` addresses of a `Forwarded` header (RFC 7239), in order.
fn forwarded_for(v: &[u8]) -> Vec<IpAddr> {
    let text = String::from_utf8_lossy(v);
    text.split([',', ';'])
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("for") {
                return None;
            }
            let v = v.trim().trim_matches('"');
            // `[2001:db8::1]:4711`, `192.0.2.1:80`, or without a port.
            let host = match v.strip_prefix('[') {
                Some(rest) => rest.split(']').next()?,
                None => v.split(':').next()?,
            };
            host.parse().ok().map(|ip: IpAddr| ip.to_canonical())
        })
        .collect()
}

/// The addresses of an `X-Forwarded-For` header, in order.
fn x_forwarded_for(v: &[u8]) -> Vec<IpAddr> {
    String::from_utf8_lossy(v)
        .split(',')
        .filter_map(|a| a.trim().parse().ok().map(|ip: IpAddr| ip.to_canonical()))
        .collect()
}

impl Middleware for RateLimit {
    type Carry = ();

    fn on_request(&self, req: &mut Request) -> Result<(), Response> {
        let client = self.client(req);
        self.admit(client, now_micros()).map_err(|wait| {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Response::error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded")
                .with_header("Retry-After", Bytes::from(secs.max(1).to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert_eq!(parse_rate("5"), Ok(5.0));
        assert!(parse_rate("5/d").is_err());
        assert!(parse_rate("x/s").is_err());
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let mut s = RateLimitSettings::new(10.0);
        s.burst = 3;
        let rl = RateLimit::new(&s);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = 1_000_000;
        for _ in 0..3 {
            assert_eq!(rl.admit(ip, t0), Ok(()));
        }
        let wait = rl.admit(ip, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // One interval later, one more; another client is not affected.
        assert_eq!(rl.admit(ip, t0 + 100_000), Ok(()));
        assert!(rl.admit(ip, t0 + 100_000).is_err());
        assert_eq!(rl.admit("192.0.2.2".parse().unwrap(), t0), Ok(()));
        // After a long pause the whole burst is back.
        for _ in 0..3 {
            assert_eq!(rl.admit(ip, t0 + 10_000_000), Ok(()));
        }
    }

    #[test]
    fn a_full_table_is_swept_not_grown() {
        let mut s = RateLimitSettings::new(1.0);
        s.burst = 2;
        s.max_clients = 100;
        let rl = RateLimit::new(&s);
        for i in 0..1000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert_eq!(rl.admit(ip, 5_000_000), Ok(()));
            assert!(rl.tracked() <= 100);
        }
        // Refilled entries go first: later, the table makes room at once.
        assert_eq!(
            rl.admit("198.51.100.1".parse().unwrap(), 60_000_000),
            Ok(())
        );
        assert_eq!(rl.tracked(), 1);
    }

    #[test]
    fn forwarding_headers_name_the_chain() {
        assert_eq!(
            forwarded_for(b"for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8::1]:4711\""),
            vec![
                "192.0.2.60".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(
            x_forwarded_for(b"203.0.113.9, 10.0.0.2 , junk"),
            vec![
                "203.0.113.9".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
    }
}
