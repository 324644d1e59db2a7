//! The `routes!` macro end to end: handlers reached through the table it
//! emitted, params, redirects, 405s, state, and agreement with the runtime
//! trie on a grid of requests.

use std::cell::Cell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use edgeshard::config::Limits;
use edgeshard::internals::parse_head;
use edgeshard::route::{decide, HasRoutes, Params, RuntimeTrie};
use edgeshard::{routes, Body, Handler, Request, Response};
use futures_lite::future::block_on;

fn request(raw: &str) -> Request {
    let mut buf = BytesMut::from(raw.as_bytes());
    let head = parse_head(&mut buf, &Limits::default())
        .expect("valid request")
        .expect("complete request");
    Request::new(head, Bytes::new())
}

fn get(router: &impl Handler, method: &str, target: &str, host: &str) -> Response {
    block_on(router.call(request(&format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    ))))
}

fn body(r: &Response) -> String {
    match r.body() {
        Body::Full(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Empty => String::new(),
        Body::Stream(_) => "<stream>".into(),
        Body::File(f) => format!("<file of {} bytes>", f.len()),
        other => format!("<{other:?}>"),
    }
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a [u8]> {
    r.headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

async fn index(_: Request) -> &'static str {
    "index"
}
async fn static_files(req: Request) -> String {
    format!("static {}", req.path())
}
async fn host_root(_: Request) -> &'static str {
    "host root"
}
async fn host_any(_: Request) -> &'static str {
    "host any"
}
async fn object(req: Request) -> String {
    format!(
        "bucket={} object={}",
        req.param("bucket").unwrap_or_default(),
        req.param("objectname").unwrap_or_default()
    )
}
async fn post_by_id(req: Request) -> String {
    format!("post {}", req.param("id").unwrap_or_default())
}
async fn latest(_: Request) -> &'static str {
    "latest"
}
async fn create_item(_: Request) -> &'static str {
    "created"
}
async fn fallback(_: Request) -> &'static str {
    "fallback"
}

fn go_router() -> impl Handler + HasRoutes {
    routes! {
        "/index.html" => index,
        "GET /static/" => static_files,
        "example.com/{$}" => host_root,
        "example.com/" => host_any,
        "/b/{bucket}/o/{objectname...}" => object,
        "/posts/{id}" => post_by_id,
        "/posts/latest" => latest,
        "POST /items/" => create_item,
        "GET /b/{bucket}/{$}" => show,
        "/" => fallback,
    }
}

#[test]
fn go_examples_through_the_macro() {
    let r = go_router();
    assert_eq!(body(&get(&r, "PUT", "/index.html", "x")), "index");
    assert_eq!(
        body(&get(&r, "GET", "/static/css/a.css", "x")),
        "static /static/css/a.css"
    );
    assert_eq!(body(&get(&r, "HEAD", "/static/", "x")), "static /static/");
    assert_eq!(body(&get(&r, "GET", "/", "example.com")), "host root");
    assert_eq!(
        body(&get(&r, "GET", "/anything", "example.com:8080")),
        "host any"
    );
    assert_eq!(body(&get(&r, "GET", "/", "other.org")), "fallback");
    assert_eq!(
        body(&get(&r, "GET", "/b/pics/o/2024/a%20b.jpg", "x")),
        "bucket=pics object=2024/a b.jpg"
    );
    assert_eq!(body(&get(&r, "GET", "/posts/latest", "x")), "latest");
    assert_eq!(body(&get(&r, "GET", "/posts/a%2Fb", "x")), "post a/b");
    // "POST /items/" owns the subtree for POST; other methods fall back to "/".
    assert_eq!(body(&get(&r, "POST", "/items/9", "x")), "created");
    assert_eq!(body(&get(&r, "GET", "/items/9", "x")), "fallback");
}

#[test]
fn redirects_keep_the_query_and_the_method_rule() {
    let r = go_router();
    let resp = get(&r, "GET", "/static?v=2", "x");
    assert_eq!(resp.status().as_u16(), 301);
    assert_eq!(header(&resp, "location"), Some(&b"/static/?v=2"[..]));
    let resp = get(&r, "POST", "/items?x", "x");
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(header(&resp, "location"), Some(&b"/items/?x"[..]));
    let resp = get(&r, "GET", "/posts//latest/../latest", "x");
    assert_eq!(resp.status().as_u16(), 301);
    assert_eq!(header(&resp, "location"), Some(&b"/posts/latest"[..]));
    let resp = get(&r, "DELETE", "/a/./b", "x");
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(header(&resp, "location"), Some(&b"/a/b"[..]));
}

