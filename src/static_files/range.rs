//! `Range: bytes=…` (RFC 9110 §14): which byte ranges to send, if any.

/// More ranges than this in one request are not honoured (the whole
/// representation is sent instead): nobody needs more, and each costs a
/// multipart header.
pub const MAX_RANGES: usize = 16;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// Send the whole representation (no header, another unit, a malformed
    /// header, or a range set we refuse to amplify).
    Whole,
    /// Send these `(start, end_exclusive)` ranges, in the order asked.
    Some(Vec<(u64, u64)>),
    /// No range is satisfiable: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a representation of `len` bytes.
///
/// Honoured: one or more `a-b`, `a-` and `-n` specs. Served whole instead
/// of amplified: more than [`MAX_RANGES`] ranges, overlapping ranges, or
/// ranges adding up to more than the file (Go's `ServeContent` rule).
/// Malformed headers and other units are ignored (§14.2 allows it).
pub fn parse(value: &[u8], len: u64) -> Ranges {
    let value = value.trim_ascii();
    let Some(specs) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case(b"bytes="))
        .map(|_| &value[6..])
    else {
        return Ranges::Whole;
    };
    let mut out = Vec::new();
    let mut seen = 0;
    // A suffix range of a non-zero length on an empty representation.
    let mut empty_suffix = false;
    for spec in specs.split(|&b| b == b',') {
        let spec = spec.trim_ascii();
        if spec.is_empty() {
            // `bytes=0-1,,2-3`: empty list elements are allowed (§5.6.1).
            continue;
        }
        seen += 1;
        if seen > MAX_RANGES {
            return Ranges::Whole;
        }
        let Some(dash) = spec.iter().position(|&b| b == b'-') else {
            return Ranges::Whole;
        };
        let (first, last) = (&spec[..dash], &spec[dash + 1..]);
        let range = match (number(first), number(last)) {
            // `-n`: the last n bytes.
            (None, Some(n)) if first.is_empty() => {
                if n == 0 || len == 0 {
                    empty_suffix |= n > 0;
                    None
                } else {
                    Some((len.saturating_sub(n), len))
                }
            }
            // `a-`: from a to the end.
            (Some(a), None) if last.is_empty() => (a < len).then_some((a, len)),
            (Some(a), Some(b)) if a <= b => (a < len).then(|| (a, b.saturating_add(1).min(len))),
            _ => return Ranges::Whole,
        };
        out.extend(range);
    }
    if seen == 0 {
        return Ranges::Whole;
    }
    if out.is_empty() {
        // §14.1.2: `-n` (n > 0) is satisfiable even when there are no
        // bytes, but a 206 cannot describe zero of them: the (empty) whole.
        return if empty_suffix {
            Ranges::Whole
        } else {
            Ranges::Unsatisfiable
        };
    }
    let total: u64 = out.iter().map(|(a, b)| b - a).sum();
    if total > len || overlapping(&out) {
        return Ranges::Whole;
    }
    Ranges::Some(out)
}

fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn overlapping(ranges: &[(u64, u64)]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[1].0 < w[0].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str, len: u64) -> Ranges {
        parse(v.as_bytes(), len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(p("bytes=0-9", 100), Ranges::Some(vec![(0, 10)]));
        assert_eq!(p("bytes=90-", 100), Ranges::Some(vec![(90, 100)]));
        assert_eq!(p("bytes=-10", 100), Ranges::Some(vec![(90, 100)]));
        assert_eq!(p("bytes=-500", 100), Ranges::Some(vec![(0, 100)]));
        assert_eq!(p("bytes=95-200", 100), Ranges::Some(vec![(95, 100)]));
        assert_eq!(p("Bytes = 0-0", 100), Ranges::Whole, "no spaces around =");
        assert_eq!(p("BYTES=0-0", 100), Ranges::Some(vec![(0, 1)]));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(p("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=100-200", 100), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=-0", 100), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=0-", 0), Ranges::Unsatisfiable);
        assert_eq!(p("bytes=-0", 0), Ranges::Unsatisfiable);
        // One satisfiable range among unsatisfiable ones is served.
        assert_eq!(p("bytes=200-300, 0-0", 100), Ranges::Some(vec![(0, 1)]));
    }

    #[test]
    fn a_suffix_range_on_an_empty_representation_gets_it_whole() {
        assert_eq!(p("bytes=-5", 0), Ranges::Whole);
        assert_eq!(p("bytes=0-, -1", 0), Ranges::Whole);
        assert_eq!(p("bytes=0-0, 5-", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn malformed_or_other_units_are_ignored() {
        for v in [
            "",
            "items=0-1",
            "bytes=",
            "bytes=abc",
            "bytes=5-1",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(p(v, 100), Ranges::Whole, "{v}");
        }
    }

    #[test]
    fn several_ranges_and_amplification() {
        assert_eq!(
            p("bytes=0-0, 50-59,-1", 100),
            Ranges::Some(vec![(0, 1), (50, 60), (99, 100)])
        );
        // Overlapping: served whole.
        assert_eq!(p("bytes=0-50, 40-60", 100), Ranges::Whole);
        // The same range many times: overlapping, and summing past the file.
        assert_eq!(
            p(&format!("bytes={}", ["0-99"; 3].join(",")), 100),
            Ranges::Whole
        );
        // Too many ranges, even small and disjoint.
        let many: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("{0}-{0}", i * 2))
            .collect();
        assert_eq!(p(&format!("bytes={}", many.join(",")), 1000), Ranges::Whole);
        let ok: Vec<String> = (0..MAX_RANGES).map(|i| format!("{0}-{0}", i * 2)).collect();
        assert!(
            matches!(p(&format!("bytes={}", ok.join(",")), 1000), Ranges::Some(v) if v.len() == MAX_RANGES)
        );
    }
}
