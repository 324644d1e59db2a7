//! Static files as real clients see them: curl (`-r`, `-z`, `--compressed`)
//! and Python's httpx. `.ci/run` installs both; elsewhere a missing client
//! skips its test with a message (and fails it when `CI` is set).

use crate::common;
use crate::static_common;

use std::process::Command;

use common::have;
use static_common::*;

fn fixture() -> (Fixture, Vec<u8>) {
    let fx = Fixture::new("clients");
    fx.file("hello.txt", b"hello from edgeshard\n");
    let numbers: Vec<u8> = (1..=20_000)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes();
    let plain = fx.file("numbers.txt", &numbers);
    let status = Command::new("gzip")
        .args(["-k", "-9"])
        .arg(&plain)
        .status()
        .expect("gzip runs");
    assert!(status.success());
    fx.file("dir/index.html", b"<p>dir</p>\n");
    (fx, numbers)
}

/// Runs curl; returns (stdout, the `-w` status code appended at the end).
fn curl(args: &[&str]) -> (Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut body = out.stdout;
    let nl = body.iter().rposition(|&b| b == b'\n').unwrap();
    let code = String::from_utf8(body[nl + 1..].to_vec()).unwrap();
    body.truncate(nl);
    (body, code)
}

#[test]
fn curl_ranges_time_conditions_and_compression() {
    if !have("curl", &["--version"]) {
        return;
    }
    let (fx, numbers) = fixture();
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let url = |p: &str| format!("http://{}{p}", srv.addr);

    let (body, code) = curl(&[&url("/hello.txt")]);
    assert_eq!(
        (body.as_slice(), code.as_str()),
        (&b"hello from edgeshard\n"[..], "200")
    );

    // -r: a byte range.
    let (body, code) = curl(&["-r", "6-9", &url("/hello.txt")]);
    assert_eq!((body.as_slice(), code.as_str()), (&b"from"[..], "206"));
    let (body, code) = curl(&["-r", "-3", &url("/numbers.txt")]);
    assert_eq!(
        (body.as_slice(), code.as_str()),
        (&numbers[numbers.len() - 3..], "206")
    );

    // -z FILE: If-Modified-Since from the local file's mtime (the same as ours) → 304.
    let local = fx.path("hello.txt");
    let (body, code) = curl(&["-z", local.to_str().unwrap(), &url("/hello.txt")]);
    assert_eq!((body.len(), code.as_str()), (0, "304"));
    // -z with an older date → the file.
    let (body, code) = curl(&["-z", "Sat, 05 Nov 1994 08:49:37 GMT", &url("/hello.txt")]);
    assert_eq!(
        (body.as_slice(), code.as_str()),
        (&b"hello from edgeshard\n"[..], "200")
    );

    // --compressed: curl asks for gzip (and what else it supports), gets the
    // .gz variant, and decodes it to the original.
    let (body, code) = curl(&["--compressed", &url("/numbers.txt")]);
    assert_eq!(code, "200");
    assert!(body == numbers, "decoded body differs");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--compressed",
            &url("/numbers.txt"),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8(out.stdout).unwrap();
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    let gz_len = std::fs::metadata(fx.path("numbers.txt.gz")).unwrap().len();
    assert!(
        head.contains(&format!("Content-Length: {gz_len}")),
        "the .gz file's length: {head}"
    );

    // -L follows the directory redirect.
    let (body, code) = curl(&["-L", &url("/dir")]);
    assert_eq!(
        (body.as_slice(), code.as_str()),
        (&b"<p>dir</p>\n"[..], "200")
    );
}

const HTTPX_SCRIPT: &str = r#"
import sys, httpx
base, numbers_path = sys.argv[1], sys.argv[2]
numbers = open(numbers_path, "rb").read()
with httpx.Client(base_url=base, timeout=10) as c:
    r = c.get("/hello.txt")
    assert r.status_code == 200 and r.content == b"hello from edgeshard\n", r
    assert r.headers["content-type"] == "text/plain; charset=utf-8", r.headers
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    r = c.get("/hello.txt", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"", r
    r = c.get("/hello.txt", headers={"If-Modified-Since": modified})
    assert r.status_code == 304, r
    r = c.get("/hello.txt", headers={"Range": "bytes=0-4"})
    assert r.status_code == 206 and r.content == b"hello", r
    assert r.headers["content-range"] == "bytes 0-4/21", r.headers
    r = c.get("/hello.txt", headers={"Range": "bytes=0-4", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == b"hello from edgeshard\n", r
    r = c.get("/numbers.txt")
    assert r.headers["content-encoding"] == "gzip", r.headers
    assert r.headers["vary"] == "Accept-Encoding", r.headers
    assert r.content == numbers, "decoded body differs"
    r = c.get("/dir", follow_redirects=True)
    assert r.status_code == 200 and str(r.url).endswith("/dir/") and r.content == b"<p>dir</p>\n", r
    r = c.post("/hello.txt", content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", r
print("httpx ok")
"#;

#[test]
fn httpx_sees_conditionals_ranges_and_gzip() {
    if !have("python3", &["-c", "import httpx"]) {
        return;
    }
    let (fx, _) = fixture();
    let srv = Server::with_flags(&["--root", fx.dir.to_str().unwrap()]);
    let out = Command::new("python3")
        .args(["-c", HTTPX_SCRIPT])
        .arg(format!("http://{}", srv.addr))
        .arg(fx.path("numbers.txt"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success() && out.stdout == b"httpx ok\n",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
