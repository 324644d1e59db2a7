//! The access log: one line per answered request, written by the
//! connection once the response has left (only it knows the bytes sent and
//! the whole time), in nginx's combined format with the request time (µs),
//! the shard and the request id after it, or as JSON lines.
//!
//! Each shard appends lines to a buffer of its own; a task of the shard
//! hands the buffer to the target at least once a second, at once when it
//! passes [`FLUSH_AT`], and at shutdown. Nothing on the request path
//! waits for the target:
//!
//! - a regular file is opened for append by each shard through glommio
//!   (`BufferedFile`), and a batch of whole lines is one io_uring write:
//!   the shard's thread never blocks on a slow disk, and `O_APPEND` keeps
//!   the shards' batches whole;
//! - stdout, pipes and other non-files go to one writer thread of the
//!   process, a batch at a time, through a bounded queue.
//!
//! While a write is in flight the shard keeps buffering, up to
//! [`MAX_BUFFERED`]; past that (a target that does not keep up) lines are
//! dropped and counted, and the count is reported on stderr: a slow log
//! never slows the server. [`Reopen`] makes every shard reopen its file
//! before its next write (SIGHUP, after logrotate moved it).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::FutureExt;
use glommio::io::{BufferedFile, OpenOptions};
use glommio::timer::Timer;

use crate::http::date::utc_fields;
use crate::http::split_request_line;
use crate::log;

/// A shard hands its lines over once they pass this size (bytes), before
/// the second is up.
pub const FLUSH_AT: usize = 64 * 1024;
/// Most bytes a shard buffers while its target is busy; lines past it are
/// dropped and counted.
pub const MAX_BUFFERED: usize = 4 * 1024 * 1024;
/// Most batches queued for the writer thread (stdout, pipes).
const THREAD_QUEUE: usize = 64;
/// How often lines are handed over at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// At shutdown, how long the last lines may take to be written.
pub const FINAL_WRITE: Duration = Duration::from_secs(2);
/// Most bytes of a request line and of each logged header value.
const FIELD_MAX: usize = 2048;

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// No access log.
    #[default]
    Off,
    /// The process's standard output (`-`).
    Stdout,
    /// A file, appended to and created if missing (or a pipe or device).
    Path(PathBuf),
}

