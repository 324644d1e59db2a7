//! The examples from Go's `net/http.ServeMux` documentation, run through
//! both the compiled table and the runtime trie.

use edgeshard_routing::{build, decide, Decision, Params, Pattern, RuntimeTrie, Table};

fn both(patterns: &[&str]) -> (Table<'static>, RuntimeTrie) {
    let parsed: Vec<(Pattern, String)> = patterns
        .iter()
        .map(|p| (Pattern::parse(p).unwrap(), format!("h{}", p.len())))
        .collect();
    let table = build(&parsed).unwrap_or_else(|e| panic!("{e}"));
    let mut trie = RuntimeTrie::new();
    for p in patterns {
        trie.insert(p, "h").unwrap();
    }
    (table, trie)
}

/// Decides with both; asserts they agree; returns the decision with the
/// matched pattern text (for routes) and the captures as strings.
fn route(
    patterns: &[&str],
    host: Option<&str>,
    method: &str,
    target: &str,
) -> (String, Vec<String>) {
    let (table, trie) = both(patterns);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut p1 = Params::new();
    let mut p2 = Params::new();
    let d1 = decide(&table, host, method, path, query, &mut p1);
    let d2 = decide(&trie, host, method, path, query, &mut p2);
    assert_eq!(
        d1, d2,
        "table and runtime trie disagree on {method} {target}"
    );
    let caps = |p: &Params| {
        (0..p.len())
            .map(|i| path[p.get(i).unwrap()].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(caps(&p1), caps(&p2));
    let what = match d1 {
        Decision::Route(r) => patterns[r as usize].to_string(),
        Decision::Redirect(to) => format!("redirect {to}"),
        Decision::MethodNotAllowed(allow) => format!("405 {allow}"),
        Decision::NotFound => "404".to_string(),
    };
    (what, caps(&p1))
}

fn pat(patterns: &[&str], host: Option<&str>, method: &str, target: &str) -> String {
    route(patterns, host, method, target).0
}

#[test]
fn index_html_matches_any_host_and_method() {
    let ps = ["/index.html"];
    assert_eq!(
        pat(&ps, Some("x.org"), "DELETE", "/index.html"),
        "/index.html"
    );
    assert_eq!(pat(&ps, None, "GET", "/index.htm"), "404");
}

#[test]
fn get_static_subtree() {
    let ps = ["GET /static/"];
    assert_eq!(
        pat(&ps, None, "GET", "/static/css/site.css"),
        "GET /static/"
    );
    assert_eq!(pat(&ps, None, "HEAD", "/static/"), "GET /static/");
    assert_eq!(pat(&ps, None, "POST", "/static/x"), "405 GET, HEAD");
    assert_eq!(pat(&ps, None, "GET", "/static"), "redirect /static/");
    // Go's matchingMethods also tries the path with a slash added.
    assert_eq!(pat(&ps, None, "PUT", "/static"), "405 GET, HEAD");
    assert_eq!(pat(&ps, None, "PUT", "/other"), "404");
}

#[test]
fn the_405_counts_methods_of_the_slashed_path() {
    let ps = ["GET /r/", "POST /r/{$}", "DELETE /r", "PUT /s/{x...}"];
    assert_eq!(pat(&ps, None, "PUT", "/r"), "405 DELETE, GET, HEAD, POST");
    assert_eq!(pat(&ps, None, "PATCH", "/r/"), "405 GET, HEAD, POST");
    assert_eq!(pat(&ps, None, "GET", "/s"), "405 PUT");
    assert_eq!(pat(&ps, None, "PUT", "/s"), "redirect /s/");
}

#[test]
fn host_patterns_and_exact_root() {
    let ps = ["example.com/", "example.com/{$}", "/"];
    assert_eq!(pat(&ps, Some("example.com"), "GET", "/"), "example.com/{$}");
    assert_eq!(pat(&ps, Some("EXAMPLE.COM"), "GET", "/x"), "example.com/");
    assert_eq!(pat(&ps, Some("other.org"), "GET", "/"), "/");
    assert_eq!(pat(&ps, None, "GET", "/x"), "/");
}

#[test]
fn bucket_and_object_name() {
    let ps = ["/b/{bucket}/o/{objectname...}"];
    let (what, caps) = route(&ps, None, "GET", "/b/photos/o/2024/summer/beach.jpg");
    assert_eq!(what, ps[0]);
    assert_eq!(caps, ["photos", "2024/summer/beach.jpg"]);
    let (_, caps) = route(&ps, None, "GET", "/b/photos/o/");
    assert_eq!(caps, ["photos", ""]);
    assert_eq!(
        pat(&ps, None, "GET", "/b/photos/o"),
        "redirect /b/photos/o/"
    );
}

#[test]
fn most_specific_wins() {
    let ps = ["/posts/{id}", "/posts/latest"];
    assert_eq!(pat(&ps, None, "GET", "/posts/latest"), "/posts/latest");
    assert_eq!(
        route(&ps, None, "GET", "/posts/42"),
        ("/posts/{id}".to_string(), vec!["42".to_string()])
    );
    let ps = ["/images/", "/images/thumbnails/"];
    assert_eq!(
        pat(&ps, None, "GET", "/images/thumbnails/a.png"),
        "/images/thumbnails/"
    );
    assert_eq!(pat(&ps, None, "GET", "/images/a.png"), "/images/");
    let ps = ["/foo", "POST /foo"];
    assert_eq!(pat(&ps, None, "POST", "/foo"), "POST /foo");
    assert_eq!(pat(&ps, None, "PUT", "/foo"), "/foo");
}

#[test]
fn get_matches_head_and_405_lists_allowed_methods() {
    let ps = [
        "GET /items/{id}",
        "DELETE /items/{id}",
        "PUT /items/special",
    ];
    assert_eq!(pat(&ps, None, "HEAD", "/items/7"), "GET /items/{id}");
    assert_eq!(pat(&ps, None, "POST", "/items/7"), "405 DELETE, GET, HEAD");
    assert_eq!(
        pat(&ps, None, "POST", "/items/special"),
        "405 DELETE, GET, HEAD, PUT"
    );
    assert_eq!(pat(&ps, None, "GET", "/nothing"), "404");
}

#[test]
fn conflicts_from_the_docs() {
    for (a, b) in [
        ("GET /", "/index.html"),
        ("/a/{x}", "/{y}/b"),
        ("/a/{x...}", "/a/"),
        ("HEAD /{x}", "GET /a"),
    ] {
        let parsed = vec![
            (Pattern::parse(a).unwrap(), "a".to_string()),
            (Pattern::parse(b).unwrap(), "b".to_string()),
        ];
        assert!(build(&parsed).is_err(), "{a} and {b} must conflict");
        let mut trie = RuntimeTrie::new();
        trie.insert(a, "a").unwrap();
        assert!(
            trie.insert(b, "b").is_err(),
            "{a} and {b} must conflict at run time too"
        );
    }
    let err = build(&[
        (Pattern::parse("GET /").unwrap(), "a".into()),
        (Pattern::parse("/index.html").unwrap(), "b".into()),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "route \"/index.html\" conflicts with route \"GET /\": both match GET /index.html and neither is more specific"
    );
}

#[test]
fn trailing_slash_redirect_can_be_overridden() {
    let ps = ["/images/", "/images"];
    assert_eq!(pat(&ps, None, "GET", "/images"), "/images");
    let ps = ["/", "/dir/"];
    assert_eq!(pat(&ps, None, "GET", "/dir"), "redirect /dir/");
    assert_eq!(pat(&ps, None, "GET", "/dir?x=1&y"), "redirect /dir/?x=1&y");
    assert_eq!(pat(&ps, None, "GET", "/other"), "/");
}

#[test]
fn unclean_paths_redirect_to_their_clean_form() {
    let ps = ["/a/b", "/c/"];
    assert_eq!(pat(&ps, None, "GET", "/a//b"), "redirect /a/b");
    assert_eq!(
        pat(&ps, None, "GET", "/x/../a/./b?q=1"),
        "redirect /a/b?q=1"
    );
    assert_eq!(pat(&ps, None, "POST", "/c"), "redirect /c/");
    assert_eq!(pat(&ps, None, "GET", "//c"), "redirect /c/");
    assert_eq!(pat(&ps, None, "GET", "/nope/.."), "redirect /");
}

#[test]
fn encoded_slash_stays_inside_its_segment() {
    let ps = ["/files/{name}", "/files/a/b"];
    let (what, caps) = route(&ps, None, "GET", "/files/a%2Fb");
    assert_eq!(what, "/files/{name}");
    assert_eq!(caps, ["a%2Fb"]);
    assert_eq!(pat(&ps, None, "GET", "/files/a/b"), "/files/a/b");
    // Literals match percent-encoded request segments.
    assert_eq!(
        pat(&["/caf%C3%A9"], None, "GET", "/caf%c3%a9"),
        "/caf%C3%A9"
    );
}

#[test]
fn exact_end_marker() {
    let ps = ["/a/{$}", "/a/{x}"];
    assert_eq!(pat(&ps, None, "GET", "/a/"), "/a/{$}");
    assert_eq!(pat(&ps, None, "GET", "/a/q"), "/a/{x}");
    assert_eq!(pat(&ps, None, "GET", "/a/q/r"), "404");
    assert_eq!(pat(&ps, None, "GET", "/a"), "redirect /a/");
}

#[test]
fn paths_past_the_capture_offset_limit_match_nothing() {
    use edgeshard_routing::MAX_PATH;
    let ps = ["/f/{rest...}", "GET /g/{x}"];
    // At the limit the capture fits and both matchers agree on it.
    let at = format!("/f/{}", "a".repeat(MAX_PATH - 3));
    let (what, caps) = route(&ps, None, "GET", &at);
    assert_eq!(what, "/f/{rest...}");
    assert_eq!(caps[0].len(), MAX_PATH - 3);
    // One byte more: no route, not a capture cut short; a 404, not a 405.
    let past = format!("{at}a");
    assert_eq!(route(&ps, None, "GET", &past), ("404".to_string(), vec![]));
    let past_g = format!("/g/{}", "a".repeat(MAX_PATH));
    assert_eq!(pat(&ps, None, "POST", &past_g), "404");
}
