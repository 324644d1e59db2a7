//! Middleware on the wire: the binary's chain from its flags (security
//! headers, request ids, CORS with its preflights and refusals), and the
//! library's scopes (`layer` around everything, `route_layer` around
//! matched routes only) with their order and early answers.

use crate::common;
use crate::static_common;

use std::collections::HashSet;
use std::io::Write;

use clap::Parser;
use common::*;
use edgeshard::config::Flags;
use edgeshard::middleware::{HandlerExt, Middleware, RequestId};
use edgeshard::{routes, Config, Request, Response, StatusCode};
use static_common::{split, Server};

/// The binary's app with exactly these flags (security headers at their
/// default unless the flags say otherwise).
fn binary(flags: &[&str]) -> Server {
    let mut argv = vec!["edgeshard", "--listen", "127.0.0.1:0", "--shards", "1"];
    argv.extend_from_slice(flags);
    let config = Config::from_flags(Flags::parse_from(argv)).expect("valid flags");
    Server::app(config)
}

fn send(srv: &Server, raw: &str) -> String {
    let mut s = srv.connect();
    s.write_all(raw.as_bytes()).unwrap();
    normalize(&read_response(&mut s))
}

#[test]
fn the_binary_sends_security_headers_by_default_and_more_when_asked() {
    let srv = binary(&[]);
    assert_eq!(
        send(&srv, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
        text_response("404 Not Found", "404 Not Found\n", SECURITY_LINES)
    );
    let mut s = srv.connect();
    assert_default_healthz(&mut s);

    let off = binary(&["--security-headers=false"]);
    assert_eq!(
        send(&off, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
        text_response("404 Not Found", "404 Not Found\n", "")
    );

    let more = binary(&[
        "--referrer-policy",
        "no-referrer",
        "--hsts",
        "8760h",
        "--csp",
        "default-src 'self'",
    ]);
    assert_eq!(
        send(&more, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"),
        text_response(
            "404 Not Found",
            "404 Not Found\n",
            "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n\
             Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n\
             Content-Security-Policy: default-src 'self'\r\n"
        )
    );
}

#[test]
fn request_ids_are_made_kept_or_replaced_and_reach_the_handler() {
    let srv = binary(&["--request-id", "--security-headers=false"]);
    let mut seen = HashSet::new();
    let mut s = srv.connect();
    for _ in 0..3 {
        s.write_all(HEALTHZ).unwrap();
        let (head, _) = split(&read_response(&mut s));
        let id = static_common::header(&head, "x-request-id")
            .expect("an id")
            .to_string();
        // <8 hex digits>-<shard>-<count>
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0].len(), 8, "{id}");
        assert!(parts[0].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(parts[1], "0", "{id}");
        assert!(seen.insert(id));
    }
    // A short, safe incoming id is kept, exactly.
    let head = send(
        &srv,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123_x.y:z\r\n\r\n",
    );
    assert_eq!(
        head,
        text_response(
            "200 OK",
            "ok",
            "Cache-Control: no-store\r\nX-Request-Id: abc-123_x.y:z\r\n"
        )
    );
    // Unsafe or long ones are replaced by a made one.
    for bad in ["a b", "<script>", &"x".repeat(65)] {
        let head = send(
            &srv,
            &format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: {bad}\r\n\r\n"),
        );
        let id = static_common::header(&head, "x-request-id").unwrap();
        assert_ne!(id, bad.trim());
        assert_eq!(id.split('-').count(), 3, "{id}");
    }
    // Off by default.
    let plain = binary(&["--security-headers=false"]);
    assert!(!send(&plain, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").contains("X-Request-Id"));
}

const ORIGIN: &str = "https://app.example";

#[test]
fn cors_allows_listed_origins_and_answers_their_preflights() {
    let srv = binary(&[
        "--security-headers=false",
        "--cors",
        "https://app.example,http://localhost:3000",
        "--cors-headers",
        "Content-Type,X-Token",
        "--cors-expose",
        "X-Request-Id",
        "--cors-max-age",
        "10m",
    ]);
    // An allowed origin reads the answer; the cache is told it varies.
    assert_eq!(
        send(
            &srv,
            &format!("GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\n\r\n")
        ),
        text_response(
            "200 OK",
            "ok",
            &format!(
                "Cache-Control: no-store\r\nVary: Origin\r\nAccess-Control-Allow-Origin: {ORIGIN}\r\n\
                 Access-Control-Expose-Headers: X-Request-Id\r\n"
            )
        )
    );
    // A disallowed origin, or none, gets no CORS header at all.
    for origin in ["Origin: https://evil.example\r\n", "Origin: null\r\n", ""] {
        assert_eq!(
            send(
                &srv,
                &format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{origin}\r\n")
            ),
            text_response(
                "200 OK",
                "ok",
                "Cache-Control: no-store\r\nVary: Origin\r\n"
            ),
            "{origin:?}"
        );
    }
    // A preflight for POST /api/echo (a route without OPTIONS, which the
    // router alone would answer 405): 204 with the allowed set.
    let vary = "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n";
    let preflight = |origin: &str, method: &str, headers: &str| {
        send(
            &srv,
            &format!(
                "OPTIONS /api/echo HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: {method}\r\n{headers}\r\n"
            ),
        )
    };
    assert_eq!(
        preflight(
            ORIGIN,
            "POST",
            "Access-Control-Request-Headers: content-type, x-token\r\n"
        ),
        format!(
            "HTTP/1.1 204 No Content\r\nServer: edgeshard\r\nDate: <date>\r\n{vary}\
             Access-Control-Allow-Origin: {ORIGIN}\r\n\
             Access-Control-Allow-Methods: GET, HEAD, POST\r\n\
             Access-Control-Allow-Headers: Content-Type, X-Token\r\n\
             Access-Control-Max-Age: 600\r\n\r\n"
        )
    );
    // Refused preflights: 204 and nothing allowed (the browser then stops).
    let refused =
        format!("HTTP/1.1 204 No Content\r\nServer: edgeshard\r\nDate: <date>\r\n{vary}\r\n");
    assert_eq!(preflight("https://evil.example", "POST", ""), refused);
    assert_eq!(preflight(ORIGIN, "DELETE", ""), refused);
    assert_eq!(
        preflight(
            ORIGIN,
            "POST",
            "Access-Control-Request-Headers: X-Other\r\n"
        ),
        refused
    );
    // An OPTIONS without Access-Control-Request-Method is no preflight.
    assert_eq!(
        &send(
            &srv,
            &format!("OPTIONS /api/echo HTTP/1.1\r\nHost: t\r\nOrigin: {ORIGIN}\r\n\r\n")
        )[..32],
        "HTTP/1.1 405 Method Not Allowed\r"
    );
}

#[test]
fn cors_for_any_origin_and_the_settings_that_cannot_work() {
    let srv = binary(&["--security-headers=false", "--cors", "*"]);
    assert_eq!(
        send(
            &srv,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: https://x.example\r\n\r\n"
        ),
        text_response(
            "200 OK",
            "ok",
            "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n"
        )
    );
    let error = |flags: &[&str]| {
        let mut argv = vec!["edgeshard"];
        argv.extend_from_slice(flags);
        Config::from_flags(Flags::parse_from(argv))
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        error(&["--cors", "*", "--cors-credentials"]),
        "--cors: credentials cannot be allowed for any origin (*): list the origins"
    );
    assert_eq!(
        error(&["--cors", "https://a.example/app"]),
        "--cors: \"https://a.example/app\" is not an origin (scheme://host[:port], no path)"
    );
    assert_eq!(
        error(&["--cors-methods", "GET"]),
        "--cors: the --cors-* settings need --cors"
    );
}

/// Adds `X-Mark: <name>` to every response, and answers 403 itself when
/// the request carries `X-Refuse: <name>`.
struct Mark(&'static str);

impl Middleware for Mark {
    type Carry = ();
    fn on_request(&self, req: &mut Request) -> Result<(), Response> {
        match req.header("x-refuse") {
            Some(v) if v == self.0.as_bytes() => {
                Err(Response::error(StatusCode::FORBIDDEN, self.0))
            }
            _ => Ok(()),
        }
    }
    fn on_response(&self, _: (), resp: Response) -> Response {
        resp.with_header("X-Mark", self.0)
    }
}

async fn who(req: Request) -> String {
    let id = req.extensions().get::<RequestId>().map(RequestId::as_str);
    format!("id={}", id.unwrap_or("-"))
}

#[test]
fn layers_wrap_everything_route_layers_only_matched_routes() {
    let config = static_common::config_from(&[]);
    let srv = TestServer::with_handler(config, |_| {
        routes! {
            "GET /who" => who,
        }
        .route_layer(Mark("route"))
        .route_layer(None::<Mark>)
        .layer((Mark("outer"), Some(Mark("inner"))))
    });
    // A matched route: inner hooks first, outer last, route-only innermost.
    let mut s = srv.connect();
    s.write_all(b"GET /who HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "200 OK",
            "id=-",
            "X-Mark: route\r\nX-Mark: inner\r\nX-Mark: outer\r\n"
        )
    );
    // The router's own 404: the layers, not the route layer.
    s.write_all(b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "404 Not Found",
            "404 Not Found\n",
            "X-Mark: inner\r\nX-Mark: outer\r\n"
        )
    );
    // An inner middleware answering early: the outer one still sees it,
    // the handler and the inner route layer never run.
    s.write_all(b"GET /who HTTP/1.1\r\nHost: t\r\nX-Refuse: inner\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "403 Forbidden",
            "403 Forbidden: inner\n",
            "X-Mark: outer\r\n"
        )
    );
    s.write_all(b"GET /who HTTP/1.1\r\nHost: t\r\nX-Refuse: route\r\n\r\n")
        .unwrap();
    assert_eq!(
        normalize(&read_response(&mut s)),
        text_response(
            "403 Forbidden",
            "403 Forbidden: route\n",
            "X-Mark: inner\r\nX-Mark: outer\r\n"
        )
    );
}

#[test]
fn a_handler_reads_the_request_id_from_the_extensions() {
    let config = static_common::config_from(&[]);
    let srv = TestServer::with_handler(config, |shard| {
        routes! {
            "GET /who" => who,
        }
        .layer(edgeshard::middleware::RequestIds::with_prefix(
            shard.id, 0xfeed,
        ))
    });
    assert_eq!(
        send(&srv, "GET /who HTTP/1.1\r\nHost: t\r\n\r\n"),
        text_response(
            "200 OK",
            "id=0000feed-0-1",
            "X-Request-Id: 0000feed-0-1\r\n"
        )
    );
    assert_eq!(
        send(
            &srv,
            "GET /who HTTP/1.1\r\nHost: t\r\nX-Request-Id: given-1\r\n\r\n"
        ),
        text_response("200 OK", "id=given-1", "X-Request-Id: given-1\r\n")
    );
}

const TOO_MANY: &str = "429 Too Many Requests: rate limit exceeded\n";

#[test]
fn a_burst_over_the_rate_limit_gets_429_then_the_bucket_refills() {
    let srv = binary(&[
        "--security-headers=false",
        "--rate-limit",
        "5/s",
        "--rate-burst",
        "3",
    ]);
    let mut s = srv.connect();
    let mut get = || {
        s.write_all(HEALTHZ).unwrap();
        normalize(&read_response(&mut s))
    };
    let ok = text_response("200 OK", "ok", "Cache-Control: no-store\r\n");
    for _ in 0..3 {
        assert_eq!(get(), ok);
    }
    let limited = text_response("429 Too Many Requests", TOO_MANY, "Retry-After: 1\r\n");
    assert_eq!(get(), limited);
    // One interval (200 ms) later, one request more; then limited again.
    std::thread::sleep(std::time::Duration::from_millis(260));
    assert_eq!(get(), ok);
    assert_eq!(get(), limited);
    // A second later the whole burst is back.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for _ in 0..3 {
        assert_eq!(get(), ok);
    }
}

#[test]
fn forwarded_clients_are_told_apart_only_behind_a_trusted_proxy() {
    let flags = [
        "--security-headers=false",
        "--rate-limit",
        "1/m",
        "--rate-burst",
        "1",
    ];
    let status = |srv: &Server, extra: &str| {
        send(
            srv,
            &format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{extra}\r\n"),
        )[9..12]
            .to_string()
    };
    // Not trusted: the header is ignored, every request is 127.0.0.1's.
    let direct = binary(&flags);
    assert_eq!(status(&direct, "X-Forwarded-For: 203.0.113.1\r\n"), "200");
    assert_eq!(status(&direct, "X-Forwarded-For: 203.0.113.2\r\n"), "429");

    // Trusted: the nearest untrusted address in the chain is the client.
    let mut with_proxy = flags.to_vec();
    with_proxy.extend_from_slice(&[
        "--trusted-proxy",
        "127.0.0.0/8",
        "--trusted-proxy",
        "10.0.0.0/8",
    ]);
    let proxied = binary(&with_proxy);
    assert_eq!(status(&proxied, "X-Forwarded-For: 203.0.113.1\r\n"), "200");
    assert_eq!(status(&proxied, "X-Forwarded-For: 203.0.113.1\r\n"), "429");
    assert_eq!(
        status(&proxied, "X-Forwarded-For: 203.0.113.2, 10.1.2.3\r\n"),
        "200"
    );
    assert_eq!(
        status(&proxied, "X-Forwarded-For: 198.51.100.7, 203.0.113.2\r\n"),
        "429",
        "a spoofed first hop does not help: 203.0.113.2 is the client"
    );
    assert_eq!(
        status(
            &proxied,
            "Forwarded: for=\"[2001:db8::5]:4711\";proto=http\r\n"
        ),
        "200"
    );
    assert_eq!(
        status(&proxied, "Forwarded: for=2001:db8::5\r\n"),
        "200",
        "no port, no brackets: not an address, the proxy itself is the client"
    );
    assert_eq!(
        status(&proxied, ""),
        "429",
        "the proxy's own requests share its bucket"
    );
}

#[test]
fn each_shard_enforces_the_burst_of_its_own_connections() {
    // As documented: per shard, the full burst. From one address, over
    // connections the kernel spreads, the shards together admit
    // burst × the shards reached.
    let mut config = static_common::config_from(&[]);
    config.shards = std::num::NonZeroUsize::new(2);
    let srv = TestServer::with_handler(config, |shard| {
        let id = shard.id;
        let mut settings = edgeshard::middleware::RateLimitSettings::new(0.01);
        settings.burst = 2;
        (move |_: Request| async move { format!("shard {id}") })
            .layer(edgeshard::middleware::RateLimit::new(&settings))
    });
    let mut admitted = std::collections::HashMap::new();
    let mut refused = 0;
    for _ in 0..24 {
        let got = send(&srv, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        match &got[9..12] {
            "200" => {
                let shard = got.rsplit("\r\n\r\n").next().unwrap().to_string();
                *admitted.entry(shard).or_insert(0) += 1;
            }
            "429" => refused += 1,
            other => panic!("unexpected {other}: {got}"),
        }
    }
    assert_eq!(
        admitted.len(),
        2,
        "24 connections reached both shards: {admitted:?}"
    );
    assert!(admitted.values().all(|&n| n == 2), "{admitted:?}");
    assert_eq!(refused, 24 - 4);
}
