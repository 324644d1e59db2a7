//! What a request knows about its connection, and where it finds it: each
//! shard keeps its connections' [`ConnInfo`] in a registry of its own (a
//! thread-local slab: one per shard thread, nothing shared), and a request
//! carries only a `Copy` key to its entry.
//!
//! Why not an `Rc<ConnInfo>` in each request: a request moves through
//! several frames on its way to the handler, and LLVM elides those moves
//! only while a request's drop stays small; one more pointer to drop made
//! it stop, 5 more `memcpy` calls per request under callgrind.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use slab::Slab;

/// What a request knows about the connection it came on: the addresses of
/// both ends and an id unique in the process (room for TLS facts later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The client's address (or the balancer's in front of it).
    pub peer: SocketAddr,
    /// The address the connection was accepted on.
    pub local: SocketAddr,
    /// The connection's id: the shard's number in the top 16 bits, that
    /// shard's count of accepted connections below.
    pub id: u64,
}

/// Addresses for a request that came on no socket (built in a test).
const NOWHERE: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl ConnInfo {
    /// The facts of one connection.
    pub fn new(peer: SocketAddr, local: SocketAddr, id: u64) -> ConnInfo {
        ConnInfo { peer, local, id }
    }

    /// For a request that came on no connection (built by hand, in tests),
    /// or whose connection has closed: `0.0.0.0:0` at both ends, id 0.
    pub const UNKNOWN: ConnInfo = ConnInfo {
        peer: NOWHERE,
        local: NOWHERE,
        id: 0,
    };
}

thread_local! {
    /// This shard's live connections.
    static CONNS: RefCell<Slab<ConnInfo>> = const { RefCell::new(Slab::new()) };
}

/// A request's way to its connection's entry: the slot, and the id that
/// must still be there (a slot is reused once its connection closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnKey {
    slot: u32,
    id: u64,
}

impl ConnKey {
    /// No connection: [`ConnInfo::UNKNOWN`].
    pub(crate) const NONE: ConnKey = ConnKey { slot: 0, id: 0 };

    /// The connection's facts while it is open, else [`ConnInfo::UNKNOWN`].
    pub(crate) fn info(self) -> ConnInfo {
        if self.id == 0 {
            return ConnInfo::UNKNOWN;
        }
        CONNS
            .try_with(|c| c.borrow().get(self.slot as usize).copied())
            .ok()
            .flatten()
            .filter(|info| info.id == self.id)
            .unwrap_or(ConnInfo::UNKNOWN)
    }
}

thread_local! {
    /// The request ids of this shard's requests in flight, by connection,
    /// for the connection to name in its log when a handler panics or is
    /// cancelled (the request itself is gone by then). Filled only by the
    /// request-id middleware.
    static REQUEST_IDS: RefCell<Vec<(ConnKey, Bytes)>> = const { RefCell::new(Vec::new()) };

    /// What the proxy noted for the access log of its requests in flight:
    /// the upstream, and how the request failed there if it did.
    static UPSTREAMS: RefCell<Vec<(ConnKey, Bytes)>> = const { RefCell::new(Vec::new()) };

    /// The route each connection's request in flight was taken by, by
    /// registry slot (one request at a time per connection).
    static ROUTES: RefCell<Vec<Option<&'static str>>> = const { RefCell::new(Vec::new()) };
}

fn note(
    list: &'static std::thread::LocalKey<RefCell<Vec<(ConnKey, Bytes)>>>,
    key: ConnKey,
    v: Bytes,
) {
    let _ = list.try_with(|l| {
        let mut l = l.borrow_mut();
        match l.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = v,
            None => l.push((key, v)),
        }
    });
}

#[inline]
fn take(
    list: &'static std::thread::LocalKey<RefCell<Vec<(ConnKey, Bytes)>>>,
    key: ConnKey,
) -> Option<Bytes> {
    list.try_with(|l| {
        // Nothing is noted unless a middleware or the proxy is in use.
        if l.borrow().is_empty() {
            return None;
        }
        let mut l = l.borrow_mut();
        let at = l.iter().position(|(k, _)| *k == key)?;
        Some(l.swap_remove(at).1)
    })
    .ok()
    .flatten()
}

