//! The one round loop of the audited compare-and-swap writes: pool objects
//! ([`Writer::apply`](crate::Writer::apply), [`Writer::host`](crate::Writer::host), ending an
//! operation), objects of schema-defined types
//! ([`Writer::apply_typed`](crate::Writer::apply_typed),
//! [`Writer::apply_upgrade`](crate::Writer::apply_upgrade)) and single keys (the stop
//! switch). A write says what differs ([`Rounds`]: how a round is judged and committed, how
//! it is re-planned from a fresh read); the rules of the loop are written here, once:
//!
//! - a round is judged first (a refusal stops the write before anything of the round is
//!   recorded), then its intents are recorded (a failure to record them stops the write
//!   before the commit), then it is committed, then what landed is recorded (a failure to
//!   record that is the error only when the commit had none: what landed is never reported
//!   as not landed) ([`audited`]);
//! - a transaction that failed (not a lost compare) stops the write; its keys go in the end
//!   line as `unknown` (they may or may not have landed);
//! - what lost a race is re-read and re-planned, never written blindly, after a random pause
//!   that widens round after round ([`backoff`]), for at least [`MAX_ROUNDS`] rounds and
//!   [`CONTENDED_FOR`]; then the write gives up with [`Contention`] saying how many changes
//!   were left;
//! - one end line closes the write: the error that stopped it and the unknown keys
//!   ([`finish`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::audit::{AuditEntry, AuditSink};
use crate::error::{Contention, Error};
use crate::keys::Keyspace;
use crate::store::CommitReport;
use crate::write::Write;

/// How many times a change is re-applied to fresh data after losing a race, at least.
pub const MAX_ROUNDS: usize = 8;

/// How long a change keeps re-applying after lost races before it gives up with
/// [`Error::Conflict`]. Writers judged by a whole pool (the depool threshold) lose to any
/// change in the pool: ten hosts of one pool depooled at once take turns, each losing a few
/// rounds, and all that the threshold allows land.
pub const CONTENDED_FOR: Duration = Duration::from_secs(30);

/// One change of a write, as the loop handles it.
pub(crate) trait RoundChange {
    /// What names the change's object across re-reads.
    type Key: Ord;
    /// The change's object.
    fn key(&self) -> Self::Key;
    /// The compare-and-swap write that makes the change.
    fn write(&self, ks: &Keyspace) -> Write;
    /// Its audit entry (`write` is [`RoundChange::write`]; `revision` once it landed).
    fn entry(&self, ks: &Keyspace, write: &Write, revision: Option<i64>) -> AuditEntry;
}

/// A write the loop drives: what differs between kinds of writes.
pub(crate) trait Rounds {
    /// Its changes.
    type Change: RoundChange;
    /// What a judged round is committed under (the range guards of the depool threshold).
    type Guards;

    /// Judge a round before anything of it is recorded: refuse it, or say what it is to be
    /// committed under.
    async fn judge(&mut self, changes: &[Self::Change]) -> Result<Self::Guards, Error>;

    /// Commit a round: `writes`, made from `changes` index for index.
    async fn commit(
        &mut self,
        changes: &[Self::Change],
        writes: &[Write],
        guards: Self::Guards,
    ) -> CommitReport;

    /// After a lost race: the changes as they are to be made now, from a fresh read (the
    /// loop keeps those of the objects that lost). An error stops the write.
    async fn replan(&mut self) -> Result<Vec<Self::Change>, Error>;

    /// What kept changing, when the loop gives up with `left` changes not written.
    fn contended(&self, left: usize) -> Contention {
        Contention::Objects {
            count: left,
            during: CONTENDED_FOR,
        }
    }
}

/// What a write has done so far, across its rounds (and steps).
#[derive(Debug)]
pub(crate) struct Run<C> {
    /// The changes that landed, each with the revision that wrote it.
    pub applied: Vec<(C, i64)>,
    /// Keys whose transaction failed: they may or may not have landed.
    pub unknown: Vec<String>,
}

