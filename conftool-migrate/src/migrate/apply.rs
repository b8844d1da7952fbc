//! Applying a [`MigrationPlan`] through the audited write path.
//!
//! The migration's writes are planned writes like the sync's: they go through
//! [`conftool_core::PlannedWrites::commit`], so every key is recorded in the audit trail (intent before
//! the commit, what landed after, an end line) under the tool's actor and reason. They are
//! not judged by the pool rules (depool thresholds): a migration copies state as it is, it
//! does not change it.
//!
//! Every write is compare-and-swap guarded, so a run killed part-way leaves only whole
//! transactions, and a re-run converges: what landed is then "identical", the rest is
//! created. A guard that fails (someone wrote to v3 meanwhile) costs a re-read and a re-plan,
//! for a few rounds; a key that turned "differing" meanwhile stops the run unless
//! overwriting was asked for.

use super::{plan, MigrationPlan, Overwrite};
use crate::v2::V2Read;
use conftool_core::Error as StoreError;
use conftool_core::Writer;

/// Rounds of re-read and re-plan after lost compare-and-swap races.
const MAX_ROUNDS: usize = 5;

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Keys created.
    pub created: usize,
    /// Keys whose differing v3 value was replaced.
    pub overwritten: usize,
    /// Commit rounds (1 unless a race made it re-plan).
    pub rounds: usize,
    /// The revision of the last transaction that landed (0: none).
    pub revision: i64,
}

/// Why [`apply`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Keys differ in v3 and overwriting was not asked for: nothing more is written.
    #[error(
        "{count} keys in v3 differ from v2 (e.g. {})",
        conftool_core::escape_controls(example)
    )]
    Differing {
        /// How many.
        count: usize,
        /// The first one.
        example: String,
    },
    /// A store error: what landed before it is in `done` (and in the audit trail).
    #[error("stopped after {} keys were written: {source}", done.created + done.overwritten)]
    Stopped {
        /// What landed.
        done: Migrated,
        /// Why it stopped.
        source: StoreError,
    },
    /// Concurrent writers kept changing v3 under the migration.
    #[error(
        "v3 keys kept changing under the migration ({rounds} rounds); freeze writers and re-run"
    )]
    Unsettled {
        /// Rounds tried.
        rounds: usize,
    },
}

/// Differing keys refuse the run, nothing written; the rest happened at run time.
impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        match self {
            Error::Differing { .. } => conftool_core::ErrorClass::BadInput,
            _ => conftool_core::ErrorClass::Failure,
        }
    }
}

/// Write `first` (a plan of `v2` against v3 under `prefix`) through `writer`: creates, and
/// overwrites of differing keys if `overwrite` says so. Refuses, before writing anything,
/// when keys differ and `overwrite` is [`Overwrite::Refuse`].
pub async fn apply(
    writer: &mut Writer<'_>,
    prefix: &str,
    v2: &V2Read,
    first: MigrationPlan,
    overwrite: Overwrite,
) -> Result<Migrated, Error> {
    let store = writer.store();
    let mut done = Migrated::default();
    let mut plan_now = first;
    let mut op = writer.planned();
    let result = loop {
        if overwrite == Overwrite::Refuse {
            if let Some(d) = plan_now.differing.first() {
                break Err(Error::Differing {
                    count: plan_now.differing.len(),
                    example: d.key.clone(),
                });
            }
        }
        let writes = plan_now.writes(overwrite);
        if writes.is_empty() {
            break Ok(());
        }
        if done.rounds == MAX_ROUNDS {
            break Err(Error::Unsettled {
                rounds: done.rounds,
            });
        }
        done.rounds += 1;
        let borrowed: Vec<_> = writes
            .iter()
            .map(|(w, before)| (w.clone(), before.as_deref()))
            .collect();
        let report = op.commit(&borrowed).await;
        for &(i, rev) in &report.applied {
            if writes[i].1.is_some() {
                done.overwritten += 1;
            } else {
                done.created += 1;
            }
            done.revision = done.revision.max(rev);
        }
        if let Some(source) = report.error {
            let unknown: Vec<String> = report
                .failed
                .iter()
                .map(|&i| writes[i].0.key().to_string())
                .collect();
            let _ = op.finish(Some(&source.to_string()), &unknown);
            return Err(Error::Stopped { done, source });
        }
        if report.conflicted.is_empty() {
            break Ok(());
        }
        // Someone wrote to v3 meanwhile: re-read, re-plan what is left.
        match store.read_prefix(&v3_prefix(prefix)).await {
            Ok(snap) => plan_now = plan(v2, &snap),
            Err(source) => {
                let _ = op.finish(Some(&source.to_string()), &[]);
                return Err(Error::Stopped { done, source });
            }
        }
    };
    let why = result.as_ref().err().map(ToString::to_string);
    if let Err(source) = op.finish(why.as_deref(), &[]) {
        if result.is_ok() {
            return Err(Error::Stopped { done, source });
        }
    }
    result.map(|()| done)
}

/// The v3 range that holds v2's `prefix` subtree: `/conftool` → `/conftool/`.
pub fn v3_prefix(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}
