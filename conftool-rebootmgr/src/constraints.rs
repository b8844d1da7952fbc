//! What may hold a reboot back, judged on data already read (pure). Each judgement returns
//! the [`HeldBack`]s that apply, worded for a person: the same list a run logs, `--dry-run`
//! prints and `status` shows.
//!
//! - **Pools**: in every pool where the node serves, the other serving nodes must still be
//!   as many as the service's depool threshold and `min_pooled` require ([`pools`]); where
//!   load balancers are configured, as many must be in rotation on each of them
//!   ([`load_balancers`]).
//! - **Members** (the group's fresh reports, nodes rebooting left out): never the only
//!   member up, at least `min_members` up ([`Members::rules`]).
//! - **Health checks**: a group check passes on at least `min_passing` members and fails (or
//!   is not reported) on at most `max_failing`; a check without either only needs this
//!   node's own result to pass ([`Members::checks`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use conftool_core::verify::Observed;
use conftool_core::PoolMembers;
use conftool_core::{LockHolder, NodeName, PoolKey, PoolLimits, StopRecord};

use crate::config::{GroupRules, HealthCheck};
use crate::keys::StopScope;
use crate::names::CheckName;
use crate::records::{CheckResult, Report, Stamp};
use crate::window::Window;

/// What holds a reboot back: not an error, a reason to try again later.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HeldBack {
    /// conftool's own stop switch (everything, or a cluster of the node's pools).
    Stopped(conftool_core::Stop),
    /// One of the coordinator's stop switches (`None`: content that is not a record).
    RebootStopped(StopScope, Option<StopRecord>),
    /// Outside every configured window.
    OutsideWindow(Vec<Window>),
    /// Every slot of the group is held.
    SlotBusy(Vec<LockHolder>),
    /// Without this node, a pool would have fewer serving nodes than it needs.
    Pool {
        /// The pool.
        pool: PoolKey,
        /// Serving nodes other than this one.
        others_serving: usize,
        /// Nodes not `inactive`.
        nodes: usize,
        /// How many must serve.
        required: usize,
        /// The service's limits.
        limits: PoolLimits,
    },
    /// A load balancer has fewer of the pool's other nodes in rotation than it needs.
    LoadBalancer {
        /// The pool.
        pool: PoolKey,
        /// The load balancer.
        lb: String,
        /// Other nodes it has in rotation.
        in_rotation: usize,
        /// How many must serve.
        required: usize,
    },
    /// A load balancer could not be asked (fail closed).
    LoadBalancerUnreadable(String),
    /// The node is the only member of its group that is up.
    OnlyMember,
    /// Fewer members are up than `min_members`.
    TooFewMembers {
        /// Members up, this node included.
        up: usize,
        /// The rule.
        min_members: u32,
    },
    /// A group check passes on too few members, or fails on too many.
    GroupCheck {
        /// The check.
        check: CheckName,
        /// Members passing it.
        passing: usize,
        /// Members failing it, or not reporting it (down, rebooting, stale).
        failing: Vec<NodeName>,
        /// The rule's `min_passing`.
        min_passing: Option<u32>,
        /// The rule's `max_failing`.
        max_failing: Option<u32>,
    },
    /// The trigger was withdrawn while the node was being prepared.
    NoLongerTriggered,
    /// This node's own check fails.
    OwnCheck {
        /// The check.
        check: CheckName,
        /// What it said.
        detail: String,
    },
    /// The depool itself was refused by the pools' depool threshold (judged atomically
    /// with the write, after the checks above: another node went out meanwhile).
    Threshold(String),
}

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeldBack::Stopped(stop) => write!(f, "{stop}"),
            HeldBack::RebootStopped(scope, Some(r)) => write!(
                f,
                "rebootmgr stop switch set for {scope} by {} since {}: {}",
                r.by,
                r.since,
                conftool_core::escape_controls(&r.reason)
            ),
            HeldBack::RebootStopped(scope, None) => {
                write!(f, "rebootmgr stop switch set for {scope} (unreadable record)")
            }
            HeldBack::OutsideWindow(w) => {
                let list: Vec<String> = w.iter().map(ToString::to_string).collect();
                write!(f, "outside the reboot windows ({})", list.join("; "))
            }
            HeldBack::SlotBusy(holders) => {
                let list: Vec<String> = holders
                    .iter()
                    .map(|h| format!("{} since {}", h.host, h.since))
                    .collect();
                write!(f, "every reboot slot of the group is taken ({})", list.join(", "))
            }
            HeldBack::Pool {
                pool,
                others_serving,
                nodes,
                required,
                limits,
            } => write!(
                f,
                "pool {pool}: {others_serving} of {nodes} nodes would stay serving without \
                 this one, below its {limits} (at least {required})"
            ),
            HeldBack::LoadBalancer {
                pool,
                lb,
                in_rotation,
                required,
            } => write!(
                f,
                "pool {pool}: load balancer {lb} has {in_rotation} other nodes in rotation, \
                 fewer than the {required} that must stay"
            ),
            HeldBack::LoadBalancerUnreadable(why) => {
                write!(f, "the load balancers' view cannot be read: {why}")
            }
            HeldBack::OnlyMember => f.write_str(
                "never the only member: no other member of the group is up (rules.never_only_member)",
            ),
            HeldBack::TooFewMembers { up, min_members } => write!(
                f,
                "only {up} members of the group are up, fewer than rules.min_members {min_members}"
            ),
            HeldBack::GroupCheck {
                check,
                passing,
                failing,
                min_passing,
                max_failing,
            } => {
                let names: Vec<&str> = failing.iter().map(NodeName::as_str).collect();
                write!(
                    f,
                    "check {check}: {passing} members passing, {} failing or not reporting ({})",
                    failing.len(),
                    names.join(", ")
                )?;
                match (min_passing, max_failing) {
                    (Some(m), _) if *passing < usize::try_from(*m).unwrap_or(usize::MAX) => {
                        write!(f, "; min_passing is {m}")
                    }
                    (_, Some(m)) => write!(f, "; max_failing is {m}"),
                    _ => Ok(()),
                }
            }
            HeldBack::OwnCheck { check, detail } => {
                write!(f, "check {check} fails on this node: {detail}")
            }
            HeldBack::NoLongerTriggered => {
                f.write_str("the reboot is no longer asked for (the trigger was cleared)")
            }
            HeldBack::Threshold(why) => write!(f, "the depool was refused: {why}"),
        }
    }
}