impl Target {
    /// `-`, `off` or a path.
    pub fn parse(s: &str) -> Result<Target, String> {
        match s {
            "" => Err("empty: give -, off or a path".into()),
            "-" => Ok(Target::Stdout),
            "off" => Ok(Target::Off),
            path => Ok(Target::Path(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Off => f.write_str("off"),
            Target::Stdout => f.write_str("-"),
            Target::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// nginx's `combined`, then the request time in µs, the shard and the
    /// request id (`-` without one):
    ///
    /// `127.0.0.1 - - [01/Dec/2026:19:08:54 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" 93 0 -`
    #[default]
    Combined,
    /// One JSON object per line, with the same fields named.
    Json,
}

impl Format {
    /// `combined` or `json`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "combined" => Ok(Format::Combined),
            "json" => Ok(Format::Json),
            other => Err(format!("{other:?}: expected combined or json")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Combined => "combined",
            Format::Json => "json",
        })
    }
}

/// The access log as configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Where lines go.
    pub target: Target,
    /// How they are written.
    pub format: Format,
}

/// Asks every shard to reopen its log file before its next write (after
/// logrotate moved it away); cheap to clone, usable from any thread.
#[derive(Debug, Clone, Default)]
pub struct Reopen(Arc<AtomicU64>);

impl Reopen {
    /// Every shard reopens its file before it next writes.
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn generation(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What the shards of one server share about their log: the target, the
/// reopen requests, and the writer thread when the target is not a file.
#[derive(Debug)]
pub struct Outlet {
    settings: Settings,
    reopen: Reopen,
    thread: Option<WriterThread>,
    /// The file the shards append to (a regular file's target), which a
    /// reload may point elsewhere ([`Outlet::retarget`]).
    path: Mutex<Option<PathBuf>>,
}

/// A writer thread and the way to its queue.
#[derive(Debug)]
struct WriterThread {
    queue: Mutex<Option<mpsc::SyncSender<Vec<u8>>>>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl Outlet {
    /// Checks the target can be written (a file is opened for append, and
    /// created), and starts the writer thread for stdout or a non-file.
    /// `None` when the log is off. The error says why, for the flag or key
    /// that named the target.
    pub fn open(settings: &Settings) -> Result<Option<Arc<Outlet>>, String> {
        let thread = match &settings.target {
            Target::Off => return Ok(None),
            Target::Stdout => Some(WriterThread::start(None)?),
            Target::Path(path) => {
                let file = open_append(path)?;
                let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
                if regular {
                    None
                } else {
                    Some(WriterThread::start(Some(file))?)
                }
            }
        };
        let path = match (&settings.target, &thread) {
            (Target::Path(p), None) => Some(p.clone()),
            _ => None,
        };
        Ok(Some(Arc::new(Outlet {
            settings: settings.clone(),
            reopen: Reopen::default(),
            thread,
            path: Mutex::new(path),
        })))
    }

    /// Points a log that goes to a regular file at `to`'s file (a
    /// reload): the file is opened (and created) here to check it can be,
    /// and every shard reopens at its next write. Anything else (another
    /// format, stdout, a pipe, off) takes a restart: `Err` says why.
    pub fn retarget(&self, to: &Settings) -> Result<(), String> {
        let mut path = self.path.lock().unwrap_or_else(PoisonError::into_inner);
        let (Some(_), Target::Path(new)) = (&*path, &to.target) else {
            return Err("only a log file's path can change without a restart".into());
        };
        if to.format != self.settings.format {
            return Err("the log format changes only at a restart".into());
        }
        let file = open_append(new)?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            return Err(format!(
                "{} is not a regular file: that takes a restart",
                new.display()
            ));
        }
        *path = Some(new.clone());
        self.reopen.request();
        Ok(())
    }

    /// The file the shards append to now.
    fn current_path(&self) -> Option<PathBuf> {
        self.path
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A handle to ask the shards to reopen their files.
    pub fn reopen(&self) -> Reopen {
        self.reopen.clone()
    }

    /// Waits (at most `limit`) for the writer thread to write what it was
    /// given, once every shard has handed over its last lines.
    pub fn finish(&self, limit: Duration) {
        let Some(t) = &self.thread else { return };
        // Closing the queue ends the thread once it has written the rest.
        if let Ok(mut q) = t.queue.lock() {
            q.take();
        }
        let done = t.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.recv_timeout(limit);
        }
    }
}

fn open_append(path: &Path) -> Result<File, String> {
    // Non-blocking, so a FIFO without a reader is an error now rather than
    // a hang; the flag does not matter for files.
    let nonblocking = std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::OpenOptions::new().append(true).create(true),
        libc::O_NONBLOCK,
    )
    .open(path);
    let file =
        nonblocking.map_err(|e| format!("cannot open {} for append: {e}", path.display()))?;
    if let Ok(m) = file.metadata() {
        if m.file_type().is_fifo() || m.file_type().is_socket() {
            // Writes from the writer thread should wait, not fail.
            return std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open {} for append: {e}", path.display()));
        }
    }
    Ok(file)
}

impl WriterThread {
    /// A thread writing batches to stdout, or to `file` (a pipe or a
    /// device: nothing to rotate, so it is never reopened).
    fn start(file: Option<File>) -> Result<WriterThread, String> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(THREAD_QUEUE);
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{}-log", log::name()))
            .spawn(move || {
                let mut out: Box<dyn Write> = match file {
                    Some(f) => Box::new(f),
                    None => Box::new(std::io::stdout()),
                };
                let mut failed = false;
                for batch in rx {
                    if let Err(e) = out.write_all(&batch).and_then(|()| out.flush()) {
                        if !failed {
                            log::warning!("access log: write failed: {e}; lines are lost");
                            failed = true;
                        }
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start the log writer thread: {e}"))?;
        Ok(WriterThread {
            queue: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
        })
    }
}

/// One request's facts, as the connection knows them once its response
/// has left.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The client's address.
    pub peer: IpAddr,
    /// The request head as received (request line and fields), or what
    /// was read of a request that was refused.
    pub head: &'a [u8],
    /// The status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the head's arrival to the response's last byte handed to the
    /// kernel (µs).
    pub micros: u64,
    /// The request id, when the request-id middleware gave one.
    pub request_id: Option<&'a [u8]>,
    /// For a proxied request: the upstream it went to, and how it failed
    /// if it did (`127.0.0.1:9000 connect failed`).
    pub upstream: Option<&'a [u8]>,
}

/// One shard's access log: its buffer of lines, and the task that hands
/// them to the target.
#[derive(Debug)]
pub struct AccessLog {
    outlet: Arc<Outlet>,
    shard: usize,
    lines: RefCell<Vec<u8>>,
    /// Lines in `lines`.
    count: Cell<u64>,
    dropped: Cell<u64>,
    /// The timestamp text of `stamp_secs`.
    stamp: RefCell<String>,
    stamp_secs: Cell<u64>,
    /// The writer task, waiting for the buffer to fill.
    waiting: WakerCell,
    stopping: Cell<bool>,
}

impl AccessLog {
    /// Shard `shard`'s log to `outlet`.
    pub fn new(outlet: Arc<Outlet>, shard: usize) -> Rc<AccessLog> {
        Rc::new(AccessLog {
            outlet,
            shard,
            lines: RefCell::new(Vec::new()),
            count: Cell::new(0),
            dropped: Cell::new(0),
            stamp: RefCell::new(String::new()),
            stamp_secs: Cell::new(u64::MAX),
            waiting: WakerCell::default(),
            stopping: Cell::new(false),
        })
    }

    /// Appends `e`'s line, stamped with second `now` (Unix time).
    pub fn write(&self, e: &Entry<'_>, now: u64) {
        let mut lines = self.lines.borrow_mut();
        if lines.len() >= MAX_BUFFERED {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        if self.stamp_secs.get() != now {
            self.stamp_secs.set(now);
            *self.stamp.borrow_mut() = stamp(self.outlet.settings.format, now);
        }
        let stamp = self.stamp.borrow();
        match self.outlet.settings.format {
            Format::Combined => combined(&mut lines, e, &stamp, self.shard),
            Format::Json => json(&mut lines, e, &stamp, self.shard),
        }
        self.count.set(self.count.get() + 1);
        if lines.len() >= FLUSH_AT {
            if let Some(w) = self.waiting.take() {
                w.wake();
            }
        }
    }

    /// The shard's writer: hands the buffered lines to the target every
    /// second, or when they pass [`FLUSH_AT`], until [`AccessLog::stop`]
    /// (then it hands over the rest and returns).
    pub async fn run(self: Rc<Self>) {
        let mut file = FileSink::default();
        loop {
            let full = std::future::poll_fn(|cx| -> Poll<()> {
                if self.stopping.get() || self.lines.borrow().len() >= FLUSH_AT {
                    Poll::Ready(())
                } else {
                    self.waiting.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            });
            full.or(async {
                Timer::new(FLUSH_EVERY).await;
            })
            .await;
            self.hand_over(&mut file).await;
            if self.stopping.get() {
                // Lines of responses that left during that last write.
                self.hand_over(&mut file).await;
                return;
            }
        }
    }

    /// The shard is stopping: [`AccessLog::run`] hands over what is left
    /// and returns. Wait for it at most [`FINAL_WRITE`].
    pub fn stop(&self) {
        self.stopping.set(true);
        if let Some(w) = self.waiting.take() {
            w.wake();
        }
    }

    /// Takes the buffer and writes it (a file) or queues it for the
    /// writer thread; reports lines dropped since the last time.
    async fn hand_over(&self, file: &mut FileSink) {
        let batch = std::mem::take(&mut *self.lines.borrow_mut());
        let lines = self.count.replace(0);
        if !batch.is_empty() {
            let lost = match &self.outlet.thread {
                Some(t) => queue(t, batch),
                None => match self.outlet.current_path() {
                    Some(path) => file.write(&path, &self.outlet.reopen, batch).await,
                    None => Ok(()),
                },
            };
            if let Err(why) = lost {
                self.dropped.set(self.dropped.get() + lines);
                file.report(self.shard, &why);
            }
        }
        let dropped = self.dropped.replace(0);
        if dropped > 0 {
            log::warning!(
                "shard {}: access log: {dropped} line(s) dropped: the log target does not keep up",
                self.shard
            );
        }
    }
}

/// Where the writer task leaves its waker.
#[derive(Default)]
struct WakerCell(Cell<Option<Waker>>);

impl fmt::Debug for WakerCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WakerCell")
    }
}

impl WakerCell {
    fn set(&self, w: Option<Waker>) {
        self.0.set(w);
    }

    fn take(&self) -> Option<Waker> {
        self.0.take()
    }
}

/// Queues a batch for the writer thread; a full queue drops it.
fn queue(t: &WriterThread, batch: Vec<u8>) -> Result<(), String> {
    let q = t
        .queue
        .lock()
        .map_err(|_| "the log writer failed".to_string())?;
    match q.as_ref().map(|q| q.try_send(batch)) {
        Some(Ok(())) => Ok(()),
        Some(Err(mpsc::TrySendError::Full(_))) => Err(String::new()),
        _ => Err("the log writer has stopped".into()),
    }
}

/// A shard's own descriptor of the log file, and the reopen generation it
/// was opened at.
#[derive(Default)]
struct FileSink {
    file: Option<(BufferedFile, u64)>,
    /// An error was reported and nothing has been written since.
    failing: bool,
}

impl FileSink {
    async fn write(&mut self, path: &Path, reopen: &Reopen, batch: Vec<u8>) -> Result<(), String> {
        let generation = reopen.generation();
        if self.file.as_ref().is_some_and(|(_, g)| *g != generation) {
            if let Some((f, _)) = self.file.take() {
                let _ = f.close().await;
            }
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .buffered_open(path)
                .await
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            self.file = Some((f, generation));
        }
        let Some((f, _)) = &self.file else {
            return Err("no file".into());
        };
        let len = batch.len();
        // O_APPEND: the position is the file's end whatever is given.
        let n = f
            .write_at(batch, 0)
            .await
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        if n < len {
            return Err(format!(
                "writing {}: {n} of {len} bytes written (disk full?)",
                path.display()
            ));
        }
        self.failing = false;
        Ok(())
    }

    fn report(&mut self, shard: usize, why: &str) {
        if !why.is_empty() && !self.failing {
            self.failing = true;
            log::warning!("shard {shard}: access log: {why}");
        }
    }
}

/// The timestamp of second `secs` as `format` writes it.
fn stamp(format: Format, secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s) = utc_fields(secs);
    match format {
        Format::Combined => format!(
            "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} +0000",
            MONTHS[(mo - 1) as usize]
        ),
        Format::Json => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
    }
}

/// A head's parts the log shows.
struct Parts<'a> {
    request_line: &'a [u8],
    method: &'a [u8],
    target: &'a [u8],
    version: &'a [u8],
    referer: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
}

fn parts(head: &[u8]) -> Parts<'_> {
    let (request_line, mut rest) = split_request_line(head);
    let mut words = request_line.splitn(3, |&b| b == b' ');
    let (method, target, version) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let (mut referer, mut user_agent) = (None, None);
    while let Some(nl) = memchr::memchr(b'\n', rest) {
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        // Only the two fields wanted: their first letters rule out the rest.
        let (name, value) = match line.first().map(u8::to_ascii_lowercase) {
            Some(b'r') if line.len() > 8 && line[..8].eq_ignore_ascii_case(b"referer:") => {
                (&mut referer, &line[8..])
            }
            Some(b'u') if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"user-agent:") => {
                (&mut user_agent, &line[11..])
            }
            _ => continue,
        };
        let value = value.strip_suffix(b"\r").unwrap_or(value);
        name.get_or_insert(value.trim_ascii());
    }
    Parts {
        request_line,
        method,
        target,
        version,
        referer,
        user_agent,
    }
}

