//! Authentication per path prefix: static bearer tokens, HTTP Basic
//! against an htpasswd file (bcrypt or argon2id), and JWT bearer tokens
//! (HS256, RS256, EdDSA).
//!
//! The configuration ([`AuthSettings`]) names files; [`AuthConfig::load`]
//! reads and checks them once, at start (an unsupported hash scheme or a
//! key that is not one is an error naming the file and line), and every
//! shard shares the result. Each shard then has its own [`Auth`]
//! middleware, around everything (`handler.layer(auth)`: it guards only its
//! prefixes) or around some routes (`route_layer`, or `layer(auth)` in
//! `routes!`).
//!
//! A request under a guarded prefix (the longest matching one; `/admin`
//! guards `/admin` and `/admin/…`, not `/administrator`) needs
//! credentials: none, or bad ones, get `401` with the scheme's
//! `WWW-Authenticate`; credentials that are good but not for this prefix
//! (a token of another prefix, a JWT for another audience or issuer) get
//! `403`.
//!
//! - Bearer tokens are compared in constant time with every token of the
//!   prefix.
//! - A password hash costs ~200 ms (bcrypt) or ~20 ms (argon2id) to check,
//!   so it is checked on the shard's blocking thread, never on the shard;
//!   a successful check is remembered by the shard for [`CACHE_TTL`]
//!   (the credentials as sent, not the password alone), and at most
//!   [`MAX_PENDING`] checks wait per shard (then `503`).
//! - JWTs are checked on the shard (a signature check is microseconds):
//!   the algorithm is the key's own (no `alg` confusion), `exp` and `nbf`
//!   with [`LEEWAY`], `iss` and `aud` when configured. The claims go in
//!   the request's extensions ([`JwtClaims`]); a Basic user as [`AuthUser`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use subtle::ConstantTimeEq;

use super::{Middleware, Wait};
use crate::handler::Request;
use crate::http::StatusCode;
use crate::response::Response;

/// How long a shard remembers a successful password check.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most remembered checks per shard (the oldest go when full).
const CACHE_MAX: usize = 4096;
/// Most password checks waiting per shard; more get `503`.
pub const MAX_PENDING: usize = 64;
/// Clock leeway for a JWT's `exp` and `nbf` (seconds).
pub const LEEWAY: u64 = 30;
/// The realm named in `WWW-Authenticate`.
const REALM: &str = "edgeshard";

/// One prefix's scheme, as configured: the file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// One token per line.
    Bearer(PathBuf),
    /// An htpasswd file (`user:hash`; bcrypt or argon2id).
    Basic(PathBuf),
    /// A JWT verification key: a PEM public key (RSA → RS256, Ed25519 →
    /// EdDSA) or an HS256 secret (at least 32 bytes).
    Jwt(PathBuf),
}

/// One guarded prefix, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRule {
    /// The path prefix, starting with `/`.
    pub prefix: String,
    /// How requests under it authenticate.
    pub scheme: AuthScheme,
}

impl AuthRule {
    /// `PREFIX=bearer:FILE`, `PREFIX=basic:HTPASSWD` or `PREFIX=jwt:KEYFILE`.
    pub fn parse(s: &str) -> Result<AuthRule, String> {
        let (prefix, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected PREFIX=SCHEME:FILE"))?;
        if !prefix.starts_with('/') || prefix.contains(['?', '#', '%', ' ']) {
            return Err(format!("{prefix:?}: a prefix is a path starting with /"));
        }
        let (scheme, file) = rest
            .split_once(':')
            .ok_or_else(|| format!("{rest:?}: expected SCHEME:FILE (bearer, basic or jwt)"))?;
        if file.is_empty() {
            return Err(format!("{s:?}: no file"));
        }
        let file = PathBuf::from(file);
        let scheme = match scheme {
            "bearer" => AuthScheme::Bearer(file),
            "basic" => AuthScheme::Basic(file),
            "jwt" => AuthScheme::Jwt(file),
            other => return Err(format!("{other:?}: the schemes are bearer, basic and jwt")),
        };
        Ok(AuthRule {
            prefix: prefix.to_string(),
            scheme,
        })
    }
}

/// Authentication as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSettings {
    /// The guarded prefixes.
    pub rules: Vec<AuthRule>,
    /// A JWT must have this `iss`, when set.
    pub jwt_issuer: Option<String>,
    /// A JWT must have this among its `aud`, when set.
    pub jwt_audience: Option<String>,
}

