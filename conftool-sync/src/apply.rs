//! Carrying out a plan against etcd, re-planning on conflicts until it converges.

use conftool_core::{PlannedWrites, Snapshot, Store, Write, Writer};

use crate::error::Error;
use crate::guard::Limits;
use crate::load::Desired;
use crate::plan::{plan, Current, Plan};
use crate::render::counted;

/// How many times a sync re-reads and re-plans after losing compare-and-swap races.
pub const MAX_ROUNDS: usize = 5;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Objects created (pool objects and objects of schema-declared types).
    pub created: usize,
    /// Objects deleted (pool objects and objects of schema-declared types).
    pub deleted: usize,
    /// Service definitions written or deleted.
    pub services: usize,
    /// Node labels created, rewritten or deleted (one per node).
    pub labels: usize,
    /// Whether the sync record was written.
    pub meta: bool,
    /// Plan-and-apply rounds it took (more than 1 means concurrent changes were met).
    pub rounds: usize,
    /// etcd's revision after the last write (0 when nothing was written).
    pub revision: i64,
    /// Every write that landed (each is in the audit trail too).
    pub written: Vec<Written>,
}

/// One write that landed: the key, its stored text before and after (`None`: absent), and
/// the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The key.
    pub key: String,
    /// The value it replaced.
    pub before: Option<String>,
    /// The value written (`None`: deleted).
    pub after: Option<String>,
    /// The revision of the write.
    pub revision: i64,
}

impl Outcome {
    /// What was written, every write counted: `created 1 object, deleted 0 objects, wrote 2
    /// service definitions and the sync record`.
    pub fn summary(&self) -> String {
        // Said only when there are some (see Plan::summary).
        let labels = match self.labels {
            0 => String::new(),
            n => format!(", the labels of {}", counted(n, "node", "nodes")),
        };
        format!(
            "created {}, deleted {}, wrote {}{labels}{}",
            counted(self.created, "object", "objects"),
            counted(self.deleted, "object", "objects"),
            counted(self.services, "service definition", "service definitions"),
            if self.meta {
                " and the sync record"
            } else {
                " (the sync record unchanged)"
            }
        )
    }

    /// Whether any write landed.
    pub fn wrote_something(&self) -> bool {
        !self.written.is_empty()
    }

    /// `err`, or, if something was written already, [`Error::Stopped`] carrying what was.
    fn stop(self, err: Error) -> Error {
        if self.wrote_something() {
            Error::Stopped {
                done: Box::new(self),
                cause: Box::new(err),
            }
        } else {
            err
        }
    }
}

/// The value a write puts (`None` for a delete).
fn after_text(w: &Write) -> Option<&str> {
    match w {
        Write::Put { value, .. } => Some(value.as_str()),
        Write::Delete { .. } => None,
    }
}

/// Read everything this tool manages in one (paginated) range read.
pub async fn snapshot(store: &Store) -> Result<Snapshot, Error> {
    Ok(store.read_prefix(&store.keyspace().root_prefix()).await?)
}

/// Plan `desired` against what etcd holds now.
pub async fn plan_against(store: &Store, desired: &Desired) -> Result<Plan, Error> {
    let snap = snapshot(store).await?;
    Ok(plan(
        desired,
        &Current::from_snapshot(store.keyspace(), snap),
    ))
}

/// Apply `first` (a plan computed against the store), then, for writes that lost a
/// compare-and-swap race, re-read, re-plan, re-check the limits and apply again, up to
/// [`MAX_ROUNDS`] rounds. Writes that landed stay; a crashed run is finished by the next.
///
/// The whole sync is one audited operation of `writer` (see [`conftool_core::audit`]):
/// intents before each commit (a failure to record them stops the sync before that commit),
/// what landed after it, and one end line.
pub async fn apply(
    writer: &mut Writer<'_>,
    desired: &Desired,
    first: Plan,
    limits: &Limits,
) -> Result<Outcome, Error> {
    let store = writer.store();
    let mut op = writer.planned();
    let mut unknown = Vec::new();
    let result = apply_rounds(store, &mut op, desired, first, limits, &mut unknown).await;
    let error = result
        .as_ref()
        .err()
        .map(|e| conftool_core::audit::error_chain(e));
    let ended = op.finish(error.as_deref(), &unknown);
    match (result, ended) {
        (Ok(outcome), Ok(())) => Ok(outcome),
        (Ok(outcome), Err(e)) => Err(outcome.stop(e.into())),
        (Err(e), _) => Err(e),
    }
}

async fn apply_rounds(
    store: &Store,
    op: &mut PlannedWrites<'_, '_>,
    desired: &Desired,
    first: Plan,
    limits: &Limits,
    unknown: &mut Vec<String>,
) -> Result<Outcome, Error> {
    let ks = store.keyspace().clone();
    let meta_key = ks.sync_meta_key();
    let mut outcome = Outcome::default();
    let mut current = first;
    for round in 1..=MAX_ROUNDS {
        outcome.rounds = round;
        // A refusal means "bad input, nothing written" only while nothing has been; after
        // concurrent changes a later round can be refused with writes landed (then the
        // error is Stopped, exit 1).
        if let Err(refused) = current.guard(limits) {
            return Err(outcome.stop(refused));
        }
        if current.writes_nothing() {
            return Ok(outcome);
        }
        // Stage after stage (schema types in dependency order; see Plan::write_stages).
        let mut conflicted = false;
        for writes in current.write_stages(&ks) {
            let report = op.commit(&writes).await;
            for &(i, rev) in &report.applied {
                let (write, before) = &writes[i];
                outcome.revision = outcome.revision.max(rev);
                let key = write.key();
                let after = after_text(write);
                if ks.parse_service_key(key).is_some() {
                    outcome.services += 1;
                } else if key == meta_key {
                    outcome.meta = true;
                } else if ks.parse_label_key(key).is_some() {
                    outcome.labels += 1;
                } else {
                    // A pool object or an object of a schema-declared type.
                    match after {
                        Some(_) => outcome.created += 1,
                        None => outcome.deleted += 1,
                    }
                }
                outcome.written.push(Written {
                    key: key.to_string(),
                    before: before.map(str::to_string),
                    after: after.map(str::to_string),
                    revision: rev,
                });
            }
            if let Some(err) = report.error {
                unknown.extend(report.failed.iter().map(|&i| writes[i].0.key().to_string()));
                return Err(outcome.stop(err.into()));
            }
            conflicted |= !report.conflicted.is_empty();
        }
        if !conflicted {
            return Ok(outcome);
        }
        current = match plan_against(store, desired).await {
            Ok(p) => p,
            Err(e) => return Err(outcome.stop(e)),
        };
    }
    let err =
        conftool_core::Error::Conflict(conftool_core::Contention::Sync { rounds: MAX_ROUNDS });
    Err(outcome.stop(err.into()))
}
