//! The one write path: every write of pool state, by every tool and by any program that
//! imports this crate, goes through a [`Writer`].
//!
//! A writer is made by [`Store::writer`], which opens (and so checks) the audit log first:
//! a log that cannot be written refuses the writer before anything is written. Then each
//! operation:
//! - is judged by the [`rules`](crate::rules) unless the caller lifted them explicitly
//!   ([`Overrides`]): no pool left below its depool threshold, no `inactive` object put back
//!   into service by a pattern;
//! - is written with compare-and-swap on the revisions read, re-applying the edit to fresh
//!   state after a lost race (never overwriting blindly);
//! - is recorded in the audit trail: intents before each commit, what landed after it, an end
//!   line ([`crate::audit`]);
//! - reports what landed in one shape, also when it stopped part-way ([`ApplyError`]).
//!
//! The host verbs of restart scripts and reboot managers ([`Writer::host`]) are writes like
//! any other. A writer can record its changes in an operation kept in etcd
//! ([`Writer::open_operation`], [`crate::operations`]), so that they can be undone later,
//! after a crash too. The sync, whose writes come from a plan and have guards of their own,
//! writes through [`Writer::planned`], audited the same way.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use conftool_core::{Actor, AuditLog, Config, HostVerb, Store};
//! let cfg = Config::load("/etc/conftool/config.yaml".as_ref())?;
//! let store = Store::connect(&cfg).await?;
//! let actor = Actor::from_env("my-tool", cfg.username.clone());
//! let mut writer = store.writer(&actor, &AuditLog::from_config(cfg.audit_log.as_deref()))?;
//! let host = "mw1018.eqiad.wmnet".parse()?;
//! let done = writer.host(HostVerb::Depool, &[host], None).await?;
//! println!("{} objects depooled", done.applied.len());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use crate::audit::{AuditEntry, AuditLog, AuditSink};
use crate::error::Error;
use crate::guarded::OpHandle;
use crate::rounds::{after, audited};
use crate::rules::{leaves_alone, HostVerb, Overrides, PoolMembers};
use crate::select::{ApplyError, Atomicity, Scope};
use crate::selection::{Applied, Change, Selected, Selection};
use crate::selector::Selector;
use crate::store::{CommitReport, Store};
use crate::write::Write;
use crate::{Actor, Edit, NodeName, ObjectKey, PoolKey, Service};

/// Writes pool state, audited and judged by the rules; see the module docs.
#[derive(Debug)]
pub struct Writer<'s> {
    pub(crate) store: &'s Store,
    pub(crate) audit: AuditSink,
    overrides: Overrides,
    /// The operation this writer's changes are recorded in, if one is open.
    pub(crate) op: Option<OpHandle>,
}

/// The pools [`Writer::check`] read to judge changes, for [`Writer::apply_checked`].
#[derive(Debug, Default)]
pub struct Checked {
    /// `None` if the rules were lifted (nothing read).
    pools: Option<BTreeMap<PoolKey, PoolMembers>>,
}

/// The changes an edit makes to a selection under a writer's rules, and the objects the
/// rules leave alone ([`Writer::changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    /// What would be written.
    pub changes: Vec<Change>,
    /// `inactive` objects that a write by pattern leaves alone.
    pub left_alone: Vec<ObjectKey>,
}

/// What a host verb did.
#[derive(Debug, Clone)]
pub struct HostChange {
    /// The selector of the host's objects (for re-reading them).
    pub selector: Selector,
    /// The host's objects as they were read.
    pub selection: Selection,
    /// Objects the verb leaves alone (`inactive` ones for pool and depool).
    pub skipped: Vec<ObjectKey>,
    /// The changes that landed.
    pub applied: Vec<Applied>,
}

impl Store {
    /// A writer for `actor`, recording in `audit`, which is opened now: a log that cannot be
    /// written is an error here, before anything is written; so is a read-only configuration
    /// ([`Error::ReadOnly`]).
    pub fn writer(&self, actor: &Actor, audit: &AuditLog) -> Result<Writer<'_>, Error> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(Writer {
            store: self,
            audit: audit.open(actor)?,
            overrides: Overrides::default(),
            op: None,
        })
    }
}

impl<'s> Writer<'s> {
    /// Lift rules for this writer's operations (what a person asked for explicitly).
    pub fn with_overrides(mut self, overrides: Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// Say why: every audit line of this writer's operations carries `reason`.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.audit.set_reason(Some(reason.into()));
        self
    }

    /// The store written to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The rules this writer's caller lifted.
    pub fn overrides(&self) -> Overrides {
        self.overrides
    }