/// The files read and checked: what every shard's [`Auth`] shares.
pub struct AuthConfig {
    rules: Vec<Loaded>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| &r.prefix))
            .finish()
    }
}

struct Loaded {
    /// Without a final `/` (empty for `/`: everything).
    prefix: String,
    scheme: Scheme,
}

enum Scheme {
    Bearer(Vec<Vec<u8>>),
    Basic(HashMap<String, Arc<str>>),
    Jwt(Box<Jwt>),
}

struct Jwt {
    key: jsonwebtoken::DecodingKey,
    /// Signature, `exp` and `nbf` only: a token that passes it is genuine.
    genuine: jsonwebtoken::Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

/// An error in a configured auth file, naming it (and the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(pub String);

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AuthError {}

impl AuthConfig {
    /// Reads and checks every file `settings` names. `None` without rules.
    pub fn load(settings: &AuthSettings) -> Result<Option<Arc<AuthConfig>>, AuthError> {
        if settings.rules.is_empty() {
            if settings.jwt_issuer.is_some() || settings.jwt_audience.is_some() {
                return Err(AuthError(
                    "--jwt-issuer and --jwt-audience need a jwt rule".into(),
                ));
            }
            return Ok(None);
        }
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let mut rules = Vec::with_capacity(settings.rules.len());
        for rule in &settings.rules {
            let prefix = rule.prefix.trim_end_matches('/').to_string();
            if rules.iter().any(|r: &Loaded| r.prefix == prefix) {
                return Err(AuthError(format!(
                    "{}: two rules for this prefix",
                    rule.prefix
                )));
            }
            let scheme = match &rule.scheme {
                AuthScheme::Bearer(path) => Scheme::Bearer(load_tokens(path)?),
                AuthScheme::Basic(path) => Scheme::Basic(load_htpasswd(path)?),
                AuthScheme::Jwt(path) => Scheme::Jwt(Box::new(load_jwt_key(path, settings)?)),
            };
            rules.push(Loaded { prefix, scheme });
        }
        Ok(Some(Arc::new(AuthConfig { rules })))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|e| AuthError(format!("{}: {e}", path.display())))
}

/// The lines that are not blank or `#` comments, with their numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn load_tokens(path: &Path) -> Result<Vec<Vec<u8>>, AuthError> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| AuthError(format!("{}: not UTF-8 text", path.display())))?;
    let mut tokens = Vec::new();
    for (n, line) in lines(&text) {
        if line.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(AuthError(format!(
                "{}:{n}: a token is one word of visible ASCII",
                path.display()
            )));
        }
        tokens.push(line.as_bytes().to_vec());
    }
    if tokens.is_empty() {
        return Err(AuthError(format!("{}: no tokens", path.display())));
    }
    Ok(tokens)
}

fn load_htpasswd(path: &Path) -> Result<HashMap<String, Arc<str>>, AuthError> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| AuthError(format!("{}: not UTF-8 text", path.display())))?;
    let mut users = HashMap::new();
    for (n, line) in lines(&text) {
        let at = |why: String| AuthError(format!("{}:{n}: {why}", path.display()));
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| at("expected user:hash".into()))?;
        if user.is_empty() {
            return Err(at("empty user name".into()));
        }
        if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") {
            if hash.len() != 60 {
                return Err(at(format!("user {user}: a bcrypt hash is 60 characters")));
            }
        } else if hash.starts_with("$argon2id$") {
            argon2::PasswordHash::new(hash)
                .map_err(|e| at(format!("user {user}: bad argon2id hash: {e}")))?;
        } else {
            let scheme = hash
                .strip_prefix('$')
                .and_then(|h| h.split('$').next())
                .map_or_else(|| "crypt or plain text".to_string(), |s| format!("${s}$"));
            return Err(at(format!(
                "user {user}: unsupported hash scheme ({scheme}): use bcrypt (htpasswd -B) or argon2id"
            )));
        }
        if users.insert(user.to_string(), Arc::from(hash)).is_some() {
            return Err(at(format!("user {user} appears twice")));
        }
    }
    if users.is_empty() {
        return Err(AuthError(format!("{}: no users", path.display())));
    }
    Ok(users)
}

