//! Planning a round (pure): which events' actions start now, and why the others wait.
//!
//! - Per node, the most invasive request wins (evacuate-failover over evacuate over
//!   live-repair); the others wait behind it.
//! - A new round starts when the previous round's actions have finished; while one runs,
//!   only a request more invasive than the action running on its node starts (it supersedes
//!   it: a node that started a live repair and now says it is going down is taken out now).
//! - Nothing starts on a node with a failed event (until an operator forgets it), nor on a
//!   node of a cluster whose stop switch is set.
//! - A round never acts on more nodes of a pool than its depool threshold lets out: every
//!   action counts, a live repair too (the node is being worked on), as if it depooled the
//!   node's serving objects, on top of what the pools hold now ([`admit`]).

use std::collections::{BTreeMap, BTreeSet};

use conftool_core::{admit, Member, PoolMembers};
use conftool_core::{Change, Cluster, NodeName, PoolKey, Pooled, Selected};

use crate::event::{EventId, EventRecord, EventState, Kind};

/// What a round is planned from.
#[derive(Debug, Clone, Copy)]
pub struct RoundInput<'a> {
    /// Every event (as read now).
    pub events: &'a [EventRecord],
    /// Each node's objects, as read now.
    pub objects: &'a BTreeMap<NodeName, Vec<Selected>>,
    /// The pools of those objects, as read now.
    pub pools: &'a BTreeMap<PoolKey, PoolMembers>,
    /// The actions running now: event, node, kind.
    pub running: &'a BTreeMap<EventId, (NodeName, Kind)>,
    /// Clusters whose stop switch is set.
    pub stopped: &'a BTreeSet<Cluster>,
}

/// A round's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundPlan {
    /// Events whose action starts now, most invasive first.
    pub start: Vec<EventId>,
    /// Events that wait, with why.
    pub hold: Vec<(EventId, String)>,
}

/// Plan a round; see the module docs.
pub fn plan(input: &RoundInput<'_>) -> RoundPlan {
    let mut out = RoundPlan::default();
    let round_running = !input.running.is_empty();
    let failed: BTreeMap<&NodeName, &EventId> = input
        .events
        .iter()
        .filter(|e| e.state == EventState::Failed)
        .map(|e| (&e.node, &e.id))
        .collect();
    let mut waiting: Vec<&EventRecord> = input
        .events
        .iter()
        .filter(|e| e.kind.acts() && matches!(e.state, EventState::Observed | EventState::Pending))
        .filter(|e| !input.running.contains_key(&e.id))
        .collect();
    // Most invasive first, then the oldest: the order requests are taken in.
    waiting.sort_by(|a, b| (b.kind, &a.observed, &a.id).cmp(&(a.kind, &b.observed, &b.id)));
    let mut chosen: Vec<&EventRecord> = Vec::new();
    for e in waiting {
        if let Some(first) = chosen.iter().find(|c| c.node == e.node) {
            out.hold.push((
                e.id.clone(),
                format!(
                    "superseded on its node by event {} ({})",
                    first.id, first.kind
                ),
            ));
            continue;
        }
        chosen.push(e);
    }
    let mut budgeted: Vec<&EventRecord> = Vec::new();
    for e in chosen {
        let running_here = input
            .running
            .iter()
            .filter(|(_, (n, _))| n == &e.node)
            .map(|(id, (_, k))| (*k, id))
            .max();
        let clusters: BTreeSet<&Cluster> = input
            .objects
            .get(&e.node)
            .into_iter()
            .flatten()
            .map(|o| &o.key.pool.cluster)
            .collect();
        let why = if let Some(f) = failed.get(&e.node) {
            Some(format!("its node has failed event {f}: nothing is done on the node until that one is forgotten"))
        } else if let Some((k, id)) = running_here.filter(|(k, _)| *k >= e.kind) {
            Some(format!("waiting for event {id}'s action ({k}) on its node"))
        } else if round_running && running_here.is_none() {
            Some("waiting for the current round to end".to_string())
        } else {
            clusters
                .into_iter()
                .find(|c| input.stopped.contains(*c))
                .map(|c| format!("the stop switch of cluster {c} is set"))
        };
        match why {
            Some(why) => out.hold.push((e.id.clone(), why)),
            None => budgeted.push(e),
        }
    }
    // Live repairs running now hold their nodes out of the count, as if depooled.
    let mut pools = input.pools.clone();
    for (node, kind) in input.running.values() {
        if *kind == Kind::LiveRepair {
            for o in input.objects.get(node).into_iter().flatten() {
                if let Some(m) = pools.get_mut(&o.key.pool) {
                    if let Some(member) = m.members.get_mut(node) {
                        *member = Member {
                            pooled: Pooled::No,
                            ..*member
                        };
                    }
                }
            }
        }
    }
    let changes: Vec<Vec<Change>> = budgeted
        .iter()
        .map(|e| taking_out(input.objects.get(&e.node).map_or(&[][..], Vec::as_slice)))
        .collect();
    let (admitted, held) = admit(&pools, &changes);
    for i in admitted {
        out.start.push(budgeted[i].id.clone());
    }
    for (i, below) in held {
        let each: Vec<String> = below.iter().map(ToString::to_string).collect();
        out.hold.push((
            budgeted[i].id.clone(),
            format!("waiting for capacity: {}", each.join("; ")),
        ));
    }
    out
}

/// The changes taking a node out makes: each serving object depooled.
fn taking_out(objects: &[Selected]) -> Vec<Change> {
    objects
        .iter()
        .filter(|o| o.state.serving())
        .map(|o| {
            let mut after = o.state.clone();
            after.pooled = Pooled::No;
            Change {
                key: o.key.clone(),
                before: o.state.clone(),
                after: Some(after),
                mod_revision: o.mod_revision,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "round_tests.rs"]
mod tests;
