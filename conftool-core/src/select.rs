//! Selecting objects and changing them safely.
//!
//! A selection is one range read (narrowed to the selector's literal prefix). A change is a
//! list of compare-and-swap writes on the revisions that were read; objects already in the
//! requested state are not rewritten. When a concurrent writer wins a race, the losing
//! objects are re-read and the edit is applied again to their fresh state, never blindly.

use std::collections::BTreeSet;

use crate::action::Edit;
use crate::audit::AuditSink;
use crate::error::Error;
use crate::selection::{Applied, Change, Selected, Selection};
use crate::selector::Selector;
use crate::store::Store;
use crate::write::Write;

/// How many times a change is re-applied to fresh data after losing a race.
pub const MAX_ROUNDS: usize = 8;

/// A change that stopped part-way: what had landed before it stopped, and why.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ApplyError {
    /// Changes that were written before the failure (audit them!).
    pub applied: Vec<Applied>,
    /// Why it stopped.
    pub error: Error,
}

/// Whether a list of changes must land all together or may land in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// One transaction: all or nothing.
    All,
    /// Batched transactions (for large selections).
    Batched,
}

impl Store {
    /// Read the objects a selector matches: one range read under its narrowest prefix.
    pub async fn select(&self, sel: &Selector) -> Result<Selection, Error> {
        let snap = self.read_prefix(&sel.prefix(self.keyspace())).await?;
        Ok(Selection::from_snapshot(self.keyspace(), sel, &snap))
    }

    /// Write `changes` (computed from a selection by `edit`) with compare-and-swap. Objects
    /// that changed concurrently are re-read and `edit` is applied to their fresh state, up
    /// to [`MAX_ROUNDS`] times; then the change fails with [`Error::Conflict`]. On failure the
    /// [`ApplyError`] still lists the changes that had landed.
    ///
    /// Every round is recorded in `audit`: intents before its commit (a failure to record
    /// them stops the change before that commit), what landed after it, and one end line.
    pub(crate) async fn apply(
        &self,
        sel: &Selector,
        changes: Vec<Change>,
        edit: impl Fn(&Selected) -> Option<Edit>,
        atomicity: Atomicity,
        audit: &mut AuditSink,
    ) -> Result<Vec<Applied>, ApplyError> {
        let mut unknown = Vec::new();
        let result = self
            .apply_rounds(sel, changes, edit, atomicity, audit, &mut unknown)
            .await;
        let error = result
            .as_ref()
            .err()
            .map(|e| crate::audit::error_chain(&e.error));
        let ended = audit.end(error.as_deref(), &unknown);
        match (result, ended) {
            (Ok(applied), Ok(())) => Ok(applied),
            (Ok(applied), Err(error)) => Err(ApplyError { applied, error }),
            (Err(e), _) => Err(e),
        }
    }

    async fn apply_rounds(
        &self,
        sel: &Selector,
        mut changes: Vec<Change>,
        edit: impl Fn(&Selected) -> Option<Edit>,
        atomicity: Atomicity,
        audit: &mut AuditSink,
        unknown: &mut Vec<String>,
    ) -> Result<Vec<Applied>, ApplyError> {
        let ks = self.keyspace().clone();
        let mut applied = Vec::new();
        for _round in 0..MAX_ROUNDS {
            if changes.is_empty() {
                return Ok(applied);
            }
            if let Err(error) = audit.intent_changes(&ks, &changes) {
                return Err(ApplyError { applied, error });
            }
            let writes: Vec<Write> = changes.iter().map(|c| c.write(&ks)).collect();
            let report = match atomicity {
                Atomicity::All => self.commit_atomic_partial(&writes).await,
                Atomicity::Batched => self.commit_partial(&writes).await,
            };
            let mut lost = BTreeSet::new();
            let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
            let first_new = applied.len();
            for (i, revision) in report.applied {
                if let Some(change) = slots[i].take() {
                    applied.push(Applied { change, revision });
                }
            }
            let logged = audit.applied_changes(&ks, &applied[first_new..]);
            if let Some(error) = report.error {
                unknown.extend(report.failed.iter().map(|&i| writes[i].key().to_string()));
                return Err(ApplyError { applied, error });
            }
            if let Err(error) = logged {
                return Err(ApplyError { applied, error });
            }
            for i in report.conflicted {
                if let Some(c) = slots[i].take() {
                    lost.insert(c.key);
                }
            }
            if lost.is_empty() {
                return Ok(applied);
            }
            let fresh = match self.select(sel).await {
                Ok(f) => f,
                Err(error) => return Err(ApplyError { applied, error }),
            };
            changes = fresh
                .changes(&edit)
                .into_iter()
                .filter(|c| lost.contains(&c.key))
                .collect();
        }
        let error = Error::Conflict(format!(
            "{} objects kept changing concurrently ({MAX_ROUNDS} attempts) and were not written",
            changes.len()
        ));
        Err(ApplyError { applied, error })
    }
}