fn load_jwt_key(path: &Path, settings: &AuthSettings) -> Result<Jwt, AuthError> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let bytes = read(path)?;
    let bad = |why: &str| AuthError(format!("{}: {why}", path.display()));
    let (key, alg) = if bytes.starts_with(b"-----BEGIN PUBLIC KEY-----") {
        if let Ok(k) = DecodingKey::from_rsa_pem(&bytes) {
            (k, Algorithm::RS256)
        } else if let Ok(k) = DecodingKey::from_ed_pem(&bytes) {
            (k, Algorithm::EdDSA)
        } else {
            return Err(bad("a PEM public key, but neither RSA nor Ed25519"));
        }
    } else if bytes.starts_with(b"-----BEGIN RSA PUBLIC KEY-----") {
        let k = DecodingKey::from_rsa_pem(&bytes).map_err(|e| bad(&format!("bad RSA key: {e}")))?;
        (k, Algorithm::RS256)
    } else if bytes.starts_with(b"-----BEGIN") {
        return Err(bad(
            "not a public key (a private key or certificate?): give the PEM public key",
        ));
    } else {
        let secret = bytes.trim_ascii_end();
        if secret.len() < 32 {
            return Err(bad("an HS256 secret must be at least 32 bytes"));
        }
        let k = DecodingKey::from_secret(secret).map_err(|e| bad(&format!("bad secret: {e}")))?;
        (k, Algorithm::HS256)
    };
    let mut genuine = Validation::new(alg);
    genuine.leeway = LEEWAY;
    genuine.validate_nbf = true;
    // `exp` is required; issuer and audience are checked after, to tell a
    // forged or expired token (401) from one for someone else (403).
    genuine.validate_aud = false;
    genuine.set_required_spec_claims(&["exp"]);
    Ok(Jwt {
        key,
        genuine,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
    })
}

/// A JWT's claims, in the request's extensions once it is verified.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtClaims(pub serde_json::Map<String, serde_json::Value>);

/// The user a Basic login authenticated, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(pub String);

/// One shard's authentication middleware.
pub struct Auth {
    config: Arc<AuthConfig>,
    /// Successful password checks: credentials as sent → when they expire.
    cache: Rc<RefCell<HashMap<Box<[u8]>, Instant>>>,
    pending: Rc<Cell<usize>>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A shard's middleware over the loaded `config`.
    pub fn new(config: Arc<AuthConfig>) -> Auth {
        Auth {
            config,
            cache: Rc::new(RefCell::new(HashMap::new())),
            pending: Rc::new(Cell::new(0)),
        }
    }

