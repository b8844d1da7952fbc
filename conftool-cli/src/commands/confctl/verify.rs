//! `--verify` for the host verbs: what to verify from the plan, the checks made before
//! anything is written (every pool touched has a load balancer; the configured pools of
//! those clusters exist), and, after the write, the verification itself and its report.
//! The rules and the asking are the library's ([`conftool_core::verify`]).

use conftool_core::Classify as _;
use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use conftool_core::config::parse_duration;
use conftool_core::verify::{preflight, verify, Target, Verified, VerifyOptions, Want};
use conftool_core::{Config, GroupPlan, HostVerb, Store};

use crate::exit::BadInput;
use crate::output::Printer;

/// `--verify` and its settings.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// After the write, ask every load balancer of every pool touched (the configuration's
    /// load_balancers) until each host is out of rotation (or, for `pool`, back in). Exit 1,
    /// the change staying written, if one cannot be reached, answers something that is not
    /// a state, does not list the host, keeps it in rotation by its depool threshold, or is
    /// not as wanted in time. A pool touched without a load balancer configured: exit 2,
    /// nothing written.
    #[arg(long)]
    pub verify: bool,
    /// How long --verify waits for every load balancer to agree, e.g. 10s, 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s", requires = "verify")]
    pub verify_timeout: Duration,
    /// With --verify: out of rotation also means no request left on the host (the load
    /// balancer reports no session on it; conftool-lb-agent does, PyBal does not).
    #[arg(long, requires = "verify")]
    pub wait_sessions: bool,
}

impl VerifyArgs {
    fn options(&self) -> VerifyOptions {
        VerifyOptions {
            timeout: self.verify_timeout,
            wait_sessions: self.wait_sessions,
            ..VerifyOptions::default()
        }
    }
}

/// What to verify after the plan is written: every object of the hosts that would be
/// written, as the plan leaves it, in or out of rotation. Objects left `inactive` and
/// untouched are not (a load balancer may not list them), but those `decommission` makes
/// inactive are wanted out: the load balancer must still list them, out of rotation.
pub(super) fn targets(plan: &GroupPlan) -> Vec<Target> {
    let mut out = Vec::new();
    for host in plan.admitted() {
        for o in &host.objects {
            let change = host.changes.iter().find(|c| c.key == o.key);
            let after = match change {
                Some(c) => match &c.after {
                    Some(s) => s,
                    None => continue,
                },
                None => &o.state,
            };
            if let Some(t) = Target::of(&o.key, after) {
                out.push(t);
            } else if change.is_some() && plan.verb == HostVerb::Decommission {
                out.push(Target {
                    pool: o.key.pool.clone(),
                    host: o.key.node.clone(),
                    want: Want::Out,
                });
            }
        }
    }
    out
}

/// Before anything is written: every pool touched has a load balancer, and the configured
/// pools of those clusters exist (bad input, exit 2, otherwise).
pub(super) async fn check(store: &Store, cfg: &Config, targets: &[Target]) -> anyhow::Result<()> {
    match preflight(store, &cfg.load_balancers, targets).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_bad_input() => Err(BadInput::msg(format!("--verify: {e}; nothing written"))),
        Err(e) => Err(e.into()),
    }
}

/// After the write: verify, and say what was seen (exit 1 if it did not pass).
pub(super) async fn run(
    out: &Printer,
    cfg: &Config,
    targets: &[Target],
    args: &VerifyArgs,
) -> anyhow::Result<u8> {
    if targets.is_empty() {
        out.info("Nothing to verify: no host left in or out of rotation by this change.");
        return Ok(crate::exit::OK);
    }
    match verify(&cfg.load_balancers, targets, &args.options()).await {
        Ok(v) => {
            report(out, &v);
            Ok(crate::exit::OK)
        }
        Err(e) => Err(anyhow::anyhow!("written, but not verified: {e}")),
    }
}

