use super::*;
use crate::http::error::ParseError as E;

fn limits() -> Limits {
    Limits::default()
}

fn parse(input: &[u8]) -> Result<Option<RequestHead>, ParseError> {
    parse_head(&mut BytesMut::from(input), &limits())
}

fn parse_ok(input: &[u8]) -> RequestHead {
    parse(input)
        .expect("valid request")
        .expect("complete request")
}

fn err(input: &[u8]) -> ParseError {
    parse(input).expect_err("request must be rejected")
}

#[test]
fn simple_get_splits_off_exactly_the_head() {
    let mut buf =
        BytesMut::from(&b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example\r\nX-Y:  v w \r\n\r\nNEXT"[..]);
    let head = parse_head(&mut buf, &limits()).unwrap().unwrap();
    assert_eq!(head.method(), Method::Get);
    assert_eq!(head.method_str(), "GET");
    assert_eq!(head.target(), "/a/b?x=1&y");
    assert_eq!(head.path(), "/a/b");
    assert_eq!(head.query(), Some("x=1&y"));
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.header("host"), Some(&b"example"[..]));
    assert_eq!(head.header("x-y"), Some(&b"v w"[..]));
    assert_eq!(head.headers().count(), 2);
    assert!(head.keep_alive());
    assert_eq!(head.framing(), Framing::None);
    assert_eq!(&buf[..], b"NEXT");
}

