//! Operations kept in etcd ([`crate::operation`]): opening one, recording a writer's
//! changes in it, listing them, and ending one (restoring what it changed, where nobody
//! changed it since).
//!
//! ```no_run
//! # async fn demo(store: &conftool_core::Store, actor: &conftool_core::Actor) -> Result<(), Box<dyn std::error::Error>> {
//! use conftool_core::{AuditLog, HostVerb};
//! let mut writer = store.writer(actor, &AuditLog::default())?.with_reason("kernel upgrade");
//! let host: conftool_core::NodeName = "mw1018.eqiad.wmnet".parse()?;
//! let id = writer.open_operation("depool", vec![host.to_string()]).await?;
//! writer.host(HostVerb::Depool, &[host], None).await?;   // recorded in the operation
//! // ... reboot; or crash, and `confctl operation end ID` later ...
//! let ended = writer.end_operation(&id, false).await?;
//! println!("{} objects restored", ended.restored.len());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::action::{Edit, SetFields};
use crate::audit::rfc3339;
use crate::error::Error;
use crate::guarded::OpHandle;
use crate::model::{ObjectKey, PoolState};
use crate::operation::{
    end_plan, Left, OperationId, OperationRecord, OperationState, OperationStep,
};
use crate::select::{ApplyError, Atomicity, Scope};
use crate::selection::{Applied, Change, Selected};
use crate::store::Store;
use crate::writer::Writer;

/// What ending an operation did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct Ended {
    /// The record as it stands now (ended, unless this was a dry run).
    pub record: OperationRecord,
    /// The restores that landed (empty in a dry run).
    pub restored: Vec<Applied>,
    /// The restores a dry run would make.
    pub would_restore: Vec<Change>,
    /// Objects left as they are, with why.
    pub left: Vec<(ObjectKey, Left)>,
    /// The operation had already ended: nothing was done.
    pub already_ended: bool,
}

impl Store {
    /// Every operation record (open and ended), oldest first; records that do not parse are
    /// returned apart, with why.
    pub async fn operations(&self) -> Result<(Vec<OperationRecord>, Vec<(String, String)>), Error> {
        let snap = self
            .read_prefix(&self.keyspace().operations_prefix())
            .await?;
        let mut records = Vec::new();
        let mut malformed = Vec::new();
        for kv in snap.kvs {
            match OperationRecord::from_json(&kv.key, &kv.value) {
                Ok(r) => records.push(r),
                Err(e) => malformed.push((kv.key, e.to_string())),
            }
        }
        records.sort_by(|a, b| (&a.started, &a.id).cmp(&(&b.started, &b.id)));
        Ok((records, malformed))
    }

    /// One operation's record, if it exists.
    pub async fn operation(&self, id: &OperationId) -> Result<Option<OperationRecord>, Error> {
        Ok(self.operation_at(id).await?.map(|(r, _)| r))
    }

    /// A record with its mod revision.
    async fn operation_at(
        &self,
        id: &OperationId,
    ) -> Result<Option<(OperationRecord, i64)>, Error> {
        let key = self.keyspace().operation_key(id);
        let (_, mut gets) = self
            .txn_gets(Txn::new().and_then(vec![TxnOp::get(key.as_str(), None)]))
            .await?;
        let Some(kv) = gets.pop().and_then(|mut kvs| kvs.pop()) else {
            return Ok(None);
        };
        let record = OperationRecord::from_json(&kv.key, &kv.value)?;
        Ok(Some((record, kv.mod_revision)))
    }

    /// After a lost race: the record as stored now. An operation ended (or removed)
    /// meanwhile stops the writer that records in it.
    pub(crate) async fn refresh_operation(&self, h: &mut OpHandle) -> Result<(), Error> {
        match self.operation_at(&h.record.id).await? {
            Some((record, _)) if record.state == OperationState::Ended => {
                Err(Error::OperationEnded(record.id))
            }
            Some((record, rev)) => {
                h.record = record;
                h.mod_revision = rev;
                Ok(())
            }
            None => Err(Error::OperationNotFound(h.record.id.clone())),
        }
    }

