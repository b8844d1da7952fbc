//! Selecting objects and changing them safely.
//!
//! A selection is one range read (narrowed to the selector's literal prefix). A change is a
//! list of compare-and-swap writes on the revisions that were read; objects already in the
//! requested state are not rewritten. When a concurrent writer wins a race, the losing
//! objects are re-read and the edit is applied again to their fresh state, never blindly.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Edit, SetFields};
use crate::audit::{AuditEntry, AuditSink};
use crate::error::Error;
use crate::guarded::OpHandle;
use crate::keys::Keyspace;
use crate::model::{ObjectKey, PoolKey, Pooled};
use crate::rounds::{finish, rounds, RoundChange, Rounds, Run};
use crate::rules::{
    below_threshold, leaves_alone, lowers_serving, Member, Overrides, PoolMembers, Refusal,
};
use crate::selection::{Applied, Change, Selected, Selection};
use crate::selector::Selector;
use crate::store::{CommitReport, Store};
use crate::write::{RangeGuard, Write};

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
    /// by the round loop every write shares (`crate::rounds`): after a random pause, for at
    /// least [`MAX_ROUNDS`](crate::rounds::MAX_ROUNDS) rounds and
    /// [`CONTENDED_FOR`](crate::rounds::CONTENDED_FOR); then the change fails with
    /// [`Error::Conflict`]. On failure the [`ApplyError`] still lists the changes that had
    /// landed.
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
        let ks = self.keyspace();
        let mut run = Run::new();
        let mut first = NodeRounds {
            store: self,
            scope,
            edit: &*first_step,
            atomicity,
            enforce,
            op: op.as_deref_mut(),
            judged,
        };
        let mut result = rounds(&mut first, ks, audit, changes, &mut run).await;
        if result.is_ok() && !deferred.is_empty() {
            // The depooled objects, now deleted (they no longer serve: no pool to judge).
            let deferred = &deferred;
            let second_step: BoxedEdit<'_> = Box::new(move |o: &Selected| {
                if !deferred.contains(&o.key) {
                    return None;
                }
                edit(o).filter(|e| *e == Edit::Delete)
            });
            let mut second = NodeRounds {
                store: self,
                scope,
                edit: &*second_step,
                atomicity,
                enforce,
                op,
                judged: None,
            };
            result = match self.reread(scope).await {
                Ok(fresh) => {
                    let changes = fresh.changes(&*second_step);
                    rounds(&mut second, ks, audit, changes, &mut run).await
                }
                Err(e) => Err(e),
            };
        }
        finish(audit, result, run)
            .map_err(|s| ApplyError {
                applied: applied(s.applied),
                error: s.error,
            })
            .map(applied)
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

    /// [`Store::judge`], keeping the pools read (a later write's first round is judged by
    /// them, under a compare at the revision they were read at, instead of reading them
    /// again).
    pub(crate) async fn judge_keeping(
        &self,
        changes: &[Change],
    ) -> Result<BTreeMap<PoolKey, PoolMembers>, Error> {
        let pools = lowered_pools(changes);
        if pools.is_empty() {
            return Ok(BTreeMap::new());
        }
        let members = self.pool_members(&pools).await?;
        guards(self.keyspace(), &pools, &members, changes)?;
        Ok(members)
    }

    /// [`Store::judge_keeping`] of changes made from `selection` (read by `sel`): when `sel`
    /// selects whole pools, each pool's members are the selection's own objects of it, as
    /// read at its revision (the guard of the write), and only the pools' service limits
    /// are read; otherwise the pools are read.
    pub(crate) async fn judge_selected(
        &self,
        sel: &Selector,
        selection: &Selection,
        changes: &[Change],
    ) -> Result<BTreeMap<PoolKey, PoolMembers>, Error> {
        let pools = lowered_pools(changes);
        if pools.is_empty() || !sel.selects_whole_pools() {
            return self.judge_keeping(changes).await;
        }
        let limits = self.pool_limits(&pools).await?;
        let mut members: BTreeMap<PoolKey, PoolMembers> = limits
            .into_iter()
            .map(|(pool, limits)| {
                let m = PoolMembers {
                    limits,
                    members: BTreeMap::new(),
                    revision: selection.revision,
                };
                (pool, m)
            })
            .collect();
        for o in &selection.objects {
            if let Some(m) = members.get_mut(&o.key.pool) {
                m.members.insert(o.key.node.clone(), Member::from(&o.state));
            }
        }
        guards(self.keyspace(), &pools, &members, changes)?;
        Ok(members)
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

/// Landed changes in the shape the write path reports them.
fn applied(landed: Vec<(Change, i64)>) -> Vec<Applied> {
    landed
        .into_iter()
        .map(|(change, revision)| Applied { change, revision })
        .collect()
}

impl RoundChange for Change {
    type Key = ObjectKey;

    fn key(&self) -> ObjectKey {
        self.key.clone()
    }

    fn write(&self, ks: &Keyspace) -> Write {
        Change::write(self, ks)
    }

    fn entry(&self, ks: &Keyspace, _: &Write, revision: Option<i64>) -> AuditEntry {
        AuditEntry::for_change(ks, self, revision)
    }
}

/// One step of a write of pool objects, as the round loop drives it: judged by the pools
/// whose serving count it lowers (unless lifted), committed under their range guards and
/// with the open operation's record, re-planned by re-reading its scope.
struct NodeRounds<'a, 'o> {
    store: &'a Store,
    scope: Scope<'a>,
    edit: EditFn<'a>,
    atomicity: Atomicity,
    enforce: bool,
    op: Option<&'o mut OpHandle>,
    /// The pools as the caller read them to plan the first round, until that round is judged.
    judged: Option<&'a BTreeMap<PoolKey, PoolMembers>>,
}

impl Rounds for NodeRounds<'_, '_> {
    type Change = Change;
    type Guards = Vec<RangeGuard>;

    async fn judge(&mut self, changes: &[Change]) -> Result<Vec<RangeGuard>, Error> {
        if !self.enforce {
            return Ok(Vec::new());
        }
        // The caller's read of the pools serves the first round only.
        let judged = self.judged.take();
        match judged.and_then(|pools| judge_by(self.store.keyspace(), pools, changes)) {
            Some(judgement) => judgement,
            None => self.store.judge(changes).await,
        }
    }

    async fn commit(
        &mut self,
        changes: &[Change],
        writes: &[Write],
        ranges: Vec<RangeGuard>,
    ) -> CommitReport {
        match (self.atomicity, ranges.is_empty() && self.op.is_none()) {
            (Atomicity::All, true) => self.store.commit_atomic_partial(writes).await,
            (Atomicity::Batched, true) => self.store.commit_partial(writes).await,
            (_, false) => {
                let op = self.op.as_deref_mut();
                self.store
                    .commit_guarded(writes, changes, &ranges, op, self.atomicity)
                    .await
            }
        }
    }

    async fn replan(&mut self) -> Result<Vec<Change>, Error> {
        if let Some(h) = self.op.as_deref_mut() {
            self.store.refresh_operation(h).await?;
        }
        Ok(self.store.reread(self.scope).await?.changes(self.edit))
    }
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
