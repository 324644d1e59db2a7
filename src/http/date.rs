//! The `Date` header value, formatted at most once per second per shard.
//!
//! Responses copy the cached text; the clock is read once per write of
//! response heads (and by the shard's tick), not per response. Before a
//! write, [`DateMarks::settle`] reads it, and if the second has turned
//! since the heads waiting in the buffer were encoded, rewrites their
//! Dates in place: no response carries a Date earlier than the second in
//! which its bytes leave.

use std::cell::Cell;

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

    /// The date text as of the last [`DateCache::refresh`]: no clock read.
    #[inline]
    pub fn get(&self) -> [u8; DATE_LEN] {
        self.text.get()
    }

    /// The second (since the Unix epoch) the text shows.
    #[inline]
    pub fn secs(&self) -> u64 {
        self.secs.get()
    }

    /// Reads the clock and reformats if the second has changed; returns
    /// the second. Called before heads are written and by the shard's tick.
    pub fn refresh(&self) -> u64 {
        let now = unix_now();
        if now != self.secs.get() {
            self.secs.set(now);
            self.text.set(format_imf_fixdate(now));
        }
        now
    }
}

/// Where the Dates of the response heads waiting in a write buffer are,
/// and the oldest second they show.
#[derive(Debug, Default)]
pub struct DateMarks {
    at: [u32; DateMarks::CAPACITY],
    len: u8,
    oldest: u64,
}

impl DateMarks {
    /// Heads one buffer may hold before it must be sent.
    pub const CAPACITY: usize = 16;

    /// A Date showing second `secs` was written at `offset` in the buffer.
    #[inline]
    pub fn mark(&mut self, offset: usize, secs: u64) {
        debug_assert!(!self.is_full(), "the buffer is sent when full");
        // (Full, in a release build: this Date is left as it is.)
        let Some(slot) = self.at.get_mut(self.len as usize) else {
            return;
        };
        *slot = offset as u32;
        if self.len == 0 || secs < self.oldest {
            self.oldest = secs;
        }
        self.len += 1;
    }

    /// No more heads may be marked: send the buffer first.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len as usize == Self::CAPACITY
    }

    /// Just before `buf` is sent: reads the clock, and if the second has
    /// turned since a marked Date was made, brings them all up to it.
    /// Forgets the marks (the buffer is about to be emptied).
    pub fn settle(&mut self, buf: &mut [u8], cache: &DateCache) {
        if self.len == 0 {
            return;
        }
        if cache.refresh() > self.oldest {
            let text = cache.get();
            for &at in &self.at[..self.len as usize] {
                let at = at as usize;
                buf[at..at + DATE_LEN].copy_from_slice(&text);
            }
        }
        self.len = 0;
    }
}

/// Seconds since the Unix epoch (`CLOCK_REALTIME` through the vDSO;
/// cheaper than `SystemTime`'s conversions).
fn unix_now() -> u64 {
    crate::sys::unix_secs()
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

/// A second since the Unix epoch as UTC calendar fields: (year, month
/// 1–12, day 1–31, hour, minute, second). For log timestamps.
pub fn utc_fields(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let rem = (secs % 86_400) as u32;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    (year, month, day, rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn two_digits(dst: &mut [u8], v: u64) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) into seconds since the Unix
/// epoch: the IMF-fixdate senders must use, and the obsolete RFC 850 and
/// asctime forms recipients must still accept. `None` for anything else
/// (a conditional with an invalid date is then ignored, as §13.1.3 says).
pub fn parse_http_date(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    let mut it = s.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let first = it.next()?;
    let (day, month, year, time) = if first.ends_with(b",") && first.len() == 4 {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        let (d, m, y, t, gmt) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        if gmt != b"GMT" || d.len() != 2 || y.len() != 4 {
            return None;
        }
        (num(d)?, month_number(m)?, num(y)?, t)
    } else if first.ends_with(b",") {
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        let (dmy, t, gmt) = (it.next()?, it.next()?, it.next()?);
        let mut parts = dmy.split(|&b| b == b'-');
        let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
        if gmt != b"GMT" || parts.next().is_some() || d.len() != 2 || y.len() != 2 {
            return None;
        }
        // §5.6.7: a two-digit year more than 50 years in the future is in the past century.
        let y = num(y)?;
        let year = if y >= 70 { 1900 + y } else { 2000 + y };
        (num(d)?, month_number(m)?, year, t)
    } else {
        // asctime: Sun Nov  6 08:49:37 1994
        let (m, d, t, y) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if y.len() != 4 {
            return None;
        }
        (num(d)?, month_number(m)?, num(y)?, t)
    };
    if it.next().is_some() || time.len() != 8 || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (hh, mm, ss) = (num(&time[0..2])?, num(&time[3..5])?, num(&time[6..8])?);
    if !(1..=31).contains(&day) || year < 1970 || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(year as i64, month, day as u32);
    Some(days as u64 * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn num(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn month_number(m: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|x| &x[..] == m)
        .map(|i| i as u32 + 1)
}

/// (year, month 1–12, day 1–31) → days since 1970-01-01, the inverse of
/// [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn settling_rewrites_the_marked_dates_only_when_the_second_turned() {
        let cache = DateCache::new();
        let now = cache.refresh();
        let old = format_imf_fixdate(now - 5);
        let mut buf = Vec::new();
        let mut marks = DateMarks::default();
        for body in [&b"one"[..], b"two"] {
            buf.extend_from_slice(b"Date: ");
            marks.mark(buf.len(), now - 5);
            buf.extend_from_slice(&old);
            buf.extend_from_slice(b"\r\n\r\n");
            buf.extend_from_slice(body);
            buf.extend_from_slice(&old);
        }
        marks.settle(&mut buf, &cache);
        let fresh = cache.get();
        let at_one = 6;
        let at_two = 6 + DATE_LEN + 4 + 3 + DATE_LEN + 6;
        assert_eq!(buf[at_one..at_one + DATE_LEN], fresh);
        assert_eq!(buf[at_two..at_two + DATE_LEN], fresh);
        assert_ne!(fresh, old);
        // Body bytes that look like a date are not touched.
        assert_eq!(buf[at_two - 6 - DATE_LEN..at_two - 6], old);
        assert!(buf.ends_with(&old));

        // Marks are forgotten once settled; a current Date is left alone.
        let mut again = buf.clone();
        marks.settle(&mut again, &cache);
        assert_eq!(again, buf);
        let mut current = b"Date: ".to_vec();
        current.extend_from_slice(&format_imf_fixdate(now + 3600));
        marks.mark(6, now + 3600);
        let before = current.clone();
        marks.settle(&mut current, &cache);
        assert_eq!(current, before, "a Date ahead of the clock is not set back");
    }

    #[test]
    fn marks_fill_up() {
        let mut marks = DateMarks::default();
        for i in 0..DateMarks::CAPACITY {
            assert!(!marks.is_full());
            marks.mark(i, 1);
        }
        assert!(marks.is_full());
        marks.settle(&mut [0; 64], &DateCache::new());
        assert!(!marks.is_full());
    }

    #[test]
    fn parses_the_three_http_date_forms() {
        let t = Some(784_111_777);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), t);
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), t);
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), t);
        assert_eq!(
            parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        for secs in [0, 951_782_400, 1_798_761_599, 4_102_444_800] {
            assert_eq!(parse_http_date(&format_imf_fixdate(secs)), Some(secs));
        }
        for bad in [
            &b""[..],
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 PST",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 32 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
