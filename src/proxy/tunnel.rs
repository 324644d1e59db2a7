//! After the upstream's `101`: its connection becomes the other end of
//! the client's (the connection copies the bytes; see `conn::tunnel`).

use std::time::Duration;

use super::pool::UpConn;
use super::relay::Lease;
use crate::response::Upgraded;

/// The tunnel to hand the client's connection: the upstream socket, what
/// it sent after its `101` head, and the request's lease (it stays in
/// flight while the tunnel is open).
pub(super) fn tunnel(conn: UpConn, lease: Lease, idle: Duration) -> Upgraded {
    Upgraded::new(conn.sock, conn.buf.freeze(), idle, Box::new(lease))
}
