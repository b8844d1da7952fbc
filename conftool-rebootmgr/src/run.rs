//! One run of the coordinator, as the timer starts it: read the group's state, run and
//! publish this node's checks, finish or clean up what an earlier run left, and, if a
//! reboot is asked for and nothing holds it back, go through the sequence. With
//! `--dry-run` nothing is written (not even the health report): the run says what it would
//! do and what holds it back.

use crate::constraints::HeldBack;
use crate::error::Error;
use crate::events::Event;
use crate::local;
use crate::node::{Emit, Node};
use crate::outcome::Outcome;
use crate::records::Phase;
use crate::view::View;

/// How a run was asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// An operator asks for the reboot now (`--now`): a trigger of its own.
    pub now: bool,
    /// Say what would be done, write nothing (`--dry-run`).
    pub dry_run: bool,
}

impl Node {
    /// One run; see the `run` module. What holds the reboot back and a node that needs
    /// a person are outcomes, not errors.
    pub async fn run(&self, opts: RunOptions, emit: Emit<'_>) -> Result<Outcome, Error> {
        let boot_id = local::boot_id(&self.cfg.boot_id_file)?;
        let view = View::read(&self.store, &self.keys, &self.cfg.group, &self.name).await?;
        for (key, why) in &view.unreadable {
            emit(Event::Unreadable {
                key: key.clone(),
                why: why.clone(),
            });
        }
        let mine = view.reboots.get(&self.name).cloned();
        emit(Event::Start {
            boot_id: boot_id.clone(),
            phase: mine.as_ref().map(|r| r.value.phase),
        });
        let own = self.run_checks().await;
        emit(Event::Checks {
            failing: own
                .iter()
                .filter(|r| !r.passing)
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect(),
            passing: own.iter().filter(|r| r.passing).count(),
        });
        let trigger = self.trigger(&view, opts.now)?;
        if !opts.dry_run {
            self.publish(&view, &boot_id, trigger.is_some(), &own)
                .await?;
        }
        if let Some(mark) = &view.mark {
            emit(Event::NeedsPerson {
                reason: mark.value.reason.clone(),
                since: mark.value.since.to_string(),
            });
            return Ok(Outcome::NeedsPerson(mark.value.reason.clone()));
        }
        self.notice_expired(&view, !opts.dry_run, emit).await?;
        let back = mine
            .as_ref()
            .is_some_and(|r| r.value.boot_id != boot_id || r.value.phase == Phase::Booted);
        match (mine, opts.dry_run) {
            (Some(rec), false) if back => return self.after_boot(rec, &boot_id, emit).await,
            (Some(rec), false) => self.clean_up(rec, emit).await?,
            (Some(rec), true) => {
                let what = if back { "finish" } else { "clean up" };
                emit(Event::HeldBack {
                    reasons: vec![format!(
                        "dry run: would {what} this node's reboot ({} since {})",
                        rec.value.phase, rec.value.phase_since
                    )],
                });
                return Ok(Outcome::WouldReboot);
            }
            (None, false) => self.clean_orphans(emit).await?,
            (None, true) => {}
        }
        let Some(trigger) = trigger else {
            emit(Event::NotTriggered);
            return Ok(Outcome::NothingToDo);
        };
        emit(Event::Triggered { by: trigger.by });
        let objects = self.objects().await?;
        let mut held = self
            .hold_backs(&view, &own, &objects.pools(), &objects.serving())
            .await?;
        if opts.dry_run {
            held.extend(self.slot_busy().await?);
        }
        if !held.is_empty() {
            emit(Event::HeldBack {
                reasons: held.iter().map(ToString::to_string).collect(),
            });
            return Ok(Outcome::HeldBack(held));
        }
        if opts.dry_run {
            return Ok(Outcome::WouldReboot);
        }
        self.reboot(trigger, &boot_id, &objects, emit).await
    }

    /// Every slot taken (for `--dry-run`, which takes none).
    async fn slot_busy(&self) -> Result<Option<HeldBack>, Error> {
        let state = self.store.lock_state(&self.slot).await?;
        let concurrency = usize::try_from(self.cfg.slot.concurrency).unwrap_or(usize::MAX);
        Ok((state.holding >= concurrency).then(|| {
            HeldBack::SlotBusy(
                state
                    .entries
                    .into_iter()
                    .take(state.holding)
                    .map(|(h, _)| h)
                    .collect(),
            )
        }))
    }
}
