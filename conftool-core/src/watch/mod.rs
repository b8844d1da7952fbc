//! Watching the objects a selector matches: a snapshot at one revision, then every change
//! after exactly that revision, with no gap and no duplicate, across member failures, etcd
//! restarts and compaction.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conftool_core::Error> {
//! use conftool_core::watch::WatchEvent;
//! use conftool_core::{Config, Selection, Selector, Store};
//! let store = Store::connect(&Config::default()).await?;
//! let sel: Selector = "dc=eqiad,cluster=appservers".parse()?;
//! let mut watch = store.watch(&sel).await?;
//! let mut view = Selection::default();
//! while let Some(event) = watch.next().await {
//!     match event {
//!         Ok(event) => {
//!             // A snapshot: reconcile with it; changes: apply them.
//!             event.apply_to(store.keyspace(), &mut view);
//!         }
//!         Err(e) => eprintln!("{e}"), // etcd unreachable for a while; the watch goes on
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # How
//! [`Store::watch`] reads the selector's prefix at one revision `R` (the first
//! [`WatchEvent::Snapshot`]), then a task of its own watches the same prefix from `R + 1` on
//! one member, keeps the events of objects the selector matches, and hands them over one
//! revision at a time ([`WatchEvent::Changes`]). It remembers the last revision it handed
//! over (or saw and skipped, when it changed no selected object): everything it does after
//! a failure starts right after it.
//!
//! - **Failover.** The watch stream lives on one member. When it breaks (the member is
//!   killed or restarted, its connection fails, it answers nothing, it loses its leader),
//!   the watch moves to another member, chosen by the store's staggered race (proof of life
//!   first: a linearizable read, and the authentication), and resumes from the last
//!   revision + 1. The same member is tried again last (a single-member etcd that
//!   restarts). While no member can be reached the watch keeps trying, with pauses growing
//!   to a second, and reports an [`Error::Unavailable`] item once per configured timeout of
//!   outage: an `Err` item is not the end of the watch.
//! - **Detecting a dead member.** A killed or restarted member resets the connection: the
//!   stream fails at once. A member that says nothing (a stopped process, a stalled disk, a
//!   black-holed host) or that lost its quorum is found by a *proof of life* on the watch's
//!   own connection: every timeout (the configuration's, clamped to 1–30 s) a
//!   linearizable count-only read must be answered within the timeout, else the watch
//!   moves on. A linearizable read needs the cluster's leader to vouch for the member, so
//!   this also catches a member cut off from its cluster, whose watch would otherwise just
//!   fall silent. The connection also asks etcd to end the stream if the member has no
//!   leader (gRPC `hasleader` metadata), which etcd does after a few election timeouts.
//! - **Keep-alive.** The watch has a connection of its own (not the store's request
//!   connection), whose HTTP/2 pings are sent every 10 s at most. etcd refuses pings more
//!   often than every 5 s (`--grpc-keepalive-min-time`) on a connection that sends no data
//!   and answers with GOAWAY ("too many pings"): the store's request connection pings every
//!   quarter of the timeout, which is fine for requests that last a few seconds, but would
//!   cut off a quiet watch. The pings are a backstop; the proof of life is what detects a
//!   member that is alive enough to answer pings but not to serve.
//! - **Backpressure.** Between the task and the consumer is a bounded channel
//!   ([`WatchConfig::with_capacity`] events). When the consumer is slow the task waits,
//!   and stops reading the stream: HTTP/2 flow control stops etcd from sending, and etcd
//!   keeps the watcher behind in its own history. Memory is bounded by the channel, one
//!   decoded etcd response (etcd batches at most 1,000 revisions in one) and the
//!   connection's flow-control window, not by how far behind the consumer is.
//! - **Compaction.** When etcd no longer has the history the watch needs (a consumer that
//!   fell behind, or a disconnection, for longer than etcd keeps history), etcd cancels the
//!   watch with the compaction revision. The watch then re-lists the prefix at a new
//!   revision, sends it as a new [`WatchEvent::Snapshot`] (replace your view) and watches on
//!   from there.
//! - **Cancelling.** Dropping the [`Watch`] aborts its task, which drops the stream and
//!   the connection: etcd's watcher is gone as soon as etcd sees the stream reset.
//!
//! etcd's progress notifications are not used to move the resume point forward: etcd
//! 3.4.23 can send one ahead of events still in flight (etcd issue 15220), and a resume
//! point that skips an event is a gap. A quiet watch that resumes after etcd compacted past
//! its last event re-lists instead, which is correct, only more work.

