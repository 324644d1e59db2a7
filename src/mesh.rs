//! Messages between shards. Nothing on the request path is shared, so a
//! question about the whole server (per-shard counters for `/api/stats`)
//! is asked of every other shard by message and answered by each from its
//! own state.
//!
//! Each shard has an inbox: a short queue under a mutex and the waker of
//! the task that reads it. The inboxes are made before the shards' threads
//! start, so there is nothing to join: a shard that has not started yet
//! finds its messages waiting. (glommio's channel mesh made every shard
//! wait at start for all the others to connect their channels, and under
//! load that handshake sometimes never finished: a shard stuck at start.)
//!
//! Sends never wait: a full inbox drops the message and the asker times
//! out on that shard, so two shards answering each other can never
//! deadlock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::FutureExt;
use glommio::timer::Timer;

use crate::metrics::{ShardStats, Snapshot};

/// Most messages waiting in one shard's inbox.
pub const CHANNEL_SIZE: usize = 64;
/// How long a gather waits for the other shards.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(1);

/// What shards say to each other.
#[derive(Debug)]
pub enum Message {
    /// "Send me your report", tagged so the reply finds its gather.
    Ask {
        /// The asking shard.
        from: usize,
        /// The gather it belongs to.
        seq: u64,
        /// Which report.
        what: Ask,
    },
    /// A reply to `Ask`.
    Reply {
        /// The gather it answers.
        seq: u64,
        /// The replying shard's report.
        report: Report,
    },
}

/// Which report a gather wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `/api/stats`'s.
    Stats,
    /// `/metrics`'s.
    Metrics,
}

/// One shard's report.
#[derive(Debug)]
pub enum Report {
    /// For `/api/stats`.
    Stats(ShardStats),
    /// For `/metrics`.
    Metrics(Box<Snapshot>),
}

impl Report {
    fn shard(&self) -> usize {
        match self {
            Report::Stats(s) => s.shard,
            Report::Metrics(m) => m.stats.shard,
        }
    }
}

/// Every shard's inbox; cloned into each shard's thread.
#[derive(Clone)]
pub struct MeshHandle {
    inboxes: Arc<[Inbox<Message>]>,
}

/// Creates the inboxes of `shards` shards.
pub fn new_mesh(shards: usize) -> MeshHandle {
    MeshHandle {
        inboxes: (0..shards).map(|_| Inbox::default()).collect(),
    }
}

/// One shard's queue of messages from other threads, and the waker of
/// the task that reads it.
pub(crate) struct Inbox<T> {
    state: Mutex<InboxState<T>>,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            state: Mutex::new(InboxState {
                messages: Vec::new(),
                waker: None,
                closed: false,
            }),
        }
    }
}

struct InboxState<T> {
    messages: Vec<T>,
    /// The reading task, while it waits.
    waker: Option<Waker>,
    /// The shard has stopped: nothing is delivered any more.
    closed: bool,
}

impl<T> Inbox<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, InboxState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `msg` unless the inbox is full or closed; wakes the reader.
    pub(crate) fn offer(&self, msg: T) -> bool {
        let waker = {
            let mut st = self.lock();
            if st.closed || st.messages.len() >= CHANNEL_SIZE {
                return false;
            }
            st.messages.push(msg);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Whatever has arrived, waiting for at least one message.
    pub(crate) async fn take(&self) -> Vec<T> {
        poll_fn(|cx| {
            let mut st = self.lock();
            if st.messages.is_empty() {
                st.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(std::mem::take(&mut st.messages))
        })
        .await
    }

    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.messages.clear();
        st.waker = None;
    }
}

#[derive(Default)]
struct Gather {
    replies: Vec<Report>,
    waker: Option<Waker>,
}

/// Makes this shard's report when a peer asks (from the shard's counters
/// and its connection count).
pub type ReportSource = Box<dyn Fn(Ask) -> Report>;

/// This shard's end of the mesh.
pub struct Mesh {
    shards: usize,
    /// This shard's number.
    me: usize,
    inboxes: Arc<[Inbox<Message>]>,
    reports: ReportSource,
    gathers: RefCell<HashMap<u64, Gather>>,
    next_seq: Cell<u64>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("shards", &self.shards)
            .finish()
    }
}