/// nginx's escaping of logged strings: `"`, `\`, controls and bytes past
/// ASCII as `\xHH`; cut at [`FIELD_MAX`] bytes.
fn escaped(out: &mut Vec<u8>, s: &[u8]) {
    let s = &s[..s.len().min(FIELD_MAX)];
    let escape = |b: u8| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b);
    // Most fields need nothing: one pass without early exit (which the
    // compiler vectorizes), then a plain copy.
    if !s.iter().fold(false, |any, &b| any | escape(b)) {
        out.extend_from_slice(s);
        return;
    }
    for &b in s {
        if escape(b) {
            out.extend_from_slice(&[b'\\', b'x', hex(b >> 4), hex(b & 0xf)]);
        } else {
            out.push(b);
        }
    }
}

fn hex(n: u8) -> u8 {
    b"0123456789abcdef"[usize::from(n & 0xf)]
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// An address as text: IPv4 (and IPv4-mapped IPv6) without the
/// formatting machinery.
fn address(out: &mut Vec<u8>, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(out, octet);
            }
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn combined(out: &mut Vec<u8>, e: &Entry<'_>, stamp: &str, shard: usize) {
    let p = parts(e.head);
    address(out, e.peer);
    out.extend_from_slice(b" - - [");
    out.extend_from_slice(stamp.as_bytes());
    out.extend_from_slice(b"] \"");
    if p.request_line.is_empty() {
        out.push(b'-');
    } else {
        escaped(out, p.request_line);
    }
    out.extend_from_slice(b"\" ");
    number(out, e.status);
    out.push(b' ');
    number(out, e.bytes);
    for field in [p.referer, p.user_agent] {
        out.extend_from_slice(b" \"");
        match field {
            Some(v) if !v.is_empty() => escaped(out, v),
            _ => out.push(b'-'),
        }
        out.push(b'"');
    }
    out.push(b' ');
    number(out, e.micros);
    out.push(b' ');
    number(out, shard);
    out.push(b' ');
    match e.request_id {
        Some(id) => escaped(out, id),
        None => out.push(b'-'),
    }
    // Proxied requests only: the other lines keep their shape.
    if let Some(up) = e.upstream {
        out.extend_from_slice(b" upstream=\"");
        escaped(out, up);
        out.push(b'"');
    }
    out.push(b'\n');
}

/// A JSON string: `"`, `\` and controls escaped, bytes past ASCII as
/// `\u00HH` (their Latin-1 reading: request bytes need not be UTF-8, and
/// the line must stay valid JSON).
fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in &s[..s.len().min(FIELD_MAX)] {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]),
        }
    }
    out.push(b'"');
}

