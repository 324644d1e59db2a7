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

/// Prints `<name>: <message>` on stderr.
macro_rules! warning {
    ($($arg:tt)*) => {
        eprintln!("{}: {}", $crate::log::name(), format_args!($($arg)*))
    };
}
pub(crate) use warning;
