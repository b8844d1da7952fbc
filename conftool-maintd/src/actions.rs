//! The daemon's actions, each run as a task of a round, each writing its event's outcome:
//!
//! - **evacuate**: the node's serving objects depooled into the node's evacuation (an
//!   operation of kind [`EVACUATE_KIND`] about the node: resumed if open, so a new leader
//!   continues a dead one's without depooling twice), judged by the depool threshold
//!   atomically with the write (a refusal leaves the event pending), verified out with every
//!   load balancer of the node's pools (failing closed), then `ready`.
//! - **live repair**: the whitelisted repair command run with the diagnosis on its stdin,
//!   within its time limit, recorded as an operation of kind [`REPAIR_KIND`]; `ready` if it
//!   exits 0, else `failed`.
//! - **repool**: the node's evacuation ended (exactly what it depooled put back, where
//!   nobody changed it since), verified back in, and the events that held it forgotten.
//!
//! Every write carries the event id: the writer's reason (so every audit line, and the
//! operation's record) says `maintd event <id>: ...`, and each event that acts adds a step to
//! the operation.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime};

use conftool_core::audit::rfc3339;
use conftool_core::OperationStep;
use conftool_core::{
    is_threshold_refusal, verify, Actor, AuditLog, Cluster, Error as StoreError, LoadBalancers,
    NodeName, OperationId, Store, Target, VerifyOptions, Want, Writer,
};

use crate::command;
use crate::config::MaintConfig;
use crate::error::Error;
use crate::event::{EventId, EventRecord, EventState, Kind};
use crate::records;

/// The kind of a node's evacuation operation (its subject: the node).
pub const EVACUATE_KIND: &str = "maintd-evacuate";
/// The kind of a live repair's operation.
pub const REPAIR_KIND: &str = "maintd-live-repair";

/// What the actions need, shared by the round's tasks.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The store.
    pub store: Store,
    /// The daemon's settings.
    pub cfg: MaintConfig,
    /// The load balancers that verify (conftool's `load_balancers`).
    pub lbs: LoadBalancers,
    /// Who acts (audit).
    pub actor: Actor,
    /// Where writes are audited.
    pub audit: AuditLog,
    /// How the events' histories name this instance.
    pub by: String,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it was for.
    Ok,
    /// It did not start: the event waits (a threshold refusal, a stop switch).
    Held,
    /// It failed: its event is `failed` (a repool is tried again at the next poll).
    Failed,
    /// A repool landed but the load balancers did not confirm it.
    Unverified,
}

impl Outcome {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Held => "held",
            Outcome::Failed => "failed",
            Outcome::Unverified => "unverified",
        }
    }
}

/// An action's result, for the log and the metrics.
#[derive(Debug, Clone)]
pub struct Done {
    /// The outcome.
    pub outcome: Outcome,
    /// What happened, for people.
    pub detail: String,
}

