//! Selecting objects and changing them safely.
//!
//! A selection is one range read (narrowed to the selector's literal prefix). A change is a
//! list of compare-and-swap writes on the revisions that were read; objects already in the
//! requested state are not rewritten. When a concurrent writer wins a race, the losing
//! objects are re-read and the edit is applied again to their fresh state, never blindly.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Edit, SetFields};
use crate::audit::AuditSink;
use crate::error::Error;
use crate::guarded::OpHandle;
use crate::model::{ObjectKey, PoolKey, Pooled};
use crate::rules::{
    below_threshold, leaves_alone, lowers_serving, Overrides, PoolMembers, Refusal,
};
use crate::selection::{Applied, Change, Selected, Selection};
use crate::selector::Selector;
use crate::store::Store;
use crate::write::{RangeGuard, Write};

/// How many times a change is re-applied to fresh data after losing a race, at least.
pub const MAX_ROUNDS: usize = 8;

/// How long a change keeps re-applying after lost races before it gives up with
/// [`Error::Conflict`]. Writers judged by a whole pool (the depool threshold) lose to any
/// change in the pool: ten hosts of one pool depooled at once take turns, each losing a few
/// rounds, and all that the threshold allows land.
pub const CONTENDED_FOR: std::time::Duration = std::time::Duration::from_secs(30);

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

    /// Write `changes` (computed from a selection by `edit`) with compare-and-swap, under the
    /// rules `overrides` does not lift (see [`crate::rules`]):
    ///
    /// - a write by pattern leaves `inactive` objects alone;
    /// - a change that lowers a pool's serving count is judged against the whole pool, and
    ///   committed with a compare over the pool's key range at the revision judged, so a
    ///   concurrent change anywhere in the pool makes it re-read and re-judge;
    /// - a serving object is depooled before it is deleted (a deletion is invisible to a range
    ///   compare; a depool is not), then deleted;
    /// - with an operation open, its record is updated in the same transactions.
    ///
    /// Objects that changed concurrently are re-read and `edit` applied to their fresh state,
    /// up to [`MAX_ROUNDS`] times; then the change fails with [`Error::Conflict`]. On failure
    /// the [`ApplyError`] still lists the changes that had landed.
    ///
    /// Every round is recorded in `audit`: intents before its commit (a failure to record
    /// them stops the change before that commit), what landed after it, and one end line.
    ///
    /// `judged`: the pools as the caller read them to plan `changes` (each with the revision
    /// it was read at), if it did: the first round judges by them instead of reading them
    /// again, and commits under a compare at their revisions, so a change in a pool since
    /// that read fails the transaction and the next round re-reads and re-judges.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply(
        &self,
        scope: Scope<'_>,
        changes: Vec<Change>,
        edit: EditFn<'_>,
        atomicity: Atomicity,
        overrides: Overrides,
        audit: &mut AuditSink,
        mut op: Option<&mut OpHandle>,
        judged: Option<&BTreeMap<PoolKey, PoolMembers>>,
    ) -> Result<Vec<Applied>, ApplyError> {
        let enforce = !overrides.allow_below_threshold;
        let held = |o: &Selected, e: &Edit| match scope {
            Scope::Selector(sel) => {
                leaves_alone(sel, &o.key.node, &o.state, e, overrides.include_inactive)
            }
            // Objects named one by one are named exactly.
            Scope::Keys(_) => false,
        };
        let first_step: BoxedEdit<'_> = Box::new(|o: &Selected| {
            let e = edit(o)?;
            if held(o, &e) {
                return None;
            }
            match e {
                Edit::Delete if enforce && o.state.serving() => Some(depool()),
                e => Some(e),
            }
        });
        // The caller's list, through the same rules (it was made by `edit` from these states).
        let given = Selection {
            revision: 0,
            objects: changes.iter().map(selected).collect(),
            malformed: Vec::new(),
            unreadable: Vec::new(),
        };
        let deferred: BTreeSet<ObjectKey> = changes
            .iter()
            .filter(|c| enforce && c.after.is_none() && c.before.serving())
            .map(|c| c.key.clone())
            .collect();
        let changes = given.changes(&first_step);
        let mut run = Run {
            applied: Vec::new(),
            unknown: Vec::new(),
        };
        let mut result = self
            .apply_rounds(
                scope,
                changes,
                &*first_step,
                atomicity,
                enforce,
                audit,
                op.as_deref_mut(),
                &mut run,
                judged,
            )
            .await;
        if result.is_ok() && !deferred.is_empty() {
            // The depooled objects, now deleted (they no longer serve: no pool to judge).
            let deferred = &deferred;
            let second_step: BoxedEdit<'_> = Box::new(move |o: &Selected| {
                if !deferred.contains(&o.key) {
                    return None;
                }
                edit(o).filter(|e| *e == Edit::Delete)
            });
            result = match self.reread(scope).await {
                Ok(fresh) => {
                    let changes = fresh.changes(&*second_step);
                    self.apply_rounds(
                        scope,
                        changes,
                        &*second_step,
                        atomicity,
                        enforce,
                        audit,
                        op,
                        &mut run,
                        None,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
        }
        let error = result.as_ref().err().map(|e| crate::audit::error_chain(e));
        let ended = audit.end(error.as_deref(), &run.unknown);
        match (result, ended) {
            (Ok(()), Ok(())) => Ok(run.applied),
            (Ok(()), Err(error)) | (Err(error), _) => Err(ApplyError {
                applied: run.applied,
                error,
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_rounds(
        &self,
        scope: Scope<'_>,
        mut changes: Vec<Change>,
        edit: EditFn<'_>,
        atomicity: Atomicity,
        enforce: bool,
        audit: &mut AuditSink,
        mut op: Option<&mut OpHandle>,
        run: &mut Run,
        mut judged: Option<&BTreeMap<PoolKey, PoolMembers>>,
    ) -> Result<(), Error> {
        let ks = self.keyspace().clone();
        let started = std::time::Instant::now();
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
            let ranges = if enforce {
                // The caller's read of the pools serves the first round only.
                match judged.take() {
                    Some(pools) => match judge_by(self.keyspace(), pools, &changes) {
                        Some(judgement) => judgement?,
                        None => self.judge(&changes).await?,
                    },
                    None => self.judge(&changes).await?,
                }
            } else {
                Vec::new()
            };
            audit.intent_changes(&ks, &changes)?;
            let writes: Vec<Write> = changes.iter().map(|c| c.write(&ks)).collect();
            let report = match (atomicity, ranges.is_empty() && op.is_none()) {
                (Atomicity::All, true) => self.commit_atomic_partial(&writes).await,
                (Atomicity::Batched, true) => self.commit_partial(&writes).await,
                (_, false) => {
                    self.commit_guarded(&writes, &changes, &ranges, op.as_deref_mut(), atomicity)
                        .await
                }
            };
            let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
            let first_new = run.applied.len();
            for (i, revision) in report.applied {
                if let Some(change) = slots[i].take() {
                    run.applied.push(Applied { change, revision });
                }
            }
            let logged = audit.applied_changes(&ks, &run.applied[first_new..]);
            if let Some(error) = report.error {
                run.unknown
                    .extend(report.failed.iter().map(|&i| writes[i].key().to_string()));
                return Err(error);
            }
            logged?;
            let lost: BTreeSet<ObjectKey> = report
                .conflicted
                .iter()
                .filter_map(|&i| slots[i].take().map(|c| c.key))
                .collect();
            if lost.is_empty() {
                return Ok(());
            }
            if let Some(h) = op.as_deref_mut() {
                self.refresh_operation(h).await?;
            }
            let fresh = self.reread(scope).await?;
            changes = fresh
                .changes(edit)
                .into_iter()
                .filter(|c| lost.contains(&c.key))
                .collect();
        }
        Err(Error::Conflict(crate::Contention::Objects {
            count: changes.len(),
            during: CONTENDED_FOR,
        }))
    }

    /// Judge `changes` by the pools whose serving count they lower: refused if they leave one
    /// below its limits; else the range guards to commit them under.
    pub(crate) async fn judge(&self, changes: &[Change]) -> Result<Vec<RangeGuard>, Error> {
        let pools = lowered_pools(changes);
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        let members = self.pool_members(&pools).await?;
        guards(self.keyspace(), &pools, &members, changes)
    }
}

/// The pools whose serving count `changes` lower.
fn lowered_pools(changes: &[Change]) -> BTreeSet<PoolKey> {
    changes
        .iter()
        .filter(|c| lowers_serving(c))
        .map(|c| c.key.pool.clone())
        .collect()
}

/// [`Store::judge`] by pools already read (`members`), or `None` if one of the pools to
/// judge is not among them (it must be read).
fn judge_by(
    ks: &crate::keys::Keyspace,
    members: &BTreeMap<PoolKey, PoolMembers>,
    changes: &[Change],
) -> Option<Result<Vec<RangeGuard>, Error>> {
    let pools = lowered_pools(changes);
    if !pools.iter().all(|p| members.contains_key(p)) {
        return None;
    }
    if pools.is_empty() {
        return Some(Ok(Vec::new()));
    }
    Some(guards(ks, &pools, members, changes))
}

/// Refused if `changes` leave one of `pools` (as `members` holds them) below its limits;
/// else a compare over each pool's range at the revision it was read at.
fn guards(
    ks: &crate::keys::Keyspace,
    pools: &BTreeSet<PoolKey>,
    members: &BTreeMap<PoolKey, PoolMembers>,
    changes: &[Change],
) -> Result<Vec<RangeGuard>, Error> {
    let below = below_threshold(members, changes);
    if !below.is_empty() {
        return Err(Refusal::BelowThreshold(below).into());
    }
    Ok(pools
        .iter()
        .map(|p| RangeGuard {
            prefix: ks.pool_prefix(p),
            revision: members.get(p).map_or(0, |m| m.revision),
        })
        .collect())
}

/// An edit as the write path carries it (a trait object, so that the futures holding it are
/// `Send` whatever the caller's closure borrows).
pub(crate) type EditFn<'a> = &'a (dyn Fn(&Selected) -> Option<Edit> + Send + Sync);

/// An edit made by the write path itself, owned.
type BoxedEdit<'a> = Box<dyn Fn(&Selected) -> Option<Edit> + Send + Sync + 'a>;

/// What a write re-reads after losing a race: what its selector selects, or the objects it
/// names one by one (ending an operation).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Objects a selector selects.
    Selector(&'a Selector),
    /// These objects (named exactly, so no pattern rule applies).
    Keys(&'a BTreeSet<ObjectKey>),
}

impl Store {
    /// Read `scope` again: one range read for a selector, point reads for keys.
    async fn reread(&self, scope: Scope<'_>) -> Result<Selection, Error> {
        match scope {
            Scope::Selector(sel) => self.select(sel).await,
            Scope::Keys(keys) => self.read_objects(keys).await,
        }
    }
}

/// What an apply has done so far, across its rounds and steps.
struct Run {
    applied: Vec<Applied>,
    unknown: Vec<String>,
}

/// A random pause before re-applying after the `round`th lost race: up to 2 ms, doubling
/// each round to at most 1 s, so that writers contending for one pool spread out (the
/// more of them, the more rounds they lose, the wider they spread).
fn backoff(round: usize) -> std::time::Duration {
    let cap_us = 2_000u64 << round.min(9);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mix =
        u64::from(seed ^ std::process::id().rotate_left(13)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    std::time::Duration::from_micros((mix >> 11) % cap_us + 1)
}

/// A change's object as it was read.
fn selected(c: &Change) -> Selected {
    Selected {
        key: c.key.clone(),
        state: c.before.clone(),
        mod_revision: c.mod_revision,
    }
}

/// `pooled: no`, weight unchanged.
fn depool() -> Edit {
    Edit::Set(SetFields {
        pooled: Some(Pooled::No),
        weight: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyspace;
    use crate::model::{PoolState, Weight};
    use crate::rules::Member;

    fn change(node: &str, pooled: Pooled) -> Change {
        let key: ObjectKey = format!("eqiad/appservers/apache/{node}").parse().unwrap();
        let state = |pooled| PoolState {
            pooled,
            weight: Weight(10),
            extra: serde_json::Map::new(),
        };
        Change {
            key,
            before: state(Pooled::Yes),
            after: Some(state(pooled)),
            mod_revision: 5,
        }
    }

    fn pool(serving: &[&str], revision: i64) -> BTreeMap<PoolKey, PoolMembers> {
        let pool = change("a", Pooled::No).key.pool;
        let members = serving
            .iter()
            .map(|n| {
                let m = Member {
                    pooled: Pooled::Yes,
                    weight: Weight(10),
                };
                (n.parse().unwrap(), m)
            })
            .collect();
        BTreeMap::from([(
            pool,
            PoolMembers {
                members,
                revision,
                ..PoolMembers::default()
            },
        )])
    }

    #[test]
    fn a_pool_read_by_the_caller_judges_and_guards_at_its_revision() {
        let ks = Keyspace::default();
        let changes = [change("a", Pooled::No)];
        let guards = judge_by(&ks, &pool(&["a", "b", "c"], 42), &changes)
            .expect("the pool was read")
            .expect("2 of 3 stay serving");
        assert_eq!(
            guards,
            vec![RangeGuard {
                prefix: ks.pool_prefix(&changes[0].key.pool),
                revision: 42,
            }]
        );
        // Below the default threshold (0.5 of 2 nodes): refused, as a fresh read would be.
        let refused = judge_by(
            &ks,
            &pool(&["a", "b"], 42),
            &[change("a", Pooled::No), change("b", Pooled::No)],
        )
        .expect("the pool was read");
        assert!(matches!(
            refused,
            Err(Error::Model(conftool_model::Error::Refused(
                Refusal::BelowThreshold(_)
            )))
        ));
        // A pool the caller did not read: it must be read.
        assert!(judge_by(&ks, &BTreeMap::new(), &changes).is_none());
        // Nothing lowered: nothing to judge.
        let raise = [change("a", Pooled::Yes)];
        assert_eq!(
            judge_by(&ks, &BTreeMap::new(), &raise).map(|r| r.ok()),
            Some(Some(Vec::new()))
        );
    }
}
