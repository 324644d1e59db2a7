//! The `Date` header value, formatted at most once per second per shard and
//! refreshed by the shard's tick, so responses never read the clock.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// A per-shard cache of the current IMF-fixdate (RFC 9110 §5.6.7).
#[derive(Debug)]
pub struct DateCache {
    secs: Cell<u64>,
    text: Cell<[u8; DATE_LEN]>,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    /// A cache holding the current time.
    pub fn new() -> Self {
        let secs = unix_now();
        DateCache {
            secs: Cell::new(secs),
            text: Cell::new(format_imf_fixdate(secs)),
        }
    }

    /// The date text as of the last [`DateCache::refresh`]: no clock read
    /// on the request path.
    #[inline]
    pub fn get(&self) -> [u8; DATE_LEN] {
        self.text.get()
    }

    /// Reads the clock and reformats if the second has changed. The shard's
    /// tick calls this (at least once a second), so a Date is at most one
    /// tick behind the clock.
    pub fn refresh(&self) {
        let now = unix_now();
        if now != self.secs.get() {
            self.secs.set(now);
            self.text.set(format_imf_fixdate(now));
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub fn format_imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let (year, month, day) = civil_from_days(days as i64);

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut out[5..7], day as u64);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year.clamp(0, 9999) as u64;
    two_digits(&mut out[12..14], y / 100);
    two_digits(&mut out[14..16], y % 100);
    two_digits(&mut out[17..19], hh);
    two_digits(&mut out[20..22], mm);
    two_digits(&mut out[23..25], ss);
    out
}

fn two_digits(dst: &mut [u8], v: u64) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(&format_imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110's example.
        assert_eq!(
            &format_imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // A leap day.
        assert_eq!(
            &format_imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(1_798_761_599),
            b"Thu, 31 Dec 2026 23:59:59 GMT"
        );
    }

    #[test]
    fn cache_returns_a_well_formed_date() {
        let cache = DateCache::new();
        cache.refresh();
        let d = cache.get();
        assert_eq!(&d[25..], b" GMT");
        assert_eq!(d[3], b',');
        // Refreshed just now: this second's date, or the last one's if the
        // second turned in between.
        let now = unix_now();
        assert!(d == format_imf_fixdate(now) || d == format_imf_fixdate(now - 1));
    }
}
