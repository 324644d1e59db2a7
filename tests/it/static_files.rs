//! Static files over real sockets: exact heads, conditionals, ranges,
//! precompressed variants, directories, dotfiles, traversal attempts,
//! symlinks, freshness, sendfile with pipelining and slow readers.

use crate::common;
use crate::static_common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use static_common::*;

const HELLO: &[u8] = b"hello, static world\n";

fn hello_fixture() -> (Fixture, String) {
    let fx = Fixture::new("hello");
    let path = fx.file("hello.txt", HELLO);
    let etag = etag_of(&path);
    (fx, etag)
}

/// The exact head edgeshard sends for `hello.txt`, before any extra lines.
fn hello_head(status: &str, etag: &str, length: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nServer: edgeshard\r\nDate: <date>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Accept-Ranges: bytes\r\nLast-Modified: {MTIME_TEXT}\r\nETag: {etag}\r\n\
         Cache-Control: no-cache\r\nContent-Length: {length}\r\n{extra}\r\n"
    )
}

#[test]
fn get_and_head_send_exact_heads() {
    let (fx, etag) = hello_fixture();
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let (head, body) = srv.get("/hello.txt", "");
    assert_eq!(head, hello_head("200 OK", &etag, HELLO.len(), ""));
    assert_eq!(body, HELLO);

    // HEAD: the same head, no body; the connection stays usable.
    let mut s = srv.connect();
    s.write_all(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let raw = read_response_head_only(&mut s);
    assert_eq!(
        normalize(&raw),
        hello_head("200 OK", &etag, HELLO.len(), "")
    );
    common::assert_builtin_healthz(&mut s);
}

/// Reads one head and nothing more (HEAD responses carry a length but no body).
fn read_response_head_only(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut b = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        raw.push(b[0]);
    }
    raw
}

#[test]
fn other_methods_get_405_with_allow() {
    let (fx, _) = hello_fixture();
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (head, body) = srv.request(method, "/hello.txt", "Content-Length: 0\r\n");
        assert_eq!(
            head,
            "HTTP/1.1 405 Method Not Allowed\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\
             Allow: GET, HEAD\r\n\r\n",
            "{method}"
        );
        assert_eq!(body, b"405 Method Not Allowed\n");
    }
}

#[test]
fn routes_win_over_files() {
    let fx = Fixture::new("routes-win");
    fx.file("healthz", b"a file called healthz\n");
    fx.file("api/stats", b"a file\n");
    fx.file("other", b"reachable\n");
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    assert_eq!(srv.get("/healthz", "").1, b"ok");
    assert!(srv.get("/api/stats", "").1.starts_with(b"{\"shards\""));
    assert_eq!(srv.get("/other", "").1, b"reachable\n");
}

#[test]
fn conditionals_follow_rfc_9110_order() {
    let (fx, etag) = hello_fixture();
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let not_modified = format!(
        "HTTP/1.1 304 Not Modified\r\nServer: edgeshard\r\nDate: <date>\r\n\
         Last-Modified: {MTIME_TEXT}\r\nETag: {etag}\r\nCache-Control: no-cache\r\n\r\n"
    );
    let status = |headers: &str| {
        let (head, body) = srv.get("/hello.txt", headers);
        (head[9..12].to_string(), head, body)
    };

    let (code, head, body) = status(&format!("If-None-Match: {etag}\r\n"));
    assert_eq!(
        (code.as_str(), head.as_str()),
        ("304", not_modified.as_str())
    );
    assert!(body.is_empty());
    assert_eq!(
        status(&format!("If-None-Match: \"x\", W/{etag}\r\n")).0,
        "304"
    );
    assert_eq!(status("If-None-Match: *\r\n").0, "304");
    assert_eq!(status("If-None-Match: \"other\"\r\n").0, "200");
    let (_, head, _) = status(&format!("If-Modified-Since: {MTIME_TEXT}\r\n"));
    assert_eq!(head, not_modified);
    assert_eq!(
        status("If-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n").0,
        "200"
    );
    assert_eq!(status("If-Modified-Since: not a date\r\n").0, "200");
    // If-None-Match present: If-Modified-Since is not looked at.
    assert_eq!(
        status(&format!(
            "If-None-Match: \"other\"\r\nIf-Modified-Since: {MTIME_TEXT}\r\n"
        ))
        .0,
        "200"
    );

    let failed = "HTTP/1.1 412 Precondition Failed\r\nServer: edgeshard\r\nDate: <date>\r\n\
                  Content-Type: text/plain; charset=utf-8\r\nContent-Length: 45\r\n\r\n";
    let (_, head, body) = status("If-Match: \"other\"\r\n");
    assert_eq!(head, failed);
    assert_eq!(body, b"412 Precondition Failed: precondition failed\n");
    assert_eq!(status(&format!("If-Match: {etag}\r\n")).0, "200");
    assert_eq!(status(&format!("If-Match: W/{etag}\r\n")).0, "412");
    assert_eq!(
        status("If-Unmodified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n").0,
        "412"
    );
    assert_eq!(
        status(&format!("If-Unmodified-Since: {MTIME_TEXT}\r\n")).0,
        "200"
    );
    // 412 is decided before 304.
    assert_eq!(
        status(&format!("If-Match: \"other\"\r\nIf-None-Match: {etag}\r\n")).0,
        "412"
    );
}

