//! What each middleware costs per request: the same trivial handler called
//! through `Layered` with one middleware (or none), the request parsed
//! from the same head each time. The difference to `none` is the cost.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use edgeshard::config::Limits;
use edgeshard::internals::parse_head;
use edgeshard::middleware::{
    Auth, AuthConfig, AuthRule, AuthSettings, Compress, CompressSettings, Cors, CorsSettings,
    HandlerExt, Middleware, Origins, RateLimit, RateLimitSettings, RequestIds, SecurityHeaders,
    SecuritySettings,
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
    bench_handler(c, name, head, plaintext.layer(m));
}

fn bench_handler<H: Handler>(c: &mut Criterion, name: &str, head: &[u8], handler: H) {
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

/// A 4 KiB JSON document, as an API would answer.
async fn json_4k(_: Request) -> Response {
    let items: Vec<String> = (0..100)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\",\"ok\":true}}"))
        .collect();
    Response::new(edgeshard::StatusCode::OK)
        .with_body("application/json", format!("[{}]", items.join(",")))
}

fn bench_compress(c: &mut Criterion) {
    let head = |accept: &str| {
        format!("GET /api HTTP/1.1\r\nHost: localhost:8080\r\nAccept-Encoding: {accept}\r\n\r\n")
            .into_bytes()
    };
    // The document is built in each iteration, with or without compression.
    bench_handler(
        c,
        "compress/json_4k_uncompressed",
        &head("identity"),
        json_4k,
    );
    let compress = || Compress::new(CompressSettings::default());
    for (name, accept) in [
        ("compress/json_4k_not_accepted", "identity"),
        ("compress/json_4k_gzip", "gzip"),
        ("compress/json_4k_br", "br"),
        ("compress/json_4k_zstd", "zstd"),
    ] {
        bench_handler(c, name, &head(accept), json_4k.layer(compress()));
    }
}

/// Bearer tokens and an HS256 JWT, checked on every request (a Basic
/// login is a cache lookup once checked; its first check is the hash's
/// cost on the blocking thread, see the README).
fn bench_auth(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("edgeshard-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "token-one\ntoken-two\ntoken-three\n").expect("write");
    let secret = b"0123456789abcdef0123456789abcdef";
    let key = dir.join("hs256");
    std::fs::write(&key, secret).expect("write");
    let load = |rule: String| {
        let settings = AuthSettings {
            rules: vec![AuthRule::parse(&rule).expect("rule")],
            ..AuthSettings::default()
        };
        Auth::new(AuthConfig::load(&settings).expect("loads").expect("a rule"))
    };
    let head = |authorization: &str| {
        format!(
            "GET /api/x HTTP/1.1\r\nHost: localhost:8080\r\nAuthorization: {authorization}\r\n\r\n"
        )
        .into_bytes()
    };
    let bearer = load(format!("/api=bearer:{}", tokens.display()));
    bench_handler(
        c,
        "auth/bearer_pass",
        &head("Bearer token-three"),
        plaintext.layer(bearer),
    );
    let unguarded = load(format!("/admin=bearer:{}", tokens.display()));
    bench_handler(
        c,
        "auth/outside_prefix",
        &head("-"),
        plaintext.layer(unguarded),
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": "u1", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret).expect("key"),
    )
    .expect("token");
    let jwt = load(format!("/api=jwt:{}", key.display()));
    bench_handler(
        c,
        "auth/jwt_hs256_pass",
        &head(&format!("Bearer {token}")),
        plaintext.layer(jwt),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_middleware, bench_compress, bench_auth);
criterion_main!(benches);
