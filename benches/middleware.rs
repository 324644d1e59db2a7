//! What each middleware costs per request: the same trivial handler called
//! through `Layered` with one middleware (or none), the request parsed
//! from the same head each time. The difference to `none` is the cost.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use edgeshard::config::Limits;
use edgeshard::internals::parse_head;
use edgeshard::middleware::{
    Cors, CorsSettings, HandlerExt, Middleware, Origins, RateLimit, RateLimitSettings, RequestIds,
    SecurityHeaders, SecuritySettings,
};
use edgeshard::{Handler, Request, Response};
use futures_lite::future::block_on;

const PLAIN: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
const WITH_ID: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nX-Request-Id: 3f8e0c1c-6d8a-4e3b\r\n\r\n";
const CORS_GET: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nOrigin: https://app.example\r\n\r\n";
const PREFLIGHT: &[u8] = b"OPTIONS /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\
Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n\
Access-Control-Request-Headers: content-type\r\n\r\n";

async fn plaintext(_: Request) -> Response {
    Response::text(Bytes::from_static(b"Hello, World!"))
}

fn bench_one<M: Middleware>(c: &mut Criterion, name: &str, head: &[u8], m: M) {
    let handler = plaintext.layer(m);
    let limits = Limits::default();
    let mut buf = BytesMut::with_capacity(4096);
    c.bench_function(name, |b| {
        b.iter(|| {
            buf.extend_from_slice(head);
            let head = parse_head(&mut buf, &limits)
                .ok()
                .flatten()
                .expect("a head");
            let resp = block_on(handler.call(Request::new(head, Bytes::new())));
            black_box(resp.status())
        })
    });
}

fn bench_middleware(c: &mut Criterion) {
    let cors = || {
        Cors::new(&CorsSettings::new(Origins::List(vec![
            "https://app.example".into(),
        ])))
        .expect("valid")
    };
    let security = || SecurityHeaders::new(&SecuritySettings::default()).expect("valid");
    bench_one(c, "middleware/none", PLAIN, ());
    bench_one(c, "middleware/none_option", PLAIN, None::<RequestIds>);
    bench_one(c, "middleware/request_id_made", PLAIN, RequestIds::new(0));
    bench_one(c, "middleware/request_id_kept", WITH_ID, RequestIds::new(0));
    bench_one(c, "middleware/security_headers", PLAIN, security());
    bench_one(c, "middleware/cors_no_origin", PLAIN, cors());
    bench_one(c, "middleware/cors_allowed_origin", CORS_GET, cors());
    bench_one(c, "middleware/cors_preflight", PREFLIGHT, cors());
    // A rate no request reaches: the cost of admitting one.
    let mut rate = RateLimitSettings::new(1e6);
    rate.burst = 1_000_000_000;
    bench_one(
        c,
        "middleware/rate_limit_admitted",
        PLAIN,
        RateLimit::new(&rate),
    );
    bench_one(
        c,
        "middleware/request_id_and_security",
        PLAIN,
        (RequestIds::new(0), security()),
    );
}

criterion_group!(benches, bench_middleware);
criterion_main!(benches);
