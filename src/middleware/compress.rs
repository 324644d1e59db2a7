//! Compression on the fly: br, zstd or gzip, as the client's
//! `Accept-Encoding` prefers (q-values, ties broken br > zstd > gzip), for
//! responses worth it that nothing compressed before.
//!
//! A response is compressed when its type compresses (text, JSON,
//! JavaScript, XML, SVG, WebAssembly, event streams), it has a body in
//! memory of at least [`CompressSettings::min_size`] bytes or a stream,
//! and none of these holds: it already has a `Content-Encoding` (a
//! precompressed file), it is a range (`206`, `Content-Range`), its body is
//! a file (sent with sendfile), or it says `Cache-Control: no-transform`.
//! Such a response gets `Vary: Accept-Encoding` whether or not this client
//! takes a coding, and a strong `ETag` becomes weak (the bytes differ by
//! coding), as nginx's gzip module does.
//!
//! A body in memory is compressed whole (`Content-Length` stays exact); a
//! stream chunk by chunk, each flushed as it comes, so server-sent events
//! still arrive one by one.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_lite::Stream;

use super::Middleware;
use crate::handler::Request;
use crate::http::coding::{choose, Coding};
use crate::http::field::list_has;
use crate::http::StatusCode;
use crate::response::{Body, Response};

/// Smallest body compressed by default (bytes): below it, the coding's
/// own framing eats most of the gain.
pub const DEFAULT_MIN_SIZE: usize = 1024;

/// How responses are compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressSettings {
    /// Bodies in memory smaller than this are sent as they are.
    pub min_size: usize,
    /// gzip level (0–9).
    pub gzip_level: u32,
    /// Brotli quality (0–11): 4 is what CDNs use on the fly.
    pub brotli_quality: u32,
    /// zstd level (1–19).
    pub zstd_level: i32,
}

impl Default for CompressSettings {
    fn default() -> Self {
        CompressSettings {
            min_size: DEFAULT_MIN_SIZE,
            gzip_level: 5,
            brotli_quality: 4,
            zstd_level: 3,
        }
    }
}

/// The compression middleware.
#[derive(Debug, Clone, Default)]
pub struct Compress {
    settings: CompressSettings,
}

impl Compress {
    /// Compression with `settings`.
    pub fn new(settings: CompressSettings) -> Compress {
        Compress { settings }
    }
}

impl Middleware for Compress {
    /// The coding the client takes best, if any.
    type Carry = Option<Coding>;

    #[inline]
    fn on_request(&self, req: &mut Request) -> Result<Option<Coding>, Response> {
        Ok(choose(req.header("accept-encoding"), [true; 3]))
    }

    fn on_response(&self, coding: Option<Coding>, resp: Response) -> Response {
        if !self.eligible(&resp) {
            return resp;
        }
        let mut resp = resp.without_preformatted();
        // A handler (or the static files, for a file with variants) may
        // have said it already.
        let varies = resp
            .header("vary")
            .is_some_and(|v| list_has(v, b"accept-encoding"));
        if !varies {
            resp = resp.with_checked_header(
                Bytes::from_static(b"Vary"),
                Bytes::from_static(b"Accept-Encoding"),
            );
        }
        let Some(coding) = coding else {
            return resp;
        };
        let body = match resp.take_body() {
            Body::Full(b) => match compress_whole(coding, &self.settings, &b) {
                Ok(z) => Body::Full(z),
                // The codecs write to memory: this does not happen; if it
                // did, the response goes out as it was.
                Err(_) => return resp.with_raw_body(Body::Full(b)),
            },
            Body::Stream(inner) => Body::Stream(Box::pin(Compressed {
                inner,
                encoder: Some(Encoder::new(coding, &self.settings)),
            })),
            other => return resp.with_raw_body(other),
        };
        resp.map_header("etag", weaken)
            .with_checked_header(
                Bytes::from_static(b"Content-Encoding"),
                Bytes::from_static(coding.token().as_bytes()),
            )
            .with_raw_body(body)
    }
}

impl Compress {
    /// Whether compressing `resp` could apply (for some client).
    fn eligible(&self, resp: &Response) -> bool {
        let status = resp.status();
        if status == StatusCode::PARTIAL_CONTENT || status.forbids_body() {
            return false;
        }
        let big_enough = match resp.body() {
            Body::Full(b) => b.len() >= self.settings.min_size,
            Body::Stream(_) => true,
            // Relayed bodies (the proxy's) go as the upstream sent them.
            Body::Empty | Body::File(_) | Body::Relay(_) | Body::Tunnel(_) => false,
        };
        big_enough
            && resp.content_type().is_some_and(compressible)
            && resp.header("content-encoding").is_none()
            && resp.header("content-range").is_none()
            && !resp
                .header("cache-control")
                .is_some_and(|v| list_has(v, b"no-transform"))
    }
}

