//! The embedded demo site in a real browser: headless Chromium loads the
//! page from a running server (two shards), the test checks the rendered
//! DOM shows the stats the page fetched from `/api/stats`, then loads the
//! page again with the same profile and checks the browser revalidated
//! its cached files and got 304s.
//!
//! `.ci/run` installs Debian's `chromium`; elsewhere the test is skipped
//! with a message when it is missing (and fails when `CI` is set).

use crate::common;

use std::num::NonZeroUsize;
use std::process::Command;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgeshard::{Config, Handler, Request};

/// (path, status, whether the request carried a validator) for each request.
type Log = Arc<Mutex<Vec<(String, u16, bool)>>>;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|p| common::runs(p, &["--version"]))
}

/// Loads `url` in headless Chromium with `profile`, lets its scripts run
/// for up to 3 s of virtual time, and returns the serialized DOM.
fn dump_dom(browser: &str, profile: &std::path::Path, url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=3000", "--dump-dom", url])
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom.find(&open).unwrap_or_else(|| panic!("#{id} in {dom}")) + open.len();
    let len = dom[start..].find('<').unwrap();
    &dom[start..start + len]
}

#[test]
fn chromium_renders_live_stats_and_revalidates_with_304s() {
    let Some(browser) = chromium() else {
        common::missing("chromium");
        return;
    };
    let log: Log = Arc::default();
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        shards: NonZeroUsize::new(2),
        ..Config::default()
    };
    let shard_log = log.clone();
    let server = edgeshard::start(config, move |ctx| {
        let app = Rc::new(edgeshard::builtin::app(ctx));
        let log = shard_log.clone();
        move |req: Request| {
            let (app, log) = (app.clone(), log.clone());
            async move {
                let path = req.path().to_string();
                let validated = req.header("if-none-match").is_some()
                    || req.header("if-modified-since").is_some();
                let resp = app.call(req).await;
                log.lock()
                    .unwrap()
                    .push((path, resp.status().as_u16(), validated));
                resp
            }
        }
    })
    .expect("server starts");
    let url = format!("http://{}/", server.local_addrs()[0]);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let profile =
        std::env::temp_dir().join(format!("edgeshard-chromium-{}-{nanos}", std::process::id()));

    // First load: everything fetched, the stats rendered from the API.
    let dom = dump_dom(browser, &profile, &url);
    let first: Vec<_> = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(text_of(&dom, "status"), "live", "{dom}");
    assert_eq!(
        text_of(&dom, "shards-total"),
        "2",
        "both shards answered the gather"
    );
    assert_eq!(dom.matches("<tr data-shard=").count(), 2, "{dom}");
    let total: u64 = text_of(&dom, "total-requests").parse().unwrap();
    let stats_calls = first.iter().filter(|(p, _, _)| p == "/api/stats").count();
    assert!(stats_calls >= 1, "the page fetched /api/stats: {first:?}");
    // The total the page shows counts requests the server really answered:
    // at least the page and its assets, at most what it had served when the
    // last stats response was built.
    assert!(
        total >= 4 && total <= first.len() as u64,
        "{total} vs {first:?}"
    );
    for asset in ["/", "/style.css", "/app.js", "/logo.svg"] {
        assert!(
            first.iter().any(|(p, s, _)| p == asset && *s == 200),
            "{asset} served on the first load: {first:?}"
        );
    }

    // Second load, same profile: the cached files are revalidated (no-cache)
    // and come back 304.
    std::thread::sleep(Duration::from_millis(200));
    let dom = dump_dom(browser, &profile, &url);
    let second: Vec<_> = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(text_of(&dom, "status"), "live");
    for asset in ["/", "/style.css", "/app.js"] {
        assert!(
            second.iter().any(|(p, s, v)| p == asset && *s == 304 && *v),
            "{asset} revalidated with a 304 on the second load: {second:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&profile);
    server.shutdown();
    server.join().expect("clean shutdown");
}
