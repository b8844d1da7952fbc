//! The etcd side of a watch: one task that follows the history of a prefix on one member at
//! a time, hands events to the consumer's channel, and resumes, fails over or re-lists as
//! the [module](super) header explains.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, EventType, KvClient, WatchOptions, WatchResponse};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::event::{by_revision, RawEvent};
use super::{update, Status, WatchEvent};
use crate::endpoints::{probe, silent, Tried};
use crate::error::Error;
use crate::selection::Selection;
use crate::selector::Selector;
use crate::store::{prefix_end, Store};

/// The HTTP/2 ping interval of a watch connection: over etcd's `--grpc-keepalive-min-time`
/// (5 s by default) with room for timer slack, so that a quiet watch is never cut off.
const PING_INTERVAL: Duration = Duration::from_secs(10);
const _: () = assert!(
    PING_INTERVAL.as_secs() > 5,
    "etcd's --grpc-keepalive-min-time"
);
/// The shortest and longest interval between two proofs of life of the watch's member.
const PROOF_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));
/// The first and the longest pause between two rounds of attempts while no member answers.
const PAUSES: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));
/// The largest etcd watch response accepted (etcd batches up to 1,000 revisions in one).
const MAX_RESPONSE: usize = 256 << 20;

/// Why following a member stopped.
enum Ended {
    /// The consumer is gone.
    Closed,
    /// etcd no longer has the history the watch needs.
    Compacted,
    /// The member failed: `what` happened to member `idx`.
    Broken { idx: usize, what: String },
    /// A definite refusal that no other member would change.
    Refused(Error),
}

/// The consumer is gone, or the watch ended with an error already sent.
struct Stop;

/// A run of failures (no member reachable, a read that fails, streams that break soon after
/// they start), how long to pause before the next attempt, and when to tell the consumer.
struct Outage {
    report_at: Instant,
    pause: Duration,
}

impl Outage {
    fn new(timeout: Duration) -> Outage {
        Outage {
            report_at: Instant::now() + timeout,
            pause: PAUSES.0,
        }
    }

    /// Whether the outage has lasted long enough at `now` to report (again): once per
    /// `timeout`.
    fn due(&mut self, now: Instant, timeout: Duration) -> bool {
        if now < self.report_at {
            return false;
        }
        self.report_at = now + timeout;
        true
    }

    /// How long to wait before the next round: longer each time, up to a second.
    fn next_pause(&mut self) -> Duration {
        let pause = self.pause;
        self.pause = (self.pause * 2).min(PAUSES.1);
        pause
    }
}

/// The task's state.
pub(super) struct Follower {
    store: Store,
    sel: Selector,
    prefix: String,
    /// The last revision handed to the consumer or skipped as not concerning it.
    last: i64,
    /// The member to try first.
    first: usize,
    /// Options of the watch's own connections.
    opts: ConnectOptions,
    tx: mpsc::Sender<Result<WatchEvent, Error>>,
    status: Status,
    /// Failures since the watch last ran, for the report of an outage.
    tried: Tried,
    /// The outage under way, if any.
    outage: Option<Outage>,
}

impl Follower {
    pub(super) fn new(
        store: Store,
        sel: Selector,
        prefix: String,
        last: i64,
        first: usize,
        tx: mpsc::Sender<Result<WatchEvent, Error>>,
        status: Status,
    ) -> Follower {
        let budget = store.members().budget();
        let opts = store
            .members()
            .options()
            .clone()
            .with_keep_alive(PING_INTERVAL, budget.timeout)
            .with_keep_alive_while_idle(false)
            .with_require_leader(true);
        Follower {
            store,
            sel,
            prefix,
            last,
            first,
            opts,
            tx,
            status,
            tried: Tried::default(),
            outage: None,
        }
    }