/// The pools where the node serves (`serving`: as it was before it was depooled): without
/// it, each must keep as many serving nodes as it requires.
pub fn pools(
    members: &BTreeMap<PoolKey, PoolMembers>,
    node: &NodeName,
    serving: &BTreeSet<PoolKey>,
) -> Vec<HeldBack> {
    let mut out = Vec::new();
    for pool in serving {
        let Some(m) = members.get(pool) else { continue };
        let nodes = m.nodes();
        let others_serving = m
            .members
            .iter()
            .filter(|(n, s)| *n != node && s.serving())
            .count();
        let required = m.limits.required(nodes);
        if others_serving < required {
            out.push(HeldBack::Pool {
                pool: pool.clone(),
                others_serving,
                nodes,
                required,
                limits: m.limits,
            });
        }
    }
    out
}

/// One pool as its load balancers see it (`observed`: their answers about the pool's other
/// nodes): each must have at least `required` of them in rotation.
pub fn load_balancers(
    pool: &PoolKey,
    observed: &[Observed],
    node: &NodeName,
    required: usize,
) -> Vec<HeldBack> {
    let mut per_lb: BTreeMap<&str, usize> = BTreeMap::new();
    for o in observed.iter().filter(|o| &o.pool == pool) {
        let n = per_lb.entry(o.lb.as_str()).or_default();
        if &o.host != node && o.seen.pooled {
            *n += 1;
        }
    }
    per_lb
        .into_iter()
        .filter(|(_, in_rotation)| *in_rotation < required)
        .map(|(lb, in_rotation)| HeldBack::LoadBalancer {
            pool: pool.clone(),
            lb: lb.to_string(),
            in_rotation,
            required,
        })
        .collect()
}