#[test]
fn header_values_are_slices_of_the_head_not_copies() {
    let head = parse_ok(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: abc\r\n\r\n");
    let raw = head.as_bytes().as_ptr_range();
    let v = head.header("cookie").unwrap().as_ptr();
    assert!(raw.contains(&v));
}

#[test]
fn partial_heads_wait_for_more() {
    for cut in 1..40 {
        let full = b"GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
        let mut buf = BytesMut::from(&full[..cut]);
        assert!(
            parse_head(&mut buf, &limits()).unwrap().is_none(),
            "cut at {cut}"
        );
        assert_eq!(buf.len(), cut, "a partial head is left in place");
    }
}

#[test]
fn pipelined_requests_parse_in_order() {
    let mut buf = BytesMut::from(
        &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
    );
    let one = parse_head(&mut buf, &limits()).unwrap().unwrap();
    let two = parse_head(&mut buf, &limits()).unwrap().unwrap();
    assert_eq!((one.path(), two.path()), ("/1", "/2"));
    assert!(buf.is_empty());
    assert!(parse_head(&mut buf, &limits()).unwrap().is_none());
}

#[test]
fn leading_empty_lines_are_ignored() {
    let head = parse_ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(head.path(), "/");
}

#[test]
fn keep_alive_rules() {
    assert!(!parse_ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(parse_ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive());
    assert!(!parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(
        !parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n").keep_alive()
    );
    assert!(parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").keep_alive());
}

#[test]
fn body_framing() {
    let h = parse_ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(h.framing(), Framing::Length(42));
    let h = parse_ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.framing(), Framing::None);
    let h = parse_ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(h.framing(), Framing::Chunked);
    let h = parse_ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_eq!(h.framing(), Framing::Length(u64::MAX));
}

#[test]
fn content_length_rules() {
    let cl_te =
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(err(cl_te), E::ContentLengthWithTransferEncoding);
    let te_cl =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(err(te_cl), E::ContentLengthWithTransferEncoding);
    let dup = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(err(dup), E::DuplicateContentLength);
    for bad in [
        "+5",
        "-5",
        "5 5",
        "0x5",
        "5,5",
        "",
        "5a",
        "99999999999999999999",
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n");
        assert_eq!(
            err(req.as_bytes()),
            E::BadContentLength,
            "Content-Length: {bad:?}"
        );
    }
}

#[test]
fn transfer_encoding_rules() {
    let te = |v: &str| format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
    assert_eq!(err(te("chunked, gzip").as_bytes()), E::ChunkedNotLast);
    assert_eq!(err(te("chunked, chunked").as_bytes()), E::ChunkedNotLast);
    assert_eq!(err(te("gzip").as_bytes()), E::UnknownTransferCoding);
    assert_eq!(
        err(te("gzip, chunked").as_bytes()),
        E::UnknownTransferCoding
    );
    assert_eq!(err(te("identity").as_bytes()), E::UnknownTransferCoding);
    let split = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n";
    assert_eq!(err(split), E::ChunkedNotLast);
    let http10 = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(err(http10), E::TransferEncodingInHttp10);
    assert_eq!(
        E::UnknownTransferCoding.status(),
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(E::ChunkedNotLast.status(), StatusCode::BAD_REQUEST);
}

use crate::http::StatusCode;

#[test]
fn host_rules() {
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), E::MissingHost);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        E::DuplicateHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        E::DuplicateHost
    );
    parse_ok(b"GET / HTTP/1.0\r\n\r\n");
    parse_ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

fn with_host(value: &[u8]) -> Result<Option<RequestHead>, ParseError> {
    let mut req = b"GET / HTTP/1.1\r\nHost: ".to_vec();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n\r\n");
    parse(&req)
}

#[test]
fn host_values_must_be_a_host_and_port() {
    for good in [
        &b"example.com"[..],
        b"example.com:8080",
        b"example.com:",
        b"EXAMPLE.com.",
        b"127.0.0.1:65535",
        b"[::1]",
        b"[::1]:8080",
        b"[fe80::1%25eth0]:80",
        b"[v7.fe]",
        b"under_score-x~y",
        b"a!$&'()*+,;=b",
        b"caf%C3%A9.example",
        b"example.com:0",
        b"example.com  ",
    ] {
        let head = with_host(good)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(good)))
            .expect("complete");
        assert!(head.host().is_some(), "{:?}", String::from_utf8_lossy(good));
    }
    for bad in [
        &b"a/b"[..],
        b"user@example.com",
        b"example.com?x",
        b"example.com#f",
        b"exa mple.com",
        b"a\tb",
        b":80",
        b":",
        b"example.com:http",
        b"example.com:65536",
        b"example.com:123456",
        b"example.com:-1",
        b"example.com:80:81",
        b"::1",
        b"[::1",
        b"::1]",
        b"[]",
        b"[::1]x",
        b"[::1]:x",
        b"[::1]]",
        b"[::1/x]",
        b"a[b]",
        b"caf\xc3\xa9",
        b"a%zzb",
        b"a%4",
        b"a\\b",
        b"a\"b",
    ] {
        assert_eq!(
            with_host(bad).map(|h| h.is_some()),
            Err(E::BadHost),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // httparse refuses other controls in any field value itself.
    assert_eq!(with_host(b"a\x7fb").map(|h| h.is_some()), Err(E::BadHeader));
    assert_eq!(E::BadHost.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn absolute_targets_need_a_valid_authority() {
    for bad in [
        &b"http:///x"[..],
        b"http://?q",
        b"http://user@h/x",
        b"http://h:99999/",
        b"http://[::1/x",
        b"https://:443/x",
        b"http://a#b/x",
    ] {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            parse(&req).map(|h| h.is_some()),
            Err(E::BadAuthority),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    for good in [
        "http://h/x",
        "http://h:80",
        "HTTPS://[::1]:8443/x?y",
        "http://h?q",
    ] {
        let req = format!("GET {good} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(parse(req.as_bytes()).is_ok(), "{good}");
    }
}

#[test]
fn paths_that_climb_above_the_root_are_refused() {
    for target in [
        "/..",
        "/../etc/passwd",
        "/a/../../x",
        "/%2e%2e/x",
        "/a/.%2E/%2e./x?q",
        "http://h/../x",
        "http://h/a/../../x?q",
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            parse(req.as_bytes()).map(|h| h.is_some()),
            Err(E::PathAboveRoot),
            "{target}"
        );
    }
    // Unclean paths that stay inside are the router's to redirect.
    for target in [
        "//x",
        "/a/./b",
        "/a/../b",
        "/a/..",
        "/x?q=/../..",
        "/.well-known/x",
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(parse_ok(req.as_bytes()).target(), target);
    }
}

#[test]
fn line_ending_rules() {
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), E::BareLineFeed);
    assert_eq!(err(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), E::BareLineFeed);
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\n\n"), E::BareLineFeed);
    // Every place a line can end: before the request line, after it with
    // and without headers, between headers, and the empty line.
    assert_eq!(err(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), E::BareLineFeed);
    assert_eq!(
        err(b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BareLineFeed
    );
    assert_eq!(err(b"GET / HTTP/1.0\n\r\n"), E::BareLineFeed);
    assert_eq!(err(b"GET / HTTP/1.0\r\n\n"), E::BareLineFeed);
    assert_eq!(err(b"GET / HTTP/1.0\n\n"), E::BareLineFeed);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\nY: c\r\n\r\n"),
        E::BareLineFeed
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX: b \nY: c\r\n\r\n"),
        E::BareLineFeed
    );
    parse_ok(b"\r\nGET / HTTP/1.1\r\nHost: a\r\nX: b \r\nY:\r\n\r\n");
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
        E::BareCarriageReturn
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\r\n\r\n"),
        E::BareCarriageReturn
    );
}

#[test]
fn header_syntax_rules() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n"),
        E::ObsoleteLineFolding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n"),
        E::ObsoleteLineFolding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        E::WhitespaceBeforeColon
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
        E::WhitespaceBeforeColon
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
        E::BadHeader
    );
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n"), E::BadHeader);
}

