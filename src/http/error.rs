//! Typed request errors, each mapped to its status and a one-line reason in
//! one place, so every rejection is a small, clear response.

use std::fmt;

use super::status::StatusCode;

/// Why a request head was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Request line longer than `--max-uri`.
    UriTooLong,
    /// Header section larger than `--max-header-bytes`.
    HeadersTooLarge,
    /// More header fields than `--max-headers`.
    TooManyHeaders,
    /// The request line is not `METHOD SP target SP HTTP/1.x`.
    BadRequestLine,
    /// The target is neither origin-form, absolute-form nor `*` (for OPTIONS).
    BadTarget,
    /// A header line is not `name: value`.
    BadHeader,
    /// A header line starts with whitespace (obs-fold, RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    WhitespaceBeforeColon,
    /// An LF without its CR.
    BareLineFeed,
    /// A CR without its LF.
    BareCarriageReturn,
    /// Both Content-Length and Transfer-Encoding (a smuggling vector).
    ContentLengthWithTransferEncoding,
    /// Content-Length that is not `1*DIGIT` or does not fit in 64 bits.
    BadContentLength,
    /// Content-Length sent more than once.
    DuplicateContentLength,
    /// `chunked` is not the final transfer coding, or appears twice.
    ChunkedNotLast,
    /// A transfer coding other than `chunked`.
    UnknownTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// HTTP/1.1 request without Host.
    MissingHost,
    /// A Host value that is not `host[:port]` (RFC 9112 §3.2).
    BadHost,
    /// An absolute-form target whose authority is empty or not `host[:port]`.
    BadAuthority,
    /// A path whose dot-segments climb above the root (`/../x`).
    PathAboveRoot,
    /// More than one Host header.
    DuplicateHost,
    /// An `Expect` other than `100-continue`.
    UnknownExpectation,
    /// Not HTTP/1.0 or HTTP/1.1 (HTTP/2 preface, HTTP/1.32, HTTP/0.9…).
    UnsupportedVersion,
    /// CONNECT: edgeshard does not tunnel.
    ConnectNotAllowed,
}

impl ParseError {
    /// The status this error is answered with.
    pub fn status(self) -> StatusCode {
        use ParseError::*;
        match self {
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge | TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            UnknownTransferCoding => StatusCode::NOT_IMPLEMENTED,
            UnknownExpectation => StatusCode::EXPECTATION_FAILED,
            UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            ConnectNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            BadRequestLine
            | BadTarget
            | BadHeader
            | ObsoleteLineFolding
            | WhitespaceBeforeColon
            | BareLineFeed
            | BareCarriageReturn
            | ContentLengthWithTransferEncoding
            | BadContentLength
            | DuplicateContentLength
            | ChunkedNotLast
            | TransferEncodingInHttp10
            | MissingHost
            | DuplicateHost
            | BadHost
            | BadAuthority
            | PathAboveRoot => StatusCode::BAD_REQUEST,
        }
    }

    /// A one-line reason for the response body.
    pub fn reason(self) -> &'static str {
        use ParseError::*;
        match self {
            UriTooLong => "request line too long",
            HeadersTooLarge => "header section too large",
            TooManyHeaders => "too many header fields",
            BadRequestLine => "malformed request line",
            BadTarget => "malformed request target",
            BadHeader => "malformed header field",
            ObsoleteLineFolding => "obsolete line folding",
            WhitespaceBeforeColon => "whitespace before colon in header field",
            BareLineFeed => "bare LF where CRLF is required",
            BareCarriageReturn => "bare CR where CRLF is required",
            ContentLengthWithTransferEncoding => "Content-Length together with Transfer-Encoding",
            BadContentLength => "invalid Content-Length",
            DuplicateContentLength => "duplicate Content-Length",
            ChunkedNotLast => "chunked must be the final transfer coding, once",
            UnknownTransferCoding => "unsupported transfer coding",
            TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            MissingHost => "missing Host header",
            DuplicateHost => "duplicate Host header",
            BadHost => "invalid Host header",
            BadAuthority => "invalid authority in the request target",
            PathAboveRoot => "path climbs above the root",
            UnknownExpectation => "unsupported expectation",
            UnsupportedVersion => "unsupported HTTP version",
            ConnectNotAllowed => "CONNECT is not supported",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

/// Why a request body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Body larger than `--max-body`.
    TooLarge,
    /// A chunk-size line that is not hex digits, optional extensions and CRLF.
    BadChunkSize,
    /// A chunk size that does not fit in 64 bits.
    ChunkSizeOverflow,
    /// Chunk data not followed by CRLF.
    BadChunkTerminator,
    /// A chunk-size line longer than [`crate::http::MAX_CHUNK_LINE`].
    ChunkLineTooLong,
    /// A malformed trailer field.
    BadTrailer,
    /// Trailer section larger than `--max-header-bytes`.
    TrailersTooLarge,
}

impl BodyError {
    /// The status this error is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TrailersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A one-line reason for the response body.
    pub fn reason(self) -> &'static str {
        match self {
            BodyError::TooLarge => "request body too large",
            BodyError::BadChunkSize => "invalid chunk size",
            BodyError::ChunkSizeOverflow => "chunk size overflow",
            BodyError::BadChunkTerminator => "chunk data not followed by CRLF",
            BodyError::ChunkLineTooLong => "chunk size line too long",
            BodyError::BadTrailer => "malformed trailer field",
            BodyError::TrailersTooLarge => "trailer section too large",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for BodyError {}
