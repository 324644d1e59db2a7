//! Security headers on every response that does not set them itself:
//! `X-Content-Type-Options: nosniff` and a `Referrer-Policy` by default;
//! `Strict-Transport-Security` and `Content-Security-Policy` when asked.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::Middleware;
use crate::handler::Request;
use crate::http::field::is_safe_value;
use crate::response::{Body, Response};

/// What [`SecurityHeaders`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// `X-Content-Type-Options: nosniff` (browsers then trust the
    /// `Content-Type`, not their guess).
    pub nosniff: bool,
    /// `Referrer-Policy`, if any (default `strict-origin-when-cross-origin`).
    pub referrer_policy: Option<String>,
    /// `Strict-Transport-Security: max-age=…` (only meaningful over TLS;
    /// browsers ignore it on plain HTTP).
    pub hsts: Option<Duration>,
    /// `Content-Security-Policy`, as given.
    pub csp: Option<String>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            nosniff: true,
            referrer_policy: Some("strict-origin-when-cross-origin".to_string()),
            hsts: None,
            csp: None,
        }
    }
}

/// A configured value that cannot be a header's: empty, or with a CR, LF
/// or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// The header it was for (`Referrer-Policy`, `Content-Security-Policy`).
    pub header: &'static str,
    /// The value as configured.
    pub value: String,
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?} is not a header value", self.header, self.value)
    }
}

impl std::error::Error for BadValue {}

/// The middleware: headers built once, added to each response that lacks
/// them (a handler's own value wins).
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(Bytes, Bytes)>,
}

impl SecurityHeaders {
    /// The headers `settings` asks for. A value with a CR, LF or NUL is
    /// refused (the configuration checks this before).
    pub fn new(settings: &SecuritySettings) -> Result<SecurityHeaders, BadValue> {
        let mut headers = Vec::new();
        if settings.nosniff {
            headers.push(("X-Content-Type-Options", "nosniff".to_string()));
        }
        if let Some(p) = &settings.referrer_policy {
            headers.push(("Referrer-Policy", p.clone()));
        }
        if let Some(age) = settings.hsts {
            headers.push((
                "Strict-Transport-Security",
                format!("max-age={}; includeSubDomains", age.as_secs()),
            ));
        }
        if let Some(csp) = &settings.csp {
            headers.push(("Content-Security-Policy", csp.clone()));
        }
        for (header, value) in &headers {
            if value.is_empty() || !is_safe_value(value.as_bytes()) {
                return Err(BadValue {
                    header,
                    value: value.clone(),
                });
            }
        }
        Ok(SecurityHeaders {
            headers: headers
                .into_iter()
                .map(|(n, v)| (Bytes::from_static(n.as_bytes()), Bytes::from(v)))
                .collect(),
        })
    }
}

impl Middleware for SecurityHeaders {
    type Carry = ();

    #[inline]
    fn on_request(&self, _: &mut Request) -> Result<(), Response> {
        Ok(())
    }

    fn on_response(&self, _: (), mut resp: Response) -> Response {
        // A proxied response carries the upstream's fields as lines.
        let relayed = matches!(resp.body(), Body::Relay(_) | Body::Tunnel(_));
        for (name, value) in &self.headers {
            let set = resp.headers().any(|(n, _)| n.eq_ignore_ascii_case(name))
                || (relayed && resp.preformatted_header(name).is_some());
            if !set {
                // Checked when the settings were.
                resp = resp.with_checked_header(name.clone(), value.clone());
            }
        }
        resp
    }
}