fn json(out: &mut Vec<u8>, e: &Entry<'_>, stamp: &str, shard: usize) {
    let p = parts(e.head);
    out.extend_from_slice(b"{\"time\":\"");
    out.extend_from_slice(stamp.as_bytes());
    out.extend_from_slice(b"\",\"remote_addr\":\"");
    address(out, e.peer);
    out.extend_from_slice(b"\",\"method\":");
    json_string(out, p.method);
    out.extend_from_slice(b",\"uri\":");
    json_string(out, p.target);
    out.extend_from_slice(b",\"protocol\":");
    json_string(out, p.version);
    out.extend_from_slice(b",\"status\":");
    number(out, e.status);
    out.extend_from_slice(b",\"bytes_sent\":");
    number(out, e.bytes);
    for (name, field) in [
        (&b",\"referer\":"[..], p.referer),
        (b",\"user_agent\":", p.user_agent),
        (b",\"request_id\":", e.request_id),
        (b",\"upstream\":", e.upstream),
    ] {
        out.extend_from_slice(name);
        match field {
            Some(v) => json_string(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"request_time_us\":");
    number(out, e.micros);
    out.extend_from_slice(b",\"shard\":");
    number(out, shard);
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8.5.0\r\nreferer: http://r/\"q\"\r\n\r\n";

    fn entry(head: &[u8]) -> Entry<'_> {
        Entry {
            peer: "::ffff:127.0.0.1".parse().unwrap(),
            head,
            status: 200,
            bytes: 612,
            micros: 93,
            request_id: Some(b"abc-0-1"),
            upstream: None,
        }
    }

    #[test]
    fn combined_lines_are_nginx_s_with_time_shard_and_id() {
        let mut out = Vec::new();
        combined(
            &mut out,
            &entry(HEAD),
            &stamp(Format::Combined, 1_796_152_134),
            1,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.1 - - [01/Dec/2026:19:08:54 +0000] \"GET /a?b=1 HTTP/1.1\" 200 612 \
             \"http://r/\\x22q\\x22\" \"curl/8.5.0\" 93 1 abc-0-1\n"
        );
        let mut out = Vec::new();
        let bare = Entry {
            request_id: None,
            upstream: Some(b"127.0.0.1:9000 connect failed"),
            ..entry(b"\x16\x03\x01\xff")
        };
        combined(&mut out, &bare, "t", 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.1 - - [t] \"\\x16\\x03\\x01\\xff\" 200 612 \"-\" \"-\" 93 0 - upstream=\"127.0.0.1:9000 connect failed\"\n"
        );
    }

    #[test]
    fn json_lines_parse_and_keep_odd_bytes() {
        let mut out = Vec::new();
        json(
            &mut out,
            &entry(HEAD),
            &stamp(Format::Json, 1_796_152_134),
            1,
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["time"], "2026-12-01T19:08:54Z");
        assert_eq!(v["remote_addr"], "127.0.0.1");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["uri"], "/a?b=1");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes_sent"], 612);
        assert_eq!(v["referer"], "http://r/\"q\"");
        assert_eq!(v["user_agent"], "curl/8.5.0");
        assert_eq!(v["request_id"], "abc-0-1");
        assert_eq!(v["request_time_us"], 93);
        assert_eq!(v["shard"], 1);
        assert!(out.ends_with(b"}\n"));
        let mut out = Vec::new();
        json(&mut out, &entry(b"GET /\xe9\x01 HTTP/1.1\r\n\r\n"), "t", 0);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["uri"], "/\u{e9}\u{1}");
        assert_eq!(v["referer"], serde_json::Value::Null);
    }

    #[test]
    fn a_log_file_can_move_to_another_file_and_nothing_else_changes_at_a_reload() {
        let dir = std::env::temp_dir().join(format!("es-retarget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, format: Format| Settings {
            target: Target::Path(dir.join(name)),
            format,
        };
        let outlet = Outlet::open(&file("a.log", Format::Combined))
            .unwrap()
            .unwrap();
        let before = outlet.reopen().generation();
        outlet.retarget(&file("b.log", Format::Combined)).unwrap();
        assert_eq!(outlet.current_path(), Some(dir.join("b.log")));
        assert!(dir.join("b.log").is_file(), "opened (created) to check it");
        assert_eq!(outlet.reopen().generation(), before + 1, "shards reopen");
        let refused = [
            file("c.log", Format::Json),
            Settings {
                target: Target::Stdout,
                format: Format::Combined,
            },
            Settings {
                target: Target::Off,
                format: Format::Combined,
            },
            file("no/such/dir/d.log", Format::Combined),
        ];
        for to in refused {
            assert!(outlet.retarget(&to).is_err(), "{to:?}");
            assert_eq!(outlet.current_path(), Some(dir.join("b.log")));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn targets_and_formats_parse() {
        assert_eq!(Target::parse("-"), Ok(Target::Stdout));
        assert_eq!(Target::parse("off"), Ok(Target::Off));
        assert_eq!(
            Target::parse("/var/log/a.log"),
            Ok(Target::Path("/var/log/a.log".into()))
        );
        assert!(Target::parse("").is_err());
        assert_eq!(Format::parse("json"), Ok(Format::Json));
        assert!(Format::parse("common").is_err());
    }
}
