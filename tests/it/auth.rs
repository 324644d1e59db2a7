//! Authentication on the wire, through the binary's flags: bearer tokens,
//! Basic logins against files `htpasswd -B` wrote (and argon2id hashes),
//! JWTs signed with HS256, RS256 (keys from `openssl`) and EdDSA; each
//! with its failure paths, the `WWW-Authenticate` challenges, 401 against
//! 403, the checks cached, a slow hash not holding the shard, and files
//! that are refused at start.

use crate::common;
use crate::static_common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use static_common::{config_from, header, split, Fixture, Server};

fn get(srv: &Server, path: &str, authorization: Option<&str>) -> (String, Vec<u8>) {
    let extra = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    srv.get(path, &extra)
}

fn status(head: &str) -> u16 {
    head[9..12].parse().unwrap()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {creds}")
}

/// `htpasswd -nbB` (bcrypt) at `cost`: one `user:hash` line.
fn htpasswd(user: &str, password: &str, cost: u32) -> String {
    let out = Command::new("htpasswd")
        .args(["-nbB", "-C", &cost.to_string(), user, password])
        .output()
        .expect("htpasswd (apache2-utils)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn bearer_tokens_guard_their_prefix_only() {
    let fx = Fixture::new("auth-bearer");
    let api = fx.file(
        "api.tokens",
        b"# the API's clients\ntoken-one\n\ntoken-two\n",
    );
    let admin = fx.file("admin.tokens", b"admin-token\n");
    let srv = Server::app(config_from(&[
        "--auth",
        &format!("/api=bearer:{}", api.display()),
        "--auth",
        &format!("/api/echo=bearer:{}", admin.display()),
    ]));
    let (head, _) = get(&srv, "/api/stats", None);
    assert_eq!(status(&head), 401, "{head}");
    assert_eq!(
        header(&head, "www-authenticate"),
        Some("Bearer realm=\"edgeshard\"")
    );
    let (head, _) = get(&srv, "/api/stats", Some("Bearer token-three"));
    assert_eq!(status(&head), 401);
    assert_eq!(
        header(&head, "www-authenticate"),
        Some("Bearer realm=\"edgeshard\", error=\"invalid_token\"")
    );
    let (head, _) = get(&srv, "/api/stats", Some("Basic dG9rZW4tb25l"));
    assert_eq!(status(&head), 401, "another scheme is no bearer token");
    for token in ["token-one", "token-two"] {
        let (head, body) = get(&srv, "/api/stats", Some(&format!("Bearer {token}")));
        assert_eq!(status(&head), 200, "{head}");
        assert!(body.starts_with(b"{\"shards\""));
    }
    // The longest prefix rules: /api/echo has its own token; the API's
    // are good tokens, but not for it.
    let (head, _) = get(&srv, "/api/echo", Some("bearer token-one"));
    assert_eq!(status(&head), 403, "{head}");
    let (head, _) = get(&srv, "/api/echo", Some("Bearer admin-token"));
    assert_eq!(status(&head), 405, "authenticated, then routed: {head}");
    // Outside the prefixes nothing is asked.
    assert_eq!(status(&get(&srv, "/healthz", None).0), 200);
    assert_eq!(status(&get(&srv, "/apix", None).0), 404);
}

#[test]
fn basic_logins_check_bcrypt_and_argon2id_off_the_shard_and_remember_them() {
    if !have("htpasswd", &["-nb", "probe", "probe"]) {
        return missing("htpasswd");
    }
    let fx = Fixture::new("auth-basic");
    let argon = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"edgeshard-salt-1").unwrap();
        argon2::Argon2::default()
            .hash_password(b"argon pass", &salt)
            .unwrap()
            .to_string()
    };
    let file = fx.file(
        "htpasswd",
        format!(
            "{}\n{}\ncarol:{argon}\n",
            htpasswd("alice", "alice pass", 5),
            // Cost 13: a check takes a few hundred milliseconds.
            htpasswd("bob", "bob pass", 13),
        )
        .as_bytes(),
    );
    let srv = Server::app(config_from(&[
        "--auth",
        &format!("/=basic:{}", file.display()),
    ]));
    let challenge = Some("Basic realm=\"edgeshard\", charset=\"UTF-8\"");
    let (head, _) = get(&srv, "/healthz", None);
    assert_eq!(
        (status(&head), header(&head, "www-authenticate")),
        (401, challenge)
    );
    for (user, pass, want) in [
        ("alice", "alice pass", 200),
        ("alice", "wrong", 401),
        ("nobody", "alice pass", 401),
        ("carol", "argon pass", 200),
        ("carol", "argon pas", 401),
    ] {
        let (head, _) = get(&srv, "/healthz", Some(&basic(user, pass)));
        assert_eq!(status(&head), want, "{user}/{pass}: {head}");
        if want == 401 {
            assert_eq!(header(&head, "www-authenticate"), challenge);
        }
    }
    let (head, _) = get(&srv, "/healthz", Some("Basic !!not-base64"));
    assert_eq!(status(&head), 401);

    // bob's hash is slow to check; while it is, the shard (there is one)
    // answers others at once: the check runs on its blocking thread.
    let addr = srv.addr;
    let slow = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let started = Instant::now();
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\r\n",
            basic("bob", "bob pass")
        )
        .unwrap();
        let (head, _) = split(&read_response(&mut s));
        (status(&head), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(30));
    let started = Instant::now();
    let (head, _) = get(&srv, "/healthz", Some(&basic("alice", "alice pass")));
    let quick = started.elapsed();
    let (slow_status, slow_took) = slow.join().unwrap();
    assert_eq!((status(&head), slow_status), (200, 200));
    assert!(
        quick < slow_took / 2,
        "a cached login took {quick:?} while bob's check took {slow_took:?}"
    );
    // Once checked, bob's login is remembered by the shard.
    let started = Instant::now();
    let (head, _) = get(&srv, "/healthz", Some(&basic("bob", "bob pass")));
    assert_eq!(status(&head), 200);
    assert!(
        started.elapsed() < slow_took / 2,
        "{:?} vs {slow_took:?}",
        started.elapsed()
    );
}

