//! Sizes and durations as people write them (`16KiB`, `250ms`), read and
//! shown the same way, so a default in the help text reads like a value
//! one would type.

use std::time::Duration;

/// Parses a size: a byte count with an optional K/KiB/M/MiB/G/GiB suffix
/// (binary multiples; `KB`, `MB` and `GB` are read as binary too).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (n, unit): (usize, _) = number_and_unit(s, "a size (try 16KiB or 1048576)")?;
    let mult: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use K, KiB, M, MiB, G, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration: a number with an optional ms/s/m/h suffix (seconds if none).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit): (u64, _) = number_and_unit(s, "a duration (try 10s or 500ms)")?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    Ok(d)
}

/// The leading digits of `s` as a number, and the unit after them
/// (trimmed); `what` says what `s` should have been.
fn number_and_unit<'s, T: std::str::FromStr>(
    s: &'s str,
    what: &str,
) -> Result<(T, &'s str), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{s}` is not {what}"));
    }
    let n = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    Ok((n, unit.trim()))
}

/// A size as [`parse_size`] reads it, in the largest whole binary unit:
/// `16KiB`, `1MiB`, `1000`.
pub fn show_size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n != 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A duration as [`parse_duration`] reads it, in the largest whole unit:
/// `75s`, `2m`, `250ms`.
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8KiB"), Ok(8192));
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn what_is_shown_reads_back_as_the_same_value() {
        for n in [0, 1, 1000, 1024, 16 * 1024, 1 << 20, 3 << 30, 1536] {
            assert_eq!(parse_size(&show_size(n)), Ok(n as usize), "{n}");
        }
        assert_eq!(show_size(16 * 1024), "16KiB");
        assert_eq!(show_size(1536), "1536");
        for ms in [0, 250, 1000, 10_000, 75_000, 120_000, 3_600_000, 90_500] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&show_duration(d)), Ok(d), "{ms}");
        }
        assert_eq!(show_duration(Duration::from_secs(75)), "75s");
        assert_eq!(show_duration(Duration::from_secs(120)), "2m");
    }
}
