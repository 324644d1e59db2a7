//! CORS (the Fetch standard's protocol): which other origins a browser
//! lets read the responses. Put it around everything
//! ([`HandlerExt::layer`](super::HandlerExt::layer)): a preflight `OPTIONS`
//! is answered here, before routing would turn it into a 405.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::Middleware;
use crate::handler::Request;
use crate::http::field::is_token;
use crate::http::{Method, StatusCode};
use crate::response::Response;

/// Which origins may read responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`Access-Control-Allow-Origin: *`); never with credentials.
    Any,
    /// These origins exactly (`https://app.example.com`, scheme and host
    /// and port as the browser sends them in `Origin`).
    List(Vec<String>),
}

/// What [`Cors`] allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsSettings {
    /// Allowed origins.
    pub origins: Origins,
    /// Methods a preflight may ask for (default GET, HEAD, POST).
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for (default `Content-Type`;
    /// compared case-insensitively).
    pub headers: Vec<String>,
    /// Response headers scripts may read beyond the safelisted ones.
    pub expose: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookies, auth).
    pub credentials: bool,
    /// How long a browser may cache a preflight's answer.
    pub max_age: Option<Duration>,
}

impl CorsSettings {
    /// The defaults for `origins`.
    pub fn new(origins: Origins) -> CorsSettings {
        CorsSettings {
            origins,
            methods: vec!["GET".into(), "HEAD".into(), "POST".into()],
            headers: vec!["Content-Type".into()],
            expose: Vec::new(),
            credentials: false,
            max_age: Some(Duration::from_secs(600)),
        }
    }
}

/// Settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsError {
    /// Credentials with `*`: browsers refuse it (Fetch §3.2.5).
    CredentialsWithAnyOrigin,
    /// An origin that is not `scheme://host[:port]`.
    BadOrigin(String),
    /// A method or header name that is not a token.
    BadToken(String),
}

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorsError::CredentialsWithAnyOrigin => {
                f.write_str("credentials cannot be allowed for any origin (*): list the origins")
            }
            CorsError::BadOrigin(o) => {
                write!(f, "{o:?} is not an origin (scheme://host[:port], no path)")
            }
            CorsError::BadToken(t) => write!(f, "{t:?} is not a method or header name"),
        }
    }
}

impl std::error::Error for CorsError {}

/// The CORS middleware, its header values built once.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Origins,
    credentials: bool,
    methods: Vec<String>,
    headers: Vec<String>,
    allow_methods: Bytes,
    allow_headers: Bytes,
    expose: Option<Bytes>,
    max_age: Option<Bytes>,
}

fn is_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' ', '@'])
}

