//! The one thing that crosses from the signal thread into the shards: a
//! trigger that, once fired, wakes every shard waiting on it.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// A one-shot, cross-thread shutdown trigger.
#[derive(Debug, Clone, Default)]
pub struct ShutdownTrigger {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl ShutdownTrigger {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the trigger: every current and future waiter completes.
    pub fn fire(&self) {
        self.inner.fired.store(true, Ordering::Release);
        let waiters = std::mem::take(
            &mut *self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the trigger has fired.
    pub fn fired(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// Completes once the trigger fires.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.fired() {
                return Poll::Ready(());
            }
            let mut waiters = self
                .inner
                .waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Checked again under the lock: `fire` may have run in between.
            if self.fired() {
                return Poll::Ready(());
            }
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// A whole `main`: parses the command line ([`crate::config::Args`]),
/// prints `route_table()` for `--print-routes`, validates the flags (exit
/// 2 with the flag's name if one is wrong), turns transparent huge pages
/// off ([`crate::sys::disable_huge_pages`]) and runs until a signal. The
/// `edgeshard` binary and `examples/bench.rs` are this call.
pub fn main<F, H>(
    name: &str,
    route_table: impl FnOnce() -> String,
    make_handler: F,
) -> std::process::ExitCode
where
    F: Fn(&crate::ShardContext) -> H + Send + Sync + 'static,
    H: crate::Handler,
{
    use clap::Parser;
    let args = crate::config::Args::parse();
    if args.print_routes {
        print!("{}", route_table());
        return std::process::ExitCode::SUCCESS;
    }
    match crate::Config::from_args(args) {
        Ok(config) => {
            if let Err(e) = crate::sys::disable_huge_pages() {
                eprintln!("{name}: could not turn transparent huge pages off: {e}");
            }
            let files = &config.static_files;
            for m in &files.mounts {
                println!("{name}: serving {} at {}", m.real_dir.display(), m.prefix);
            }
            if !files.mounts.is_empty() && files.resolver == crate::sys::Resolver::PathWalk {
                println!(
                    "{name}: openat2 is not available (Linux < 5.6?): static files are resolved \
                     with a checked path walk instead of the kernel's RESOLVE_BENEATH"
                );
            }
            run_until_signal(config, make_handler)
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs a server until SIGTERM or SIGINT, then drains it: what the
/// `edgeshard` binary and `examples/bench.rs` share. Prints one line per
/// shard and address at start; a second signal exits at once. Returns the
/// process exit code.
pub fn run_until_signal<F, H>(config: crate::Config, make_handler: F) -> std::process::ExitCode
where
    F: Fn(&crate::ShardContext) -> H + Send + Sync + 'static,
    H: crate::Handler,
{
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::process::ExitCode;
    // Registered before the shards start so no signal finds the default action.
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeshard: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match crate::start(config, make_handler) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            return ExitCode::FAILURE;
        }
    };
    for shard in server.shards() {
        for addr in server.local_addrs() {
            println!(
                "edgeshard: shard {} on core {} listening on {addr}",
                shard.id, shard.core
            );
        }
    }
    let trigger = server.shutdown_trigger();
    std::thread::spawn(move || {
        let mut pending = signals.forever();
        if pending.next().is_some() {
            trigger.fire();
        }
        // A second signal while draining: stop now.
        if pending.next().is_some() {
            std::process::exit(1);
        }
    });
    match server.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgeshard: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_wakes_a_waiter_on_another_thread() {
        let t = ShutdownTrigger::new();
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || futures_lite::future::block_on(t2.wait()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.fire();
        waiter.join().expect("waiter finished");
        // Waiting after the fact completes at once.
        futures_lite::future::block_on(t.wait());
    }
}