    /// Write `record` at its key if the key is still at `mod_revision` (0: absent); the new
    /// mod revision, or `None` if it was not.
    async fn put_record(
        &self,
        record: &OperationRecord,
        mod_revision: i64,
    ) -> Result<Option<i64>, Error> {
        let key = self.keyspace().operation_key(&record.id);
        let guard = if mod_revision == 0 {
            Compare::version(key.as_str(), CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(key.as_str(), CompareOp::Equal, mod_revision)
        };
        let txn = Txn::new().when(vec![guard]).and_then(vec![TxnOp::put(
            key.as_str(),
            record.to_json()?,
            None,
        )]);
        let resp = self.run_txn(txn).await?;
        Ok(resp
            .succeeded()
            .then(|| resp.header().map(|h| h.revision()).unwrap_or_default()))
    }
}

impl Writer<'_> {
    /// Open a new operation of `kind` about `subject` (host names, a selector, a label): its
    /// record is written now, open and with nothing changed yet; this writer's changes from
    /// now on are recorded in it, in the same transactions as the changes.
    pub async fn open_operation(
        &mut self,
        kind: &str,
        subject: Vec<String>,
    ) -> Result<OperationId, Error> {
        let now = SystemTime::now();
        let actor = self.audit.actor().clone();
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let random = nanos ^ std::process::id().rotate_left(16);
        let id = OperationId::new(&crate::audit::utc_compact(now), random)?;
        let record = OperationRecord {
            id: id.clone(),
            state: OperationState::Open,
            kind: kind.to_string(),
            subject,
            user: actor.user,
            etcd_user: actor.etcd_user,
            host: actor.host,
            tool: actor.tool,
            pid: std::process::id(),
            reason: self.audit.reason().map(str::to_string),
            started: rfc3339(now),
            ended: None,
            objects: Vec::new(),
            steps: Vec::new(),
            extra: serde_json::Map::new(),
        };
        let Some(rev) = self.store.put_record(&record, 0).await? else {
            return Err(Error::Conflict(crate::Contention::OperationId(id)));
        };
        self.set_operation(OpHandle {
            key: self.store.keyspace().operation_key(&id),
            record,
            mod_revision: rev,
        });
        Ok(id)
    }

    /// Record this writer's changes in the open operation `id` (one a crashed run left, to
    /// resume it). [`Error::OperationNotFound`] or [`Error::OperationEnded`] otherwise.
    pub async fn join_operation(&mut self, id: &OperationId) -> Result<&OperationRecord, Error> {
        let (record, rev) = self
            .store
            .operation_at(id)
            .await?
            .ok_or_else(|| Error::OperationNotFound(id.clone()))?;
        if record.state == OperationState::Ended {
            return Err(Error::OperationEnded(id.clone()));
        }
        self.set_operation(OpHandle {
            key: self.store.keyspace().operation_key(id),
            record,
            mod_revision: rev,
        });
        self.operation_record()
            .ok_or_else(|| Error::OperationNotFound(id.clone()))
    }

    /// Join the open operation of `kind` about exactly `subject` if there is one (a re-run
    /// resumes what a crashed run left), else open one. Returns its id and whether it was
    /// resumed.
    pub async fn resume_or_open(
        &mut self,
        kind: &str,
        subject: Vec<String>,
    ) -> Result<(OperationId, bool), Error> {
        let (records, _) = self.store.operations().await?;
        if let Some(r) = records.iter().find(|r| r.resumes(kind, &subject)) {
            let id = r.id.clone();
            self.join_operation(&id).await?;
            return Ok((id, true));
        }
        Ok((self.open_operation(kind, subject).await?, false))
    }

    /// The record of the operation this writer records in, as last written.
    pub fn operation_record(&self) -> Option<&OperationRecord> {
        self.op.as_ref().map(|h| &h.record)
    }

    /// Stop recording in the operation (it stays open); returns its id.
    pub fn leave_operation(&mut self) -> Option<OperationId> {
        self.audit.set_operation(None);
        self.op.take().map(|h| h.record.id)
    }

    fn set_operation(&mut self, h: OpHandle) {
        self.audit.set_operation(Some(h.record.id.to_string()));
        self.op = Some(h);
    }

    /// Add `steps` (commands run, hosts left to people) to the open operation's record.
    pub async fn record_steps(&mut self, steps: Vec<OperationStep>) -> Result<(), Error> {
        let store = self.store;
        let Some(h) = self.op.as_mut() else {
            return Ok(());
        };
        for _ in 0..crate::rounds::MAX_ROUNDS {
            let mut next = h.record.clone();
            next.steps.extend(steps.iter().cloned());
            if let Some(rev) = store.put_record(&next, h.mod_revision).await? {
                h.record = next;
                h.mod_revision = rev;
                return Ok(());
            }
            store.refresh_operation(h).await?;
        }
        Err(Error::Conflict(crate::Contention::OperationSteps(
            h.record.id.clone(),
        )))
    }

    /// End operation `id`: restore each object it changed to its state before, if it is
    /// still as the operation left it (compare-and-swap on the state read now; the rules
    /// apply, so a restore that would leave a pool too thin is refused); leave the others and
    /// say why; mark the record ended. With `dry_run`, only say what it would do. Ending an
    /// ended operation does nothing ([`Ended::already_ended`]).
    pub async fn end_operation(
        &mut self,
        id: &OperationId,
        dry_run: bool,
    ) -> Result<Ended, ApplyError> {
        let mut ended = self.restore_operation(id, dry_run).await?;
        if dry_run || ended.already_ended {
            return Ok(ended);
        }
        ended.record = self.close_operation(id).await.map_err(|error| ApplyError {
            applied: ended.restored.clone(),
            error,
        })?;
        Ok(ended)
    }

