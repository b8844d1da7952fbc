//! What a run killed on the way leaves, found and dealt with by the next run: a record of
//! this node's reboot in the same boot (it never went down: everything put back, the slot
//! given back, and the run starts over), a slot entry or an open reboot operation of this
//! node without a record (killed between two writes), and other members whose slot ran
//! out while they were away (said loudly, and recorded once in their record).

use conftool_core::Guard;
use conftool_core::OperationState;

use crate::error::Error;
use crate::events::Event;
use crate::node::{Emit, Node, OPERATION_KIND};
use crate::records::{self, Reboot, SlotLost, Stamp};
use crate::sequence::Holding;
use crate::view::{self, Read, View};

impl Node {
    /// A reboot record of this node from this boot: the run that wrote it was killed
    /// before the node went down. Put back and cleaned up.
    pub(crate) async fn clean_up(&self, rec: Read<Reboot>, emit: Emit<'_>) -> Result<(), Error> {
        let found = format!(
            "a reboot left {} since {} by a run that did not finish (operation {})",
            rec.value.phase,
            rec.value.phase_since,
            rec.value
                .operation
                .as_ref()
                .map_or("none".to_string(), ToString::to_string)
        );
        emit(Event::CleanedUp {
            found: found.clone(),
        });
        let mut rec = rec;
        if rec.value.operation.is_none() {
            rec.value.operation = self.open_operation().await?;
        }
        self.abort(
            Holding {
                lock: None,
                record: rec,
            },
            &found,
            None,
            emit,
        )
        .await
    }

    /// Without a record of this node's reboot: slot entries of this node, and open reboot
    /// operations about it, are leftovers of a run killed between its writes.
    pub(crate) async fn clean_orphans(&self, emit: Emit<'_>) -> Result<(), Error> {
        let state = self.store.lock_state(&self.slot).await?;
        for (holder, _) in state
            .entries
            .iter()
            .filter(|(h, _)| h.host == self.name.as_str())
        {
            if self.store.release_lock(&self.slot, &holder.id).await? {
                emit(Event::CleanedUp {
                    found: format!("slot entry {} without a reboot record", holder.id),
                });
            }
        }
        if let Some(op) = self.open_operation().await? {
            emit(Event::CleanedUp {
                found: format!("open reboot operation {op} without a reboot record"),
            });
            self.repool(&op, emit).await?;
        }
        Ok(())
    }

    /// The open reboot operation about this node, if there is one.
    async fn open_operation(&self) -> Result<Option<conftool_core::OperationId>, Error> {
        let (records, _) = self.store.operations().await?;
        Ok(records
            .into_iter()
            .find(|r| {
                r.state == OperationState::Open
                    && r.resumes(OPERATION_KIND, &[self.name.to_string()])
            })
            .map(|r| r.id))
    }

    /// Other members' reboots whose slot entry is gone (its lease ran out: the node did not
    /// come back in time): each said loudly at every run, and recorded once.
    pub(crate) async fn notice_expired(
        &self,
        view: &View,
        write: bool,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let others: Vec<&Read<Reboot>> = view
            .reboots
            .iter()
            .filter(|(n, _)| *n != &self.name)
            .map(|(_, r)| r)
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        let state = self.store.lock_state(&self.slot).await?;
        for rec in others {
            if state.entries.iter().any(|(h, _)| h.id == rec.value.slot) {
                continue;
            }
            emit(Event::SlotExpired {
                member: rec.value.node.to_string(),
                slot: rec.value.slot.clone(),
                operation: rec.value.operation.as_ref().map(ToString::to_string),
                since: rec.value.phase_since.to_string(),
            });
            if !write || rec.value.slot_lost.is_some() {
                continue;
            }
            let mut lost = rec.value.clone();
            lost.slot_lost = Some(SlotLost {
                noticed_by: self.name.clone(),
                at: Stamp::now(),
            });
            let key = self.keys.reboot(&self.cfg.group, &lost.node);
            let mut writer = self.writer(&format!(
                "rebootmgr: the reboot slot of {} ran out while it was away",
                lost.node
            ))?;
            // Lost to a race: the node is back and wrote it, or another member noticed.
            view::write_key(
                &mut writer,
                &key,
                Some(records::json(&lost)),
                Guard::Unchanged(rec.revision),
                None,
            )
            .await?;
        }
        Ok(())
    }
}
