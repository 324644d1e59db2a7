//! Messages between shards. Nothing on the request path is shared, so a
//! question about the whole server (per-shard counters for `/api/stats`)
//! is asked of every other shard by message and answered by each from its
//! own state.
//!
//! Sends never wait (`try_send_to`): a full channel drops the message and
//! the asker times out on that shard, so two shards answering each other
//! can never deadlock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::FutureExt;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::timer::Timer;

use crate::metrics::{ShardStats, Snapshot};

/// Capacity of each shard-to-shard channel (messages).
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

/// The builder every shard joins; cloned into each shard's thread.
pub type MeshHandle = MeshBuilder<Message, Full>;

/// Creates the mesh for `shards` shards.
pub fn new_mesh(shards: usize) -> MeshHandle {
    MeshBuilder::full(shards, CHANNEL_SIZE)
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
    /// This shard's number in the mesh (see [`Mesh::join`]).
    me: usize,
    senders: Senders<Message>,
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
    /// Joins the mesh (waits for every shard to join) and starts
    /// answering peers with what `reports` makes.
    pub async fn join(builder: MeshHandle, reports: ReportSource) -> Result<Rc<Mesh>, String> {
        let shards = builder.nr_peers();
        let (senders, mut receivers) = builder
            .join()
            .await
            .map_err(|e| format!("joining the shard mesh: {e}"))?;
        // The mesh's own number for this shard: glommio orders peers by
        // executor id, which the shards' threads take in whatever order
        // they start, so it need not be the shard's number. Asking with
        // the shard's number sent some replies to the wrong shard.
        let me = senders.peer_id();
        let mesh = Rc::new(Mesh {
            shards,
            me,
            senders,
            reports,
            gathers: RefCell::new(HashMap::new()),
            next_seq: Cell::new(0),
        });
        for (_, stream) in receivers.streams() {
            glommio::spawn_local(mesh.clone().serve(stream)).detach();
        }
        Ok(mesh)
    }

    async fn serve(self: Rc<Self>, stream: ConnectedReceiver<Message>) {
        while let Some(msg) = stream.recv().await {
            match msg {
                Message::Ask { from, seq, what } => {
                    let report = (self.reports)(what);
                    // Dropped if the asker's channel is full: it times out on us.
                    let _ = self
                        .senders
                        .try_send_to(from, Message::Reply { seq, report });
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
            if self
                .senders
                .try_send_to(
                    peer,
                    Message::Ask {
                        from: me,
                        seq,
                        what,
                    },
                )
                .is_ok()
            {
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