/// The group as its reports say it is, from one member's point of view.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    /// This node.
    pub me: &'a NodeName,
    /// Its own checks' results, just run.
    pub own: &'a [CheckResult],
    /// Every member's last report.
    pub reports: &'a BTreeMap<NodeName, Report>,
    /// Members with a reboot in progress (they do not count as up).
    pub away: &'a BTreeSet<NodeName>,
    /// Now.
    pub now: Stamp,
    /// Reports older than this count as missing.
    pub max_age: Duration,
}

impl Members<'_> {
    /// Whether `node`'s report says it is up now: fresh, and no reboot in progress.
    fn up(&self, node: &NodeName, report: &Report) -> bool {
        !self.away.contains(node) && self.now.since(report.at) <= self.max_age
    }

    /// Other members that are up.
    pub fn others_up(&self) -> usize {
        self.reports
            .iter()
            .filter(|(n, r)| *n != self.me && self.up(n, r))
            .count()
    }

    /// The group rules: never the only member up, at least `min_members` up.
    pub fn rules(&self, rules: &GroupRules) -> Vec<HeldBack> {
        let up = self.others_up() + 1;
        let mut out = Vec::new();
        if rules.never_only_member && up < 2 {
            out.push(HeldBack::OnlyMember);
        }
        if usize::try_from(rules.min_members).unwrap_or(usize::MAX) > up {
            out.push(HeldBack::TooFewMembers {
                up,
                min_members: rules.min_members,
            });
        }
        out
    }

    /// The checks: group checks across every member that runs them, the others on this
    /// node alone.
    pub fn checks(&self, checks: &[HealthCheck]) -> Vec<HeldBack> {
        let mut out = Vec::new();
        for c in checks {
            let mine = self.own.iter().find(|r| r.name == c.name);
            if !c.is_group_check() {
                if let Some(r) = mine.filter(|r| !r.passing) {
                    out.push(HeldBack::OwnCheck {
                        check: c.name.clone(),
                        detail: r.detail.clone(),
                    });
                }
                continue;
            }
            let mut passing = usize::from(mine.is_some_and(|r| r.passing));
            let mut failing = Vec::new();
            if mine.is_some_and(|r| !r.passing) {
                failing.push(self.me.clone());
            }
            for (node, report) in self.reports.iter().filter(|(n, _)| *n != self.me) {
                let Some(result) = report.result(&c.name) else {
                    continue;
                };
                if result.passing && self.up(node, report) {
                    passing += 1;
                } else {
                    failing.push(node.clone());
                }
            }
            let too_few = c
                .min_passing
                .is_some_and(|m| passing < usize::try_from(m).unwrap_or(usize::MAX));
            let too_many = c
                .max_failing
                .is_some_and(|m| failing.len() > usize::try_from(m).unwrap_or(usize::MAX));
            if too_few || too_many {
                out.push(HeldBack::GroupCheck {
                    check: c.name.clone(),
                    passing,
                    failing,
                    min_passing: c.min_passing,
                    max_failing: c.max_failing,
                });
            }
        }
        out
    }
}