/// One line per pool and direction: its hosts, on how many load balancers, and when the
/// last of them agreed.
fn report(out: &Printer, v: &Verified) {
    type Key<'a> = (&'a conftool_core::PoolKey, Want);
    let mut by: BTreeMap<Key<'_>, (Vec<&str>, Vec<&str>, Duration)> = BTreeMap::new();
    for c in &v.checks {
        let e = by.entry((&c.pool, c.want)).or_default();
        if !e.0.contains(&c.host.as_str()) {
            e.0.push(c.host.as_str());
        }
        if !e.1.contains(&c.lb.as_str()) {
            e.1.push(c.lb.as_str());
        }
        e.2 = e.2.max(c.after);
    }
    for ((pool, want), (hosts, lbs, after)) in by {
        let shown = if hosts.len() <= 5 {
            hosts.join(", ")
        } else {
            format!("{} and {} more", hosts[..5].join(", "), hosts.len() - 5)
        };
        let n = lbs.len();
        out.info(format!(
            "Verified: {pool}: {shown} {want} on {n} load balancer{} ({:.2}s)",
            if n == 1 { "" } else { "s" },
            after.as_secs_f64()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::{Change, HostPlan, ObjectKey, PoolState, Pooled, Selected, Weight};

    fn key(service: &str, node: &str) -> ObjectKey {
        format!("eqiad/web/{service}")
            .parse::<conftool_core::PoolKey>()
            .map(|pool| ObjectKey {
                pool,
                node: node.parse().unwrap(),
            })
            .unwrap()
    }

    fn state(pooled: Pooled, weight: u16) -> PoolState {
        PoolState::new(pooled, Weight(weight))
    }

    /// mw1 in three pools: http (pooled, changed by the verb to `to`), ssh (already
    /// depooled) and old (inactive, left alone).
    fn plan(verb: HostVerb, to: PoolState) -> GroupPlan {
        let obj = |s: &str, st: PoolState| Selected {
            key: key(s, "mw1"),
            state: st,
            mod_revision: 1,
        };
        GroupPlan {
            verb,
            service: None,
            hosts: vec![HostPlan {
                host: "mw1".parse().unwrap(),
                objects: vec![
                    obj("http", state(Pooled::Yes, 10)),
                    obj("ssh", state(Pooled::No, 10)),
                    obj("old", state(Pooled::Inactive, 0)),
                ],
                changes: vec![Change {
                    key: key("http", "mw1"),
                    before: state(Pooled::Yes, 10),
                    after: Some(to),
                    mod_revision: 1,
                }],
                skipped: vec![key("old", "mw1")],
            }],
            not_found: Vec::new(),
            pools: BTreeMap::new(),
            below: Vec::new(),
            held_back: Vec::new(),
            partial: false,
            include_inactive: false,
        }
    }

    fn wanted(plan: &GroupPlan) -> Vec<(String, Want)> {
        targets(plan)
            .into_iter()
            .map(|t| (t.pool.service.to_string(), t.want))
            .collect()
    }

    #[test]
    fn every_object_as_the_plan_leaves_it_but_untouched_inactive_ones() {
        let depool = plan(HostVerb::Depool, state(Pooled::No, 10));
        assert_eq!(
            wanted(&depool),
            [("http".into(), Want::Out), ("ssh".into(), Want::Out)]
        );
        // A drained object (weight 0) takes no traffic: out.
        let drain = plan(HostVerb::Drain, state(Pooled::Yes, 0));
        assert_eq!(wanted(&drain)[0], ("http".into(), Want::Out));
        let pool = plan(HostVerb::Pool, state(Pooled::Yes, 10));
        assert_eq!(
            wanted(&pool),
            [("http".into(), Want::In), ("ssh".into(), Want::Out)]
        );
        // What decommission makes inactive must be seen out; what was inactive is not asked.
        let decommission = plan(HostVerb::Decommission, state(Pooled::Inactive, 10));
        assert_eq!(
            wanted(&decommission),
            [("http".into(), Want::Out), ("ssh".into(), Want::Out)]
        );
        // Held back hosts are not written, so not verified.
        let mut held = plan(HostVerb::Depool, state(Pooled::No, 10));
        held.partial = true;
        held.held_back = vec![("mw1".parse().unwrap(), Vec::new())];
        assert!(targets(&held).is_empty());
    }
}
