//! may_minihttp peer for the perf harness: one may worker,
//! `GET /plaintext` and `GET /json` (serialized per request), 404 otherwise.
//! Usage: peer-may ADDR

use std::io;

use bytes::BufMut;
use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

struct Peer;

impl HttpService for Peer {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match req.path() {
            "/plaintext" => {
                rsp.header("Content-Type: text/plain").body("Hello, World!");
            }
            "/json" => {
                rsp.header("Content-Type: application/json");
                serde_json::to_writer(rsp.body_mut().writer(), &Message { message: "Hello, World!" })?;
            }
            _ => {
                rsp.status_code(404, "Not Found");
                rsp.body("404 Not Found\n");
            }
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Peer;

    fn new_service(&self, _: usize) -> Peer {
        Peer
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    may::config().set_workers(1).set_pool_capacity(1000).set_stack_size(0x1000);
    match Factory.start(&addr) {
        Ok(server) => {
            let _ = server.join();
        }
        Err(e) => eprintln!("peer-may: {e}"),
    }
}
