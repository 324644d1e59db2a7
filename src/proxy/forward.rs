//! Heads across the proxy: the request as the upstream gets it (target
//! rewritten, hop-by-hop fields removed, forwarding fields set) and the
//! response as the client gets it (hop-by-hop fields, framing, `Date` and
//! `Server` removed: the connection writes its own).

use std::net::IpAddr;

use smallvec::SmallVec;

use crate::http::client::ResponseHead;
use crate::http::encode::field;
use crate::http::field::list_has;
use crate::http::Version;
use crate::Request;

/// The body the upstream request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutBody {
    None,
    Length(u64),
    Chunked,
}

/// What the forwarding fields say.
#[derive(Debug)]
pub(super) struct Forwarding<'a> {
    /// The client's address (the peer of the connection).
    pub peer: IpAddr,
    /// Its forwarding fields are believed (a trusted proxy).
    pub trusted: bool,
    /// The `Host` to send.
    pub host: &'a [u8],
    pub via: bool,
    /// `Connection: Upgrade` and this `Upgrade` are passed on.
    pub upgrade: Option<&'a [u8]>,
}

/// Names a `Connection` field lists: hop-by-hop for this message.
type Named<'a> = SmallVec<[&'a [u8]; 4]>;

fn connection_names<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Named<'a> {
    let mut named = Named::new();
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"connection") {
            named.extend(
                value
                    .split(|&b| b == b',')
                    .map(|t| t.trim_ascii())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    named
}

/// Fields that describe one connection, not the message (RFC 9110 §7.6.1),
/// and those the proxy writes itself.
fn hop_by_hop(name: &[u8], named: &Named<'_>) -> bool {
    // By length first: most names match none of these lengths.
    let fixed: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        7 => &[b"trailer", b"upgrade"],
        10 => &[b"connection", b"keep-alive"],
        14 => &[b"content-length"],
        17 => &[b"transfer-encoding"],
        _ => &[],
    };
    fixed.iter().any(|f| name.eq_ignore_ascii_case(f))
        || (name.len() > 6 && name[..6].eq_ignore_ascii_case(b"proxy-"))
        || named.iter().any(|n| name.eq_ignore_ascii_case(n))
}

fn is_forwarding(name: &[u8]) -> bool {
    [
        &b"x-forwarded-for"[..],
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
    ]
    .iter()
    .any(|f| name.eq_ignore_ascii_case(f))
}