#[test]
fn single_ranges_if_range_and_416() {
    let fx = Fixture::new("ranges");
    let data: Vec<u8> = (0..100u8).collect();
    let path = fx.file("data.bin", &data);
    let etag = etag_of(&path);
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let partial = |range: &str, from: usize, to: usize| {
        let (head, body) = srv.get("/data.bin", &format!("Range: {range}\r\n"));
        let want = format!(
            "HTTP/1.1 206 Partial Content\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: application/octet-stream\r\n\
             Accept-Ranges: bytes\r\nLast-Modified: {MTIME_TEXT}\r\nETag: {etag}\r\n\
             Cache-Control: no-cache\r\nContent-Length: {}\r\n\
             Content-Range: bytes {from}-{}/100\r\n\r\n",
            to - from,
            to - 1
        );
        assert_eq!(head, want, "{range}");
        assert_eq!(body, &data[from..to], "{range}");
    };
    partial("bytes=0-9", 0, 10);
    partial("bytes=90-", 90, 100);
    partial("bytes=-5", 95, 100);
    partial("bytes=95-1000", 95, 100);
    partial("bytes=10-19", 10, 20);

    let (head, body) = srv.get("/data.bin", "Range: bytes=100-\r\n");
    assert_eq!(
        head,
        "HTTP/1.1 416 Range Not Satisfiable\r\nServer: edgeshard\r\nDate: <date>\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: 49\r\n\
         Content-Range: bytes */100\r\nAccept-Ranges: bytes\r\n\r\n"
    );
    assert_eq!(body, b"416 Range Not Satisfiable: range not satisfiable\n");

    // If-Range with the current ETag or date: the range; otherwise the whole file.
    let code = |h: &str| srv.get("/data.bin", h).0[9..12].to_string();
    assert_eq!(
        code(&format!("Range: bytes=0-0\r\nIf-Range: {etag}\r\n")),
        "206"
    );
    assert_eq!(
        code(&format!("Range: bytes=0-0\r\nIf-Range: {MTIME_TEXT}\r\n")),
        "206"
    );
    assert_eq!(code("Range: bytes=0-0\r\nIf-Range: \"stale\"\r\n"), "200");
    assert_eq!(
        code(&format!("Range: bytes=0-0\r\nIf-Range: W/{etag}\r\n")),
        "200"
    );
    assert_eq!(
        code("Range: bytes=0-0\r\nIf-Range: Sat, 05 Nov 1994 08:49:37 GMT\r\n"),
        "200"
    );
    // Malformed and foreign-unit ranges are ignored; amplifying sets are served whole.
    for r in [
        "bytes=5-1",
        "items=0-1",
        "bytes=0-50,40-60",
        "bytes=0-99,0-99,0-99",
    ] {
        let (head, body) = srv.get("/data.bin", &format!("Range: {r}\r\n"));
        assert_eq!(&head[9..12], "200", "{r}");
        assert_eq!(body, data, "{r}");
    }
    let many: Vec<String> = (0..17).map(|i| format!("{0}-{0}", i * 2)).collect();
    let (head, _) = srv.get("/data.bin", &format!("Range: bytes={}\r\n", many.join(",")));
    assert_eq!(&head[9..12], "200", "17 ranges are too many");
}