impl ConnKey {
    /// Notes the id of the request now in flight on this connection.
    pub(crate) fn note_request_id(self, id: Bytes) {
        note(&REQUEST_IDS, self, id);
    }

    /// Notes the upstream this connection's request went to (the proxy).
    pub(crate) fn note_upstream(self, upstream: Bytes) {
        note(&UPSTREAMS, self, upstream);
    }

    /// Takes the noted upstream of this connection's request, if any.
    #[inline]
    pub(crate) fn take_upstream(self) -> Option<Bytes> {
        take(&UPSTREAMS, self)
    }

    /// Notes the route that took this connection's request (for the
    /// metrics): the router, a proxy mount or the static files call it
    /// while the handler is called, before any await.
    #[inline]
    pub(crate) fn note_route(self, route: &'static str) {
        let _ = ROUTES.try_with(|r| {
            let mut r = r.borrow_mut();
            let slot = self.slot as usize;
            if r.len() <= slot {
                r.resize(slot + 1, None);
            }
            r[slot] = Some(route);
        });
    }

    /// Takes the noted route of this connection's request, if any.
    #[inline]
    pub(crate) fn take_route(self) -> Option<&'static str> {
        ROUTES
            .try_with(|r| r.borrow_mut().get_mut(self.slot as usize)?.take())
            .ok()
            .flatten()
    }

    /// Takes the noted id of this connection's request, if any.
    #[inline]
    pub(crate) fn take_request_id(self) -> Option<Bytes> {
        take(&REQUEST_IDS, self)
    }
}

/// A connection's entry in its shard's registry, held by the connection
/// for as long as it is open; dropping it takes the entry out.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    key: ConnKey,
}

impl ConnEntry {
    /// Registers `info` (its `id` must not be 0) with this thread's shard.
    pub(crate) fn register(info: ConnInfo) -> ConnEntry {
        let slot = CONNS.with(|c| c.borrow_mut().insert(info));
        ConnEntry {
            key: ConnKey {
                slot: slot as u32,
                id: info.id,
            },
        }
    }

    /// The key requests on this connection carry.
    #[inline]
    pub(crate) fn key(&self) -> ConnKey {
        self.key
    }
}

impl Drop for ConnEntry {
    fn drop(&mut self) {
        // At thread exit the registry may be gone already: nothing to take out.
        let _ = CONNS.try_with(|c| c.borrow_mut().try_remove(self.key.slot as usize));
        // A route noted for a request that never finished (its body
        // failed) must not be taken by the slot's next connection.
        let _ = self.key.take_route();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_finds_its_connection_only_while_it_is_open() {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let a = ConnEntry::register(ConnInfo::new(addr(1), addr(80), 7));
        let key = a.key();
        assert_eq!(key.info(), ConnInfo::new(addr(1), addr(80), 7));
        assert_eq!(ConnKey::NONE.info(), ConnInfo::UNKNOWN);
        drop(a);
        assert_eq!(key.info(), ConnInfo::UNKNOWN, "closed");
        // The slot is reused by the next connection: the old key sees no
        // stranger's facts.
        let b = ConnEntry::register(ConnInfo::new(addr(2), addr(80), 8));
        assert_eq!(b.key().slot, key.slot);
        assert_eq!(key.info(), ConnInfo::UNKNOWN);
        assert_eq!(b.key().info().peer, addr(2));
        // Another thread (another shard) has a registry of its own.
        let elsewhere = std::thread::spawn(move || key_info_elsewhere(b.key()));
        assert_eq!(elsewhere.join().unwrap(), ConnInfo::UNKNOWN);
    }

    fn key_info_elsewhere(key: ConnKey) -> ConnInfo {
        key.info()
    }
}
