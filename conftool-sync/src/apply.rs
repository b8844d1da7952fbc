//! Carrying out a plan against etcd, re-planning on conflicts until it converges.

use conftool_core::{PlannedWrites, Store, Write, Writer};

use crate::error::Error;
use crate::guard::Limits;
use crate::load::Desired;
use crate::plan::{plan, Building, Plan};
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
    /// How many writes landed. Each is in the audit trail, which is where to read them:
    /// kept here too, every key and value of an initial sync would double its memory.
    pub written: usize,
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
        self.written > 0
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

/// The most writes made and committed at a time: enough to keep every transaction in
/// flight (128 writes each, 8 at once) for a while, few enough that a million-object sync
/// never holds more than a slice of its writes (a few MB).
const SLICE: usize = 16 * 1024;

/// Plan `desired` against what etcd holds now.
pub async fn plan_against(store: &Store, desired: &Desired) -> Result<Plan, Error> {
    // Decoded a page at a time: a million objects' keys are never held next to their
    // decoded form.
    let mut current = Building::new(store.keyspace());
    let revision = store
        .read_prefix_pages(&store.keyspace().root_prefix(), |page| current.add(page))
        .await?;
    Ok(plan(desired, &current.finish(revision)))
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
        // Stage after stage (schema types in dependency order; see Plan::write_stages),
        // each a slice at a time: the writes are made as they are sent, not all first.
        let mut conflicted = false;
        for mut stage in current.lazy_stages(&ks) {
            loop {
                let writes: Vec<(Write, Option<&str>)> =
                    stage.writes.by_ref().take(SLICE).collect();
                if writes.is_empty() {
                    break;
                }
                let report = op.commit(&writes).await;
                for &(i, rev) in &report.applied {
                    outcome.revision = outcome.revision.max(rev);
                    outcome.written += 1;
                    let write = &writes[i].0;
                    let key = write.key();
                    if ks.parse_service_key(key).is_some() {
                        outcome.services += 1;
                    } else if key == meta_key {
                        outcome.meta = true;
                    } else if ks.parse_label_key(key).is_some() {
                        outcome.labels += 1;
                    } else {
                        // A pool object or an object of a schema-declared type.
                        match write {
                            Write::Put { .. } => outcome.created += 1,
                            Write::Delete { .. } => outcome.deleted += 1,
                        }
                    }
                }
                if let Some(err) = report.error {
                    // The rest is not sent: re-running converges.
                    unknown.extend(report.failed.iter().map(|&i| writes[i].0.key().to_string()));
                    return Err(outcome.stop(err.into()));
                }
                conflicted |= !report.conflicted.is_empty();
            }
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