impl Mesh {
    /// Takes up shard `me`'s place in the mesh and starts answering
    /// peers with what `reports` makes (a task on the current executor).
    pub fn join(handle: MeshHandle, me: usize, reports: ReportSource) -> Rc<Mesh> {
        let mesh = Rc::new(Mesh {
            shards: handle.inboxes.len(),
            me,
            inboxes: handle.inboxes,
            reports,
            gathers: RefCell::new(HashMap::new()),
            next_seq: Cell::new(0),
        });
        glommio::spawn_local(mesh.clone().serve()).detach();
        mesh
    }

    /// Stops taking messages (the shard is ending): peers asking from now
    /// on are not answered, and no waker of this shard's is kept.
    pub fn close(&self) {
        self.inboxes[self.me].close();
    }

    fn send_to(&self, peer: usize, msg: Message) -> bool {
        self.inboxes.get(peer).is_some_and(|inbox| inbox.offer(msg))
    }

    async fn serve(self: Rc<Self>) {
        loop {
            for msg in self.inboxes[self.me].take().await {
                match msg {
                    Message::Ask { from, seq, what } => {
                        let report = (self.reports)(what);
                        // Dropped if the asker's inbox is full: it times out on us.
                        self.send_to(from, Message::Reply { seq, report });
                    }
                    Message::Reply { seq, report } => {
                        if let Some(g) = self.gathers.borrow_mut().get_mut(&seq) {
                            g.replies.push(report);
                            if let Some(w) = g.waker.take() {
                                w.wake();
                            }
                        }
                    }
                }
            }
        }
    }

    /// Number of shards in the server.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Every shard's stats, sorted by shard; shards that do not answer
    /// within [`GATHER_TIMEOUT`] are left out.
    pub async fn gather_stats(&self) -> Vec<ShardStats> {
        let reports = self.gather(Ask::Stats).await;
        reports
            .into_iter()
            .filter_map(|r| match r {
                Report::Stats(s) => Some(s),
                Report::Metrics(_) => None,
            })
            .collect()
    }

    /// Every shard's counters for `/metrics`, sorted by shard; as
    /// [`Mesh::gather_stats`].
    pub async fn gather_metrics(&self) -> Vec<Snapshot> {
        let reports = self.gather(Ask::Metrics).await;
        reports
            .into_iter()
            .filter_map(|r| match r {
                Report::Metrics(m) => Some(*m),
                Report::Stats(_) => None,
            })
            .collect()
    }

    async fn gather(&self, what: Ask) -> Vec<Report> {
        let me = self.me;
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.gathers.borrow_mut().insert(seq, Gather::default());
        let mut asked = 0;
        for peer in (0..self.shards).filter(|&p| p != me) {
            if self.send_to(
                peer,
                Message::Ask {
                    from: me,
                    seq,
                    what,
                },
            ) {
                asked += 1;
            }
        }
        let all_replied = poll_fn(|cx| {
            let mut gathers = self.gathers.borrow_mut();
            let Some(g) = gathers.get_mut(&seq) else {
                return Poll::Ready(());
            };
            if g.replies.len() >= asked {
                return Poll::Ready(());
            }
            g.waker = Some(cx.waker().clone());
            Poll::Pending
        });
        let timeout = async {
            Timer::new(GATHER_TIMEOUT).await;
        };
        all_replied.or(timeout).await;
        let mut reports = self
            .gathers
            .borrow_mut()
            .remove(&seq)
            .map(|g| g.replies)
            .unwrap_or_default();
        reports.push((self.reports)(what));
        reports.sort_by_key(Report::shard);
        reports
    }
}
