//! Objects of schema-defined types (see [`crate::schema`]) in the store: one range read of a
//! type's keys for a selection, and changes written through the one audited write path
//! ([`Writer::apply_typed`]) with compare-and-swap, the edit re-applied to fresh state after
//! a lost race (never overwriting blindly), by the same round loop as pool objects
//! (`crate::rounds`).

use crate::audit::AuditEntry;
use crate::error::{Contention, Error};
use crate::keys::Keyspace;
use crate::rounds::{after, finish, rounds, RoundChange, Rounds, Run};
use crate::schema::{ObjectType, TypeSelector, TypedChange, TypedEdit, TypedSelection, Upgrade};
use crate::store::{CommitReport, Store};
use crate::write::Write;
use crate::writer::Writer;

/// A typed change that stopped part-way: what had landed (each with its revision), and why.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct TypedApplyError {
    /// Changes written before the failure.
    pub applied: Vec<(TypedChange, i64)>,
    /// Why it stopped.
    pub error: Error,
}

impl Store {
    /// The objects of `ty` that `sel` matches: one range read of the type's prefix.
    pub async fn select_typed(
        &self,
        ty: &ObjectType,
        sel: &TypeSelector,
    ) -> Result<TypedSelection, Error> {
        let snap = self.read_prefix(&ty.prefix(self.keyspace())).await?;
        Ok(TypedSelection::from_snapshot(
            self.keyspace(),
            ty,
            sel,
            &snap,
        ))
    }
}

impl Writer<'_> {
    /// Write `changes` (made by `edit` from a selection of `ty` by `sel`, so that they could
    /// be shown or confirmed first) with compare-and-swap, in batched transactions, audited
    /// as one operation. Objects changed concurrently are re-read and `edit` applied again
    /// (and checked again by the type), by the round loop of every write (`crate::rounds`):
    /// after a random pause, for at least 8 rounds and 30 s, then [`Contention::Objects`].
    pub async fn apply_typed(
        &mut self,
        ty: &ObjectType,
        sel: &TypeSelector,
        changes: Vec<TypedChange>,
        edit: &TypedEdit,
    ) -> Result<Vec<(TypedChange, i64)>, TypedApplyError> {
        let redo = |fresh: &TypedSelection| fresh.changes(ty, edit).map_err(|e| e.to_string());
        self.apply_rounds(ty, sel, changes, &redo).await
    }

    /// Write `upgrades` (from [`TypedSelection::upgrade`] of every object of `ty`, so that
    /// they could be shown first) with compare-and-swap, in batched transactions, audited as
    /// one operation. An object changed concurrently is re-read and upgraded again; one that
    /// no longer validates then is not written and stops the operation.
    pub async fn apply_upgrade(
        &mut self,
        ty: &ObjectType,
        upgrades: Vec<Upgrade>,
    ) -> Result<Vec<(TypedChange, i64)>, TypedApplyError> {
        let redo = |fresh: &TypedSelection| {
            let plan = fresh.upgrade(ty);
            match plan.invalid.first() {
                Some(e) => Err(e.to_string()),
                None => Ok(plan.upgrades.into_iter().map(|u| u.change).collect()),
            }
        };
        let changes = upgrades.into_iter().map(|u| u.change).collect();
        self.apply_rounds(ty, &TypeSelector::any(), changes, &redo)
            .await
    }

    async fn apply_rounds(
        &mut self,
        ty: &ObjectType,
        sel: &TypeSelector,
        changes: Vec<TypedChange>,
        redo: &Redo<'_>,
    ) -> Result<Vec<(TypedChange, i64)>, TypedApplyError> {
        let store = self.store;
        let mut w = TypedRounds {
            store,
            ty,
            sel,
            redo,
        };
        self.audit.begin();
        let mut run = Run::new();
        let result = rounds(&mut w, store.keyspace(), &mut self.audit, changes, &mut run).await;
        finish(&mut self.audit, result, run).map_err(|s| TypedApplyError {
            applied: s.applied,
            error: s.error,
        })
    }
}

/// The changes to make again from a fresh read, after a lost race (the error says why they
/// cannot be made any more).
type Redo<'a> = dyn Fn(&TypedSelection) -> Result<Vec<TypedChange>, String> + Sync + 'a;

impl RoundChange for TypedChange {
    type Key = String;

    fn key(&self) -> String {
        self.key.clone()
    }

    fn write(&self, _: &Keyspace) -> Write {
        TypedChange::write(self)
    }

    fn entry(&self, _: &Keyspace, write: &Write, revision: Option<i64>) -> AuditEntry {
        AuditEntry::from_text(
            write.key().to_string(),
            Some(&self.before),
            after(write),
            revision,
        )
    }
}

/// A write of typed objects, as the round loop drives it: no rules to judge by (the type
/// checked each change), committed in batches, re-planned from a fresh read of the type's
/// selection (where the edit may no longer apply: [`Contention::Replanned`]).
struct TypedRounds<'a> {
    store: &'a Store,
    ty: &'a ObjectType,
    sel: &'a TypeSelector,
    redo: &'a Redo<'a>,
}

impl Rounds for TypedRounds<'_> {
    type Change = TypedChange;
    type Guards = ();

    async fn judge(&mut self, _: &[TypedChange]) -> Result<(), Error> {
        Ok(())
    }

    async fn commit(&mut self, _: &[TypedChange], writes: &[Write], (): ()) -> CommitReport {
        self.store.commit_partial(writes).await
    }

    async fn replan(&mut self) -> Result<Vec<TypedChange>, Error> {
        let fresh = self.store.select_typed(self.ty, self.sel).await?;
        (self.redo)(&fresh).map_err(|e| Error::Conflict(Contention::Replanned(e)))
    }
}
