//! `Accept-Encoding` (RFC 9110 §12.5.3): which content coding, if any, the
//! client takes: among a file's precompressed variants, or to compress a
//! response with on the fly.

/// Content codings we look for beside a file, in our order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `file.br`
    Brotli,
    /// `file.zst`
    Zstd,
    /// `file.gz`
    Gzip,
}

impl Coding {
    /// Every coding, most preferred first.
    pub const ALL: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The file name suffix of the variant.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// Position in [`Coding::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Picks the variant to send among `available` (indexed like
/// [`Coding::ALL`]): the highest q-value the client gives, ties broken by
/// br > zstd > gzip. `None` means the identity (uncompressed) file: no
/// header, no acceptable variant, or identity preferred over all of them.
pub fn choose(accept: Option<&[u8]>, available: [bool; 3]) -> Option<Coding> {
    let accept = accept?;
    if !available.iter().any(|&a| a) {
        return None;
    }
    // q-values in thousandths; None = not mentioned.
    let mut q: [Option<u16>; 3] = [None; 3];
    let mut star: Option<u16> = None;
    let mut identity: Option<u16> = None;
    for item in accept.split(|&b| b == b',') {
        let mut params = item.split(|&b| b == b';');
        let name = params.next().unwrap_or_default().trim_ascii();
        if name.is_empty() {
            continue;
        }
        let mut weight = 1000;
        for p in params {
            let p = p.trim_ascii();
            if p.len() > 2 && p[..2].eq_ignore_ascii_case(b"q=") {
                weight = qvalue(&p[2..]).unwrap_or(0);
            }
        }
        let slot = if name.eq_ignore_ascii_case(b"br") {
            &mut q[0]
        } else if name.eq_ignore_ascii_case(b"zstd") {
            &mut q[1]
        } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            &mut q[2]
        } else if name == b"*" {
            &mut star
        } else if name.eq_ignore_ascii_case(b"identity") {
            &mut identity
        } else {
            continue;
        };
        // The highest weight given to a coding counts.
        *slot = Some(slot.map_or(weight, |w| w.max(weight)));
    }
    let mut best: Option<(Coding, u16)> = None;
    for coding in Coding::ALL {
        let i = coding.index();
        let w = q[i].or(star).unwrap_or(0);
        if available[i] && w > 0 && best.is_none_or(|(_, bw)| w > bw) {
            best = Some((coding, w));
        }
    }
    let (coding, w) = best?;
    // Identity is acceptable unless excluded; it wins only if preferred.
    let id = identity
        .or(star.filter(|_| identity.is_none()))
        .unwrap_or(1000);
    if identity.is_some() && id > w {
        return None;
    }
    Some(coding)
}

/// `0`, `0.5`, `1.000` → thousandths. Invalid → `None`.
fn qvalue(v: &[u8]) -> Option<u16> {
    let v = v.trim_ascii();
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [bool; 3] = [true, true, true];

    fn c(accept: &str, available: [bool; 3]) -> Option<Coding> {
        choose(Some(accept.as_bytes()), available)
    }

    #[test]
    fn preference_and_availability() {
        assert_eq!(choose(None, ALL), None);
        assert_eq!(c("gzip, deflate, br, zstd", ALL), Some(Coding::Brotli));
        assert_eq!(c("gzip, zstd", ALL), Some(Coding::Zstd));
        assert_eq!(c("gzip", ALL), Some(Coding::Gzip));
        assert_eq!(c("br", [false, true, true]), None);
        assert_eq!(c("br, gzip", [false, false, true]), Some(Coding::Gzip));
        assert_eq!(c("deflate", ALL), None);
        assert_eq!(c("", ALL), None);
    }

    #[test]
    fn q_values() {
        assert_eq!(c("br;q=0.5, gzip;q=0.8", ALL), Some(Coding::Gzip));
        assert_eq!(c("br;q=0, gzip", ALL), Some(Coding::Gzip));
        assert_eq!(c("br;q=0, gzip;q=0", ALL), None);
        assert_eq!(c("gzip;q=1.0, br;q=0.999", ALL), Some(Coding::Gzip));
        assert_eq!(c("*", ALL), Some(Coding::Brotli));
        assert_eq!(c("*;q=0.1, gzip;q=0.5", ALL), Some(Coding::Gzip));
        assert_eq!(c("*, br;q=0", ALL), Some(Coding::Zstd));
        // Identity preferred over every coding.
        assert_eq!(c("identity, gzip;q=0.5", ALL), None);
        assert_eq!(c("identity;q=0.5, gzip", ALL), Some(Coding::Gzip));
        // Garbage q-values count as 0.
        assert_eq!(c("br;q=2, gzip;q=abc", ALL), None);
        assert_eq!(c("GZIP", ALL), Some(Coding::Gzip));
    }
}