#[test]
fn a_suffix_range_on_an_empty_file_is_the_whole_empty_file() {
    let fx = Fixture::new("empty-range");
    let path = fx.file("empty.bin", b"");
    let etag = etag_of(&path);
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    // RFC 9110 §14.1.2: `-5` is satisfiable on zero bytes, and a 206 cannot
    // describe them; nginx answers 200 too.
    for range in ["bytes=-5", "bytes=-1", "bytes=0-, -5"] {
        let (head, body) = srv.get("/empty.bin", &format!("Range: {range}\r\n"));
        assert_eq!(
            head,
            format!(
                "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\n\
                 Content-Type: application/octet-stream\r\n\
                 Accept-Ranges: bytes\r\nLast-Modified: {MTIME_TEXT}\r\nETag: {etag}\r\n\
                 Cache-Control: no-cache\r\nContent-Length: 0\r\n\r\n"
            ),
            "{range}"
        );
        assert!(body.is_empty());
    }
    // No byte to start from: still unsatisfiable.
    for range in ["bytes=0-", "bytes=0-0", "bytes=-0"] {
        let (head, _) = srv.get("/empty.bin", &format!("Range: {range}\r\n"));
        assert_eq!(
            head,
            "HTTP/1.1 416 Range Not Satisfiable\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 49\r\n\
             Content-Range: bytes */0\r\nAccept-Ranges: bytes\r\n\r\n",
            "{range}"
        );
    }
}

/// Parses a multipart/byteranges body into (Content-Range, bytes) pairs.
fn parts(head: &str, body: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let ct = header(head, "content-type").unwrap();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart content type");
    let delim = format!("--{boundary}");
    let text = body.to_vec();
    let mut out = Vec::new();
    let mut rest = &text[..];
    assert!(rest.starts_with(delim.as_bytes()));
    loop {
        rest = &rest[delim.len()..];
        if rest == b"--\r\n" {
            break;
        }
        let head_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let part_head = String::from_utf8(rest[2..head_end].to_vec()).unwrap();
        rest = &rest[head_end + 4..];
        let next = rest
            .windows(delim.len() + 2)
            .position(|w| w == format!("\r\n{delim}").as_bytes())
            .unwrap();
        let ctype = header(&part_head, "content-type").unwrap().to_string();
        let range = header(&part_head, "content-range").unwrap().to_string();
        out.push((ctype, range, rest[..next].to_vec()));
        rest = &rest[next + 2..];
    }
    out
}

