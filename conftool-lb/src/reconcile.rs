//! The agent's decisions about one pool, apart from its I/O: what a watch event does to the
//! pool's view and what is said about it, and what one reconcile sends to HAProxy and says.
//! The agent (`agent.rs`) reads etcd and HAProxy, hands what it read and the time to a
//! [`PoolCore`], and carries out what comes back; so each decision is unit-tested here.
//!
//! - A pool has no view until its first snapshot, and is not reconciled before it: its
//!   backend is left as HAProxy has it.
//! - Findings ([`AgentEvent::KeptByThreshold`], [`AgentEvent::MissingInBackend`],
//!   [`AgentEvent::UnknownToEtcd`]) are said when their list of servers changes, each on its
//!   own; an empty list only when it ends a non-empty one. A recheck that finds the same
//!   is silent.
//! - The commands are the plan's ([`plan_pool`]), then the drained servers whose drain
//!   timeout has passed lose what is still in flight ([`DrainClock`]), each once.
//! - Keys and values that cannot be read are said once each (`unreadable`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use conftool_core::watch::WatchEvent;
use conftool_core::{Keyspace, NodeName, PoolLimits, PoolState, Selection};

use crate::event::AgentEvent;
use crate::haproxy::{Command, ServerState};
use crate::names::{BackendName, ServerName};
use crate::plan::{plan_pool, DrainClock};
use crate::unreadable::Said;

/// What the agent knows and has said about one pool.
#[derive(Debug)]
pub(crate) struct PoolCore {
    /// The HAProxy backend serving the pool.
    backend: BackendName,
    /// The etcd prefix of the pool's keys.
    prefix: String,
    said: Said,
    limits: PoolLimits,
    /// None until the first snapshot.
    view: Option<Selection>,
    /// The servers each finding last named, in [`Reconcile::findings`]' order.
    reported: [Vec<String>; 3],
    drains: DrainClock,
}

/// What one reconcile of a pool does, in order: say the findings, send the commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reconcile {
    /// The backend.
    pub backend: BackendName,
    /// Findings whose servers changed since they were last said.
    pub findings: Vec<AgentEvent>,
    /// The commands to send.
    pub commands: Vec<Command>,
    /// The servers the depool threshold keeps in rotation (for `/alerts`).
    pub kept: Vec<ServerName>,
    /// The etcd revision of the view planned from.
    pub revision: i64,
}

impl PoolCore {
    /// A pool served by `backend`, whose keys are under `prefix`; no view yet.
    pub(crate) fn new(backend: BackendName, prefix: String) -> PoolCore {
        PoolCore {
            backend,
            prefix,
            said: Said::default(),
            limits: PoolLimits::default(),
            view: None,
            reported: Default::default(),
            drains: DrainClock::default(),
        }
    }

    /// The backend.
    pub(crate) fn backend(&self) -> &BackendName {
        &self.backend
    }

    /// The revision of the view; none before the first snapshot.
    pub(crate) fn revision(&self) -> Option<i64> {
        self.view.as_ref().map(|v| v.revision)
    }

    /// Whether the pool has a view (its first snapshot arrived) and so is reconciled.
    pub(crate) fn has_view(&self) -> bool {
        self.view.is_some()
    }

    /// The limits the plan keeps serving, as read from the service's definition.
    pub(crate) fn set_limits(&mut self, limits: PoolLimits) {
        self.limits = limits;
    }

    /// Bring the view up to date with a watch event; what to say about it: keys and values
    /// newly unreadable, then the snapshot or the changes.
    pub(crate) fn take_in(&mut self, ks: &Keyspace, ev: &WatchEvent) -> Vec<AgentEvent> {
        let view = self.view.get_or_insert_with(Selection::default);
        ev.apply_to(ks, view);
        let mut out: Vec<AgentEvent> = self
            .said
            .news(&self.prefix, view)
            .into_iter()
            .map(|(key, reason)| AgentEvent::Unreadable {
                backend: self.backend.to_string(),
                key,
                reason,
            })
            .collect();
        match ev {
            WatchEvent::Snapshot(s) => out.push(AgentEvent::Snapshot {
                backend: self.backend.to_string(),
                revision: s.revision,
                objects: s.objects.len(),
            }),
            WatchEvent::Changes { revision, changes } => out.push(AgentEvent::Changes {
                backend: self.backend.to_string(),
                revision: *revision,
                objects: changes.len(),
            }),
            _ => {}
        }
        out
    }

    /// Plan the pool against HAProxy's servers `current`, read at `now`; none before the
    /// first snapshot. Records what it says, so the next call says only what changed.
    pub(crate) fn reconcile(
        &mut self,
        current: &[ServerState],
        now: Instant,
        drain_timeout: Duration,
    ) -> Option<Reconcile> {
        let view = self.view.as_ref()?;
        let desired: BTreeMap<NodeName, PoolState> = view
            .objects
            .iter()
            .map(|o| (o.key.node.clone(), o.state.clone()))
            .collect();
        let plan = plan_pool(&self.backend, self.limits, &desired, current);
        let b = || self.backend.to_string();
        let (kept, missing, unknown) = (
            texts(&plan.kept_by_threshold),
            texts(&plan.missing_in_backend),
            texts(&plan.unknown_to_etcd),
        );
        let found = [
            (
                &kept,
                AgentEvent::KeptByThreshold {
                    backend: b(),
                    servers: kept.clone(),
                    required: plan.required,
                    pooled: plan.pooled,
                },
            ),
            (
                &missing,
                AgentEvent::MissingInBackend {
                    backend: b(),
                    servers: missing.clone(),
                },
            ),
            (
                &unknown,
                AgentEvent::UnknownToEtcd {
                    backend: b(),
                    servers: unknown.clone(),
                },
            ),
        ];
        let mut findings = Vec::new();
        for ((servers, finding), last) in found.into_iter().zip(&mut self.reported) {
            if servers != last {
                last.clone_from(servers);
                findings.push(finding);
            }
        }
        // The second step of a depool: servers drained for `drain_timeout` lose what is
        // still in flight.
        let due = self.drains.due(&plan.draining, now, drain_timeout);
        let end = due.into_iter().map(|server| Command::ShutdownSessions {
            backend: self.backend.clone(),
            server,
        });
        Some(Reconcile {
            backend: self.backend.clone(),
            findings,
            commands: plan.commands.into_iter().chain(end).collect(),
            kept: plan.kept_by_threshold,
            revision: view.revision,
        })
    }
}

/// Names of servers or nodes as the findings carry them: text.
fn texts<T: ToString>(names: &[T]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

impl Reconcile {
    /// What to say once HAProxy accepted `command` (one of [`Reconcile::commands`]).
    pub(crate) fn applied(&self, command: &Command) -> AgentEvent {
        AgentEvent::Applied {
            backend: self.backend.to_string(),
            server: command.server().to_string(),
            command: command.to_string(),
            revision: self.revision,
        }
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
