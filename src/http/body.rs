//! Request body framing: the chunked decoder (RFC 9112 §7.1) as a pure state
//! machine over bytes. Content-Length bodies need no decoder: the connection
//! splits exactly that many bytes off its buffer.

use bytes::{Buf, BytesMut};

use super::error::BodyError;

/// Longest chunk-size line we accept, extensions included (bytes). Chunk
/// extensions carry nothing we use; a long line is an attack on the parser.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Where the decoder is inside the chunked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size,
    /// After the size: whitespace and `;ext` up to CR.
    Ext,
    /// CR seen after the size line; LF must follow.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Chunk data done; CR must follow.
    DataCr,
    /// CR after data seen; LF must follow.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// CR after a trailer field; LF must follow.
    TrailerLf,
    /// CR of the final empty line; LF must follow.
    EndLf,
    /// The whole body has been decoded.
    Done,
}

/// Decodes a chunked body into a contiguous buffer, enforcing the body
/// limit on decoded bytes and the header limit on trailers.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the chunk being read, or bytes left in it while in `Data`.
    size: u64,
    size_digits: u8,
    line_len: usize,
    trailer_bytes: usize,
    decoded: u64,
    max_body: u64,
    max_trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder for one body.
    pub fn new(max_body: usize, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            size: 0,
            size_digits: 0,
            line_len: 0,
            trailer_bytes: 0,
            decoded: 0,
            max_body: max_body as u64,
            max_trailer_bytes,
        }
    }

    /// Whether the terminating chunk and trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decoded body bytes so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Consumes what it can from `input`, appending body bytes to `out`.
    /// Returns `Ok(true)` once the body is complete; bytes after it (the next
    /// pipelined request) stay in `input`. Trailer fields are checked and
    /// discarded.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, BodyError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let take = (self.size as usize).min(input.len() - i);
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b)?;
        }
        input.advance(i);
        Ok(self.state == State::Done)
    }

    fn step(&mut self, b: u8) -> Result<(), BodyError> {
        match self.state {
            State::Size | State::Ext | State::SizeLf => {
                self.line_len += 1;
                if self.line_len > MAX_CHUNK_LINE {
                    return Err(BodyError::ChunkLineTooLong);
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_bytes += 1;
                if self.trailer_bytes > self.max_trailer_bytes {
                    return Err(BodyError::TrailersTooLarge);
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                if self.size_digits == 16 {
                    return Err(BodyError::ChunkSizeOverflow);
                }
                self.size_digits += 1;
                self.size = (self.size << 4) | u64::from(hex_value(b));
                State::Size
            }
            (State::Size, b';' | b' ' | b'\t') if self.size_digits > 0 => State::Ext,
            (State::Size, b'\r') if self.size_digits > 0 => State::SizeLf,
            (State::Size, _) => return Err(BodyError::BadChunkSize),
            (State::Ext, b'\r') => State::SizeLf,
            (State::Ext, b'\t') => State::Ext,
            (State::Ext, _) if b.is_ascii_control() => return Err(BodyError::BadChunkSize),
            (State::Ext, _) => State::Ext,
            (State::SizeLf, b'\n') => self.chunk_started()?,
            (State::SizeLf, _) => return Err(BodyError::BadChunkSize),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size,
            (State::DataCr | State::DataLf, _) => return Err(BodyError::BadChunkTerminator),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, _) if is_token(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, _) if is_token(b) => State::TrailerName,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, b'\t') => State::TrailerValue,
            (State::TrailerValue, _) if b.is_ascii_control() => return Err(BodyError::BadTrailer),
            (State::TrailerValue, _) => State::TrailerValue,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerStart | State::TrailerName | State::TrailerLf | State::EndLf, _) => {
                return Err(BodyError::BadTrailer)
            }
            (State::Data | State::Done, _) => self.state,
        };
        Ok(())
    }

    /// A complete size line was read: enter the chunk, or the trailers after the last one.
    fn chunk_started(&mut self) -> Result<State, BodyError> {
        self.line_len = 0;
        self.size_digits = 0;
        if self.size == 0 {
            return Ok(State::TrailerStart);
        }
        self.decoded = self
            .decoded
            .checked_add(self.size)
            .ok_or(BodyError::TooLarge)?;
        if self.decoded > self.max_body {
            return Err(BodyError::TooLarge);
        }
        Ok(State::Data)
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// RFC 9110 token characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
        let mut dec = ChunkedDecoder::new(1 << 20, 1024);
        let mut inp = BytesMut::from(input);
        let mut out = BytesMut::new();
        let done = dec.decode(&mut inp, &mut out)?;
        assert!(done, "body incomplete");
        Ok((out.to_vec(), inp.to_vec()))
    }

    #[test]
    fn decodes_chunks_and_leaves_the_next_request() {
        let (body, rest) =
            decode_all(b"5\r\nhello\r\n7;name=val\r\n, world\r\n0\r\n\r\nGET / HTTP/1.1\r\n")
                .unwrap();
        assert_eq!(body, b"hello, world");
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn trailers_are_checked_and_discarded() {
        let (body, rest) =
            decode_all(b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n").unwrap();
        assert_eq!(body, b"abc");
        assert!(rest.is_empty());
        assert_eq!(decode_all(b"0\r\n bad\r\n\r\n"), Err(BodyError::BadTrailer));
        assert_eq!(
            decode_all(b"0\r\nNoColon\r\n\r\n"),
            Err(BodyError::BadTrailer)
        );
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let input = b"a\r\n0123456789\r\n1\r\nX\r\n0\r\nT: v\r\n\r\n";
        let mut dec = ChunkedDecoder::new(1 << 20, 1024);
        let mut out = BytesMut::new();
        let mut done = false;
        for &b in input.iter() {
            let mut one = BytesMut::from(&[b][..]);
            done = dec.decode(&mut one, &mut out).unwrap();
            assert!(one.is_empty());
        }
        assert!(done);
        assert_eq!(&out[..], b"0123456789X");
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(decode_all(b"g\r\n"), Err(BodyError::BadChunkSize));
        assert_eq!(decode_all(b"\r\n"), Err(BodyError::BadChunkSize));
        assert_eq!(decode_all(b"-1\r\n"), Err(BodyError::BadChunkSize));
        assert_eq!(decode_all(b"5\nhello\r\n"), Err(BodyError::BadChunkSize));
        assert_eq!(decode_all(b"5\r\rhello"), Err(BodyError::BadChunkSize));
        assert_eq!(
            decode_all(b"10000000000000000\r\n"),
            Err(BodyError::ChunkSizeOverflow)
        );
        assert_eq!(
            decode_all(b"5\r\nhelloXX"),
            Err(BodyError::BadChunkTerminator)
        );
        assert_eq!(
            decode_all(b"5\r\nhello\n0\r\n\r\n"),
            Err(BodyError::BadChunkTerminator)
        );
    }

    #[test]
    fn enforces_limits() {
        let mut dec = ChunkedDecoder::new(4, 1024);
        let mut out = BytesMut::new();
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"5\r\nhello\r\n"[..]), &mut out),
            Err(BodyError::TooLarge)
        );
        let mut dec = ChunkedDecoder::new(1 << 20, 1024);
        let long = format!("1;{}\r\n", "x".repeat(MAX_CHUNK_LINE));
        assert_eq!(
            dec.decode(&mut BytesMut::from(long.as_bytes()), &mut out),
            Err(BodyError::ChunkLineTooLong)
        );
        let mut dec = ChunkedDecoder::new(1 << 20, 8);
        assert_eq!(
            dec.decode(
                &mut BytesMut::from(&b"0\r\nLong-Trailer: value\r\n\r\n"[..]),
                &mut out
            ),
            Err(BodyError::TrailersTooLarge)
        );
    }

    #[test]
    fn sixteen_hex_digits_fit() {
        let mut dec = ChunkedDecoder::new(usize::MAX, 1024);
        let mut out = BytesMut::new();
        // Leading zeros count as digits; the value itself is small.
        assert_eq!(
            dec.decode(
                &mut BytesMut::from(&b"0000000000000003\r\nabc\r\n0\r\n\r\n"[..]),
                &mut out
            ),
            Ok(true)
        );
        assert_eq!(&out[..], b"abc");
    }
}