impl Cors {
    /// The middleware for `settings`, or why they cannot work.
    pub fn new(settings: &CorsSettings) -> Result<Cors, CorsError> {
        if settings.credentials && settings.origins == Origins::Any {
            return Err(CorsError::CredentialsWithAnyOrigin);
        }
        if let Origins::List(list) = &settings.origins {
            if let Some(bad) = list.iter().find(|o| !is_origin(o)) {
                return Err(CorsError::BadOrigin(bad.clone()));
            }
        }
        let tokens = settings
            .methods
            .iter()
            .chain(&settings.headers)
            .chain(&settings.expose);
        for t in tokens {
            if !is_token(t.as_bytes()) {
                return Err(CorsError::BadToken(t.clone()));
            }
        }
        let join = |v: &[String]| Bytes::from(v.join(", "));
        Ok(Cors {
            origins: settings.origins.clone(),
            credentials: settings.credentials,
            methods: settings.methods.clone(),
            headers: settings.headers.clone(),
            allow_methods: join(&settings.methods),
            allow_headers: join(&settings.headers),
            expose: (!settings.expose.is_empty()).then(|| join(&settings.expose)),
            max_age: settings
                .max_age
                .map(|d| Bytes::from(d.as_secs().to_string())),
        })
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`,
    /// if it is allowed.
    fn allow_origin(&self, origin: &[u8]) -> Option<Bytes> {
        match &self.origins {
            Origins::Any => Some(Bytes::from_static(b"*")),
            Origins::List(list) => list
                .iter()
                .any(|o| o.as_bytes() == origin)
                .then(|| Bytes::copy_from_slice(origin)),
        }
    }

    /// Whether every header a preflight asks for is allowed.
    fn headers_allowed(&self, requested: Option<&[u8]>) -> bool {
        let Some(list) = requested else {
            return true;
        };
        list.split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|h| !h.is_empty())
            .all(|h| {
                self.headers
                    .iter()
                    .any(|a| a.as_bytes().eq_ignore_ascii_case(h))
            })
    }

    /// The answer to a preflight: 204, with the allowed set when the
    /// origin, the method and the headers asked for are all allowed, and
    /// without any CORS header otherwise (the browser then refuses).
    fn preflight(&self, req: &Request, origin: &[u8], method: &[u8]) -> Response {
        let mut resp = Response::new(StatusCode::NO_CONTENT).with_header(
            "Vary",
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        );
        let method_ok = self.methods.iter().any(|m| m.as_bytes() == method);
        let requested = req.header("access-control-request-headers");
        let Some(allow) = self.allow_origin(origin) else {
            return resp;
        };
        if !method_ok || !self.headers_allowed(requested) {
            return resp;
        }
        resp = resp
            .with_header("Access-Control-Allow-Origin", allow)
            .with_header("Access-Control-Allow-Methods", self.allow_methods.clone());
        if !self.allow_headers.is_empty() {
            resp = resp.with_header("Access-Control-Allow-Headers", self.allow_headers.clone());
        }
        if self.credentials {
            resp = resp.with_header("Access-Control-Allow-Credentials", "true");
        }
        if let Some(age) = &self.max_age {
            resp = resp.with_header("Access-Control-Max-Age", age.clone());
        }
        resp
    }
}

impl Middleware for Cors {
    /// The allowed origin's `Access-Control-Allow-Origin` value, if any.
    type Carry = Option<Bytes>;

    fn on_request(&self, req: &mut Request) -> Result<Option<Bytes>, Response> {
        let Some(origin) = req.header("origin") else {
            return Ok(None);
        };
        if req.method() == Method::Options {
            if let Some(method) = req.header("access-control-request-method") {
                return Err(self.preflight(req, origin, method));
            }
        }
        Ok(self.allow_origin(origin))
    }

    fn on_response(&self, allow: Option<Bytes>, mut resp: Response) -> Response {
        // With a list, the answer depends on Origin: caches must know.
        if matches!(self.origins, Origins::List(_)) {
            resp = resp.with_header("Vary", "Origin");
        }
        let Some(allow) = allow else {
            return resp;
        };
        resp = resp.with_header("Access-Control-Allow-Origin", allow);
        if self.credentials {
            resp = resp.with_header("Access-Control-Allow-Credentials", "true");
        }
        if let Some(expose) = &self.expose {
            resp = resp.with_header("Access-Control-Expose-Headers", expose.clone());
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let mut s = CorsSettings::new(Origins::Any);
        s.credentials = true;
        assert_eq!(
            Cors::new(&s).unwrap_err(),
            CorsError::CredentialsWithAnyOrigin
        );
        let s = CorsSettings::new(Origins::List(vec!["https://a.example/path".into()]));
        assert!(matches!(Cors::new(&s), Err(CorsError::BadOrigin(_))));
        let s = CorsSettings::new(Origins::List(vec!["a.example".into()]));
        assert!(matches!(Cors::new(&s), Err(CorsError::BadOrigin(_))));
        let mut s = CorsSettings::new(Origins::Any);
        s.headers.push("X Bad".into());
        assert!(matches!(Cors::new(&s), Err(CorsError::BadToken(_))));
        let ok = CorsSettings::new(Origins::List(vec!["http://localhost:3000".into()]));
        assert!(Cors::new(&ok).is_ok());
    }
}