/// `openssl genpkey` for `algorithm`: (private PEM, public PEM).
fn keypair(fx: &Fixture, algorithm: &str) -> (Vec<u8>, std::path::PathBuf) {
    let private = fx.path(&format!("{algorithm}.key"));
    let public = fx.path(&format!("{algorithm}.pub"));
    let mut gen = Command::new("openssl");
    gen.args(["genpkey", "-algorithm", algorithm, "-out"])
        .arg(&private);
    if algorithm == "RSA" {
        gen.args(["-pkeyopt", "rsa_keygen_bits:2048"]);
    }
    assert!(gen.output().unwrap().status.success());
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(out.status.success());
    (std::fs::read(&private).unwrap(), public)
}

#[test]
fn jwts_are_checked_for_signature_time_issuer_and_audience() {
    if !have("openssl", &["version"]) {
        return missing("openssl");
    }
    let fx = Fixture::new("auth-jwt");
    let secret = b"0123456789abcdef0123456789abcdef-edge";
    let hs = fx.file("hs.secret", secret);
    let (rsa_private, rsa_public) = keypair(&fx, "RSA");
    let (ed_private, ed_public) = keypair(&fx, "ED25519");
    let srv = Server::app(config_from(&[
        "--auth",
        &format!("/api=jwt:{}", hs.display()),
        "--auth",
        &format!("/api/echo=jwt:{}", rsa_public.display()),
        "--auth",
        &format!("/healthz=jwt:{}", ed_public.display()),
        "--jwt-issuer",
        "https://issuer.example",
        "--jwt-audience",
        "edge",
    ]));
    let t = now();
    let claims = |exp: u64| json!({"sub": "u1", "iss": "https://issuer.example", "aud": ["x", "edge"], "exp": exp});
    let hs256 = |c: &serde_json::Value| {
        encode(
            &Header::new(Algorithm::HS256),
            c,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    };
    let bearer = |token: &str| format!("Bearer {token}");
    let check = |path: &str, token: &str, want: u16, why: &str| {
        let (head, _) = get(&srv, path, Some(&bearer(token)));
        assert_eq!(status(&head), want, "{why}: {head}");
        head
    };
    check("/api/stats", &hs256(&claims(t + 300)), 200, "valid HS256");
    check(
        "/api/stats",
        &hs256(&claims(t - 10)),
        200,
        "expired within the leeway",
    );
    let head = check("/api/stats", &hs256(&claims(t - 120)), 401, "expired");
    assert_eq!(
        header(&head, "www-authenticate"),
        Some("Bearer realm=\"edgeshard\", error=\"invalid_token\"")
    );
    assert_eq!(header(&head, "x-auth-error"), Some("token expired"));
    let mut early = claims(t + 300);
    early["nbf"] = json!(t + 120);
    check("/api/stats", &hs256(&early), 401, "not valid yet");
    let mut no_exp = claims(t + 300);
    no_exp.as_object_mut().unwrap().remove("exp");
    check("/api/stats", &hs256(&no_exp), 401, "no exp");
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(t + 300),
        &EncodingKey::from_secret(b"another secret of at least 32 bytes!!").unwrap(),
    )
    .unwrap();
    check("/api/stats", &forged, 401, "bad signature");
    check("/api/stats", "not.a.jwt", 401, "garbage");
    let mut other_aud = claims(t + 300);
    other_aud["aud"] = json!("elsewhere");
    let head = check("/api/stats", &hs256(&other_aud), 403, "wrong audience");
    assert_eq!(header(&head, "www-authenticate"), None);
    let mut other_iss = claims(t + 300);
    other_iss["iss"] = json!("https://evil.example");
    check("/api/stats", &hs256(&other_iss), 403, "wrong issuer");

    // RS256 under /api/echo: its own key, and only RS256.
    let rs = encode(
        &Header::new(Algorithm::RS256),
        &claims(t + 300),
        &EncodingKey::from_rsa_pem(&rsa_private).unwrap(),
    )
    .unwrap();
    check(
        "/api/echo",
        &rs,
        405,
        "valid RS256, then routed (GET on a POST route)",
    );
    check(
        "/api/echo",
        &hs256(&claims(t + 300)),
        401,
        "HS256 where RS256 is the key's",
    );
    // The classic confusion: HS256 keyed with the RSA public key's PEM.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims(t + 300),
        &EncodingKey::from_secret(&std::fs::read(&rsa_public).unwrap()).unwrap(),
    )
    .unwrap();
    check("/api/echo", &confused, 401, "alg confusion");

    // EdDSA under /healthz.
    let ed = encode(
        &Header::new(Algorithm::EdDSA),
        &claims(t + 300),
        &EncodingKey::from_ed_pem(&ed_private).unwrap(),
    )
    .unwrap();
    check("/healthz", &ed, 200, "valid EdDSA");
    check("/healthz", &rs, 401, "RS256 where EdDSA is the key's");
}

