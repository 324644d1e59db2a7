//! Property tests: on random route sets and requests, the compiled table
//! and the runtime trie make the same decision with the same captures, and
//! the route they pick is the one a brute-force oracle picks (try every
//! pattern, keep the most specific, host patterns first).

use edgeshard_routing::{
    build, decide, decide_knowing, is_clean, Decision, Matcher, Params, Pattern, Relation,
    RuntimeTrie,
};
use proptest::prelude::*;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c", "%61"]).prop_map(str::to_string),
        2 => Just("{w}".to_string()),
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "", "GET ", "HEAD ", "POST "]),
        prop::sample::select(vec!["", "", "", "h.com"]),
        prop::collection::vec(segment(), 0..4),
        prop::sample::select(vec!["", "/", "/{$}", "/{rest...}"]),
    )
        .prop_map(|(m, h, segs, end)| {
            // Wildcard names must differ within a pattern.
            let segs: Vec<String> = segs
                .into_iter()
                .enumerate()
                .map(|(i, s)| if s == "{w}" { format!("{{w{i}}}") } else { s })
                .collect();
            let mut path = String::new();
            for s in &segs {
                path.push('/');
                path.push_str(s);
            }
            match end {
                "" if path.is_empty() => path.push('/'),
                "/{$}" if path.is_empty() => path.push_str("/{$}"),
                _ => path.push_str(end),
            }
            format!("{m}{h}{path}")
        })
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "c", "d", "%61", "a%2Fb"]),
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(segs, slash)| {
            let mut p: String = segs.iter().map(|s| format!("/{s}")).collect();
            if slash || p.is_empty() {
                p.push('/');
            }
            p
        })
}

/// Registers like Go does: a pattern that conflicts with an earlier one is refused.
fn register(candidates: &[String]) -> Vec<Pattern> {
    let mut kept: Vec<Pattern> = Vec::new();
    for c in candidates {
        let Ok(p) = Pattern::parse(c) else { continue };
        if kept.iter().all(|k| !k.conflicts_with(&p)) {
            kept.push(p);
        }
    }
    kept
}

/// The oracle: every matching pattern, host-specific ones first, most specific.
fn oracle(patterns: &[Pattern], host: Option<&str>, method: &str, path: &str) -> Option<usize> {
    let matching: Vec<usize> = (0..patterns.len())
        .filter(|&i| patterns[i].matches(host, method, path))
        .collect();
    let with_host: Vec<usize> = matching
        .iter()
        .copied()
        .filter(|&i| patterns[i].host.is_some())
        .collect();
    let pool = if with_host.is_empty() {
        matching
    } else {
        with_host
    };
    pool.iter().copied().find(|&i| {
        pool.iter()
            .all(|&j| j == i || patterns[i].compare(&patterns[j]) == Relation::MoreSpecific)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn table_trie_and_oracle_agree(
        candidates in prop::collection::vec(pattern(), 1..12),
        path in request_path(),
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "PUT"]),
        host in prop::sample::select(vec![None, Some("h.com"), Some("H.COM"), Some("x.org")]),
        query in prop::sample::select(vec![None, Some("q=1")]),
    ) {
        let patterns = register(&candidates);
        let named: Vec<(Pattern, String)> = patterns.iter().map(|p| (p.clone(), "h".to_string())).collect();
        let table = build(&named).expect("a conflict-free set builds");
        let mut trie = RuntimeTrie::new();
        for p in &patterns {
            trie.insert(&p.text, "h").expect("a conflict-free set inserts");
        }

        let (mut p1, mut p2) = (Params::new(), Params::new());
        let d1 = decide(&table, host, method, &path, query, &mut p1);
        let d2 = decide(&trie, host, method, &path, query, &mut p2);
        prop_assert_eq!(&d1, &d2, "patterns {:?}", candidates);
        if let Decision::Route(_) = d1 {
            let caps = |p: &Params| (0..p.len()).map(|i| path[p.get(i).unwrap()].to_string()).collect::<Vec<_>>();
            prop_assert_eq!(caps(&p1), caps(&p2));
        }

        // The raw lookup agrees with the brute-force oracle on clean paths,
        // and being told a path is clean changes no decision.
        if is_clean(&path) {
            let mut p4 = Params::new();
            prop_assert_eq!(&decide_knowing(&table, host, method, &path, query, &mut p4, true), &d1);
            let mut p3 = Params::new();
            let found = table.find(host, method, &path, false, &mut p3).map(|r| r as usize);
            prop_assert_eq!(found, oracle(&patterns, host, method, &path), "patterns {:?}", candidates);
        }
    }
}
