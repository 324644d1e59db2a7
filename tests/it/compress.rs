//! Compression on the fly, on the wire: the coding the client prefers,
//! bodies that decode to what the handler answered, `Vary` and weakened
//! ETags; what is left alone (small, already encoded, ranges, files,
//! types that do not compress); streams flushed chunk by chunk; curl's
//! `--compressed` as a real client.

use crate::common;
use crate::static_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use edgeshard::middleware::{Compress, CompressSettings, HandlerExt};
use static_common::{config_from, header, split, Fixture, Server};

fn decode(coding: &str, z: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(z).read_to_end(&mut out),
        "br" => brotli::Decompressor::new(z, 4096).read_to_end(&mut out),
        "zstd" => zstd::stream::read::Decoder::new(z)
            .unwrap()
            .read_to_end(&mut out),
        other => panic!("no decoder for {other}"),
    }
    .expect("the body decodes");
    out
}

fn json_doc() -> Vec<u8> {
    let items: Vec<String> = (0..200)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\"}}"))
        .collect();
    format!("[{}]", items.join(",")).into_bytes()
}

/// POSTs `body` to the binary's `/api/echo` with `extra` header lines;
/// the normalized head and raw body.
fn echo(srv: &Server, content_type: &str, body: &[u8], extra: &str) -> (String, Vec<u8>) {
    let mut s = srv.connect();
    write!(
        s,
        "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    split(&read_response(&mut s))
}

#[test]
fn the_client_s_preferred_coding_is_used_and_decodes_to_the_answer() {
    let srv = Server::app(config_from(&["--compress"]));
    let doc = json_doc();
    for (accept, want) in [
        ("gzip", "gzip"),
        ("gzip, deflate, br, zstd", "br"),
        ("gzip;q=0.5, br;q=0.4", "gzip"),
        ("zstd, br;q=0.9", "zstd"),
        ("*", "br"),
        ("br;q=0, *", "zstd"),
    ] {
        let (head, body) = echo(
            &srv,
            "application/json",
            &doc,
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(
            header(&head, "content-encoding"),
            Some(want),
            "{accept}: {head}"
        );
        assert_eq!(header(&head, "vary"), Some("Accept-Encoding"), "{head}");
        assert_eq!(
            header(&head, "content-length"),
            Some(&*body.len().to_string())
        );
        assert!(
            body.len() < doc.len() / 3,
            "{want}: {} of {}",
            body.len(),
            doc.len()
        );
        assert_eq!(decode(want, &body), doc, "{accept}");
    }
    // No coding taken: the body as it is, but caches must still key on it.
    for accept in [
        "",
        "Accept-Encoding: identity\r\n",
        "Accept-Encoding: deflate\r\n",
        "Accept-Encoding: gzip;q=0\r\n",
    ] {
        let (head, body) = echo(&srv, "application/json", &doc, accept);
        assert_eq!(header(&head, "content-encoding"), None, "{accept:?}");
        assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
        assert_eq!(body, doc);
    }
}

#[test]
fn small_bodies_and_types_that_do_not_compress_are_left_alone() {
    let srv = Server::app(config_from(&["--compress", "--compress-min", "2KiB"]));
    let ae = "Accept-Encoding: gzip, br\r\n";
    let (head, body) = echo(&srv, "text/plain", &[b'a'; 2047], ae);
    assert_eq!(
        (header(&head, "content-encoding"), header(&head, "vary")),
        (None, None)
    );
    assert_eq!(body.len(), 2047);
    let (head, _) = echo(&srv, "text/plain", &[b'a'; 2048], ae);
    assert_eq!(header(&head, "content-encoding"), Some("br"));
    let (head, body) = echo(&srv, "image/png", &[b'a'; 4096], ae);
    assert_eq!(
        (header(&head, "content-encoding"), header(&head, "vary")),
        (None, None)
    );
    assert_eq!(body.len(), 4096);
    // Off unless asked.
    let plain = Server::app(config_from(&[]));
    let (head, _) = echo(&plain, "text/plain", &[b'a'; 4096], ae);
    assert_eq!(header(&head, "content-encoding"), None);
}

#[test]
fn static_files_keep_their_variants_ranges_and_sendfile_and_weaken_their_etag() {
    let fx = Fixture::new("compress-static");
    let text = "edge shard ".repeat(400);
    fx.file("page.txt", text.as_bytes());
    fx.file("big.txt", "x".repeat(100_000).as_bytes());
    fx.file("pre.css", "body { color: red }\n".repeat(100).as_bytes());
    fx.file("pre.css.br", b"not really brotli");
    let root = fx.dir.to_str().unwrap();
    let srv = Server::app(config_from(&["--compress", "--root", root]));
    let ae = "Accept-Encoding: gzip\r\n";

    // A small file from memory: compressed, its ETag now weak.
    let (plain, _) = srv.get("/page.txt", "");
    let strong = header(&plain, "etag").unwrap().to_string();
    assert!(strong.starts_with('"'), "{plain}");
    let (head, body) = srv.get("/page.txt", ae);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(header(&head, "etag"), Some(&*format!("W/{strong}")));
    assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
    assert_eq!(decode("gzip", &body), text.as_bytes());
    // Revalidating with the weak tag still gets a 304.
    let (head, _) = srv.get("/page.txt", &format!("{ae}If-None-Match: W/{strong}\r\n"));
    assert!(head.starts_with("HTTP/1.1 304 "), "{head}");
    // A range of it: the bytes asked for, as they are.
    let (head, body) = srv.get("/page.txt", &format!("{ae}Range: bytes=0-9\r\n"));
    assert!(head.starts_with("HTTP/1.1 206 "), "{head}");
    assert_eq!(
        (header(&head, "content-encoding"), &body[..]),
        (None, &text.as_bytes()[..10])
    );
    // A file sent with sendfile: as it is.
    let (head, body) = srv.get("/big.txt", ae);
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert_eq!(body.len(), 100_000);
    // A precompressed variant: sent once, not compressed again.
    let (head, body) = srv.get("/pre.css", "Accept-Encoding: br, gzip\r\n");
    assert_eq!(header(&head, "content-encoding"), Some("br"), "{head}");
    assert_eq!(body, b"not really brotli");
    // Without a variant for the coding taken, the file is compressed here,
    // and says Vary once (the static files said it already).
    let (head, body) = srv.get("/pre.css", "Accept-Encoding: gzip\r\n");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(head.matches("\r\nVary: ").count(), 1, "{head}");
    assert_eq!(
        decode("gzip", &body),
        "body { color: red }\n".repeat(100).as_bytes()
    );
}

#[test]
fn a_stream_is_compressed_chunk_by_chunk_as_it_comes() {
    let srv = TestServer::with_handler(one_shard(), |_| {
        test_handler.layer(Compress::new(CompressSettings::default()))
    });
    let mut s = srv.connect();
    s.write_all(b"GET /slowstream?ms=400 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = normalize(&head);
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(header(&head, "transfer-encoding"), Some("chunked"));
    // The first tick comes after 400 ms and the next after 800: its chunk
    // must arrive, decodable, before the second tick exists.
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let mut chunk = Vec::new();
    while decoder.get_ref().is_empty() {
        chunk = read_chunk(&mut s);
        decoder.write_all(&chunk).unwrap();
        decoder.flush().unwrap();
    }
    let first = started.elapsed();
    assert!(!chunk.is_empty());
    assert_eq!(decoder.get_ref(), b"tick,", "after {first:?}");
    assert!(
        first < Duration::from_millis(750),
        "first tick after {first:?}"
    );
    // The rest, to the end.
    loop {
        let c = read_chunk(&mut s);
        if c.is_empty() {
            break;
        }
        decoder.write_all(&c).unwrap();
    }
    assert_eq!(decoder.finish().unwrap(), b"tick,tick,tick,");
}

/// One chunk of a chunked body (empty: the last).
fn read_chunk(s: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        line.push(b[0]);
    }
    let size =
        usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap(), 16).unwrap();
    let mut data = vec![0u8; size + 2];
    s.read_exact(&mut data).unwrap();
    data.truncate(size);
    data
}

#[test]
fn curl_decodes_what_it_gets_with_compressed() {
    if !have("curl", &["--version"]) {
        return missing("curl");
    }
    let srv = Server::app(config_from(&["--compress"]));
    let doc = json_doc();
    let fx = Fixture::new("compress-curl");
    let file = fx.file("doc.json", &doc);
    for coding in ["gzip", "br", "zstd"] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--compressed", "-D", "-", "-H"])
            .arg(format!("Accept-Encoding: {coding}"))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{}/api/echo", srv.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "curl: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-encoding: {coding}")),
            "{head}"
        );
        assert_eq!(body.as_bytes(), doc, "{coding}");
    }
}
