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

/// Headless Chromium, quiet: no network of its own, no sandbox (root in CI).
const HEADLESS: [&str; 8] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
];

/// Loads `url` in headless Chromium with `profile`, lets its scripts run
/// for up to 3 s of virtual time, and returns the serialized DOM.
fn dump_dom(browser: &str, profile: &std::path::Path, url: &str) -> String {
    let out = Command::new(browser)
        .args(HEADLESS)
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

/// A profile directory no other run uses.
fn fresh_profile(name: &str) -> std::path::PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::env::temp_dir().join(format!("edgeshard-{name}-{}-{nanos}", std::process::id()))
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
    let profile = fresh_profile("chromium");

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

/// Headless Chromium on `url` with `extra` arguments (a fresh profile),
/// scripts run for `budget_ms` of virtual time; its stdout.
fn chromium_run(browser: &str, url: &str, budget_ms: u32, extra: &[&str]) -> String {
    let profile = fresh_profile("dash");
    let out = Command::new(browser)
        .args(HEADLESS)
        .arg("--hide-scrollbars")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every value of attribute `name` in `dom`, in order.
fn attrs<'a>(dom: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    dom.match_indices(&key)
        .map(|(at, _)| {
            let rest = &dom[at + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

fn get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    common::read_to_close(&mut s)
}

#[test]
fn the_dashboard_charts_the_servers_own_counters_and_is_screenshotted() {
    let Some(browser) = chromium() else {
        common::missing("chromium");
        return;
    };
    let start = |shards: usize, tweak: &dyn Fn(&mut Config)| {
        let mut config = Config {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            shards: NonZeroUsize::new(shards),
            ..Config::default()
        };
        tweak(&mut config);
        edgeshard::start(config, edgeshard::builtin::app).expect("server starts")
    };
    let upstream = start(1, &|_| {});
    let up = upstream.local_addrs()[0];
    let server = start(2, &|c| {
        c.proxy.mounts = vec![edgeshard::proxy::MountSettings::new(
            "/app/",
            vec![edgeshard::proxy::UpstreamUrl::parse(&format!("http://{up}")).unwrap()],
        )];
    });
    let addr = server.local_addrs()[0];
    for _ in 0..30 {
        assert!(get(addr, "/healthz").starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    for _ in 0..10 {
        assert!(get(addr, "/app/healthz").starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    let url = format!("http://{addr}/");
    let dom = chromium_run(browser, &url, 5000, &["--dump-dom"]);
    // What the server counted, after the page's last scrape.
    let scrape = String::from_utf8(get(addr, "/metrics")).unwrap();
    let counted: u64 = scrape
        .lines()
        .filter(|l| l.starts_with("edgeshard_shard_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();

    assert_eq!(text_of(&dom, "status"), "live", "{dom}");
    let totals: Vec<u64> = attrs(&dom, "data-total")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(totals.len() >= 2, "points on the chart: {totals:?}\n{dom}");
    // Each point is the server's counter when the page scraped it: the
    // shards' counters add up to it, it only grows, it counts the test's
    // 40 requests, and the last is what the server had counted before the
    // page's last few requests (that scrape, the stats beside it).
    for (total, shards) in totals.iter().zip(attrs(&dom, "data-shards")) {
        let sum: u64 = shards.split(',').map(|n| n.parse::<u64>().unwrap()).sum();
        assert_eq!(sum, *total, "shards {shards} against the total");
        assert_eq!(shards.split(',').count(), 2, "two shards");
    }
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
    assert!(totals[0] >= 40, "{totals:?}");
    let last = *totals.last().unwrap();
    assert!(
        last < counted && counted - last <= 6,
        "last point {last}, server counted {counted}"
    );
    // The rate drawn is the counters' difference over the interval.
    let rates: Vec<f64> = attrs(&dom, "data-rate")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        rates.iter().all(|r| *r >= 0.0) && rates.iter().any(|r| *r > 0.0),
        "{rates:?}"
    );
    // The upstream's table row and the status classes.
    let row_at = dom
        .find(&format!("data-upstream=\"{up}\""))
        .unwrap_or_else(|| panic!("the upstream's row in {dom}"));
    let row = &dom[row_at..dom[row_at..].find("</tr>").unwrap() + row_at];
    assert!(
        row.contains("<td>10</td><td>0</td><td>healthy</td>"),
        "{row}"
    );
    let ok_at = dom.find("data-status=\"2xx\"").expect("the 2xx class");
    let ok: u64 = {
        let n = &dom[ok_at..];
        let n = &n[n.find("class=\"n\">").unwrap() + 10..];
        n[..n.find('<').unwrap()].parse().unwrap()
    };
    assert!(ok >= 40, "2xx shown: {ok}");

    // A picture for people to look at: a file of the test run, not the repository.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium_run(
        browser,
        &url,
        4000,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=900,1500",
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
    server.shutdown();
    upstream.shutdown();
}
