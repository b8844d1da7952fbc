//! What a poll means for the events (pure): which observations are new events, and which
//! events the daemon forgets, and whether forgetting one puts its node back.
//!
//! - A node saying something that no live event of it says (same fingerprint) is a new event;
//!   `ok` is none.
//! - An event is forgotten when its node no longer says it and: no action was taken yet
//!   (observed, pending, malformed), or it was cancelled, or it is ready and acknowledged.
//!   One an operator asked to forget goes whatever the node says (if it still says it, the
//!   new event starts the flow over).
//! - The node's evacuation is one operation shared by its evacuating events: forgetting an
//!   event ends it (putting the node back) only if nothing on the node still wants it out (an
//!   evacuating event that stays, or the node asking for an evacuation now), never for a
//!   cancelled event forgotten because it went away (cancelled means hands off), and never
//!   while the node's diagnosis cannot be read.

use std::collections::BTreeMap;

use conftool_core::{NodeName, OperationId};

use crate::diagnose::Observation;
use crate::event::{EventId, EventRecord, EventState};

/// An event to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forget {
    /// The event.
    pub id: EventId,
    /// Its node.
    pub node: NodeName,
    /// Why, for its history and the log.
    pub why: String,
    /// The node's evacuation to end first (putting the node back), if forgetting it does.
    pub end_operation: Option<OperationId>,
}

/// What one poll changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    /// New events: the node and what it said.
    pub create: Vec<(NodeName, Observation)>,
    /// Events to forget.
    pub forget: Vec<Forget>,
}

/// Judge the events against what each polled node said now (nodes not in `reports` were
/// not heard from: their events stay as they are).
pub fn reconcile(records: &[EventRecord], reports: &BTreeMap<NodeName, Observation>) -> Reconciled {
    let mut out = Reconciled::default();
    for (node, obs) in reports {
        let fp = obs.kind().map(|_| obs.fingerprint(node.as_str()));
        let said = |r: &EventRecord| fp.as_deref() == Some(r.fingerprint.as_str());
        let on_node: Vec<&EventRecord> = records.iter().filter(|r| &r.node == node).collect();
        if fp.is_some() && !on_node.iter().any(|r| !r.forget_requested() && said(r)) {
            out.create.push((node.clone(), obs.clone()));
        }
        // Each event to forget, and whether forgetting it may put the node back.
        let mut going: Vec<(&EventRecord, String, bool)> = Vec::new();
        for r in &on_node {
            if let Some((why, may_end)) = decide(r, said(r), obs) {
                going.push((r, why, may_end));
            }
        }
        let holds = obs.kind().is_some_and(|k| k.evacuates())
            || on_node
                .iter()
                .filter(|r| !going.iter().any(|(g, _, _)| g.id == r.id))
                .any(|r| r.kind.evacuates());
        for (r, why, may_end) in going {
            let end = may_end && !holds && r.kind.evacuates();
            out.forget.push(Forget {
                id: r.id.clone(),
                node: node.clone(),
                why,
                end_operation: if end { r.operation.clone() } else { None },
            });
        }
    }
    out
}

/// Whether to forget `r` now (and may its forgetting put the node back), given whether the
/// node still says it and what it says.
fn decide(r: &EventRecord, still_said: bool, obs: &Observation) -> Option<(String, bool)> {
    // Putting a node back needs a diagnosis a person can read; until then, it waits.
    let readable = obs.well_formed();
    let holds_op = r.kind.evacuates() && r.operation.is_some();
    if let Some(m) = r.mark.as_ref().filter(|_| r.forget_requested()) {
        if holds_op && !readable {
            return None;
        }
        return Some((format!("forgotten as {} asked", m.by), true));
    }
    if still_said {
        return None;
    }
    match r.state {
        EventState::Observed | EventState::Pending => {
            if holds_op && !readable {
                return None;
            }
            Some(("no longer reported before any action".into(), true))
        }
        EventState::Cancelled => Some((
            "cancelled, and no longer reported (anything it left is left to people)".into(),
            false,
        )),
        EventState::Ready if r.acked() && readable => Some((
            format!("acknowledged, and the node now reports {obs}"),
            true,
        )),
        _ => None,
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