#[test]
fn handlers_see_the_claims() {
    use edgeshard::middleware::{Auth, AuthConfig, AuthRule, AuthSettings, HandlerExt, JwtClaims};
    let fx = Fixture::new("auth-claims");
    let secret = b"0123456789abcdef0123456789abcdef";
    let key = fx.file("k", secret);
    let settings = AuthSettings {
        rules: vec![AuthRule::parse(&format!("/=jwt:{}", key.display())).unwrap()],
        ..AuthSettings::default()
    };
    let loaded = AuthConfig::load(&settings).unwrap().unwrap();
    let srv = TestServer::with_handler(one_shard(), move |_| {
        let who = |req: edgeshard::Request| async move {
            let sub = req
                .extensions()
                .get::<JwtClaims>()
                .and_then(|c| c.0.get("sub").and_then(|s| s.as_str()).map(str::to_string))
                .unwrap_or_default();
            edgeshard::Response::text(sub)
        };
        who.layer(Auth::new(loaded.clone()))
    });
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "user-42", "exp": now() + 60}),
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap();
    let mut s = srv.connect();
    write!(
        s,
        "GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let (head, body) = split(&read_response(&mut s));
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(body, b"user-42");
}

#[test]
fn unusable_auth_files_stop_the_start_naming_file_and_line() {
    let fx = Fixture::new("auth-bad");
    let apr1 = fx.file("apr1", b"# comment\nbob:$apr1$xyz$abcdefghijklmnopqrstuv\n");
    let short = fx.file("short", b"too short\n");
    let private = fx.file(
        "private.pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let empty = fx.file("empty", b"\n# nothing\n");
    for (rule, want) in [
        (
            format!("/=basic:{}", apr1.display()),
            format!(
                "--auth: {}:2: user bob: unsupported hash scheme ($apr1$): use bcrypt (htpasswd -B) or argon2id",
                apr1.display()
            ),
        ),
        (
            format!("/=jwt:{}", short.display()),
            format!("--auth: {}: an HS256 secret must be at least 32 bytes", short.display()),
        ),
        (
            format!("/=jwt:{}", private.display()),
            format!(
                "--auth: {}: not a public key (a private key or certificate?): give the PEM public key",
                private.display()
            ),
        ),
        (
            format!("/=bearer:{}", empty.display()),
            format!("--auth: {}: no tokens", empty.display()),
        ),
        (
            "/=basic:/no/such/file".to_string(),
            "--auth: /no/such/file: No such file or directory (os error 2)".to_string(),
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_edgeshard"))
            .args(["--listen", "127.0.0.1:0", "--auth", &rule])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{rule}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end(), format!("edgeshard: {want}"), "{rule}");
    }
}
