//! Head parsing throughput: httparse plus edgeshard's framing and safety
//! rules, and the split into a frozen `Bytes`, on three realistic heads.
//! Throughput is in request-head bytes per second.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use edgeshard::config::Limits;
use edgeshard::internals::parse_head;

/// What wrk sends.
const WRK: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";

/// A typical API call from a client library.
const API: &[u8] = b"POST /api/v1/orders?expand=items HTTP/1.1\r\nHost: api.example.com\r\n\
User-Agent: okhttp/4.12.0\r\nAccept: application/json\r\nContent-Type: application/json\r\n\
Content-Length: 0\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig\r\n\
X-Request-Id: 3f8e0c1c-6d8a-4e3b-9b0a-1c2d3e4f5a6b\r\n\r\n";

/// What a desktop browser sends for a page.
const BROWSER: &[u8] = b"GET /docs/getting-started/index.html?ref=nav HTTP/1.1\r\nHost: www.example.org\r\n\
Connection: keep-alive\r\nCache-Control: max-age=0\r\nsec-ch-ua: \"Chromium\";v=\"156\", \"Not)A;Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n\
Referer: https://www.example.org/docs/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9\r\nCookie: session=4f2a9c7e1b; theme=dark; consent=1\r\n\
If-None-Match: \"5f1e-63a8c2b1\"\r\nIf-Modified-Since: Tue, 10 Nov 2026 08:00:00 GMT\r\n\r\n";

fn bench_heads(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_head");
    for (name, head) in [("wrk", WRK), ("api", API), ("browser", BROWSER)] {
        group.throughput(Throughput::Bytes(head.len() as u64));
        // The buffer is refilled in place each iteration, as on a keep-alive
        // connection once the previous head's `Bytes` has been dropped.
        let mut buf = BytesMut::with_capacity(4096);
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.extend_from_slice(head);
                let parsed = parse_head(&mut buf, &limits);
                black_box(parsed.ok().flatten().map(|h| h.headers().count()))
            })
        });
    }
    group.finish();
}

fn bench_pipelined(c: &mut Criterion) {
    let limits = Limits::default();
    let batch: Vec<u8> = WRK.repeat(16);
    let mut group = c.benchmark_group("parse_head_pipelined");
    group.throughput(Throughput::Elements(16));
    let mut buf = BytesMut::with_capacity(4096);
    group.bench_function("wrk_x16", |b| {
        b.iter(|| {
            buf.extend_from_slice(&batch);
            let mut n = 0;
            while let Ok(Some(h)) = parse_head(&mut buf, &limits) {
                n += h.path().len();
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_heads, bench_pipelined);
criterion_main!(benches);
