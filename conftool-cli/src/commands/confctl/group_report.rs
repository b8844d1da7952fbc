//! What the host verbs say about a group: the dry run (per host, each pool and its state and
//! what would change; the pools that would cross their threshold; hosts conftool does not
//! manage), what was left alone, and after a write what still needs a person.

use conftool_core::{GroupPlan, OperationId, PoolState};
use serde_json::json;

use super::policy_run::{Outcome, PolicyHost};
use super::Opts;

fn state(s: &PoolState) -> String {
    format!("pooled={} weight={}", s.pooled, s.weight)
}

/// `--dry-run`: the whole plan on stdout (or as one JSON document).
pub fn dry_run(opts: &Opts, plan: &GroupPlan, theirs: &[PolicyHost]) {
    if opts.json {
        opts.out.line(json(plan, &[], None).to_string());
        return;
    }
    let n = plan.hosts.len() + theirs.len();
    opts.out.line(format!(
        "Dry run: {} of {n} host{} (nothing written)",
        plan.verb,
        if n == 1 { "" } else { "s" }
    ));
    let held: Vec<&conftool_core::NodeName> = plan.held_back.iter().map(|(h, _)| h).collect();
    for h in &plan.hosts {
        let note = if held.contains(&&h.host) {
            " (held back: see below)"
        } else {
            ""
        };
        opts.out.line(format!("{}:{note}", h.host));
        for o in &h.objects {
            let line = match h.changes.iter().find(|c| c.key == o.key) {
                Some(c) => match &c.after {
                    Some(a) => format!("{} -> {}", state(&o.state), state(a)),
                    None => format!("{} -> deleted", state(&o.state)),
                },
                None if h.skipped.contains(&o.key) => {
                    format!("{} (left alone)", state(&o.state))
                }
                None => format!("{} (unchanged)", state(&o.state)),
            };
            opts.out.line(format!("  {}: {line}", o.key.pool));
        }
    }
    for t in theirs {
        opts.out.line(format!(
            "{}: not depooled by conftool: {}",
            t.host, t.mechanism
        ));
    }
    for h in &plan.not_found {
        opts.out
            .line(format!("{h}: in no pool (not managed by conftool)"));
    }
    if !plan.below.is_empty() {
        opts.out.line(if plan.partial {
            "Pools the whole group would take below their depool threshold:".to_string()
        } else {
            "Refused: pools that would cross their depool threshold (nothing would be written; \
             --partial writes the hosts that fit):"
                .to_string()
        });
        for b in &plan.below {
            opts.out.line(format!("  {b}"));
        }
    }
    for (h, why) in &plan.held_back {
        let pools: Vec<String> = why.iter().map(ToString::to_string).collect();
        opts.out
            .line(format!("Held back: {h}: {}", pools.join("; ")));
    }
}

/// Objects left alone (inactive), on stderr.
pub fn skipped(opts: &Opts, plan: &GroupPlan) {
    for h in &plan.hosts {
        for k in &h.skipped {
            opts.out.info(format!("{k}: left alone (pooled=inactive)"));
        }
    }
}

/// After the write: the policy's hosts, hosts held back, and the operation that undoes it.
pub fn after(opts: &Opts, plan: &GroupPlan, outcomes: &[Outcome], op: Option<&OperationId>) {
    if opts.json {
        return;
    }
    for o in outcomes.iter().filter(|o| o.step.kind == "command") {
        opts.out.line(format!(
            "{}: `{}`: {}",
            o.host,
            o.step.detail,
            o.step.outcome.as_deref().unwrap_or("")
        ));
    }
    for h in &plan.not_found {
        opts.out.line(format!(
            "{h}: in no pool (not managed by conftool): left alone"
        ));
    }
    for (h, why) in &plan.held_back {
        let pools: Vec<String> = why.iter().map(ToString::to_string).collect();
        opts.out.line(format!(
            "{h}: held back (not written): {}",
            pools.join("; ")
        ));
    }
    let people: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.step.kind != "command")
        .collect();
    if !people.is_empty() {
        opts.out.line("Still needs a person:");
        for o in people {
            opts.out.line(format!("  {}: {}", o.host, o.step.detail));
        }
    }
    if let Some(id) = op {
        opts.out.line(format!(
            "operation {id} (undo with: confctl operation end {id})"
        ));
    }
}

/// The `--json` document of a group verb.
pub fn json(plan: &GroupPlan, outcomes: &[Outcome], op: Option<&OperationId>) -> serde_json::Value {
    let hosts: Vec<serde_json::Value> = plan
        .hosts
        .iter()
        .map(|h| {
            json!({
                "host": h.host.to_string(),
                "objects": h.objects.iter().map(|o| json!({
                    "key": o.key.to_string(),
                    "state": o.state,
                    "after": h.changes.iter().find(|c| c.key == o.key).map(|c| &c.after),
                })).collect::<Vec<_>>(),
                "skipped": h.skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "verb": plan.verb.as_str(),
        "hosts": hosts,
        "not_found": plan.not_found.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "below_threshold": plan.below.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "held_back": plan.held_back.iter().map(|(h, why)| json!({
            "host": h.to_string(),
            "pools": why.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "policy": outcomes.iter().map(|o| &o.step).collect::<Vec<_>>(),
        "operation": op.map(ToString::to_string),
    })
}