mod event;
mod follow;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::error::Error;
use crate::selection::Selection;
use crate::selector::Selector;
use crate::store::Store;

pub use event::{ObjectChange, WatchEvent};

/// The channel's capacity unless configured otherwise, in events.
pub const DEFAULT_CAPACITY: usize = 64;

/// How a watch is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchConfig {
    /// Events the channel between the watch's task and its consumer holds (at least 1).
    pub capacity: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl WatchConfig {
    /// Hold at most `events` events (at least 1) for a consumer that has not taken them.
    pub fn with_capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }
}

/// Where a watch is, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchStatus {
    /// The client URL of the member the watch stream is on; `None` while it looks for one.
    pub member: Option<String>,
    /// The revision up to which etcd's history has been handed to the channel (events
    /// after it are still in etcd, or in flight).
    pub revision: i64,
    /// How many times the stream was resumed after a failure, on another member or the
    /// same one.
    pub resumed: u64,
    /// How many times the watch re-listed because etcd had compacted the history it needed.
    pub relists: u64,
}

/// Shared between the task and the handle.
type Status = Arc<Mutex<WatchStatus>>;

fn update(status: &Status, f: impl FnOnce(&mut WatchStatus)) {
    // A panic elsewhere while holding the lock leaves plain data: keep using it.
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut s);
}

/// A running watch: a stream of [`WatchEvent`]s (see the [module](self) for the
/// guarantees). Use [`Watch::next`] or it as a [`futures::Stream`]. Dropping it stops
/// everything it started.
///
/// An `Err` item reports trouble (etcd unreachable for longer than the timeout) while the
/// watch keeps trying; after an error that trying again cannot fix (permission denied,
/// authentication failed) the stream ends.
#[derive(Debug)]
pub struct Watch {
    events: mpsc::Receiver<Result<WatchEvent, Error>>,
    status: Status,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// The next event; `None` when the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, Error>> {
        self.events.recv().await
    }

    /// Where the watch is.
    pub fn status(&self) -> WatchStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The most events the channel holds.
    pub fn capacity(&self) -> usize {
        self.events.max_capacity()
    }

    /// Events waiting in the channel now (never more than [`Watch::capacity`]).
    pub fn buffered(&self) -> usize {
        self.events.len()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures::Stream for Watch {
    type Item = Result<WatchEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Store {
    /// Watch the objects `sel` matches, with the default [`WatchConfig`]: read them at one
    /// revision (the first event), then report every change after it. Fails if the first
    /// read fails; later failures are handled by the watch (see the [module](crate::watch)).
    /// Needs a Tokio runtime, on which it spawns its task.
    pub async fn watch(&self, sel: &Selector) -> Result<Watch, Error> {
        self.watch_with(sel, WatchConfig::default()).await
    }

    /// [`Store::watch`] with a [`WatchConfig`].
    pub async fn watch_with(&self, sel: &Selector, config: WatchConfig) -> Result<Watch, Error> {
        let prefix = sel.prefix(self.keyspace());
        let snap = self.read_prefix(&prefix).await?;
        let selection = Selection::from_snapshot(self.keyspace(), sel, &snap);
        let (tx, events) = mpsc::channel(config.capacity.max(1));
        let status: Status = Arc::new(Mutex::new(WatchStatus {
            revision: snap.revision,
            ..WatchStatus::default()
        }));
        // Capacity is at least one and nothing else was sent: this cannot fail.
        let _ = tx.try_send(Ok(WatchEvent::Snapshot(selection)));
        let first = self.members().active_member().await;
        let follower = follow::Follower::new(
            self.clone(),
            sel.clone(),
            prefix,
            snap.revision,
            first,
            tx,
            status.clone(),
        );
        Ok(Watch {
            events,
            status,
            task: tokio::spawn(follower.run()),
        })
    }
}