impl Ctx {
    fn writer(&self, reason: String) -> Result<Writer<'_>, Error> {
        Ok(self
            .store
            .writer(&self.actor, &self.audit)?
            .with_reason(reason))
    }

    fn now() -> String {
        rfc3339(SystemTime::now())
    }

    /// Record an action's end in its event: `state` if the event is still in progress (an
    /// operator may have cancelled it meanwhile: then only the history says it).
    async fn finish(
        &self,
        w: &mut Writer<'_>,
        id: &EventId,
        state: EventState,
        operation: Option<OperationId>,
        what: &str,
    ) -> Result<(), Error> {
        let by = self.by.clone();
        records::update(w, id, |r| {
            let now = Ctx::now();
            if operation.is_some() {
                r.operation = operation.clone();
            }
            r.waiting = if state == EventState::Pending {
                Some(what.to_string())
            } else {
                None
            };
            if r.state == EventState::InProgress {
                r.to(state, &by, &now, what);
            } else {
                r.note(&by, &now, format!("its action ended: {what}"));
            }
            Ok(true)
        })
        .await
        .map(drop)
    }

    /// A stop switch set for these clusters (or all), as words.
    async fn stop_set(&self, clusters: &[Cluster]) -> Result<Option<String>, Error> {
        Ok(self.store.stopped(clusters).await?.map(|s| {
            let who = s
                .record
                .as_ref()
                .map_or(String::new(), |r| format!(" by {}: {}", r.by, r.reason));
            format!("the stop switch is set{who}")
        }))
    }

    /// Evacuate `node` for event `id`; see the module docs.
    pub async fn evacuate(&self, rec: &EventRecord, clusters: &[Cluster]) -> Result<Done, Error> {
        let (id, node) = (&rec.id, &rec.node);
        let mut w = self.writer(format!("maintd event {id}: {} of {node}", rec.kind))?;
        if let Some(stop) = self.stop_set(clusters).await? {
            self.finish(&mut w, id, EventState::Pending, None, &stop)
                .await?;
            return Ok(Done {
                outcome: Outcome::Held,
                detail: stop,
            });
        }
        let t0 = Instant::now();
        let depooled = match w.depool_into_operation(EVACUATE_KIND, node, &[]).await {
            Ok(d) => d,
            Err(e) if is_threshold_refusal(&e.error) => {
                let why = format!("refused by the depool threshold: {}", e.error);
                self.finish(&mut w, id, EventState::Pending, None, &why)
                    .await?;
                return Ok(Done {
                    outcome: Outcome::Held,
                    detail: why,
                });
            }
            Err(e) => {
                let op = w.operation_record().map(|r| r.id.clone());
                let why = format!(
                    "the depool failed ({} objects depooled before): {}",
                    e.applied.len(),
                    e.error
                );
                self.finish(&mut w, id, EventState::Failed, op, &why)
                    .await?;
                return Ok(Done {
                    outcome: Outcome::Failed,
                    detail: why,
                });
            }
        };
        let op = depooled.operation.clone();
        let step = OperationStep {
            host: node.to_string(),
            kind: "maintd".into(),
            detail: format!(
                "event {id}: {} ({} objects depooled)",
                rec.kind,
                depooled.applied.len()
            ),
            exit_code: None,
            outcome: None,
            undo: None,
        };
        if let Err(e) = w.record_steps(vec![step]).await {
            let why = format!("depooled in operation {op}, but the step was not recorded: {e}");
            self.finish(&mut w, id, EventState::Failed, Some(op), &why)
                .await?;
            return Ok(Done {
                outcome: Outcome::Failed,
                detail: why,
            });
        }
        let mut said = format!(
            "{} objects depooled in operation {op}{}",
            depooled.applied.len(),
            if depooled.resumed {
                " (the node's evacuation, resumed)"
            } else {
                ""
            }
        );
        if self.cfg.verify {
            let targets: Vec<Target> = depooled
                .objects
                .iter()
                .filter_map(|o| Target::of(&o.key, &o.state))
                .map(|t| Target {
                    want: Want::Out,
                    ..t
                })
                .collect();
            let opts = VerifyOptions {
                timeout: self.cfg.verify_timeout,
                wait_sessions: self.cfg.wait_sessions && rec.kind == Kind::Evacuate,
                ..VerifyOptions::default()
            };
            match verify(&self.lbs, &targets, &opts).await {
                Ok(v) => said.push_str(&format!(
                    "; verified out of rotation by {} load balancer checks",
                    v.checks.len()
                )),
                Err(e) => {
                    let why = format!("{said}, but not verified: {e}");
                    self.finish(&mut w, id, EventState::Failed, Some(op), &why)
                        .await?;
                    return Ok(Done {
                        outcome: Outcome::Failed,
                        detail: why,
                    });
                }
            }
        }
        said.push_str(&format!(" ({:.2}s)", t0.elapsed().as_secs_f64()));
        self.finish(&mut w, id, EventState::Ready, Some(op), &said)
            .await?;
        Ok(Done {
            outcome: Outcome::Ok,
            detail: said,
        })
    }

    /// Run the repair command event `rec` asks for; see the module docs.
    pub async fn live_repair(
        &self,
        rec: &EventRecord,
        clusters: &[Cluster],
    ) -> Result<Done, Error> {
        let (id, node) = (&rec.id, &rec.node);
        let name = rec.command.as_deref().unwrap_or("");
        let mut w = self.writer(format!("maintd event {id}: live-repair {name} on {node}"))?;
        if let Some(stop) = self.stop_set(clusters).await? {
            self.finish(&mut w, id, EventState::Pending, None, &stop)
                .await?;
            return Ok(Done {
                outcome: Outcome::Held,
                detail: stop,
            });
        }
        let argv = match (
            &rec.command,
            rec.command
                .as_deref()
                .and_then(|c| self.cfg.repair_for(node, c)),
        ) {
            (_, Some(argv)) => argv,
            (None, None) => {
                let why = "the diagnosis names no repair command".to_string();
                self.finish(&mut w, id, EventState::Failed, None, &why)
                    .await?;
                return Ok(Done {
                    outcome: Outcome::Failed,
                    detail: why,
                });
            }
            (Some(c), None) => {
                let why = format!(
                    "repair command \"{}\" is not whitelisted (repair_commands: {})",
                    conftool_core::escape_controls(c),
                    self.cfg.repair_commands.join(", ")
                );
                self.finish(&mut w, id, EventState::Failed, None, &why)
                    .await?;
                return Ok(Done {
                    outcome: Outcome::Failed,
                    detail: why,
                });
            }
        };
        let op = w
            .open_operation(REPAIR_KIND, vec![node.to_string()])
            .await?;
        // The diagnosis as the node printed it (as a JSON value): plain data.
        let stdin = serde_json::to_vec(&rec.output).unwrap_or_default();
        let t0 = Instant::now();
        let out = command::run(&argv, Some(stdin), self.cfg.repair_timeout, 64 << 10).await;
        let took = t0.elapsed();
        let err = out.stderr_line();
        let outcome = if err.is_empty() {
            out.ended.to_string()
        } else {
            format!("{}: {err}", out.ended)
        };
        let step = OperationStep {
            host: node.to_string(),
            kind: "command".into(),
            detail: format!("event {id}: {}", argv.join(" ")),
            exit_code: match out.ended {
                command::Ended::Exited(c) => Some(c),
                _ => None,
            },
            outcome: Some(outcome.clone()),
            undo: None,
        };
        // The outcome is in the event whatever happens to its record in the operation.
        let recorded = w.record_steps(vec![step]).await;
        let closed = w.end_operation(&op, false).await;
        let mut said = format!(
            "repair command {name} {outcome} ({:.2}s, operation {op})",
            took.as_secs_f64()
        );
        if let Err(e) = recorded {
            said.push_str(&format!("; its step was not recorded: {e}"));
        }
        if let Err(e) = closed {
            said.push_str(&format!("; the operation was not closed: {e}"));
        }
        let (state, outcome) = match out.ended {
            command::Ended::Exited(0) => (EventState::Ready, Outcome::Ok),
            _ => (EventState::Failed, Outcome::Failed),
        };
        self.finish(&mut w, id, state, Some(op), &said).await?;
        Ok(Done {
            outcome,
            detail: said,
        })
    }

    /// End `op` (the node's evacuation), verify the node back, and forget `events` (each
    /// with why); see the module docs.
    pub async fn repool(
        &self,
        node: &NodeName,
        op: &OperationId,
        events: &[(EventId, String)],
    ) -> Result<Done, Error> {
        let ids: Vec<String> = events.iter().map(|(id, _)| id.to_string()).collect();
        let why = events.first().map_or("", |(_, w)| w.as_str());
        let mut w = self.writer(format!(
            "maintd event {}: {why}: {node} goes back",
            ids.join(",")
        ))?;
        let restored = match w.end_operation(op, false).await {
            Ok(ended) => ended.restored,
            Err(e) if matches!(e.error, StoreError::OperationNotFound(_)) => Vec::new(),
            Err(e) => {
                let why = format!("could not put {node} back (operation {op}): {}", e.error);
                for (id, _) in events {
                    let by = self.by.clone();
                    records::update(&mut w, id, |r| {
                        r.note(&by, &Ctx::now(), why.clone());
                        Ok(true)
                    })
                    .await?;
                }
                return Ok(Done {
                    outcome: Outcome::Failed,
                    detail: why,
                });
            }
        };
        let mut said = format!("{} objects put back (operation {op} ended)", restored.len());
        let mut outcome = Outcome::Ok;
        let targets: BTreeSet<Target> = restored
            .iter()
            .filter_map(|a| Target::of(&a.change.key, a.change.after.as_ref()?))
            .collect();
        if self.cfg.verify && !targets.is_empty() {
            let targets: Vec<Target> = targets.into_iter().collect();
            let opts = VerifyOptions {
                timeout: self.cfg.verify_timeout,
                ..VerifyOptions::default()
            };
            match verify(&self.lbs, &targets, &opts).await {
                Ok(v) => said.push_str(&format!(
                    "; verified by {} load balancer checks",
                    v.checks.len()
                )),
                Err(e) => {
                    said.push_str(&format!("; not verified: {e}"));
                    outcome = Outcome::Unverified;
                }
            }
        }
        for (id, _) in events {
            if let Some(stored) = records::get(&self.store, id).await? {
                records::delete(&mut w, &stored).await?;
            }
        }
        Ok(Done {
            outcome,
            detail: said,
        })
    }
}