#[test]
fn request_line_rules() {
    assert_eq!(err(b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadRequestLine);
    assert_eq!(
        err(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BadRequestLine
    );
    assert_eq!(err(b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadTarget);
    assert_eq!(err(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadTarget);
    assert_eq!(err(b"POST * HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadTarget);
    assert_eq!(err(b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadTarget);
    // A raw space inside the target: a broken line, not a version.
    assert_eq!(
        err(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BadRequestLine
    );
    assert_eq!(err(b"GET /a b"), E::BadRequestLine);
    assert_eq!(err(b"GET / FOO\r\nHost: a\r\n\r\n"), E::BadRequestLine);
    assert_eq!(
        err(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BadTarget
    );
    let opts = parse_ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(opts.target(), "*");
    let abs = parse_ok(b"GET http://example.com/p/q?z HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!((abs.path(), abs.query()), ("/p/q", Some("z")));
    let bare = parse_ok(b"GET HTTP://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(bare.path(), "/");
    let query_only = parse_ok(b"GET https://example.com?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!((query_only.path(), query_only.query()), ("/", Some("a=1")));
    assert_eq!(opts.path(), "*");
    assert_eq!((opts.query(), bare.query()), (None, None));
    let twice = parse_ok(b"GET /a?b?c HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((twice.path(), twice.query()), ("/a", Some("b?c")));
    let empty = parse_ok(b"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((empty.path(), empty.query()), ("/a", Some("")));
    let long =
        parse_ok(b"GET /a/very/long/path/past/thirty-two/bytes?q HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        (long.path(), long.query()),
        ("/a/very/long/path/past/thirty-two/bytes", Some("q"))
    );
    let other = parse_ok(b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        (other.method(), other.method_str()),
        (Method::Other, "PURGE")
    );
}

#[test]
fn versions() {
    assert_eq!(
        err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        E::UnsupportedVersion
    );
    assert_eq!(
        err(b"GET / HTTP/1.32\r\nHost: a\r\n\r\n"),
        E::UnsupportedVersion
    );
    assert_eq!(
        err(b"GET / HTTP/2\r\nHost: a\r\n\r\n"),
        E::UnsupportedVersion
    );
    assert_eq!(
        err(b"GET / HTTP/3.0\r\nHost: a\r\n\r\n"),
        E::UnsupportedVersion
    );
    // HTTP/0.9 has no version at all.
    assert_eq!(err(b"GET /\r\n\r\n"), E::UnsupportedVersion);
    assert_eq!(err(b"GET /index.html\r\n"), E::UnsupportedVersion);
    // A request line that is merely broken stays a 400.
    assert_eq!(
        err(b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n"),
        E::BadRequestLine
    );
    assert_eq!(
        E::UnsupportedVersion.status(),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED
    );
}

#[test]
fn connect_is_refused_with_405() {
    let e = err(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(e, E::ConnectNotAllowed);
    assert_eq!(e.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn expectations() {
    let h = parse_ok(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
    );
    assert!(h.expects_continue());
    let h = parse_ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!h.expects_continue(), "HTTP/1.0 expectations are ignored");
    let e = err(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: the-unexpected\r\n\r\n");
    assert_eq!(
        (e, e.status()),
        (E::UnknownExpectation, StatusCode::EXPECTATION_FAILED)
    );
}

#[test]
fn size_limits() {
    let small = Limits {
        max_uri: 32,
        max_header_bytes: 64,
        max_headers: 4,
        max_body: 10,
    };
    let p = |b: &[u8]| parse_head(&mut BytesMut::from(b), &small);
    // Request line over the limit, complete or still arriving.
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(40));
    assert_eq!(p(long.as_bytes()).unwrap_err(), E::UriTooLong);
    assert_eq!(p(&long.as_bytes()[..36]).unwrap_err(), E::UriTooLong);
    // Exactly at the limit is fine: "GET /" + 13 + " HTTP/1.1\r\n" = 32 bytes.
    let at = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(16));
    assert!(p(at.as_bytes()).unwrap().is_some());
    // Header section over the limit, complete or still arriving.
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(60));
    assert_eq!(p(big.as_bytes()).unwrap_err(), E::HeadersTooLarge);
    let endless = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(200));
    assert_eq!(p(endless.as_bytes()).unwrap_err(), E::HeadersTooLarge);
    // Headers still arriving are measured from the end of the request line.
    let growing = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(70));
    assert_eq!(p(growing.as_bytes()).unwrap_err(), E::HeadersTooLarge);
    // Endless empty lines before a request line are bounded too.
    assert_eq!(
        p("\r\n".repeat(100).as_bytes()).unwrap_err(),
        E::HeadersTooLarge
    );
    // Too many fields.
    let many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_eq!(p(many).unwrap_err(), E::TooManyHeaders);
    assert_eq!(
        E::TooManyHeaders.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert_eq!(E::UriTooLong.status(), StatusCode::URI_TOO_LONG);
}

#[test]
fn default_header_count_limit_is_100() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..99 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    parse_ok(req.as_bytes());
    let over = req.replacen("\r\n\r\n", "\r\nX-Last: v\r\n\r\n", 1);
    assert_eq!(err(over.as_bytes()), E::TooManyHeaders);
}

#[test]
fn many_headers_spill_past_the_inline_storage() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..40 {
        req.push_str(&format!("X-{i}: {i}\r\n"));
    }
    req.push_str("\r\n");
    let head = parse_ok(req.as_bytes());
    assert_eq!(head.headers().count(), 41);
    assert_eq!(head.header("x-39"), Some(&b"39"[..]));
}

#[test]
fn configured_header_count_above_the_stack_array() {
    let l = Limits {
        max_headers: 300,
        ..Limits::default()
    };
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..250 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let head = parse_head(&mut BytesMut::from(req.as_bytes()), &l)
        .unwrap()
        .unwrap();
    assert_eq!(head.headers().count(), 251);
}

#[test]
fn host_comes_from_the_header_or_an_absolute_target_without_port() {
    assert_eq!(
        parse_ok(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n").host(),
        Some("example.com")
    );
    assert_eq!(
        parse_ok(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").host(),
        Some("[::1]")
    );
    assert_eq!(parse_ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").host(), None);
    assert_eq!(parse_ok(b"GET / HTTP/1.0\r\n\r\n").host(), None);
    let abs = parse_ok(b"GET http://a.example:81/x HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert_eq!(abs.host(), Some("a.example"));
}

#[test]
fn heads_over_64_kib_are_refused_whatever_the_limits() {
    // Limits built in code, bypassing Config validation.
    let huge = Limits {
        max_uri: 1 << 20,
        max_header_bytes: 1 << 20,
        max_headers: 10_000,
        ..Limits::default()
    };
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    while req.len() <= MAX_HEAD {
        req.push_str("X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    let mut partial = BytesMut::from(req.as_bytes());
    assert_eq!(
        parse_head(&mut partial, &huge).unwrap_err(),
        E::HeadersTooLarge
    );
    req.push_str("\r\n");
    let mut complete = BytesMut::from(req.as_bytes());
    assert_eq!(
        parse_head(&mut complete, &huge).unwrap_err(),
        E::HeadersTooLarge
    );
}

#[test]
fn the_path_scan_finds_the_query_and_what_follows_each_slash_in_any_word() {
    // Every position of `?`, `/.`, `/%` and `//` across word boundaries,
    // against a plain byte-by-byte reading.
    let plain = |b: &[u8]| {
        let end = b.iter().position(|&c| c == b'?').unwrap_or(b.len());
        let after_slash = |c: &[u8]| (1..end).any(|i| b[i - 1] == b'/' && c.contains(&b[i]));
        let dotted = after_slash(b".%");
        let plain = b.first() == Some(&b'/') && !after_slash(b".%/");
        (end, Segments { dotted, plain })
    };
    for len in 0..20 {
        for at in 0..len {
            for mark in [&b"?"[..], b"/.", b"/%", b"//", b"/", b".", b"?/.", b"?//"] {
                let mut p = vec![b'a'; len];
                p[0] = b'/';
                for (k, &c) in mark.iter().enumerate() {
                    if at + k < len {
                        p[at + k] = c;
                    }
                }
                assert_eq!(
                    scan_path(&p),
                    plain(&p),
                    "{:?}",
                    String::from_utf8_lossy(&p)
                );
            }
        }
    }
    let seg = |dotted, plain| Segments { dotted, plain };
    assert_eq!(scan_path(b"/a/b/./c/../d?x=/../"), (13, seg(true, false)));
    assert_eq!(scan_path(b"/plaintext"), (10, seg(false, true)));
    assert_eq!(scan_path(b"/plaintext/"), (11, seg(false, true)));
    assert_eq!(scan_path(b"/.well-known/x"), (14, seg(true, false)));
    assert_eq!(scan_path(b"/a//b"), (5, seg(false, false)));
    assert_eq!(scan_path(b""), (0, seg(false, false)));
    assert_eq!(scan_path(b"/x?//"), (2, seg(false, true)));
}

#[test]
fn a_plain_path_is_clean_and_an_undotted_one_never_climbs() {
    // Every path of up to six bytes over the bytes that matter.
    let alphabet = b"/.%2ea?";
    let mut path = Vec::new();
    fn each(path: &mut Vec<u8>, alphabet: &[u8], left: usize, check: &dyn Fn(&[u8])) {
        check(path);
        if left == 0 {
            return;
        }
        for &c in alphabet {
            path.push(c);
            each(path, alphabet, left - 1, check);
            path.pop();
        }
    }
    each(&mut path, alphabet, 6, &|p| {
        let (end, seg) = scan_path(p);
        let text = std::str::from_utf8(&p[..end]).unwrap();
        if seg.plain {
            assert!(edgeshard_routing::is_clean(text), "{text:?}");
        }
        if !seg.dotted {
            assert!(!climbs_above_root(text), "{text:?}");
        }
    });
}