#[test]
fn several_ranges_are_multipart_from_memory_and_from_sendfile() {
    let fx = Fixture::new("multipart");
    let small: Vec<u8> = (0..200u8).collect();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fx.file("small.bin", &small);
    fx.file("big.bin", &big);
    // Inline up to 1 KiB: small.bin comes from memory, big.bin with sendfile.
    let srv = Server::with_flags(&[
        "--root",
        fx.dir.to_str().unwrap(),
        "--file-inline-max",
        "1KiB",
    ]);
    for (name, data) in [("small.bin", &small), ("big.bin", &big)] {
        let len = data.len();
        let (head, body) = srv.get(&format!("/{name}"), "Range: bytes=0-9, 150-159, -3\r\n");
        assert_eq!(&head[9..12], "206", "{name}");
        assert_eq!(
            header(&head, "content-length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            body.len()
        );
        let got = parts(&head, &body);
        let want = [(0, 10), (150, 160), (len - 3, len)];
        assert_eq!(got.len(), 3);
        for ((ct, cr, bytes), (a, b)) in got.iter().zip(want) {
            assert_eq!(ct, "application/octet-stream");
            assert_eq!(cr, &format!("bytes {a}-{}/{len}", b - 1));
            assert_eq!(bytes, &data[a..b]);
        }
    }
}

#[test]
fn precompressed_variants_follow_accept_encoding() {
    let fx = Fixture::new("precompressed");
    let plain = fx.file("app.js", b"console.log('plain');\n");
    let gz = fx.file("app.js.gz", b"GZIP-BYTES");
    let br = fx.file("app.js.br", b"BROTLI-BYTES");
    fx.file("only.css", b"body{}\n");
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let get = |ae: &str| srv.get("/app.js", &format!("Accept-Encoding: {ae}\r\n"));

    let (head, body) = get("gzip, deflate, br");
    assert_eq!(body, b"BROTLI-BYTES");
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 200 OK\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/javascript; charset=utf-8\r\n\
             Content-Encoding: br\r\nAccept-Ranges: bytes\r\nLast-Modified: {MTIME_TEXT}\r\n\
             ETag: {}\r\nCache-Control: no-cache\r\nVary: Accept-Encoding\r\n\
             Content-Length: 12\r\n\r\n",
            etag_of(&br)
        )
    );
    let (head, body) = get("gzip");
    assert_eq!(body, b"GZIP-BYTES");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    assert_eq!(header(&head, "etag"), Some(etag_of(&gz).as_str()));
    let (_, body) = get("br;q=0.5, gzip;q=0.9");
    assert_eq!(body, b"GZIP-BYTES");
    let (_, body) = get("br;q=0, gzip;q=0");
    assert_eq!(body, b"console.log('plain');\n");
    let (_, body) = get("zstd");
    assert_eq!(body, b"console.log('plain');\n", "no .zst beside the file");

    // Without Accept-Encoding: identity, still with Vary.
    let (head, body) = srv.get("/app.js", "");
    assert_eq!(body, b"console.log('plain');\n");
    assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
    assert_eq!(header(&head, "content-encoding"), None);
    assert_eq!(header(&head, "etag"), Some(etag_of(&plain).as_str()));
    // A conditional uses the chosen variant's validator.
    let (head, _) = srv.get(
        "/app.js",
        &format!(
            "Accept-Encoding: gzip\r\nIf-None-Match: {}\r\n",
            etag_of(&gz)
        ),
    );
    assert_eq!(&head[9..12], "304");
    assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
    // The variant itself is an ordinary file; files without variants have no Vary.
    let (head, body) = srv.get("/app.js.gz", "Accept-Encoding: gzip\r\n");
    assert_eq!(body, b"GZIP-BYTES");
    assert_eq!(header(&head, "content-encoding"), None);
    let (head, _) = srv.get("/only.css", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(header(&head, "vary"), None);
}

#[test]
fn directories_redirect_and_serve_index() {
    let fx = Fixture::new("dirs");
    fx.file("docs/index.html", b"<h1>docs</h1>\n");
    fx.file("empty/.keep", b"");
    fx.file("list/b.txt", b"b");
    fx.file("list/<a&b>.txt", b"x");
    fx.file("list/sub/x", b"x");
    let root = fx.dir.to_str().unwrap();
    let srv = Server::with_flags(&["--root", root]);
    let redirect = |loc: &str| {
        format!(
            "HTTP/1.1 301 Moved Permanently\r\nServer: edgeshard\r\nDate: <date>\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Location: {loc}\r\n\r\n",
            format!("301 Moved Permanently: {loc}\n").len()
        )
    };
    assert_eq!(srv.get("/docs", "").0, redirect("/docs/"));
    assert_eq!(srv.get("/docs?x=1", "").0, redirect("/docs/?x=1"));
    assert_eq!(srv.get("/docs/index.html", "").0, redirect("/docs/"));
    assert_eq!(
        srv.get("/docs/index.html?v=2", "").0,
        redirect("/docs/?v=2")
    );
    assert_eq!(srv.get("/docs/index%2ehtml", "").1, b"<h1>docs</h1>\n");
    let (head, body) = srv.get("/docs/", "");
    assert_eq!(&head[9..12], "200");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body, b"<h1>docs</h1>\n");
    // No index and no --autoindex: refused, like nginx.
    let (head, body) = srv.get("/empty/", "");
    assert_eq!(&head[9..12], "403");
    assert_eq!(body, b"403 Forbidden: directory listing is disabled\n");
    // A file with a trailing slash is not a directory.
    assert_eq!(&srv.get("/list/b.txt/", "").0[9..12], "404");
    drop(srv);

    let srv = Server::with_flags(&["--root", root, "--autoindex"]);
    let (head, body) = srv.get("/list/", "");
    assert_eq!(&head[9..12], "200");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<a href=\"sub/\">sub/</a>"), "{html}");
    assert!(html.contains("<a href=\"b.txt\">b.txt</a>"), "{html}");
    assert!(
        html.contains("<a href=\"%3Ca&%3E.txt\">&lt;a&amp;b&gt;.txt</a>")
            || html.contains("&lt;a&amp;b&gt;.txt</a>"),
        "{html}"
    );
    assert!(!html.contains("<a&b>"), "names are escaped: {html}");
    // Dotfiles stay out of listings.
    let (_, body) = srv.get("/empty/", "");
    assert!(!String::from_utf8(body).unwrap().contains(".keep"));
}

