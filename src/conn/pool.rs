//! Buffers lent to connections while they wait: a connection between
//! requests holds neither a read nor a write buffer of its own, so an idle
//! keep-alive connection costs its state, not its buffers.

use std::cell::RefCell;

use bytes::BytesMut;

/// Read buffers for connections between requests. A connection waiting
/// for its next request holds none: each poll of the wait borrows one, and
/// gives it back unless data arrived. A socket's read leaves the buffer
/// alone while it waits for readiness, so a borrowed buffer is only
/// written when there is something to read.
///
/// Pooled buffers are empty, with room for `size` bytes; a socket reads
/// into that room as it is ([`crate::Transport::poll_read_onto`]), so neither
/// lending nor taking back a buffer writes to its memory.
#[derive(Debug)]
pub(crate) struct ReadPool {
    bufs: RefCell<Vec<BytesMut>>,
    size: usize,
}

/// Most buffers a shard keeps (64 × 4 KiB): the rest are freed.
const POOL_MAX: usize = 64;

impl ReadPool {
    /// A pool of buffers of `size` bytes.
    pub(crate) fn new(size: usize) -> ReadPool {
        ReadPool {
            bufs: RefCell::new(Vec::new()),
            size,
        }
    }

    /// The size of every pooled buffer.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// An empty buffer with room for `size` bytes.
    pub(crate) fn take(&self) -> BytesMut {
        self.bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.size))
    }

    /// Returns a buffer `take` gave out, still empty.
    pub(crate) fn put_back(&self, buf: BytesMut) {
        let mut bufs = self.bufs.borrow_mut();
        if bufs.len() < POOL_MAX {
            bufs.push(buf);
        }
    }

    /// Takes a connection's emptied read buffer. Large ones (grown for big
    /// bodies) are freed; the others keep room for `size` bytes, reusing
    /// their memory unless a request still holds part of it.
    pub(crate) fn put_empty(&self, mut buf: BytesMut) {
        if !buf.is_empty() || buf.capacity() > 2 * self.size || self.bufs.borrow().len() >= POOL_MAX
        {
            return;
        }
        buf.reserve(self.size);
        self.put_back(buf);
    }
}

/// Write buffers for connections between requests: a connection gives its
/// emptied buffer back when it goes idle and takes one when it encodes its
/// next response. Without this, a connection that once sent a 16 KiB file
/// from memory would keep 16 KiB while idle.
#[derive(Debug, Default)]
pub(crate) struct WritePool {
    bufs: RefCell<Vec<Vec<u8>>>,
}

/// Largest write buffer worth keeping (bytes): an inline file with its head.
const WRITE_KEEP_MAX: usize = 32 * 1024;

impl WritePool {
    /// A buffer, empty, usually with room from an earlier response.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.bufs.borrow_mut().pop().unwrap_or_default()
    }

    /// Takes back a connection's buffer; large or surplus ones are freed.
    pub(crate) fn put(&self, mut buf: Vec<u8>) {
        let mut bufs = self.bufs.borrow_mut();
        if buf.capacity() == 0 || buf.capacity() > WRITE_KEEP_MAX || bufs.len() >= POOL_MAX {
            return;
        }
        buf.clear();
        bufs.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_lends_empty_buffers_with_room_and_keeps_only_small_ones() {
        let pool = ReadPool::new(4096);
        let mut a = pool.take();
        assert_eq!((a.len(), a.capacity()), (0, 4096), "empty, with room");
        let base = a.as_ptr();
        a.extend_from_slice(&[b'x'; 100]);
        let head = a.split_to(60).freeze();
        // A request still holds the front: the pooled buffer is new memory.
        a.clear();
        pool.put_empty(a);
        let b = pool.take();
        assert_eq!(b.len(), 0);
        assert!(b.capacity() >= 4096);
        assert_ne!(b.as_ptr(), base);
        drop(head);
        // Emptied and unshared: the same memory comes back, with its room.
        let mut c = b;
        let base = c.as_ptr();
        c.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        c.clear();
        pool.put_empty(c);
        let d = pool.take();
        assert_eq!((d.len(), d.as_ptr()), (0, base));
        assert!(d.capacity() >= 4096);
        // Grown for a large body: freed, not pooled.
        let mut big = BytesMut::with_capacity(64 * 1024);
        big.extend_from_slice(b"x");
        big.clear();
        pool.put_empty(big);
        assert!(pool.bufs.borrow().is_empty());
        // Not empty: unsafe to lend, dropped.
        pool.put_empty(BytesMut::from(&b"left over"[..]));
        assert!(pool.bufs.borrow().is_empty());
        // Bounded.
        for _ in 0..POOL_MAX + 10 {
            pool.put_back(BytesMut::with_capacity(4096));
        }
        assert_eq!(pool.bufs.borrow().len(), POOL_MAX);
    }

    #[test]
    fn the_write_pool_keeps_emptied_buffers_up_to_a_size() {
        let pool = WritePool::default();
        assert_eq!(pool.take().capacity(), 0, "an empty pool gives a new Vec");
        let mut used = Vec::with_capacity(1024);
        used.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let base = used.as_ptr();
        pool.put(used);
        let again = pool.take();
        assert_eq!(
            (again.len(), again.as_ptr()),
            (0, base),
            "emptied and reused"
        );
        pool.put(Vec::with_capacity(WRITE_KEEP_MAX + 1));
        pool.put(Vec::new());
        assert!(
            pool.bufs.borrow().is_empty(),
            "too large, or nothing to keep"
        );
        for _ in 0..POOL_MAX + 10 {
            pool.put(Vec::with_capacity(64));
        }
        assert_eq!(pool.bufs.borrow().len(), POOL_MAX);
    }
}