async fn show(_: Request) -> &'static str {
    "show"
}
async fn delete(_: Request) -> &'static str {
    "deleted"
}

#[test]
fn method_not_allowed_lists_allowed_methods() {
    let r = routes! {
        "GET /things/{id}" => show,
        "DELETE /things/{id}" => delete,
    };
    let resp = get(&r, "POST", "/things/1", "x");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(header(&resp, "allow"), Some(&b"DELETE, GET, HEAD"[..]));
    assert_eq!(body(&resp), "405 Method Not Allowed\n");
    let resp = get(&r, "GET", "/nothing", "x");
    assert_eq!(
        (resp.status().as_u16(), body(&resp)),
        (404, "404 Not Found\n".to_string())
    );
}

async fn count(_: Request, hits: Rc<Cell<u64>>) -> String {
    hits.set(hits.get() + 1);
    format!("hit {}", hits.get())
}

#[test]
fn handlers_may_take_the_router_state() {
    let hits = Rc::new(Cell::new(0));
    let r = routes! {
        state = hits.clone();
        "GET /count" => count,
        "GET /index.html" => index,
    };
    assert_eq!(body(&get(&r, "GET", "/count", "x")), "hit 1");
    assert_eq!(body(&get(&r, "GET", "/index.html", "x")), "index");
    assert_eq!(body(&get(&r, "GET", "/count", "x")), "hit 2");
    assert_eq!(hits.get(), 2);
}

#[test]
fn route_table_lists_every_route() {
    let r = routes! {
        "GET /things/{id}" => show,
        "/index.html" => index,
    };
    let table = edgeshard::route::format_routes(r.routes());
    assert_eq!(
        table,
        "METHODS    PATTERN           HANDLER\n\
         GET, HEAD  GET /things/{id}  show\n\
         *          /index.html       index\n"
    );
}

