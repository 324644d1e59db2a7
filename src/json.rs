//! JSON in and out: [`Json`] serializes a response body, and
//! [`Request::json`] parses a request body, refusing the wrong content type
//! (415), a body over the limit (413) or malformed JSON (400), each with a
//! small JSON error body.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::handler::Request;
use crate::http::StatusCode;
use crate::response::{IntoResponse, Response};

/// `application/json`
pub const APPLICATION_JSON: &str = "application/json";

/// A response body serialized as JSON (`Content-Type: application/json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::new(StatusCode::OK).with_body(APPLICATION_JSON, body),
            Err(e) => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot serialize the response: {e}"),
            ),
        }
    }
}

/// Why a request body was not accepted as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// The content type is not `application/json` or `application/*+json`.
    UnsupportedMediaType,
    /// The body is larger than the limit (bytes).
    TooLarge(usize),
    /// The body is not valid JSON for the expected type.
    Malformed(String),
}

impl JsonError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            JsonError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            JsonError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::UnsupportedMediaType => {
                f.write_str("expected Content-Type: application/json")
            }
            JsonError::TooLarge(limit) => write!(f, "request body larger than {limit} bytes"),
            JsonError::Malformed(e) => write!(f, "malformed JSON: {e}"),
        }
    }
}

impl std::error::Error for JsonError {}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        json_error(self.status(), &self.to_string())
    }
}

/// A small JSON error response: `{"error":"<message>","status":<code>}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        error: &'a str,
        status: u16,
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: message,
        status: status.as_u16(),
    })
    .unwrap_or_else(|_| br#"{"error":"error"}"#.to_vec());
    Response::new(status).with_body(APPLICATION_JSON, body)
}

/// Whether a `Content-Type` value is JSON: `application/json` or
/// `application/<anything>+json`, parameters allowed, any case.
pub fn is_json_content_type(value: &[u8]) -> bool {
    // The connection asks this of every request with a body: no allocation.
    let media = value
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    let prefix = b"application/";
    media.eq_ignore_ascii_case(APPLICATION_JSON.as_bytes())
        || (media.len() >= prefix.len() + 5
            && media[..prefix.len()].eq_ignore_ascii_case(prefix)
            && media[media.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

impl Request {
    /// Parses the body as JSON. The server's `--max-body` limit has already
    /// been applied; see [`Request::json_with_limit`] for a tighter one.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        self.json_with_limit(usize::MAX)
    }

    /// Parses the body as JSON if it is at most `limit` bytes.
    pub fn json_with_limit<T: DeserializeOwned>(&self, limit: usize) -> Result<T, JsonError> {
        if !self
            .header("content-type")
            .is_some_and(is_json_content_type)
        {
            return Err(JsonError::UnsupportedMediaType);
        }
        if self.body().len() > limit {
            return Err(JsonError::TooLarge(limit));
        }
        serde_json::from_slice(self.body()).map_err(|e| JsonError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Body;

    #[test]
    fn content_types() {
        assert!(is_json_content_type(b"application/json"));
        assert!(is_json_content_type(b"Application/JSON; charset=utf-8"));
        assert!(is_json_content_type(b"application/problem+json"));
        assert!(!is_json_content_type(b"text/json"));
        assert!(!is_json_content_type(b"application/jsonp"));
        assert!(!is_json_content_type(b""));
        assert!(is_json_content_type(b"  application/json  ; charset=utf-8"));
        assert!(is_json_content_type(b"application/vnd.api+JSON; v=2"));
        assert!(!is_json_content_type(b"text/plain+json"));
    }

    #[test]
    fn error_bodies_are_json() {
        let r = JsonError::Malformed("expected value at line 1 column 1".into()).into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.content_type(), Some(APPLICATION_JSON.as_bytes()));
        let Body::Full(b) = r.body() else {
            panic!("full body")
        };
        assert_eq!(
            &b[..],
            br#"{"error":"malformed JSON: expected value at line 1 column 1","status":400}"#
        );
    }
}
