//! After the boot (a new boot id): take the slot over again, run the post-boot tasks, wait
//! until the node's checks pass, end the operation (repool exactly what was depooled,
//! verified), clear the trigger if it is still the one that asked, and give the slot back.
//! A run killed on the way is resumed by the next one (the record says `booted`); a node
//! that does not come back healthy is marked, left depooled in its operation, and its
//! slot given back (its objects stay out of the pools, so the constraints count it).

use conftool_core::Guard;

use crate::error::Error;
use crate::events::Event;
use crate::local;
use crate::node::{Emit, Node};
use crate::outcome::Outcome;
use crate::records::{Phase, Reboot, Stamp};
use crate::sequence::ms;
use crate::view::{self, Read};

impl Node {
    /// Finish a reboot the record says happened (or is being finished).
    pub(crate) async fn after_boot(
        &self,
        mut rec: Read<Reboot>,
        boot_id: &str,
        emit: Emit<'_>,
    ) -> Result<Outcome, Error> {
        if rec.value.phase != Phase::Booted {
            emit(Event::Back {
                previous_boot_id: rec.value.boot_id.clone(),
                away_ms: ms(Stamp::now().since(rec.value.phase_since)),
            });
            rec.value.phase = Phase::Booted;
            rec.value.phase_since = Stamp::now();
            rec.value.booted_as = Some(boot_id.to_string());
            self.update_reboot(&mut rec).await?;
        }
        let mut lock = self.store.resume_lock(&self.slot, &rec.value.slot).await?;
        if let Some(l) = lock.as_mut() {
            l.keep_alive();
        }
        emit(Event::SlotResumed {
            held: lock.is_some(),
        });
        let failed = self.post_boot(emit).await?;
        let operation = rec.value.operation.clone();
        if let Some(why) = failed {
            // Left out of the pools: the node is not healthy. The slot is given back (the
            // others' constraints count this node's objects as not serving).
            self.finish(rec, lock, emit).await?;
            self.mark(&why, "post_boot", operation, emit).await?;
            return Ok(Outcome::NeedsPerson(why));
        }
        if let Some(op) = &operation {
            if let Err(e) = self.repool(op, emit).await {
                let why = format!("the repool after the reboot failed: {e}");
                self.finish(rec, lock, emit).await?;
                self.mark(&why, "repool", Some(op.clone()), emit).await?;
                return Ok(Outcome::NeedsPerson(why));
            }
        }
        self.clear_trigger(&rec.value, emit).await?;
        let started = rec.value.started;
        self.finish(rec, lock, emit).await?;
        emit(Event::Done {
            ms: ms(Stamp::now().since(started)),
        });
        Ok(Outcome::Done)
    }

    /// Post-boot tasks, then the checks until they pass. `Some`: why the node needs a
    /// person.
    async fn post_boot(&self, emit: Emit<'_>) -> Result<Option<String>, Error> {
        let booted = tokio::time::Instant::now();
        for task in local::tasks(&self.cfg.post_boot_dir())? {
            let name = task
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let out = local::run(
                &task.to_string_lossy(),
                false,
                &self.env(),
                self.cfg.task_timeout,
            )
            .await;
            emit(Event::Task {
                phase: "post_boot",
                name: name.clone(),
                outcome: out.describe(),
                ms: ms(out.elapsed),
            });
            if !out.ok() {
                return Ok(Some(format!("post-boot task {name}: {}", out.describe())));
            }
        }
        let deadline = booted + self.cfg.healthy_timeout;
        loop {
            let own = self.run_checks().await;
            let failing: Vec<String> = own
                .iter()
                .filter(|r| !r.passing)
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect();
            if failing.is_empty() {
                emit(Event::Healthy {
                    ms: ms(booted.elapsed()),
                });
                return Ok(None);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Some(format!(
                    "not healthy {}s after the boot: {}",
                    self.cfg.healthy_timeout.as_secs(),
                    failing.join("; ")
                )));
            }
            tokio::time::sleep(self.cfg.poll_interval).await;
        }
    }

    /// Clear what asked for the reboot, if it is still what asked (a trigger set again
    /// since asks for another reboot).
    async fn clear_trigger(&self, rec: &Reboot, emit: Emit<'_>) -> Result<(), Error> {
        let (mut cleared, mut kept) = (Vec::new(), Vec::new());
        if let Some(mtime) = rec.trigger.file_mtime_ns {
            let path = self.cfg.trigger_file.display().to_string();
            if local::clear_trigger_file(&self.cfg.trigger_file, mtime)? {
                cleared.push(path);
            } else if local::trigger_file(&self.cfg.trigger_file)?.is_some() {
                kept.push(format!("{path}: touched again since the reboot started"));
            }
        }
        if let Some(revision) = rec.trigger.key_revision {
            let key = self.keys.trigger(&self.name);
            let mut writer = self.writer("rebootmgr: reboot done")?;
            let done =
                view::write_key(&mut writer, &key, None, Guard::Unchanged(revision), None).await?;
            if done.is_some() {
                cleared.push(key);
            } else if view::read_key(&self.store, &key).await?.is_some() {
                kept.push(format!("{key}: set again since the reboot started"));
            }
        }
        emit(Event::TriggerCleared { cleared, kept });
        Ok(())
    }

    /// Remove the record and give the slot back.
    async fn finish(
        &self,
        rec: Read<Reboot>,
        lock: Option<conftool_core::Lock>,
        emit: Emit<'_>,
    ) -> Result<(), Error> {
        let key = self.keys.reboot(&self.cfg.group, &self.name);
        let mut writer = self.writer("rebootmgr: reboot done")?;
        view::write_key(
            &mut writer,
            &key,
            None,
            Guard::Unchanged(rec.revision),
            None,
        )
        .await?
        .ok_or(Error::Changed { key })?;
        if let Some(lock) = lock {
            lock.release().await?;
            emit(Event::SlotReleased {
                slot: rec.value.slot,
            });
        }
        Ok(())
    }
}
