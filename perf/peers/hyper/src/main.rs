//! hyper 1.x peer for the perf harness: one current-thread tokio runtime,
//! `GET /plaintext` and `GET /json` (serialized per request), 404 otherwise.
//! Usage: peer-hyper ADDR

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, ctype, body) = match req.uri().path() {
        "/plaintext" => (StatusCode::OK, "text/plain", Bytes::from_static(b"Hello, World!")),
        "/json" => {
            let body = serde_json::to_vec(&Message { message: "Hello, World!" }).unwrap_or_default();
            (StatusCode::OK, "application/json", Bytes::from(body))
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"404 Not Found\n")),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp.headers_mut().insert(SERVER, HeaderValue::from_static("hyper"));
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(async move {
            let _ = http1::Builder::new()
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