#[test]
fn dotfiles_are_hidden_unless_enabled() {
    let fx = Fixture::new("dotfiles");
    fx.file(".env", b"SECRET=1\n");
    fx.file(".git/config", b"[core]\n");
    fx.file(".well-known/security.txt", b"Contact: x\n");
    let root = fx.dir.to_str().unwrap();
    let srv = Server::with_flags(&["--root", root]);
    for p in ["/.env", "/.git/config", "/.git/"] {
        let (head, body) = srv.get(p, "");
        assert_eq!(&head[9..12], "404", "{p}");
        assert_eq!(body, b"404 Not Found\n");
    }
    assert_eq!(srv.get("/.well-known/security.txt", "").1, b"Contact: x\n");
    drop(srv);
    let srv = Server::with_flags(&["--root", root, "--dotfiles"]);
    assert_eq!(srv.get("/.env", "").1, b"SECRET=1\n");
}

#[test]
fn traversal_attempts_never_reach_the_file_system() {
    let fx = Fixture::new("traversal");
    fx.file("www/index.html", b"home\n");
    fx.file("secret.txt", b"outside the root\n");
    let www = fx.path("www");
    let srv = Server::with_flags(&["--root", www.to_str().unwrap()]);
    let before = srv.file_opens();
    let cases: &[(&str, &str)] = &[
        ("/%2e%2e/secret.txt", "400"),
        ("/%2E%2E/%2e%2e/etc/passwd", "400"),
        ("/a/%2e%2e/%2e%2e/secret.txt", "400"),
        ("/..%2fsecret.txt", "400"),
        ("/%2e%2e%2fsecret.txt", "400"),
        ("/..%5csecret.txt", "400"),
        ("/..\\secret.txt", "400"),
        ("/x%00.txt", "400"),
        ("/%zz", "400"),
    ];
    for (path, want) in cases {
        let (head, _) = srv.get(path, "");
        assert_eq!(&head[9..12], *want, "{path}");
    }
    let long = format!("/{}", "a".repeat(300));
    assert_eq!(&srv.get(&long, "").0[9..12], "404");
    let deep = format!("/{}x", "abcdefgh/".repeat(500));
    assert_eq!(&srv.get(&deep, "").0[9..12], "404");
    assert_eq!(
        srv.file_opens(),
        before,
        "a refused path must not touch the file system"
    );
    // Raw dot segments that stay inside are cleaned by the router and
    // redirected; those that climb above the root are refused.
    let (head, _) = srv.get("/a/../secret.txt", "");
    assert_eq!(header(&head, "location"), Some("/secret.txt"));
    assert_eq!(&srv.get("/a/../../secret.txt", "").0[9..12], "400");
    assert_eq!(&srv.get("/secret.txt", "").0[9..12], "404");
}

