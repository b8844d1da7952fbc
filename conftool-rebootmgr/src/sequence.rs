//! The steps before the reboot: take the slot, record the reboot, depool the node into an
//! operation (verified on the load balancers), run the pre-boot tasks, settle, look at
//! everything once more, and reboot. Any step that fails puts back what the earlier ones
//! did ([`Node::abort`]); a failed task also marks the node as needing a person.

use std::collections::BTreeSet;
use std::time::Duration;

use conftool_core::verify::{verify, Target, VerifyOptions, Want};
use conftool_core::Guard;
use conftool_core::{is_threshold_refusal, Lock, LockRequest, PoolKey};

use crate::constraints::HeldBack;
use crate::error::Error;
use crate::events::Event;
use crate::local;
use crate::node::{Emit, Node, Objects, OPERATION_KIND};
use crate::outcome::Outcome;
use crate::records::{self, Mark, Phase, Reboot, Stamp, Trigger};
use crate::view::{self, Read, View};

/// What a reboot in progress holds in this process.
pub(crate) struct Holding {
    /// The slot (`None` once it is left to run out across the reboot, or was lost).
    pub lock: Option<Lock>,
    /// The record and its revision.
    pub record: Read<Reboot>,
}

impl Node {
    /// Go through the sequence, from taking the slot to the reboot command.
    pub(crate) async fn reboot(
        &self,
        trigger: Trigger,
        boot_id: &str,
        objects: &Objects,
        emit: Emit<'_>,
    ) -> Result<Outcome, Error> {
        let req = LockRequest {
            concurrency: self.cfg.slot.concurrency,
            reason: Some(format!("reboot of {}", self.name)),
            ..LockRequest::new(
                self.slot.clone(),
                self.cfg.slot.ttl,
                "conftool-rebootmgr run",
            )
        };
        let mut lock = match self.store.lock(&self.actor, &req, Duration::ZERO).await {
            Ok(l) => l,
            Err(conftool_core::Error::LockBusy { holders, .. }) => {
                let held = vec![HeldBack::SlotBusy(holders)];
                emit(Event::HeldBack {
                    reasons: held.iter().map(ToString::to_string).collect(),
                });
                return Ok(Outcome::HeldBack(held));
            }
            Err(e) => return Err(e.into()),
        };
        lock.keep_alive();
        emit(Event::SlotTaken {
            slot: lock.holder().id.clone(),
            concurrency: self.cfg.slot.concurrency,
            ttl_secs: self.cfg.slot.ttl.as_secs(),
        });
        let now = Stamp::now();
        let record = Reboot {
            node: self.name.clone(),
            phase: Phase::Draining,
            phase_since: now,
            started: now,
            boot_id: boot_id.to_string(),
            booted_as: None,
            slot: lock.holder().id.clone(),
            operation: None,
            trigger,
            slot_lost: None,
            extra: serde_json::Map::new(),
        };
        let revision = match self.put_reboot(&record, Guard::Absent).await {
            Ok(r) => r,
            Err(e) => {
                let _ = lock.release().await;
                return Err(e);
            }
        };
        let mut h = Holding {
            lock: Some(lock),
            record: Read {
                value: record,
                revision,
            },
        };
        match self.drain(&mut h, objects, emit).await {
            Ok(Step::Go) => self.go_down(h, emit).await,
            Ok(Step::Abort { why, mark, outcome }) => {
                self.abort(h, &why, mark, emit).await?;
                Ok(outcome)
            }
            Err(e) => {
                self.abort(h, &e.to_string(), None, emit).await?;
                Err(e)
            }
        }
    }