/// Whether every one of this node's own checks passes (after boot: healthy again).
pub fn healthy(own: &[CheckResult]) -> bool {
    own.iter().all(|r| r.passing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Member;
    use conftool_core::{Pooled, Weight};

    fn report(node: &str, at_ms: u64, app: Option<bool>) -> (NodeName, Report) {
        let n: NodeName = node.parse().unwrap();
        let checks = app
            .map(|p| CheckResult {
                name: "app".parse().unwrap(),
                passing: p,
                detail: String::new(),
            })
            .into_iter()
            .collect();
        let r = Report {
            node: n.clone(),
            at: Stamp::from_unix_ms(at_ms),
            boot_id: "b".into(),
            triggered: false,
            checks,
            extra: serde_json::Map::new(),
        };
        (n, r)
    }

    fn check(min_passing: Option<u32>, max_failing: Option<u32>) -> HealthCheck {
        HealthCheck {
            name: "app".parse().unwrap(),
            command: "true".into(),
            timeout: Duration::from_secs(1),
            min_passing,
            max_failing,
        }
    }

    #[test]
    fn members_up_are_fresh_and_not_away_and_the_rules_count_them() {
        let me: NodeName = "n1".parse().unwrap();
        let now = 1_000_000;
        let reports: BTreeMap<NodeName, Report> = [
            report("n1", now, Some(true)),
            report("n2", now - 1_000, Some(true)),
            report("n3", now - 120_000, Some(true)), // stale
            report("n4", now, Some(true)),           // rebooting
        ]
        .into_iter()
        .collect();
        let away: BTreeSet<NodeName> = ["n4".parse().unwrap()].into_iter().collect();
        let own = [reports[&me].checks[0].clone()];
        let m = Members {
            me: &me,
            own: &own,
            reports: &reports,
            away: &away,
            now: Stamp::from_unix_ms(now),
            max_age: Duration::from_secs(60),
        };
        assert_eq!(m.others_up(), 1, "only n2");
        let rules = GroupRules {
            never_only_member: true,
            min_members: 3,
        };
        assert_eq!(
            m.rules(&rules),
            vec![HeldBack::TooFewMembers {
                up: 2,
                min_members: 3
            }]
        );
        let alone = Members {
            reports: &BTreeMap::new(),
            ..m.clone()
        };
        assert_eq!(alone.rules(&rules)[0], HeldBack::OnlyMember);
        // A stale or rebooting member's passing result counts as failing.
        let held = m.checks(&[check(None, Some(1))]);
        let [HeldBack::GroupCheck {
            passing, failing, ..
        }] = held.as_slice()
        else {
            panic!("{held:?}");
        };
        assert_eq!(*passing, 2);
        let names: Vec<&str> = failing.iter().map(NodeName::as_str).collect();
        assert_eq!(names, ["n3", "n4"]);
        assert!(m.checks(&[check(None, Some(2))]).is_empty());
        assert!(m.checks(&[check(Some(2), None)]).is_empty());
        assert_eq!(m.checks(&[check(Some(3), None)]).len(), 1);
        assert!(
            held[0].to_string().ends_with("; max_failing is 1"),
            "{}",
            held[0]
        );
    }

    #[test]
    fn own_checks_judge_this_node_only() {
        let me: NodeName = "n1".parse().unwrap();
        let (_, mine) = report("n1", 0, Some(false));
        let reports = BTreeMap::new();
        let away = BTreeSet::new();
        let m = Members {
            me: &me,
            own: &mine.checks,
            reports: &reports,
            away: &away,
            now: Stamp::from_unix_ms(0),
            max_age: Duration::from_secs(60),
        };
        let held = m.checks(&[check(None, None)]);
        assert!(
            matches!(held.as_slice(), [HeldBack::OwnCheck { .. }]),
            "{held:?}"
        );
        assert!(!healthy(&mine.checks));
    }

    #[test]
    fn a_pool_keeps_what_its_limits_require_without_this_node() {
        let pool: PoolKey = "dc1/web/http".parse().unwrap();
        let me: NodeName = "n1".parse().unwrap();
        let member = |pooled| Member {
            pooled,
            weight: Weight(10),
        };
        let mut m = PoolMembers::default();
        for (n, p) in [
            ("n1", Pooled::Yes),
            ("n2", Pooled::Yes),
            ("n3", Pooled::No),
            ("n4", Pooled::Inactive),
        ] {
            m.members.insert(n.parse().unwrap(), member(p));
        }
        let members = BTreeMap::from([(pool.clone(), m)]);
        let serving = BTreeSet::from([pool.clone()]);
        // 3 nodes counted (inactive left out), threshold 0.5: 2 must serve; 1 would.
        let held = pools(&members, &me, &serving);
        assert!(
            matches!(
                held.as_slice(),
                [HeldBack::Pool {
                    others_serving: 1,
                    nodes: 3,
                    required: 2,
                    ..
                }]
            ),
            "{held:?}"
        );
        assert!(
            pools(&members, &me, &BTreeSet::new()).is_empty(),
            "not serving there"
        );
    }
}