/// Types that compress: text, and the structured or script types sent as
/// text; not images, audio, video, archives or fonts already compressed.
fn compressible(content_type: &[u8]) -> bool {
    let mime = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let starts = |p: &[u8]| mime.len() >= p.len() && mime[..p.len()].eq_ignore_ascii_case(p);
    let ends =
        |s: &[u8]| mime.len() >= s.len() && mime[mime.len() - s.len()..].eq_ignore_ascii_case(s);
    const MORE: [&[u8]; 7] = [
        b"application/json",
        b"application/javascript",
        b"application/xml",
        b"application/wasm",
        b"image/svg+xml",
        b"image/x-icon",
        b"font/ttf",
    ];
    starts(b"text/")
        || ends(b"+json")
        || ends(b"+xml")
        || mime.eq_ignore_ascii_case(b"font/otf")
        || MORE.iter().any(|m| mime.eq_ignore_ascii_case(m))
}

/// `"x"` → `W/"x"`; weak tags stay as they are.
fn weaken(tag: &Bytes) -> Bytes {
    if tag.starts_with(b"W/") {
        tag.clone()
    } else {
        let mut weak = Vec::with_capacity(tag.len() + 2);
        weak.extend_from_slice(b"W/");
        weak.extend_from_slice(tag);
        Bytes::from(weak)
    }
}

fn compress_whole(coding: Coding, s: &CompressSettings, body: &[u8]) -> std::io::Result<Bytes> {
    let mut e = Encoder::new(coding, s);
    e.write(body)?;
    Ok(Bytes::from(e.finish()?))
}

/// One coding's encoder, writing to memory.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// zstd refused its parameters (it does not with these): bytes pass.
    Failed(Vec<u8>),
}

impl Encoder {
    fn new(coding: Coding, s: &CompressSettings) -> Encoder {
        match coding {
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(s.gzip_level.min(9)),
            )),
            // 22: brotli's default window (4 MiB), as browsers expect.
            Coding::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                s.brotli_quality.min(11),
                22,
            ))),
            Coding::Zstd => match zstd::stream::write::Encoder::new(Vec::new(), s.zstd_level) {
                Ok(e) => Encoder::Zstd(e),
                Err(_) => Encoder::Failed(Vec::new()),
            },
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Brotli(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
            Encoder::Failed(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Flushes what was written so the client can decode it now, and
    /// takes the compressed bytes so far.
    fn flush(&mut self) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Encoder::Gzip(e) => {
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Brotli(e) => {
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Zstd(e) => {
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Failed(v) => std::mem::take(v),
        })
    }

    /// Ends the stream; the compressed bytes not taken yet.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Brotli(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Failed(v) => Ok(v),
        }
    }
}

/// A stream compressed piece by piece, each piece flushed.
struct Compressed {
    inner: Pin<Box<dyn Stream<Item = Bytes>>>,
    /// `None` once the stream has ended and the encoder finished.
    encoder: Option<Encoder>,
}

impl Stream for Compressed {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if self.encoder.is_none() {
                return Poll::Ready(None);
            }
            let next = self.inner.as_mut().poll_next(cx);
            let Some(encoder) = self.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            let out = match next {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(piece)) => encoder.write(&piece).and_then(|()| encoder.flush()),
                Poll::Ready(None) => match self.encoder.take() {
                    Some(e) => e.finish(),
                    None => Ok(Vec::new()),
                },
            };
            match out {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Bytes::from(out))),
                // In memory this does not fail; if it did, end the body:
                // the client sees a truncated stream rather than garbage.
                Err(_) => {
                    self.encoder = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(coding: Coding, data: &[u8]) -> Vec<u8> {
        let z = compress_whole(coding, &CompressSettings::default(), data).unwrap();
        assert!(z.len() < data.len());
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::GzDecoder::new(&z[..])
                .read_to_end(&mut out)
                .unwrap(),
            Coding::Brotli => brotli::Decompressor::new(&z[..], 4096)
                .read_to_end(&mut out)
                .unwrap(),
            Coding::Zstd => zstd::stream::read::Decoder::new(&z[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    #[test]
    fn every_coding_round_trips() {
        let data = br#"{"items":[1,2,3,4,5,6,7,8,9,10],"name":"edgeshard"}"#.repeat(50);
        for coding in Coding::ALL {
            assert_eq!(roundtrip(coding, &data), data, "{coding:?}");
        }
    }

    #[test]
    fn types_that_compress() {
        for yes in [
            &b"text/html; charset=utf-8"[..],
            b"application/json",
            b"Application/JSON",
            b"application/problem+json",
            b"image/svg+xml",
            b"text/event-stream",
        ] {
            assert!(compressible(yes), "{yes:?}");
        }
        for no in [
            &b"image/png"[..],
            b"application/octet-stream",
            b"video/mp4",
            b"application/zip",
        ] {
            assert!(!compressible(no), "{no:?}");
        }
    }

    #[test]
    fn strong_tags_weaken() {
        assert_eq!(weaken(&Bytes::from_static(b"\"a\"")), "W/\"a\"");
        assert_eq!(weaken(&Bytes::from_static(b"W/\"a\"")), "W/\"a\"");
    }
}