    /// The restoring half of [`Writer::end_operation`]: the record stays open (for a caller
    /// with more to undo first, e.g. the policy's repool commands), to be closed with
    /// [`Writer::close_operation`]. Running it again restores nothing twice.
    pub async fn restore_operation(
        &mut self,
        id: &OperationId,
        dry_run: bool,
    ) -> Result<Ended, ApplyError> {
        self.restore_where(id, dry_run, None).await
    }

    /// [`Writer::restore_operation`] for the objects of `hosts` only: a rolling run puts
    /// each host back when its command is done, and closes its operation at the end.
    pub async fn restore_hosts(
        &mut self,
        id: &OperationId,
        hosts: &BTreeSet<crate::names::NodeName>,
    ) -> Result<Ended, ApplyError> {
        self.restore_where(id, false, Some(hosts)).await
    }

    async fn restore_where(
        &mut self,
        id: &OperationId,
        dry_run: bool,
        hosts: Option<&BTreeSet<crate::names::NodeName>>,
    ) -> Result<Ended, ApplyError> {
        let fail = |error| ApplyError {
            applied: Vec::new(),
            error,
        };
        let (record, _) = self
            .store
            .operation_at(id)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail(Error::OperationNotFound(id.clone())))?;
        if record.state == OperationState::Ended {
            return Ok(Ended {
                record,
                restored: Vec::new(),
                would_restore: Vec::new(),
                left: Vec::new(),
                already_ended: true,
            });
        }
        let record = match hosts {
            // Only those hosts' objects are restored (the record itself stays whole).
            Some(h) => OperationRecord {
                objects: record
                    .objects
                    .iter()
                    .filter(|o| h.contains(&o.key.node))
                    .cloned()
                    .collect(),
                ..record
            },
            None => record,
        };
        let keys: BTreeSet<ObjectKey> = record.objects.iter().map(|o| o.key.clone()).collect();
        let now = self.store.read_objects(&keys).await.map_err(fail)?;
        let current: BTreeMap<ObjectKey, (PoolState, i64)> = now
            .objects
            .iter()
            .map(|o| (o.key.clone(), (o.state.clone(), o.mod_revision)))
            .collect();
        let plan = end_plan(&record, &current);
        if dry_run {
            return Ok(Ended {
                record,
                restored: Vec::new(),
                would_restore: plan.restore,
                left: plan.left,
                already_ended: false,
            });
        }
        // The end rule again on fresh state after a lost race: only objects still as the
        // operation left them are put back.
        let restore_edit = |o: &Selected| {
            let fresh: BTreeMap<ObjectKey, (PoolState, i64)> =
                BTreeMap::from([(o.key.clone(), (o.state.clone(), o.mod_revision))]);
            let one = OperationRecord {
                objects: record
                    .objects
                    .iter()
                    .filter(|r| r.key == o.key)
                    .cloned()
                    .collect(),
                ..record.clone()
            };
            let c = end_plan(&one, &fresh).restore.pop()?;
            let after = c.after?;
            Some(Edit::Set(SetFields {
                pooled: Some(after.pooled),
                weight: Some(after.weight),
            }))
        };
        let previous = self.op.take();
        self.audit.set_operation(Some(id.to_string()));
        self.audit.begin();
        let restored = self
            .store
            .apply(
                Scope::Keys(&keys),
                plan.restore,
                &restore_edit,
                Atomicity::Batched,
                self.overrides(),
                &mut self.audit,
                None,
                None,
            )
            .await;
        self.audit
            .set_operation(previous.as_ref().map(|h| h.record.id.to_string()));
        self.op = previous;
        let restored = restored?;
        Ok(Ended {
            record,
            restored,
            would_restore: Vec::new(),
            left: plan.left,
            already_ended: false,
        })
    }

    /// Mark the record ended (compare-and-swap; someone else ending it first is fine).
    pub async fn close_operation(&mut self, id: &OperationId) -> Result<OperationRecord, Error> {
        for _ in 0..crate::rounds::MAX_ROUNDS {
            let (mut record, rev) = self
                .store
                .operation_at(id)
                .await?
                .ok_or_else(|| Error::OperationNotFound(id.clone()))?;
            if record.state == OperationState::Ended {
                return Ok(record);
            }
            record.state = OperationState::Ended;
            record.ended = Some(rfc3339(SystemTime::now()));
            if self.store.put_record(&record, rev).await?.is_some() {
                if self.op.as_ref().is_some_and(|h| &h.record.id == id) {
                    self.leave_operation();
                }
                return Ok(record);
            }
        }
        Err(Error::Conflict(crate::Contention::OperationEnd(id.clone())))
    }
}