    /// Depool, pre-boot tasks, settle, the last look.
    async fn drain(
        &self,
        h: &mut Holding,
        objects: &Objects,
        emit: Emit<'_>,
    ) -> Result<Step, Error> {
        let serving = objects.serving();
        let mut writer = self.writer(&format!("rebootmgr: reboot of {}", self.name))?;
        let depool = writer
            .depool_into_operation(OPERATION_KIND, &self.name, &[])
            .await;
        let depool = match depool {
            Ok(d) => d,
            Err(e) if is_threshold_refusal(&e.error) => {
                return Ok(held(emit, vec![HeldBack::Threshold(e.error.to_string())]));
            }
            Err(e) => return Err(e.into()),
        };
        h.record.value.operation = Some(depool.operation.clone());
        self.update_reboot(&mut h.record).await?;
        emit(Event::Depooled {
            operation: depool.operation.to_string(),
            resumed: depool.resumed,
            objects: depool
                .applied
                .iter()
                .map(|a| a.change.key.to_string())
                .collect(),
        });
        self.verify_pools(&serving, Want::Out, emit).await?;
        for task in local::tasks(&self.cfg.pre_boot_dir())? {
            let name = task_name(&task);
            let out = local::run(
                &task.to_string_lossy(),
                false,
                &self.env(),
                self.cfg.task_timeout,
            )
            .await;
            emit(Event::Task {
                phase: "pre_boot",
                name: name.clone(),
                outcome: out.describe(),
                ms: ms(out.elapsed),
            });
            if !out.ok() {
                let why = format!("pre-boot task {name}: {}", out.describe());
                return Ok(Step::Abort {
                    outcome: Outcome::NeedsPerson(why.clone()),
                    why,
                    mark: Some("pre_boot_task"),
                });
            }
        }
        emit(Event::Settling {
            ms: ms(self.cfg.settle),
        });
        let pools = objects.pools();
        let deadline = tokio::time::Instant::now() + self.cfg.settle;
        loop {
            let view = View::read(&self.store, &self.keys, &self.cfg.group, &self.name).await?;
            let stops = self.stops(&view, &pools).await?;
            if !stops.is_empty() {
                return Ok(held(emit, stops));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(self.cfg.poll_interval)).await;
        }
        let view = View::read(&self.store, &self.keys, &self.cfg.group, &self.name).await?;
        let own = self.run_checks().await;
        let mut held = self.hold_backs(&view, &own, &pools, &serving).await?;
        if self
            .trigger(
                &view,
                h.record.value.trigger.by == records::TriggerKind::Now,
            )?
            .is_none()
        {
            held.push(HeldBack::NoLongerTriggered);
        }
        if !held.is_empty() {
            return Ok(self::held(emit, held));
        }
        emit(Event::Rechecked);
        Ok(Step::Go)
    }

    /// The reboot: the record says so first, the slot gets its whole time to live, and
    /// the command runs. This process is not expected to outlive it by long.
    async fn go_down(&self, mut h: Holding, emit: Emit<'_>) -> Result<Outcome, Error> {
        h.record.value.phase = Phase::Rebooting;
        h.record.value.phase_since = Stamp::now();
        self.update_reboot(&mut h.record).await?;
        if let Some(lock) = &h.lock {
            lock.refresh().await?;
        }
        emit(Event::Rebooting {
            command: self.cfg.reboot_command.clone(),
            slot_ttl_secs: self.cfg.slot.ttl.as_secs(),
        });
        let out = local::run(
            &self.cfg.reboot_command,
            true,
            &self.env(),
            self.cfg.reboot_timeout,
        )
        .await;
        if !out.ok() {
            let why = format!("the reboot command failed: {}", out.describe());
            self.abort(h, &why, Some("reboot"), emit).await?;
            return Ok(Outcome::NeedsPerson(why));
        }
        emit(Event::RebootCommandDone);
        // Left to run out if the node stays away; dropped here, it is no longer refreshed.
        let lock = h.lock.take();
        tokio::time::sleep(self.cfg.reboot_grace).await;
        h.lock = lock;
        let why = format!(
            "the reboot command returned but the node was still up {}s later",
            self.cfg.reboot_grace.as_secs()
        );
        self.abort(h, &why, Some("reboot"), emit).await?;
        Ok(Outcome::NeedsPerson(why))
    }

    /// Put back what a reboot that did not happen did: end its operation (repool), give
    /// the slot back, remove the record; with `mark_step`, mark the node as needing a
    /// person. A repool that fails leaves the node marked, with the operation that holds
    /// it.
    pub(crate) async fn abort(
        &self,
        h: Holding,
        why: &str,
        mark_step: Option<&str>,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let operation = h.record.value.operation.clone();
        let mut repooled = true;
        if let Some(op) = &operation {
            repooled = self.repool(op, emit).await.is_ok();
        }
        let key = self.keys.reboot(&self.cfg.group, &self.name);
        let mut writer = self.writer(&format!("rebootmgr: abort: {why}"))?;
        view::write_key(
            &mut writer,
            &key,
            None,
            Guard::Unchanged(h.record.revision),
            None,
        )
        .await?;
        match h.lock {
            Some(lock) => lock.release().await?,
            None => {
                self.store
                    .release_lock(&self.slot, &h.record.value.slot)
                    .await?;
            }
        }
        emit(Event::SlotReleased {
            slot: h.record.value.slot.clone(),
        });
        emit(Event::Aborted {
            why: why.to_string(),
        });
        let step = match (mark_step, repooled) {
            (Some(s), _) => s,
            (None, false) => "repool",
            (None, true) => return Ok(()),
        };
        let reason = if repooled {
            why.to_string()
        } else {
            format!("{why}; and the repool failed")
        };
        self.mark(
            &reason,
            step,
            (!repooled).then_some(operation).flatten(),
            emit,
        )
        .await
    }