/// The table the macro emitted and a runtime trie built from the same
/// patterns decide every request of a grid the same way.
#[test]
fn compiled_and_runtime_tries_agree_on_a_grid() {
    let r = go_router();
    let mut trie = RuntimeTrie::new();
    for info in r.routes() {
        trie.insert(&info.pattern, &info.handler).unwrap();
    }
    let table = edgeshard::route::table_of(&r);
    let segs = [
        "",
        "index.html",
        "static",
        "b",
        "o",
        "posts",
        "latest",
        "items",
        "x",
        "%62",
    ];
    let mut paths = vec!["/".to_string()];
    for a in segs {
        for b in segs {
            for c in ["", "/", "/o/q", "/z"] {
                paths.push(format!("/{a}/{b}{c}"));
                paths.push(format!("/{a}{c}"));
            }
        }
    }
    let mut checked = 0;
    for path in &paths {
        for method in ["GET", "HEAD", "POST", "PUT"] {
            for host in [None, Some("example.com")] {
                let (mut p1, mut p2) = (Params::new(), Params::new());
                let d1 = decide(table, host, method, path, Some("q"), &mut p1);
                let d2 = decide(&trie, host, method, path, Some("q"), &mut p2);
                assert_eq!(d1, d2, "{method} {path} host {host:?}");
                assert_eq!(p1, p2, "{method} {path} host {host:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 3000);
}

#[test]
fn every_route_reaches_its_own_handler() {
    // Dispatch is a balanced tree of `Either`s split on the route index;
    // an odd count (7: splits of 3 and 4, then 1 and 2) checks its arithmetic.
    async fn nth<const N: usize>(_: Request) -> String {
        format!("r{N}")
    }
    let r = routes! {
        "/r0" => nth::<0>,
        "/r1" => nth::<1>,
        "/r2" => nth::<2>,
        "/r3" => nth::<3>,
        "/r4" => nth::<4>,
        "/r5" => nth::<5>,
        "/r6" => nth::<6>,
    };
    for i in 0..7 {
        assert_eq!(
            body(&get(&r, "GET", &format!("/r{i}"), "x")),
            format!("r{i}")
        );
    }
    let one = routes! { "/only" => nth::<0> };
    assert_eq!(body(&get(&one, "GET", "/only", "x")), "r0");
    assert_eq!(get(&one, "GET", "/other", "x").status().as_u16(), 404);
}

mod scopes {
    //! Middleware and guards on some routes only, inside `routes!`.

    use super::*;
    use edgeshard::middleware::{Middleware, Wait};
    use edgeshard::StatusCode;

    /// Adds `X-Scope: <name>` on the way out.
    struct Stamp(&'static str);

    impl Middleware for Stamp {
        type Carry = ();
        fn on_request(&self, _: &mut Request) -> Result<(), Response> {
            Ok(())
        }
        fn on_response(&self, _: (), resp: Response) -> Response {
            resp.with_header("X-Scope", self.0)
        }
    }

    /// Lets `x-token: t` through at once, `x-token: slow` after a wait,
    /// `x-token: late` not after a wait, and nothing else.
    struct Token;

    impl Middleware for Token {
        type Carry = Option<Wait>;
        fn on_request(&self, req: &mut Request) -> Result<Option<Wait>, Response> {
            let wait = |ok: bool| -> Wait {
                Box::pin(async move {
                    futures_lite::future::yield_now().await;
                    match ok {
                        true => Ok(()),
                        false => Err(Response::error(StatusCode::UNAUTHORIZED, "late no")),
                    }
                })
            };
            match req.header("x-token") {
                Some(b"t") => Ok(None),
                Some(b"slow") => Ok(Some(wait(true))),
                Some(b"late") => Ok(Some(wait(false))),
                _ => Err(Response::error(StatusCode::UNAUTHORIZED, "no token")),
            }
        }
        fn wait(&self, carry: &mut Option<Wait>) -> Option<Wait> {
            carry.take()
        }
    }

    async fn ok(_: Request) -> &'static str {
        "ok"
    }

    fn call(router: &impl Handler, method: &str, path: &str, token: Option<&str>) -> Response {
        let token = token.map_or(String::new(), |t| format!("X-Token: {t}\r\n"));
        block_on(router.call(request(&format!(
            "{method} {path} HTTP/1.1\r\nHost: h\r\n{token}\r\n"
        ))))
    }

    fn stamps(r: &Response) -> Vec<String> {
        r.headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"x-scope"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn a_route_s_or_group_s_scopes_apply_to_those_routes_only() {
        let app = routes! {
            "GET /open" => ok,
            "GET /me" => ok [layer(Token)],
            [layer(Stamp("admin")), layer(Token)] {
                "GET /admin/{$}" => ok,
                "POST /admin/users" => ok [layer(Stamp("inner"))],
                [layer(Stamp("deep"))] {
                    "GET /admin/deep/{x}" => ok,
                },
            },
        };
        let r = call(&app, "GET", "/open", None);
        assert_eq!((r.status().as_u16(), stamps(&r)), (200, vec![]));
        assert_eq!(call(&app, "GET", "/me", None).status().as_u16(), 401);
        assert_eq!(call(&app, "GET", "/me", Some("t")).status().as_u16(), 200);
        assert_eq!(
            call(&app, "GET", "/me", Some("slow")).status().as_u16(),
            200
        );
        // The guard is inside the group's layer: its refusal is stamped.
        let r = call(&app, "GET", "/admin/", None);
        assert_eq!(
            (r.status().as_u16(), stamps(&r)),
            (401, vec!["admin".to_string()])
        );
        let r = call(&app, "GET", "/admin/", Some("slow"));
        assert_eq!((r.status().as_u16(), body(&r)), (200, "ok".to_string()));
        assert_eq!(stamps(&r), ["admin"]);
        // Refused after the wait: the outer layer still sees the answer.
        let r = call(&app, "GET", "/admin/", Some("late"));
        assert_eq!(
            (r.status().as_u16(), stamps(&r)),
            (401, vec!["admin".to_string()])
        );
        // Inner scopes answer first, outer ones last.
        let r = call(&app, "POST", "/admin/users", Some("t"));
        assert_eq!(
            (r.status().as_u16(), stamps(&r)),
            (200, vec!["inner".into(), "admin".into()])
        );
        let r = call(&app, "GET", "/admin/deep/1", Some("t"));
        assert_eq!(stamps(&r), ["deep", "admin"]);
        // Matched routes only: the router's own answers are not guarded.
        let r = call(&app, "GET", "/admin/nope", None);
        assert_eq!((r.status().as_u16(), stamps(&r)), (404, vec![]));
        let r = call(&app, "PUT", "/admin/users", None);
        assert_eq!((r.status().as_u16(), stamps(&r)), (405, vec![]));
        // The table is one table: the groups' routes are in it, in order.
        let patterns: Vec<&str> = app.routes().iter().map(|r| &*r.pattern).collect();
        assert_eq!(
            patterns,
            [
                "GET /open",
                "GET /me",
                "GET /admin/{$}",
                "POST /admin/users",
                "GET /admin/deep/{x}"
            ]
        );
    }
}
