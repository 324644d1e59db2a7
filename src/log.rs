//! The server's own messages on stderr (start-up problems, accept
//! failures, handler bugs), each one line that starts with the program's
//! name: `edgeshard: …`, or `bench: …` for the benchmark binary.

use std::sync::OnceLock;

static NAME: OnceLock<&'static str> = OnceLock::new();

/// Sets the name messages start with; the first call wins (the daemon
/// makes it, with the binary's name). Until then: `edgeshard`.
pub fn set_name(name: &'static str) {
    let _ = NAME.set(name);
}

/// The name messages start with.
pub fn name() -> &'static str {
    NAME.get().copied().unwrap_or("edgeshard")
}

/// Prints `<name>: <message>` on stderr. A write that fails (stderr
/// closed: the reader of a pipe gone) is dropped: `eprintln!` would panic,
/// and a panic on the signal thread left a server that no signal could
/// stop, on a shard thread a dead shard.
macro_rules! warning {
    ($($arg:tt)*) => {
        $crate::log::line(&mut std::io::stderr(), format_args!($($arg)*))
    };
}
pub(crate) use warning;

/// Prints `<name>: <message>` on stdout (what the server does: start-up
/// lines, reloads, upgrades); a failed write is dropped, as [`warning!`].
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log::line(&mut std::io::stdout(), format_args!($($arg)*))
    };
}
pub(crate) use info;

/// Writes `<name>: <message>` and a newline, ignoring failure.
pub(crate) fn line(out: &mut impl std::io::Write, message: std::fmt::Arguments<'_>) {
    let _ = writeln!(out, "{}: {message}", name());
}

/// A per-shard allowance of log lines for things clients can cause at
/// will (refused attacks, scanners): at most `per_second` lines in each
/// second, and a count of those left out in the next line that is written.
#[derive(Debug)]
pub(crate) struct Budget {
    per_second: u32,
    second: std::cell::Cell<u64>,
    used: std::cell::Cell<u32>,
    left_out: std::cell::Cell<u64>,
}

impl Budget {
    pub(crate) const fn new(per_second: u32) -> Budget {
        Budget {
            per_second,
            second: std::cell::Cell::new(0),
            used: std::cell::Cell::new(0),
            left_out: std::cell::Cell::new(0),
        }
    }

    /// Whether a line may be written in second `now`; if so, how many
    /// were left out since the last one that was.
    pub(crate) fn take(&self, now: u64) -> Option<u64> {
        if self.second.get() != now {
            self.second.set(now);
            self.used.set(0);
        }
        if self.used.get() >= self.per_second {
            self.left_out.set(self.left_out.get() + 1);
            return None;
        }
        self.used.set(self.used.get() + 1);
        Some(self.left_out.replace(0))
    }

    /// [`Budget::take`], with what to append to the line: nothing, or
    /// ` (N more <what> before this)`, `what` saying what was left out.
    pub(crate) fn admit(&self, now: u64, what: &str) -> Option<String> {
        self.take(now).map(|left_out| match left_out {
            0 => String::new(),
            n => format!(" ({n} more {what} before this)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn a_budget_allows_so_many_lines_a_second_and_counts_the_rest() {
        let b = Budget::new(2);
        assert_eq!(b.take(10), Some(0));
        assert_eq!(b.take(10), Some(0));
        assert_eq!(b.take(10), None);
        assert_eq!(b.take(10), None);
        assert_eq!(b.take(11), Some(2));
        assert_eq!(b.take(11), Some(0));
        assert_eq!(b.take(11), None);
        assert_eq!(b.take(12), Some(1));
        assert_eq!(b.take(12), Some(0));
        assert_eq!(b.take(12), None);
        assert_eq!(
            b.admit(13, "refused and not logged").as_deref(),
            Some(" (1 more refused and not logged before this)")
        );
        assert_eq!(b.admit(13, "refused and not logged").as_deref(), Some(""));
    }
}