impl<C> Run<C> {
    /// Nothing done yet.
    pub fn new() -> Self {
        Run {
            applied: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

/// A write that stopped: what had landed, and why.
#[derive(Debug)]
pub(crate) struct Stopped<C> {
    /// The changes that landed before it stopped.
    pub applied: Vec<(C, i64)>,
    /// Why it stopped.
    pub error: Error,
}

/// Write `changes` through `w`, round after round (see the module docs), adding what lands
/// and what may have landed to `run`. Does not write the end line ([`finish`] does): a write
/// of several steps runs the loop once for each.
pub(crate) async fn rounds<R: Rounds>(
    w: &mut R,
    ks: &Keyspace,
    audit: &mut AuditSink,
    mut changes: Vec<R::Change>,
    run: &mut Run<R::Change>,
) -> Result<(), Error> {
    let started = Instant::now();
    for round in 0.. {
        if changes.is_empty() {
            return Ok(());
        }
        if round >= MAX_ROUNDS && started.elapsed() > CONTENDED_FOR {
            break;
        }
        if round > 0 {
            tokio::time::sleep(backoff(round)).await;
        }
        let guards = w.judge(&changes).await?;
        let writes: Vec<Write> = changes.iter().map(|c| c.write(ks)).collect();
        let entry = |i: usize, revision| {
            let (c, write) = changes.get(i).zip(writes.get(i))?;
            Some(c.entry(ks, write, revision))
        };
        let report = audited(
            audit,
            writes.len(),
            entry,
            w.commit(&changes, &writes, guards),
        )
        .await;
        let mut slots: Vec<Option<R::Change>> = changes.into_iter().map(Some).collect();
        for &(i, revision) in &report.applied {
            if let Some(c) = slots.get_mut(i).and_then(Option::take) {
                run.applied.push((c, revision));
            }
        }
        if let Some(error) = report.error {
            run.unknown.extend(
                report
                    .failed
                    .iter()
                    .filter_map(|&i| writes.get(i))
                    .map(|w| w.key().to_string()),
            );
            return Err(error);
        }
        let lost: BTreeSet<<R::Change as RoundChange>::Key> = report
            .conflicted
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
            .map(|c| c.key())
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        changes = w
            .replan()
            .await?
            .into_iter()
            .filter(|c| lost.contains(&c.key()))
            .collect();
    }
    Err(Error::Conflict(w.contended(changes.len())))
}

/// Close a write with its end line: the error that stopped it (or the end line's own), what
/// had landed either way.
pub(crate) fn finish<C>(
    audit: &mut AuditSink,
    result: Result<(), Error>,
    run: Run<C>,
) -> Result<Vec<(C, i64)>, Stopped<C>> {
    let error = result.as_ref().err().map(|e| crate::audit::error_chain(e));
    let ended = audit.end(error.as_deref(), &run.unknown);
    match (result, ended) {
        (Ok(()), Ok(())) => Ok(run.applied),
        (Ok(()), Err(error)) | (Err(error), _) => Err(Stopped {
            applied: run.applied,
            error,
        }),
    }
}

/// Commit one round, recorded around its commit: the intents of its `count` writes (entry
/// `i` of each by `entry(i, None)`) before `commit` runs (if they cannot be recorded, it does
/// not run, and the report says why), those that landed after (`entry(i, Some(revision))`).
/// A failure to record what landed is the report's error only if it has none: the writes
/// landed, and the report must not say otherwise. Without a log nothing is made (an entry
/// parses values into JSON: for a sync of 100,000 objects, ~60 MB).
pub(crate) async fn audited(
    audit: &mut AuditSink,
    count: usize,
    entry: impl Fn(usize, Option<i64>) -> Option<AuditEntry>,
    commit: impl Future<Output = CommitReport>,
) -> CommitReport {
    if !audit.is_enabled() {
        return commit.await;
    }
    let intents: Vec<AuditEntry> = (0..count).filter_map(|i| entry(i, None)).collect();
    if let Err(e) = audit.intent(&intents) {
        return CommitReport {
            error: Some(e),
            ..CommitReport::default()
        };
    }
    let mut report = commit.await;
    let landed: Vec<AuditEntry> = report
        .applied
        .iter()
        .filter_map(|&(i, revision)| entry(i, Some(revision)))
        .collect();
    if let Err(e) = audit.applied(&landed) {
        report.error.get_or_insert(e);
    }
    report
}

/// The value a write puts (`None` for a delete).
pub(crate) fn after(w: &Write) -> Option<&str> {
    match w {
        Write::Put { value, .. } => Some(value.as_str()),
        Write::Delete { .. } => None,
    }
}

/// A random pause before re-applying after the `round`th lost race: up to 2 ms, doubling
/// each round to at most 1 s, so that writers contending for one pool spread out (the
/// more of them, the more rounds they lose, the wider they spread).
fn backoff(round: usize) -> Duration {
    let cap_us = 2_000u64 << round.min(9);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mix =
        u64::from(seed ^ std::process::id().rotate_left(13)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Duration::from_micros((mix >> 11) % cap_us + 1)
}
