//! The answers about the server itself that do not depend on the app:
//! `/metrics` (every shard's counters, gathered over the mesh) and
//! `/readyz`. The binary's API serves them on the main listener; with
//! `--metrics-listen` they are served on an address of their own (one
//! shard listens there: the scrape gathers from all of them anyway), and
//! the main listener no longer answers `/metrics`.

use std::rc::Rc;

use crate::handler::{Handler, Request};
use crate::http::StatusCode;
use crate::mesh::Mesh;
use crate::metrics::{render, Metrics};
use crate::response::{IntoResponse, Response};
use crate::shutdown::ShutdownTrigger;

/// The Prometheus text format's content type.
pub const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers that describe the server now: a cache must not keep them
/// (RFC 9111 §4.2.2 would let it guess a freshness otherwise).
pub fn uncached(resp: impl IntoResponse) -> Response {
    resp.into_response()
        .with_header("Cache-Control", "no-store")
}

/// `/metrics`: every shard's counters (this one's alone without a mesh);
/// 404 when the metrics are off.
pub async fn metrics(metrics: &Metrics, mesh: Option<&Mesh>) -> Response {
    if !metrics.enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let (shards, total) = match mesh {
        Some(mesh) => (mesh.gather_metrics().await, mesh.shards()),
        None => (vec![metrics.snapshot(0)], 1),
    };
    uncached(Response::new(StatusCode::OK).with_body(METRICS_TYPE, render(&shards, total)))
}

/// `/readyz`: 200 while the server takes new work, 503 from the moment a
/// stop is announced (so a load balancer moves traffic away before the
/// listeners close: `--shutdown-delay`).
pub fn readyz(shutdown: Option<&ShutdownTrigger>) -> Response {
    match shutdown {
        Some(s) if !s.ready() => {
            uncached(Response::error(StatusCode::SERVICE_UNAVAILABLE, "stopping"))
        }
        _ => uncached("ready"),
    }
}

/// The handler of the admin address: `GET /metrics`, `/readyz` and
/// `/healthz`; 404 for anything else.
#[derive(Debug, Clone)]
pub struct Admin {
    metrics: Rc<Metrics>,
    mesh: Rc<Mesh>,
    shutdown: ShutdownTrigger,
}

impl Admin {
    /// The admin handler of the shard with these counters, mesh and trigger.
    pub fn new(metrics: Rc<Metrics>, mesh: Rc<Mesh>, shutdown: ShutdownTrigger) -> Admin {
        Admin {
            metrics,
            mesh,
            shutdown,
        }
    }
}

impl Handler for Admin {
    async fn call(&self, req: Request) -> Response {
        let get = matches!(
            req.method(),
            crate::http::Method::Get | crate::http::Method::Head
        );
        match req.path() {
            "/metrics" if get => metrics(&self.metrics, Some(&self.mesh)).await,
            "/readyz" if get => readyz(Some(&self.shutdown)),
            "/healthz" if get => uncached("ok"),
            "/metrics" | "/readyz" | "/healthz" => Response::method_not_allowed("GET, HEAD"),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
}