    /// The changes `edit` makes to `selection` (read with `sel`) under this writer's rules:
    /// what [`Writer::apply`] would write, for showing or confirming first. A selection
    /// holding values that are not pool states is refused ([`Error::Malformed`]): what they
    /// mean is unknown (a value missing `weight` is not completed with a default of 0, which
    /// would take a node out of service), so nothing of it is written.
    pub fn changes(
        &self,
        sel: &Selector,
        selection: &Selection,
        edit: impl Fn(&Selected) -> Option<Edit>,
    ) -> Result<Planned, Error> {
        if !selection.malformed.is_empty() {
            return Err(Error::Malformed {
                values: selection.malformed.clone(),
            });
        }
        let include = self.overrides.include_inactive;
        let held = |o: &Selected| {
            edit(o).is_some_and(|e| leaves_alone(sel, &o.key.node, &o.state, &e, include))
        };
        let changes = selection.changes(|o| if held(o) { None } else { edit(o) });
        let left_alone = selection
            .objects
            .iter()
            .filter(|o| held(o) && edit(o).and_then(|e| e.apply(&o.state)).is_some())
            .map(|o| o.key.clone())
            .collect();
        Ok(Planned {
            changes,
            left_alone,
        })
    }

    /// Refuse `changes` if they would leave a pool below its depool threshold or
    /// `min_pooled` (unless lifted): reads the affected pools, one round trip, only when a
    /// change lowers a pool's serving count. [`Writer::apply`] judges again, atomically with
    /// its write; this is for refusing before asking a person.
    ///
    /// What it read is returned: [`Writer::apply_checked`] judges its first round by it
    /// instead of reading the pools again.
    pub async fn check(&self, changes: &[Change]) -> Result<Checked, Error> {
        if self.overrides.allow_below_threshold {
            return Ok(Checked::default());
        }
        Ok(Checked {
            pools: Some(self.store.judge_keeping(changes).await?),
        })
    }

    /// [`Writer::check`] of changes made from `selection`, which must be what
    /// [`Store::select`] returned for `sel` (unfiltered): when `sel` selects whole pools (no
    /// name term), the pools are judged by the selection's own read of them (at its
    /// revision, which then guards the first round's write) and only their services' limits
    /// are read, instead of reading every object again. A selection missing objects of a
    /// pool would be judged by those it holds.
    pub async fn check_selected(
        &self,
        sel: &Selector,
        selection: &Selection,
        changes: &[Change],
    ) -> Result<Checked, Error> {
        if self.overrides.allow_below_threshold {
            return Ok(Checked::default());
        }
        Ok(Checked {
            pools: Some(self.store.judge_selected(sel, selection, changes).await?),
        })
    }

    /// Apply `changes`, which `edit` made from a selection by `sel` (so that they can be shown
    /// or confirmed before): the rules, then compare-and-swap, re-applying `edit` to fresh
    /// state after a lost race, all of it audited as one write (and recorded in the open
    /// operation, if any). See [`Store`]'s `apply` rules in [`crate::rules`].
    pub async fn apply(
        &mut self,
        sel: &Selector,
        changes: Vec<Change>,
        edit: impl Fn(&Selected) -> Option<Edit> + Send + Sync,
        atomicity: Atomicity,
    ) -> Result<Vec<Applied>, ApplyError> {
        self.apply_scoped(Scope::Selector(sel), changes, &edit, atomicity, None)
            .await
    }

    /// [`Writer::apply`] of `changes` that [`Writer::check`] judged (`checked`): the first
    /// round is judged by the pools that check read, and committed under a compare over
    /// each pool at the revision it was read at, so a change in a pool since then (say,
    /// while a person was asked) fails that round, and the next re-reads and re-judges.
    pub async fn apply_checked(
        &mut self,
        sel: &Selector,
        changes: Vec<Change>,
        edit: impl Fn(&Selected) -> Option<Edit> + Send + Sync,
        atomicity: Atomicity,
        checked: Checked,
    ) -> Result<Vec<Applied>, ApplyError> {
        let judged = checked.pools.as_ref();
        self.apply_scoped(Scope::Selector(sel), changes, &edit, atomicity, judged)
            .await
    }

    /// [`Writer::apply`] over a scope: what a lost race re-reads; `judged`, the pools as
    /// read to plan the changes, if they were (see [`Store`]'s `apply`).
    pub(crate) async fn apply_scoped(
        &mut self,
        scope: Scope<'_>,
        changes: Vec<Change>,
        edit: crate::select::EditFn<'_>,
        atomicity: Atomicity,
        judged: Option<&std::collections::BTreeMap<crate::PoolKey, crate::rules::PoolMembers>>,
    ) -> Result<Vec<Applied>, ApplyError> {
        self.audit.begin();
        self.store
            .apply(
                scope,
                changes,
                edit,
                atomicity,
                self.overrides,
                &mut self.audit,
                self.op.as_mut(),
                judged,
            )
            .await
    }