    /// Mark the node as needing a person.
    pub(crate) async fn mark(
        &self,
        reason: &str,
        step: &str,
        operation: Option<conftool_core::OperationId>,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let mark = Mark {
            reason: reason.to_string(),
            step: step.to_string(),
            since: Stamp::now(),
            depooled: operation.is_some(),
            operation: operation.clone(),
            extra: serde_json::Map::new(),
        };
        let mut writer = self.writer(&format!("rebootmgr: needs a person: {reason}"))?;
        view::set_key(
            &mut writer,
            &self.keys.mark(&self.name),
            Some(records::json(&mark)),
        )
        .await?;
        emit(Event::Marked {
            reason: reason.to_string(),
            depooled: mark.depooled,
            operation: operation.map(|o| o.to_string()),
        });
        Ok(())
    }

    /// End the operation: put back exactly what it depooled.
    pub(crate) async fn repool(
        &self,
        op: &conftool_core::OperationId,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let mut writer = self.writer(&format!("rebootmgr: repool of {}", self.name))?;
        let ended = writer.end_operation(op, false).await?;
        emit(Event::Repooled {
            operation: op.to_string(),
            restored: ended
                .restored
                .iter()
                .map(|a| a.change.key.to_string())
                .collect(),
            left: ended
                .left
                .iter()
                .map(|(k, why)| format!("{k}: {why}"))
                .collect(),
        });
        let back: BTreeSet<PoolKey> = ended
            .restored
            .iter()
            .filter(|a| a.change.after.as_ref().is_some_and(|s| s.serving()))
            .map(|a| a.change.key.pool.clone())
            .collect();
        self.verify_pools(&back, Want::In, emit).await
    }

    /// Where load balancers are configured for these pools, wait until each has the node
    /// as wanted.
    pub(crate) async fn verify_pools(
        &self,
        pools: &BTreeSet<PoolKey>,
        want: Want,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let lbs = &self.conftool.load_balancers;
        let targets: Vec<Target> = pools
            .iter()
            .filter(|p| !lbs.for_pool(p).is_empty())
            .map(|p| Target {
                pool: p.clone(),
                host: self.name.clone(),
                want,
            })
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let opts = VerifyOptions {
            timeout: self.cfg.verify_timeout,
            wait_sessions: want == Want::Out,
            ..VerifyOptions::default()
        };
        let done = verify(lbs, &targets, &opts).await?;
        let ms = ms(done.elapsed);
        emit(match want {
            Want::Out => Event::VerifiedOut { ms },
            Want::In => Event::VerifiedIn { ms },
        });
        Ok(())
    }

    /// Write the reboot record if `guard` holds; its new revision.
    async fn put_reboot(&self, record: &Reboot, guard: Guard) -> Result<i64, Error> {
        let key = self.keys.reboot(&self.cfg.group, &self.name);
        let mut writer = self.writer(&format!("rebootmgr: reboot of {}", self.name))?;
        view::write_key(&mut writer, &key, Some(records::json(record)), guard, None)
            .await?
            .ok_or(Error::Changed { key })
    }

    /// Write a changed reboot record over the one read.
    pub(crate) async fn update_reboot(&self, record: &mut Read<Reboot>) -> Result<(), Error> {
        record.revision = self
            .put_reboot(&record.value, Guard::Unchanged(record.revision))
            .await?;
        Ok(())
    }
}

/// How the steps before the reboot ended.
pub(crate) enum Step {
    /// On to the reboot.
    Go,
    /// Put everything back.
    Abort {
        /// Why.
        why: String,
        /// The step to mark the node as needing a person at, if it does.
        mark: Option<&'static str>,
        /// How the run ends.
        outcome: Outcome,
    },
}

/// Held back after the slot was taken: said, and put back.
fn held(emit: Emit<'_>, held: Vec<HeldBack>) -> Step {
    let reasons: Vec<String> = held.iter().map(ToString::to_string).collect();
    emit(Event::HeldBack {
        reasons: reasons.clone(),
    });
    Step::Abort {
        why: reasons.join("; "),
        mark: None,
        outcome: Outcome::HeldBack(held),
    }
}

fn task_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Milliseconds, for events.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