#[test]
fn symlinks_inside_the_root_work_and_escapes_are_refused() {
    for resolver in [
        edgeshard::static_files::Resolver::Openat2,
        edgeshard::static_files::Resolver::PathWalk,
    ] {
        let fx = Fixture::new("symlinks");
        fx.file("www/real.txt", b"real\n");
        fx.file("www/dir/inner.txt", b"inner\n");
        fx.file("outside.txt", b"outside\n");
        let www = fx.path("www");
        std::os::unix::fs::symlink("real.txt", www.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("dir", www.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("../outside.txt", www.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink(fx.path("outside.txt"), www.join("absolute.txt")).unwrap();
        std::os::unix::fs::symlink("..", www.join("up")).unwrap();
        let mut config = config_from(&["--root", www.to_str().unwrap()]);
        config.static_files.resolver = Some(resolver);
        let srv = Server::app(config);
        assert_eq!(srv.get("/link.txt", "").1, b"real\n", "{resolver:?}");
        assert_eq!(
            srv.get("/dirlink/inner.txt", "").1,
            b"inner\n",
            "{resolver:?}"
        );
        for p in ["/escape.txt", "/absolute.txt", "/up/outside.txt"] {
            let (head, body) = srv.get(p, "");
            assert_eq!(&head[9..12], "403", "{p} with {resolver:?}");
            assert_eq!(body, b"403 Forbidden: access denied\n");
        }
    }
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let fx = Fixture::new("special");
    fx.file("ok.txt", b"ok\n");
    let fifo = fx.path("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let started = Instant::now();
    assert_eq!(&srv.get("/pipe", "").0[9..12], "403");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(srv.get("/ok.txt", "").1, b"ok\n");
}

#[test]
fn changed_and_deleted_files_are_noticed_within_a_second() {
    let fx = Fixture::new("fresh");
    let path = fx.file("page.txt", b"version 1\n");
    fx.file("big.bin", &vec![7u8; 100_000]);
    let srv = Server::with_flags(&[
        "--root",
        fx.dir.to_str().unwrap(),
        "--file-inline-max",
        "1KiB",
    ]);
    // big.bin is cached first: each entry is reloaded 900 ms after its own
    // load, so once page.txt comes back new, big.bin is due too. The other
    // way round, a request in the few milliseconds between the two would
    // get big.bin's old length, cut short at the new one.
    assert_eq!(srv.get("/big.bin", "").1.len(), 100_000);
    assert_eq!(srv.get("/page.txt", "").1, b"version 1\n");
    // Cached now: the same body again with no new open.
    let opens = srv.file_opens();
    assert_eq!(srv.get("/page.txt", "").1, b"version 1\n");
    assert_eq!(srv.file_opens(), opens, "served from the cache");

    std::fs::write(&path, b"version 2, longer\n").unwrap();
    std::fs::write(fx.path("big.bin"), vec![8u8; 50_000]).unwrap();
    let changed = Instant::now();
    let saw_new = poll_until(Duration::from_millis(1100), || {
        srv.get("/page.txt", "").1 == b"version 2, longer\n"
    });
    assert!(
        saw_new,
        "new content within a second (waited {:?})",
        changed.elapsed()
    );
    let (_, big) = srv.get("/big.bin", "");
    assert_eq!(big, vec![8u8; 50_000]);

    std::fs::remove_file(&path).unwrap();
    let gone = poll_until(Duration::from_millis(1100), || {
        &srv.get("/page.txt", "").0[9..12] == "404"
    });
    assert!(gone, "a deleted file stops being served within a second");
}

fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn sendfile_bodies_pipeline_in_order_with_small_responses() {
    let fx = Fixture::new("pipeline");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    fx.file("big.bin", &big);
    fx.file("small.txt", b"small\n");
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let mut s = srv.connect();
    s.write_all(
        b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000000-1000009\r\n\r\n\
          GET /big.bin HTTP/1.0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(split(&read_response(&mut s)).1, b"small\n");
    let (head, body) = split(&read_response(&mut s));
    assert_eq!(header(&head, "content-length"), Some("3000000"));
    assert!(body == big, "sendfile body differs");
    assert_eq!(split(&read_response(&mut s)).1, b"small\n");
    assert_eq!(split(&read_response(&mut s)).1, &big[1_000_000..1_000_010]);
    // HTTP/1.0 without keep-alive: the body, then close.
    let (head, body) = split(&read_to_close(&mut s));
    assert_eq!(header(&head, "connection"), Some("close"));
    assert!(body == big);
}

#[test]
fn mounts_use_the_longest_prefix_and_their_own_cache_policy() {
    let site = Fixture::new("mount-site");
    site.file("index.html", b"site\n");
    site.file("assets/app.css", b"from the site\n");
    let assets = Fixture::new("mount-assets");
    assets.file("app.css", b"fingerprinted\n");
    let srv = Server::with_flags(&[
        "--root",
        site.dir.to_str().unwrap(),
        "--mount",
        &format!("/assets={}:immutable", assets.dir.display()),
    ]);
    let (head, body) = srv.get("/assets/app.css", "");
    assert_eq!(body, b"fingerprinted\n");
    assert_eq!(
        header(&head, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        header(&srv.get("/assets", "").0, "location"),
        Some("/assets/")
    );
    let (head, body) = srv.get("/", "");
    assert_eq!(body, b"site\n");
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
}

#[test]
fn bad_mount_flags_name_the_flag() {
    use clap::Parser;
    let err = |argv: &[&str]| {
        let mut full = vec!["edgeshard"];
        full.extend_from_slice(argv);
        edgeshard::Config::from_flags(edgeshard::config::Flags::parse_from(full))
            .and_then(|config| config.prepare().map(|_| config))
            .unwrap_err()
    };
    let e = err(&["--root", "/definitely/not/here"]);
    assert_eq!(e.flag, "--root");
    assert!(e.reason.contains("/definitely/not/here"), "{e}");
    assert_eq!(err(&["--mount", "nonsense"]).flag, "--mount");
    assert_eq!(err(&["--mount", "assets=/tmp"]).flag, "--mount");
    assert_eq!(err(&["--mount", "/a/../b=/tmp"]).flag, "--mount");
    assert_eq!(
        err(&["--mount", "/a=/tmp", "--mount", "/a/=/tmp"]).flag,
        "--mount"
    );
    let file = Fixture::new("notadir");
    let f = file.file("f", b"x");
    assert_eq!(err(&["--root", f.to_str().unwrap()]).flag, "--root");
}

#[test]
fn the_embedded_site_has_real_headers() {
    let srv = Server::with_flags(&[]);
    let (head, body) = srv.get("/", "");
    assert_eq!(&head[9..12], "200");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(String::from_utf8(body).unwrap().contains("/api/stats"));
    let etag = header(&head, "etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    // Revalidation, compression negotiation and ranges work as for files.
    let (head, body) = srv.get("/", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(&head[9..12], "304");
    assert!(body.is_empty());
    let (head, body) = srv.get("/app.js", "Accept-Encoding: br\r\n");
    assert_eq!(header(&head, "content-encoding"), Some("br"));
    assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
    assert!(body.len() < std::fs::read("site/app.js").unwrap().len());
    let (head, body) = srv.get("/style.css", "Range: bytes=0-5\r\n");
    assert_eq!(&head[9..12], "206");
    assert_eq!(body, b":root ");
    let (head, _) = srv.get("/logo.svg", "");
    assert_eq!(
        header(&head, "content-type"),
        Some("image/svg+xml; charset=utf-8")
    );
    let (head, _) = srv.get("/favicon.png", "");
    assert_eq!(header(&head, "content-type"), Some("image/png"));
    assert_eq!(&srv.get("/index.html", "").0[9..12], "301");
    assert_eq!(&srv.get("/missing", "").0[9..12], "404");
}

#[test]
fn the_file_cache_is_bounded_and_keeps_recently_used_entries() {
    let fx = Fixture::new("lru");
    for i in 0..12 {
        fx.file(&format!("f{i}.txt"), format!("file {i}\n").as_bytes());
    }
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap(), "--file-cache", "4"]);
    // f0 is used between every other file, so it stays while the others churn.
    let mut opens_for_f0 = 0;
    srv.get("/f0.txt", "");
    for i in 1..12 {
        srv.get(&format!("/f{i}.txt"), "");
        let before = srv.file_opens();
        assert_eq!(srv.get("/f0.txt", "").1, b"file 0\n");
        opens_for_f0 += srv.file_opens() - before;
    }
    assert_eq!(opens_for_f0, 0, "the hot entry was never evicted");
    // f1 has been pushed out by ten newer entries in a 4-entry cache.
    let before = srv.file_opens();
    assert_eq!(srv.get("/f1.txt", "").1, b"file 1\n");
    assert!(
        srv.file_opens() > before,
        "an evicted entry is opened again"
    );
}

#[test]
fn a_file_truncated_while_it_is_sent_ends_the_connection_not_the_shard() {
    let fx = Fixture::new("truncate");
    let path = fx.file("big.bin", &vec![1u8; 8_000_000]);
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let mut s = srv.connect();
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    s.read_exact(&mut first).unwrap();
    // Truncate the same inode under the open descriptor.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let started = Instant::now();
    let rest = read_to_close(&mut s);
    assert!(
        first.len() + rest.len() < 8_000_000,
        "the promised length cannot be met; the server must close"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut other = srv.connect();
    common::assert_builtin_healthz(&mut other);
}