    /// Select with `sel` and apply `edit` to every object it matches (in batches of
    /// transactions).
    pub async fn edit(&mut self, sel: &Selector, edit: Edit) -> Result<Vec<Applied>, ApplyError> {
        let selection = self.store.select(sel).await.map_err(|error| ApplyError {
            applied: Vec::new(),
            error,
        })?;
        let changes = self
            .changes(sel, &selection, |_| Some(edit))
            .map_err(|error| ApplyError {
                applied: Vec::new(),
                error,
            })?
            .changes;
        self.apply(sel, changes, |_| Some(edit), Atomicity::Batched)
            .await
    }

    /// Apply a host verb to the first of `names` that is in any pool (or in `service`'s),
    /// in one transaction, found by point reads (not a read of the whole fleet). The host is
    /// named exactly, so only the depool threshold can refuse it. A host in no pool is
    /// [`Error::NotFound`].
    pub async fn host(
        &mut self,
        verb: HostVerb,
        names: &[NodeName],
        service: Option<&Service>,
    ) -> Result<HostChange, ApplyError> {
        let fail = |error| ApplyError {
            applied: Vec::new(),
            error,
        };
        let found = self.store.find_node(names, service).await.map_err(fail)?;
        let Some((selector, selection)) = found else {
            return Err(fail(Error::NotFound {
                nodes: names.to_vec(),
                service: service.cloned(),
            }));
        };
        let include_inactive = self.overrides.include_inactive;
        let edit = move |o: &Selected| verb.edit(&o.state, include_inactive);
        let skipped = selection
            .objects
            .iter()
            .filter(|o| edit(o).is_none())
            .map(|o| o.key.clone())
            .collect();
        let changes = selection.changes(edit);
        let applied = if changes.is_empty() {
            Vec::new()
        } else {
            // The host's objects are known: a lost race re-reads them by point reads, not
            // the range the selector would read (all of /v1/pools/ for a name).
            let keys: std::collections::BTreeSet<ObjectKey> =
                selection.objects.iter().map(|o| o.key.clone()).collect();
            self.apply_scoped(Scope::Keys(&keys), changes, &edit, Atomicity::All, None)
                .await?
        };
        Ok(HostChange {
            selector,
            selection,
            skipped,
            applied,
        })
    }

    /// Start a run of planned writes (the sync's): the caller commits them through it,
    /// round after round, and finishes it with the outcome. Not judged by the rules here (a
    /// plan has its own guards); audited like every write.
    pub fn planned(&mut self) -> PlannedWrites<'_, 's> {
        self.audit.begin();
        PlannedWrites { writer: self }
    }
}

/// "node mw1018 is not in any pool" (or in service S).
/// A run of planned writes; see [`Writer::planned`]. Dropped without
/// [`PlannedWrites::finish`], it leaves intents without an end line: the trace of a process
/// that stopped in the middle.
#[derive(Debug)]
pub struct PlannedWrites<'w, 's> {
    writer: &'w mut Writer<'s>,
}

impl PlannedWrites<'_, '_> {
    /// Commit `writes` (each with the stored value it replaces, `None` if absent), batched,
    /// compare-and-swap guarded: intents recorded first (if that fails, nothing is
    /// committed and the report says so), what landed after.
    pub async fn commit(&mut self, writes: &[(Write, Option<&str>)]) -> CommitReport {
        let entry = |i: usize, revision| {
            let (w, before) = writes.get(i)?;
            Some(AuditEntry::from_text(
                w.key().to_string(),
                *before,
                after(w),
                revision,
            ))
        };
        let store = self.writer.store;
        audited(
            &mut self.writer.audit,
            writes.len(),
            entry,
            store.commit_partial(writes),
        )
        .await
    }

    /// End the run: the error that stopped it (if any) and keys whose writes may or may not
    /// have landed.
    pub fn finish(self, error: Option<&str>, unknown: &[String]) -> Result<(), Error> {
        self.writer.audit.end(error, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_host_is_named_with_its_alternatives() {
        let n = |s: &str| s.parse::<NodeName>().unwrap();
        let missing = |nodes, service| Error::NotFound { nodes, service }.to_string();
        assert_eq!(
            missing(vec![n("mw1018.eqiad.wmnet"), n("mw1018")], None),
            "node mw1018.eqiad.wmnet (or mw1018) is not in any pool"
        );
        assert_eq!(
            missing(vec![n("a"), n("b"), n("c")], None),
            "node a (or b, c) is not in any pool"
        );
        let apache: Service = "apache".parse().unwrap();
        assert_eq!(
            missing(vec![n("mw1018")], Some(apache)),
            "node mw1018 is not in service apache"
        );
    }
}