/// Writes the upstream request's head: `target` (path and query) on a
/// request line of its own, the client's end-to-end fields, then `Host`,
/// the forwarding fields and the body's framing.
pub(super) fn request_head(
    out: &mut Vec<u8>,
    req: &Request,
    target: &[&str],
    fwd: &Forwarding<'_>,
    body: OutBody,
) {
    let head = req.head();
    out.extend_from_slice(head.method_str().as_bytes());
    out.push(b' ');
    for part in target {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(fwd.host);
    out.extend_from_slice(b"\r\n");
    let fields = || head.headers().map(|(n, v)| (n.as_bytes(), v));
    let named = connection_names(fields());
    let mut xff: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut forwarded: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let (mut proto, mut xhost) = (None, None);
    let mut te_trailers = false;
    for (name, value) in fields() {
        if name.eq_ignore_ascii_case(b"te") {
            te_trailers |= list_has(value, b"trailers");
            continue;
        }
        if name.eq_ignore_ascii_case(b"host") || hop_by_hop(name, &named) {
            continue;
        }
        if is_forwarding(name) {
            if fwd.trusted {
                match name.len() {
                    15 => xff.push(value),
                    9 => forwarded.push(value),
                    17 => proto = Some(value),
                    _ => xhost = Some(value),
                }
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"expect") && body == OutBody::None {
            continue;
        }
        field(out, name, value);
    }
    if te_trailers {
        out.extend_from_slice(b"TE: trailers\r\n");
    }
    // The client's address, after what trusted proxies said before us.
    // An IPv4-mapped IPv6 peer (a dual-stack listener) is an IPv4 client,
    // named and quoted as one.
    let peer = fwd.peer.to_canonical();
    out.extend_from_slice(b"X-Forwarded-For: ");
    for v in &xff {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    write_ip(out, peer);
    out.extend_from_slice(b"\r\n");
    let client_host = head.header("host").unwrap_or(b"");
    field(out, b"X-Forwarded-Proto", proto.unwrap_or(b"http"));
    if !client_host.is_empty() || xhost.is_some() {
        field(out, b"X-Forwarded-Host", xhost.unwrap_or(client_host));
    }
    // RFC 7239: `for` (an IPv6 address quoted, in brackets), `host`
    // (quoted: it may carry a port), `proto`.
    out.extend_from_slice(b"Forwarded: ");
    for v in &forwarded {
        out.extend_from_slice(v);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"for=");
    if peer.is_ipv6() {
        out.extend_from_slice(b"\"[");
        write_ip(out, peer);
        out.extend_from_slice(b"]\"");
    } else {
        write_ip(out, peer);
    }
    if !client_host.is_empty() && client_host.iter().all(|&b| b != b'"' && b != b'\\') {
        out.extend_from_slice(b";host=\"");
        out.extend_from_slice(client_host);
        out.push(b'"');
    }
    out.extend_from_slice(b";proto=http\r\n");
    if fwd.via {
        out.extend_from_slice(match head.version() {
            Version::Http10 => b"Via: 1.0 edgeshard\r\n",
            Version::Http11 => b"Via: 1.1 edgeshard\r\n",
        });
    }
    if let Some(upgrade) = fwd.upgrade {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
        field(out, b"Upgrade", upgrade);
    }
    match body {
        OutBody::None => {}
        OutBody::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        OutBody::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `ip` as text: IPv4 digit by digit (every proxied request names
/// its client twice, and `Display` costs a formatter per octet), IPv6
/// through `Display`.
fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 15];
            let mut n = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    text[n] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    text[n] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                text[n] = b'0' + octet % 10;
                n += 1;
            }
            out.extend_from_slice(&text[..n]);
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// The response's fields as the client gets them, `Name: value\r\n` each
/// (a `Content-Type` first, as preformatted lines have it): end-to-end
/// fields only, without `Date` and `Server` (the connection writes its
/// own). A `101` keeps `Upgrade`, with `Connection: Upgrade`.
pub(super) fn response_lines(head: &ResponseHead, via: Option<&[u8]>) -> bytes::Bytes {
    let named = connection_names(head.headers());
    // A BytesMut freezes without another allocation; a Vec whose length
    // is not its capacity would take one more.
    let mut out = bytes::BytesMut::with_capacity(256);
    if let Some(ct) = head.header("content-type") {
        field(&mut out, b"Content-Type", ct);
    }
    let switching = head.status().as_u16() == 101;
    for (name, value) in head.headers() {
        if switching && name.eq_ignore_ascii_case(b"upgrade") {
            field(&mut out, b"Upgrade", value);
            continue;
        }
        let ours = match name.len() {
            4 => name.eq_ignore_ascii_case(b"date"),
            6 => name.eq_ignore_ascii_case(b"server"),
            12 => name.eq_ignore_ascii_case(b"content-type"),
            _ => false,
        };
        if ours || hop_by_hop(name, &named) {
            continue;
        }
        field(&mut out, name, value);
    }
    if switching {
        out.extend_from_slice(b"Connection: Upgrade\r\n");
    }
    if let Some(via) = via {
        field(&mut out, b"Via", via);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::parse_response_head;
    use crate::http::{parse_head, Limits};

    fn request(raw: &str) -> Request {
        let mut buf = bytes::BytesMut::from(raw);
        let head = parse_head(&mut buf, &Limits::default()).unwrap().unwrap();
        Request::new(head, bytes::Bytes::new())
    }

    fn forward(raw: &str, trusted: bool, body: OutBody) -> String {
        let req = request(raw);
        let mut out = Vec::new();
        let fwd = Forwarding {
            peer: "203.0.113.7".parse().unwrap(),
            trusted,
            host: b"up:9000",
            via: false,
            upgrade: None,
        };
        request_head(&mut out, &req, &["/v1", "/x", "?q=1"], &fwd, body);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn hop_by_hop_fields_go_and_forwarding_fields_are_set() {
        let raw = "POST /app/x?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, X-Secret\r\n\
                   X-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: x\r\nTE: trailers, deflate\r\n\
                   Trailer: X\r\nUpgrade: h2c\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\
                   Forwarded: for=10.0.0.1\r\nX-Forwarded-Proto: https\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(
            forward(raw, false, OutBody::Length(3)),
            "POST /v1/x?q=1 HTTP/1.1\r\nHost: up:9000\r\nAccept: */*\r\nTE: trailers\r\n\
             X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\
             Forwarded: for=203.0.113.7;host=\"example.com\";proto=http\r\nContent-Length: 3\r\n\r\n"
        );
        // From a trusted proxy, what it said is kept and extended.
        assert_eq!(
            forward(raw, true, OutBody::Chunked),
            "POST /v1/x?q=1 HTTP/1.1\r\nHost: up:9000\r\nAccept: */*\r\nTE: trailers\r\n\
             X-Forwarded-For: 10.0.0.1, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\
             Forwarded: for=10.0.0.1, for=203.0.113.7;host=\"example.com\";proto=http\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn a_v4_mapped_peer_is_named_as_ipv4_and_a_v6_one_quoted() {
        let req = request("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        for (peer, xff, fwd) in [
            (
                "::ffff:198.51.100.7",
                "X-Forwarded-For: 198.51.100.7\r\n",
                "Forwarded: for=198.51.100.7;",
            ),
            (
                "2001:db8::1",
                "X-Forwarded-For: 2001:db8::1\r\n",
                "Forwarded: for=\"[2001:db8::1]\";",
            ),
        ] {
            let mut out = Vec::new();
            let f = Forwarding {
                peer: peer.parse().unwrap(),
                trusted: false,
                host: b"up",
                via: false,
                upgrade: None,
            };
            request_head(&mut out, &req, &["/"], &f, OutBody::None);
            let head = String::from_utf8(out).unwrap();
            assert!(head.contains(xff) && head.contains(fwd), "{peer}: {head}");
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "127.0.0.1",
            "10.200.3.45",
            "::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().as_bytes());
        }
    }

    #[test]
    fn response_fields_lose_hop_by_hop_and_framing() {
        let mut buf = bytes::BytesMut::from(
            "HTTP/1.1 200 OK\r\nServer: up\r\nDate: x\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\
             Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\n\
             Content-Type: text/html\r\nSet-Cookie: b=2\r\n\r\n",
        );
        let head = parse_response_head(&mut buf, 8192, false).unwrap().unwrap();
        assert_eq!(
            &response_lines(&head, None)[..],
            b"Content-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        );
    }
}
