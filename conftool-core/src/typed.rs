//! Objects of schema-defined types (see [`crate::schema`]) in the store: one range read of a
//! type's keys for a selection, and changes written through the one audited write path
//! ([`Writer::apply_typed`]) with compare-and-swap, the edit re-applied to fresh state after
//! a lost race (never overwriting blindly).

use std::collections::BTreeSet;

use crate::error::Error;
use crate::schema::{ObjectType, TypeSelector, TypedChange, TypedEdit, TypedSelection, Upgrade};
use crate::store::Store;
use crate::write::Write;
use crate::writer::Writer;

/// How many times a change is re-applied to fresh data after losing a race.
const MAX_ROUNDS: usize = 8;

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
    /// (and checked again by the type) up to a few times.
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
        let store = self.store();
        let mut op = self.planned();
        let mut applied = Vec::new();
        let mut unknown = Vec::new();
        let result = rounds(
            store,
            &mut op,
            ty,
            sel,
            changes,
            redo,
            &mut applied,
            &mut unknown,
        )
        .await;
        let error = result.as_ref().err().map(|e| crate::audit::error_chain(e));
        let ended = op.finish(error.as_deref(), &unknown);
        match (result, ended) {
            (Ok(()), Ok(())) => Ok(applied),
            (Ok(()), Err(error)) | (Err(error), _) => Err(TypedApplyError { applied, error }),
        }
    }
}

/// The changes to make again from a fresh read, after a lost race (the error says why they
/// cannot be made any more).
type Redo<'a> = dyn Fn(&TypedSelection) -> Result<Vec<TypedChange>, String> + Sync + 'a;

#[allow(clippy::too_many_arguments)]
async fn rounds(
    store: &Store,
    op: &mut crate::writer::PlannedWrites<'_, '_>,
    ty: &ObjectType,
    sel: &TypeSelector,
    mut changes: Vec<TypedChange>,
    redo: &Redo<'_>,
    applied: &mut Vec<(TypedChange, i64)>,
    unknown: &mut Vec<String>,
) -> Result<(), Error> {
    for _ in 0..MAX_ROUNDS {
        if changes.is_empty() {
            return Ok(());
        }
        let writes: Vec<(Write, Option<&str>)> = changes
            .iter()
            .map(|c| (c.write(), Some(c.before.as_str())))
            .collect();
        let report = op.commit(&writes).await;
        let mut slots: Vec<Option<TypedChange>> = changes.into_iter().map(Some).collect();
        for &(i, rev) in &report.applied {
            if let Some(c) = slots.get_mut(i).and_then(Option::take) {
                applied.push((c, rev));
            }
        }
        if let Some(error) = report.error {
            unknown.extend(
                report
                    .failed
                    .iter()
                    .filter_map(|&i| slots.get(i).and_then(|c| c.as_ref()).map(|c| c.key.clone())),
            );
            return Err(error);
        }
        let lost: BTreeSet<String> = report
            .conflicted
            .iter()
            .filter_map(|&i| slots.get_mut(i).and_then(Option::take).map(|c| c.key))
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let fresh = store.select_typed(ty, sel).await?;
        changes = redo(&fresh)
            .map_err(|e| Error::Conflict(crate::Contention::Replanned(e)))?
            .into_iter()
            .filter(|c| lost.contains(&c.key))
            .collect();
    }
    Err(Error::Conflict(crate::Contention::TypedObjects {
        count: changes.len(),
        rounds: MAX_ROUNDS,
    }))
}