    /// The rule of the longest prefix `path` is under.
    fn rule_for(&self, path: &str) -> Option<&Loaded> {
        self.config
            .rules
            .iter()
            .filter(|r| {
                path.strip_prefix(r.prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|r| r.prefix.len())
    }
}

/// What a rule makes of a request.
enum Check {
    Pass,
    Deny(Response),
    /// A password check, on the blocking thread.
    Wait(Wait),
}

impl Middleware for Auth {
    /// A password check to wait for, when one is needed.
    type Carry = Option<Wait>;

    fn on_request(&self, req: &mut Request) -> Result<Option<Wait>, Response> {
        match self.check(req) {
            Check::Pass => Ok(None),
            Check::Deny(answer) => Err(answer),
            Check::Wait(wait) => Ok(Some(wait)),
        }
    }

    #[inline]
    fn wait(&self, carry: &mut Option<Wait>) -> Option<Wait> {
        carry.take()
    }
}

impl Auth {
    fn check(&self, req: &mut Request) -> Check {
        let Some(rule) = self.rule_for(req.path()) else {
            return Check::Pass;
        };
        let credentials = req.header("authorization").map(<[u8]>::to_vec);
        match &rule.scheme {
            Scheme::Bearer(tokens) => {
                let Some(token) = credentials
                    .as_deref()
                    .and_then(|c| strip_scheme(c, b"bearer"))
                else {
                    return Check::Deny(challenge(rule, None));
                };
                if any_equal(tokens, token) {
                    Check::Pass
                } else if self.config.rules.iter().any(|r| match &r.scheme {
                    Scheme::Bearer(other) => any_equal(other, token),
                    _ => false,
                }) {
                    Check::Deny(forbidden("this token is not for this path"))
                } else {
                    Check::Deny(challenge(rule, Some("invalid_token")))
                }
            }
            Scheme::Jwt(jwt) => {
                let Some(token) = credentials
                    .as_deref()
                    .and_then(|c| strip_scheme(c, b"bearer"))
                else {
                    return Check::Deny(challenge(rule, None));
                };
                match verify_jwt(jwt, token) {
                    Ok(claims) => {
                        req.extensions_mut().insert(JwtClaims(claims));
                        Check::Pass
                    }
                    Err(deny) => Check::Deny(deny.response(rule)),
                }
            }
            Scheme::Basic(users) => self.check_basic(rule, users, credentials, req),
        }
    }
}

impl Auth {
    fn check_basic(
        &self,
        rule: &Loaded,
        users: &HashMap<String, Arc<str>>,
        credentials: Option<Vec<u8>>,
        req: &mut Request,
    ) -> Check {
        let Some(credentials) = credentials else {
            return Check::Deny(challenge(rule, None));
        };
        let Some((user, password)) = strip_scheme(&credentials, b"basic").and_then(user_password)
        else {
            return Check::Deny(challenge(rule, None));
        };
        let Some(hash) = users.get(&user) else {
            return Check::Deny(challenge(rule, None));
        };
        req.extensions_mut().insert(AuthUser(user));
        let now = Instant::now();
        if let Some(&until) = self.cache.borrow().get(&credentials[..]) {
            if until > now {
                return Check::Pass;
            }
        }
        if self.pending.get() >= MAX_PENDING {
            return Check::Deny(
                Response::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins being checked",
                )
                .with_header("Retry-After", "1"),
            );
        }
        self.pending.set(self.pending.get() + 1);
        let (cache, pending, hash) = (self.cache.clone(), self.pending.clone(), hash.clone());
        let unauthorized = challenge(rule, None);
        Check::Wait(Box::pin(async move {
            let verified = glommio::executor()
                .spawn_blocking(move || verify_password(&hash, &password))
                .await;
            pending.set(pending.get().saturating_sub(1));
            if !verified {
                return Err(unauthorized);
            }
            let mut cache = cache.borrow_mut();
            if cache.len() >= CACHE_MAX {
                let now = Instant::now();
                cache.retain(|_, until| *until > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(credentials.into_boxed_slice(), Instant::now() + CACHE_TTL);
            Ok(())
        }))
    }
}

/// `Scheme rest` (scheme in any case) → `rest`.
fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let n = scheme.len();
    (value.len() > n && value[..n].eq_ignore_ascii_case(scheme) && value[n] == b' ')
        .then(|| value[n + 1..].trim_ascii())
        .filter(|rest| !rest.is_empty())
}

/// Base64 `user:password` → both.
fn user_password(encoded: &[u8]) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Whether `token` equals one of `tokens`, each compared in constant time
/// (and all of them compared, whichever matches).
fn any_equal(tokens: &[Vec<u8>], token: &[u8]) -> bool {
    tokens
        .iter()
        .fold(subtle::Choice::from(0), |found, t| {
            found | t.as_slice().ct_eq(token)
        })
        .into()
}

fn verify_password(hash: &str, password: &str) -> bool {
    if hash.starts_with("$argon2id$") {
        use argon2::PasswordVerifier;
        argon2::PasswordHash::new(hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JwtDenied {
    /// Not a token we issued or not valid now: 401.
    Invalid(&'static str),
    /// Genuine, but for another issuer or audience: 403.
    NotHere(&'static str),
}

impl JwtDenied {
    fn response(&self, rule: &Loaded) -> Response {
        match self {
            JwtDenied::Invalid(why) => {
                challenge(rule, Some("invalid_token")).with_header("X-Auth-Error", *why)
            }
            JwtDenied::NotHere(why) => forbidden(why),
        }
    }
}

fn verify_jwt(
    jwt: &Jwt,
    token: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, JwtDenied> {
    use jsonwebtoken::errors::ErrorKind;
    let token = std::str::from_utf8(token).map_err(|_| JwtDenied::Invalid("malformed token"))?;
    let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
        token,
        &jwt.key,
        &jwt.genuine,
    )
    .map_err(|e| {
        JwtDenied::Invalid(match e.kind() {
            ErrorKind::ExpiredSignature => "token expired",
            ErrorKind::ImmatureSignature => "token not valid yet",
            ErrorKind::InvalidSignature => "bad signature",
            ErrorKind::InvalidAlgorithm => "wrong algorithm",
            ErrorKind::MissingRequiredClaim(_) => "missing exp",
            _ => "malformed token",
        })
    })?;
    let claims = data.claims;
    if let Some(iss) = &jwt.issuer {
        if claims.get("iss").and_then(|v| v.as_str()) != Some(iss) {
            return Err(JwtDenied::NotHere("wrong issuer"));
        }
    }
    if let Some(aud) = &jwt.audience {
        let ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == aud,
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return Err(JwtDenied::NotHere("wrong audience"));
        }
    }
    Ok(claims)
}

/// 401 with the rule's challenge (and an RFC 6750 error code for bad
/// bearer tokens).
fn challenge(rule: &Loaded, error: Option<&str>) -> Response {
    let value = match (&rule.scheme, error) {
        (Scheme::Basic(_), _) => format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
        (_, Some(e)) => format!("Bearer realm=\"{REALM}\", error=\"{e}\""),
        (_, None) => format!("Bearer realm=\"{REALM}\""),
    };
    Response::error(StatusCode::UNAUTHORIZED, "authentication required")
        .with_checked_header(Bytes::from_static(b"WWW-Authenticate"), Bytes::from(value))
}

fn forbidden(why: &'static str) -> Response {
    Response::error(StatusCode::FORBIDDEN, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_or_say_why_not() {
        assert_eq!(
            AuthRule::parse("/admin=basic:/etc/htpasswd"),
            Ok(AuthRule {
                prefix: "/admin".into(),
                scheme: AuthScheme::Basic("/etc/htpasswd".into())
            })
        );
        assert!(AuthRule::parse("/api=jwt:k.pem").is_ok());
        assert!(AuthRule::parse("admin=basic:x").is_err());
        assert!(AuthRule::parse("/a=digest:x")
            .unwrap_err()
            .contains("bearer, basic and jwt"));
        assert!(AuthRule::parse("/a=bearer:").is_err());
        assert!(AuthRule::parse("/a").is_err());
    }

    #[test]
    fn schemes_and_credentials() {
        assert_eq!(strip_scheme(b"Bearer abc", b"bearer"), Some(&b"abc"[..]));
        assert_eq!(strip_scheme(b"bearer  abc ", b"bearer"), Some(&b"abc"[..]));
        assert_eq!(strip_scheme(b"Bearer", b"bearer"), None);
        assert_eq!(strip_scheme(b"Bearerabc", b"bearer"), None);
        assert_eq!(strip_scheme(b"Basic abc", b"bearer"), None);
        assert_eq!(
            user_password(b"YWxpY2U6czNjcjN0OndpdGg6Y29sb25z"),
            Some(("alice".into(), "s3cr3t:with:colons".into()))
        );
        assert_eq!(user_password(b"!!"), None);
        let tokens = vec![b"one".to_vec(), b"two".to_vec()];
        assert!(any_equal(&tokens, b"two"));
        assert!(!any_equal(&tokens, b"tw"));
        assert!(!any_equal(&tokens, b"three"));
    }
}