    /// Follow until the consumer is gone or a definite refusal ends the watch.
    pub(super) async fn run(mut self) {
        let timeout = self.store.members().budget().timeout;
        loop {
            let Ok((idx, client)) = self.connect().await else {
                return;
            };
            let started = Instant::now();
            let ended = self.follow(idx, client).await;
            // A stream that served for a while ends any outage before it.
            let served = started.elapsed() >= timeout;
            if served {
                self.outage = None;
            }
            match ended {
                Ended::Closed => return,
                Ended::Refused(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
                Ended::Compacted => {
                    if self.relist().await.is_err() {
                        return;
                    }
                    // The member was fine: stay on it.
                    self.first = idx;
                }
                Ended::Broken { idx, what } => {
                    let urls = self.store.members().urls();
                    self.tried.record(&urls[idx], what);
                    self.first = (idx + 1) % urls.len();
                    update(&self.status, |s| {
                        s.member = None;
                        s.resumed += 1;
                    });
                    // A stream that had served for a while fails over at once; one that
                    // breaks soon after it starts (a member that keeps refusing the watch)
                    // is part of an outage: pause, and report it if it lasts.
                    if !served && self.trouble(self.tried.clone().into_error()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// One more failure of an outage: report it to the consumer if the outage has lasted a
    /// timeout since it began or was last reported, then pause (longer each time).
    async fn trouble(&mut self, e: Error) -> Result<(), Stop> {
        let timeout = self.store.members().budget().timeout;
        let outage = self.outage.get_or_insert_with(|| Outage::new(timeout));
        let report = outage.due(Instant::now(), timeout);
        let pause = outage.next_pause();
        if report {
            self.tx.send(Err(e)).await.map_err(|_| Stop)?;
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }

    /// A member that answers, with a connection of the watch's own, trying every member in
    /// rounds until one does.
    async fn connect(&mut self) -> Result<(usize, Client), Stop> {
        let store = self.store.clone();
        let members = store.members();
        let timeout = members.budget().timeout;
        loop {
            let deadline = Instant::now() + timeout;
            let mut tried = std::mem::take(&mut self.tried);
            match members
                .race(self.first, deadline, &mut tried, &self.opts)
                .await
            {
                Ok(found) => return Ok(found),
                Err(e @ Error::Unavailable { .. }) => self.trouble(e).await?,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return Err(Stop);
                }
            }
        }
    }

    /// Read the prefix again after a compaction and hand it over as a snapshot.
    async fn relist(&mut self) -> Result<(), Stop> {
        loop {
            match self.store.read_prefix(&self.prefix).await {
                Ok(snap) => {
                    let ks = self.store.keyspace();
                    let selection = Selection::from_snapshot(ks, &self.sel, &snap);
                    self.send(WatchEvent::Snapshot(selection)).await?;
                    self.last = self.last.max(snap.revision);
                    update(&self.status, |s| {
                        s.relists += 1;
                        s.revision = snap.revision;
                    });
                    return Ok(());
                }
                Err(e @ Error::Unavailable { .. }) => self.trouble(e).await?,
                Err(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return Err(Stop);
                }
            }
        }
    }

    /// Watch on member `idx` from the revision after the last one, until something ends it.
    async fn follow(&mut self, idx: usize, client: Client) -> Ended {
        let members = self.store.members();
        let url = members.urls()[idx].clone();
        let timeout = members.budget().timeout;
        let options = WatchOptions::new()
            .with_range(prefix_end(self.prefix.as_bytes()))
            .with_start_revision(self.last + 1);
        let mut watch_client = client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE);
        let started = Instant::now();
        let watch = tokio::time::timeout(
            timeout,
            watch_client.watch(self.prefix.as_str(), Some(options)),
        )
        .await;
        let stream = match watch {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return self.failed(idx, &e, started.elapsed()),
            Err(_) => {
                let what = silent(started.elapsed(), "stalled, or no quorum");
                return Ended::Broken { idx, what };
            }
        };
        // Dropping the request side ends the watch on etcd's side: keep it.
        let (_requests, mut responses) = stream.split();
        update(&self.status, |s| s.member = Some(url.clone()));
        let alive = alive(client.kv_client(), timeout);
        tokio::pin!(alive);
        loop {
            tokio::select! {
                message = responses.message() => match message {
                    Ok(Some(resp)) => {
                        if let Some(end) = self.handle(idx, &url, resp).await {
                            return end;
                        }
                    }
                    Ok(None) => {
                        let what = "the member ended the watch stream".to_string();
                        return Ended::Broken { idx, what };
                    }
                    Err(e) => return self.failed(idx, &e, started.elapsed()),
                },
                what = &mut alive => return Ended::Broken { idx, what },
            }
        }
    }

    /// One response of the watch stream: hand its changes over; `Some` when the stream is
    /// over.
    async fn handle(&mut self, idx: usize, url: &str, resp: WatchResponse) -> Option<Ended> {
        // etcd 3.4 sets the compaction revision; the reason is a fallback.
        if resp.compact_revision() != 0 || resp.cancel_reason().contains("compacted") {
            return Some(Ended::Compacted);
        }
        if resp.canceled() {
            let reason = resp.cancel_reason();
            if reason.contains("permission denied") {
                return Some(Ended::Refused(Error::Etcd {
                    endpoint: url.to_string(),
                    kind: crate::error::EtcdFailure::PermissionDenied,
                    message: format!("permission denied: {reason}"),
                }));
            }
            let what = format!("the member cancelled the watch: {reason}");
            return Some(Ended::Broken { idx, what });
        }
        let events = resp.events().iter().filter_map(|ev| {
            let kv = ev.kv()?;
            Some(RawEvent {
                delete: ev.event_type() == EventType::Delete,
                key: kv.key(),
                value: kv.value(),
                mod_revision: kv.mod_revision(),
            })
        });
        let revisions = by_revision(self.store.keyspace(), &self.sel, events);
        for r in revisions {
            // Never twice: etcd resumes after `last`, but a revision at or before it would
            // be a duplicate.
            if r.revision <= self.last {
                continue;
            }
            if !r.changes.is_empty() {
                let event = WatchEvent::Changes {
                    revision: r.revision,
                    changes: r.changes,
                };
                if self.send(event).await.is_err() {
                    return Some(Ended::Closed);
                }
            }
            self.last = r.revision;
            update(&self.status, |s| s.revision = r.revision);
        }
        None
    }

    /// How a failed call to member `idx` ends following it: a refusal ends the watch,
    /// anything else moves it to another member.
    fn failed(&self, idx: usize, e: &etcd_client::Error, waited: Duration) -> Ended {
        let members = self.store.members();
        if refusal(e) {
            return Ended::Refused(members.answer(idx, e));
        }
        Ended::Broken {
            idx,
            what: members.failure(idx, e, waited),
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Stop> {
        self.tx.send(Ok(event)).await.map_err(|_| Stop)
    }
}

/// Whether an error is a refusal that every member would give: permission or credentials.
/// Anything else that ends a stream (a reset, an odd status) is worth another member.
fn refusal(e: &etcd_client::Error) -> bool {
    crate::error::EtcdFailure::of(e).is_credentials()
}

/// Prove the member alive every `timeout` (clamped): a linearizable read answered within
/// `timeout`. Returns what went wrong when one is not.
async fn alive(mut kv: KvClient, timeout: Duration) -> String {
    let every = timeout.clamp(PROOF_BOUNDS.0, PROOF_BOUNDS.1);
    loop {
        tokio::time::sleep(every).await;
        let started = Instant::now();
        match tokio::time::timeout(timeout, probe(&mut kv)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return format!("proof of life failed: {e}"),
            Err(_) => return silent(started.elapsed(), "proof of life: stalled, or no quorum"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, msg: &str) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg))
    }

    #[test]
    fn only_permission_and_credential_failures_end_a_watch() {
        for e in [
            status(
                tonic::Code::PermissionDenied,
                "etcdserver: permission denied",
            ),
            status(
                tonic::Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password",
            ),
            status(
                tonic::Code::InvalidArgument,
                "etcdserver: user name is empty",
            ),
        ] {
            assert!(refusal(&e) && !crate::endpoints::retryable(&e), "{e}");
        }
        for e in [
            status(tonic::Code::Unavailable, "etcdserver: no leader"),
            status(tonic::Code::Internal, "h2 protocol error"),
            status(tonic::Code::Unknown, "stream reset"),
        ] {
            assert!(!refusal(&e), "{e}");
        }
    }

    #[test]
    fn outages_are_reported_once_per_timeout_with_growing_pauses() {
        let timeout = Duration::from_secs(5);
        let mut o = Outage::new(timeout);
        let start = Instant::now();
        assert!(!o.due(start, timeout), "not at once");
        let pauses: Vec<u128> = (0..8).map(|_| o.next_pause().as_millis()).collect();
        assert_eq!(pauses, vec![50, 100, 200, 400, 800, 1000, 1000, 1000]);
        let later = start + timeout;
        assert!(o.due(later, timeout));
        assert!(
            !o.due(later + timeout / 2, timeout),
            "not again within a timeout"
        );
        assert!(o.due(later + timeout, timeout));
    }
}
