//! The rules a change of pool state must pass before it is written. Pure: they judge a
//! list of [`Change`]s against data already read.
//!
//! - **Depool threshold**: a change that lowers a pool's count of `pooled: yes` nodes and
//!   leaves it below the service's [`DepoolThreshold`] share of the pool's nodes (those not
//!   `inactive`, as a load balancer sees the pool) is refused. A pool already below its
//!   threshold accepts any change that does not lower the count, so it can be repaired.
//! - **Reactivation**: `inactive` objects are out of rotation on purpose (decommissioned, or
//!   new and not yet ready). A change that turns them `yes` must name the host exactly
//!   (`name=mw1018.eqiad.wmnet`, as people pool a new host); a pattern that sweeps them
//!   back into service needs an explicit opt-in.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{DepoolThreshold, ObjectKey, PoolKey, Pooled};
use crate::names::NodeName;
use crate::selection::Change;
use crate::selector::Selector;

/// What a pool holds now: its threshold and each node's `pooled` state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolMembers {
    /// The service's depool threshold.
    pub threshold: DepoolThreshold,
    /// Every node of the pool with its state.
    pub members: BTreeMap<NodeName, Pooled>,
}

impl PoolMembers {
    /// Nodes a load balancer knows (not `inactive`).
    pub fn nodes(&self) -> usize {
        self.members
            .values()
            .filter(|p| **p != Pooled::Inactive)
            .count()
    }

    /// Nodes that are `pooled: yes`.
    pub fn pooled(&self) -> usize {
        self.members.values().filter(|p| **p == Pooled::Yes).count()
    }
}

/// A pool that a change would leave with too few pooled nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowThreshold {
    /// The pool.
    pub pool: PoolKey,
    /// Its threshold.
    pub threshold: DepoolThreshold,
    /// Its nodes (not `inactive`) before the change.
    pub nodes: usize,
    /// Pooled nodes before the change.
    pub before: usize,
    /// Pooled nodes after the change.
    pub after: usize,
    /// The least number of pooled nodes the threshold allows.
    pub required: usize,
}

impl fmt::Display for BelowThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} of {} nodes would stay pooled (now {}), below its depool threshold {} \
             (at least {})",
            self.pool, self.after, self.nodes, self.before, self.threshold, self.required
        )
    }
}

/// The rules a caller lifted for a write, explicitly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Let a selection by pattern turn `inactive` objects `yes`.
    pub include_inactive: bool,
    /// Let a change leave pools below their depool threshold.
    pub allow_below_threshold: bool,
}

/// The verbs of restart scripts and reboot managers, for every pool a host is in (or one
/// service), each with its rule about `inactive` objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerb {
    /// `pooled: yes`; `inactive` objects stay inactive unless `include_inactive`.
    Pool,
    /// `pooled: no`; `inactive` objects are left alone (setting them `no` would put them
    /// back in load-balancer configuration).
    Depool,
    /// `weight: 0` (no new traffic, still pooled).
    Drain,
    /// `pooled: inactive`.
    Decommission,
}

impl HostVerb {
    /// The edit for an object in `state`, or `None` to leave it alone.
    pub fn edit(
        self,
        state: &crate::model::PoolState,
        include_inactive: bool,
    ) -> Option<crate::action::Edit> {
        use crate::action::{Edit, SetFields};
        use crate::model::Weight;
        let pooled = |p| {
            Edit::Set(SetFields {
                pooled: Some(p),
                weight: None,
            })
        };
        match self {
            HostVerb::Pool if state.pooled == Pooled::Inactive && !include_inactive => None,
            HostVerb::Pool => Some(pooled(Pooled::Yes)),
            HostVerb::Depool if state.pooled == Pooled::Inactive => None,
            HostVerb::Depool => Some(pooled(Pooled::No)),
            HostVerb::Drain => Some(Edit::Set(SetFields {
                pooled: None,
                weight: Some(Weight(0)),
            })),
            HostVerb::Decommission => Some(pooled(Pooled::Inactive)),
        }
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It would leave pools below their depool threshold.
    #[error(
        "it would leave {} below {} depool threshold: {}",
        plural(.0.len(), "pool"),
        if .0.len() == 1 { "its" } else { "their" },
        list(.0)
    )]
    BelowThreshold(Vec<BelowThreshold>),
    /// It would put `inactive` objects back into service without naming their hosts.
    #[error(
        "it would put {} back into service (pooled=yes) by a pattern: {}",
        plural(.0.len(), "inactive object"),
        list(.0)
    )]
    Reactivation(Vec<ObjectKey>),
}

/// `1 pool`, `2 pools`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The first ten items, then how many more.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let mut shown: Vec<String> = items.iter().take(10).map(ToString::to_string).collect();
    if items.len() > 10 {
        shown.push(format!("and {} more", items.len() - 10));
    }
    shown.join("; ")
}

/// Whether a change can lower a pool's pooled count (only those need the pool read).
pub fn lowers_pooled(change: &Change) -> bool {
    change.before.pooled == Pooled::Yes
        && change
            .after
            .as_ref()
            .is_none_or(|a| a.pooled != Pooled::Yes)
}

/// The pools that `changes` would leave below their depool threshold, given what each
/// affected pool holds now (a pool missing from `pools` is judged by the changes alone, with
/// the default threshold). Sorted by pool.
pub fn below_threshold(
    pools: &BTreeMap<PoolKey, PoolMembers>,
    changes: &[Change],
) -> Vec<BelowThreshold> {
    let mut after: BTreeMap<&PoolKey, PoolMembers> = BTreeMap::new();
    for c in changes.iter().filter(|c| lowers_pooled(c)) {
        after
            .entry(&c.key.pool)
            .or_insert_with(|| pools.get(&c.key.pool).cloned().unwrap_or_default());
    }
    for c in changes {
        if let Some(members) = after.get_mut(&c.key.pool) {
            // The pool as read may predate the selection by a few revisions: the change's own
            // `before` is the state it replaces.
            members.members.insert(c.key.node.clone(), c.before.pooled);
        }
    }
    let mut out = Vec::new();
    for (pool, mut members) in after {
        let nodes = members.nodes();
        let before = members.pooled();
        for c in changes.iter().filter(|c| &c.key.pool == pool) {
            match &c.after {
                Some(a) => members.members.insert(c.key.node.clone(), a.pooled),
                None => members.members.remove(&c.key.node),
            };
        }
        let now = members.pooled();
        let required = members.threshold.required(nodes);
        if now < before && now < required {
            out.push(BelowThreshold {
                pool: pool.clone(),
                threshold: members.threshold,
                nodes,
                before,
                after: now,
                required,
            });
        }
    }
    out
}

/// Changes that would turn `inactive` objects `yes` without the selector naming their host
/// exactly.
pub fn reactivations<'a>(sel: &Selector, changes: &'a [Change]) -> Vec<&'a Change> {
    changes
        .iter()
        .filter(|c| {
            c.before.pooled == Pooled::Inactive
                && c.after.as_ref().is_some_and(|a| a.pooled == Pooled::Yes)
                && !sel.names_exactly(c.key.node.as_str())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PoolState, Weight};

    fn key(service: &str, node: &str) -> ObjectKey {
        ObjectKey::new(
            "eqiad".parse().unwrap(),
            "appservers".parse().unwrap(),
            service.parse().unwrap(),
            node.parse().unwrap(),
        )
    }

    fn change(service: &str, node: &str, from: Pooled, to: Option<Pooled>) -> Change {
        Change {
            key: key(service, node),
            before: PoolState::new(from, Weight(1)),
            after: to.map(|p| PoolState::new(p, Weight(1))),
            mod_revision: 1,
        }
    }

    fn pool(service: &str, threshold: f64, states: &[(&str, Pooled)]) -> (PoolKey, PoolMembers) {
        (
            key(service, "x").pool,
            PoolMembers {
                threshold: DepoolThreshold::new(threshold).unwrap(),
                members: states
                    .iter()
                    .map(|(n, p)| (n.parse().unwrap(), *p))
                    .collect(),
            },
        )
    }

    use Pooled::{Inactive, No, Yes};

    #[test]
    fn refuses_only_what_lowers_a_pool_below_its_share() {
        let pools: BTreeMap<_, _> = [
            pool(
                "apache",
                0.5,
                &[
                    ("a", Yes),
                    ("b", Yes),
                    ("c", Yes),
                    ("d", Yes),
                    ("e", Inactive),
                ],
            ),
            pool(
                "nginx",
                0.75,
                &[("a", Yes), ("b", Yes), ("c", Yes), ("d", Yes)],
            ),
        ]
        .into_iter()
        .collect();
        // apache: 4 nodes (e is inactive), at least 2 pooled; two depools leave 2: fine.
        let ok = [
            change("apache", "a", Yes, Some(No)),
            change("apache", "b", Yes, Some(No)),
        ];
        assert_eq!(below_threshold(&pools, &ok), []);
        // A third leaves 1 of 4.
        let mut too_many = ok.to_vec();
        too_many.push(change("apache", "c", Yes, None));
        let v = below_threshold(&pools, &too_many);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].nodes, v[0].before, v[0].after, v[0].required),
            (4, 4, 1, 2)
        );
        assert_eq!(
            v[0].to_string(),
            "eqiad/appservers/apache: 1 of 4 nodes would stay pooled (now 4), below its \
             depool threshold 0.5 (at least 2)"
        );
        // nginx at 0.75: one depool leaves 3 of 4 (fine), a decommission of a second 2 of 4.
        assert_eq!(
            below_threshold(&pools, &[change("nginx", "a", Yes, Some(No))]),
            []
        );
        let v = below_threshold(
            &pools,
            &[
                change("nginx", "a", Yes, Some(No)),
                change("nginx", "b", Yes, Some(Inactive)),
            ],
        );
        assert_eq!((v[0].after, v[0].required), (2, 3));
    }

    #[test]
    fn a_pool_already_below_accepts_what_does_not_lower_it() {
        let pools: BTreeMap<_, _> = [pool(
            "apache",
            0.5,
            &[("a", Yes), ("b", No), ("c", No), ("d", No)],
        )]
        .into_iter()
        .collect();
        // Repooling, weights, and depooled nodes going inactive are all fine.
        let fine = [
            change("apache", "b", No, Some(Yes)),
            change("apache", "c", No, Some(Inactive)),
            change("apache", "d", No, None),
        ];
        assert_eq!(below_threshold(&pools, &fine), []);
        // Depooling the last pooled one is not.
        let v = below_threshold(&pools, &[change("apache", "a", Yes, Some(No))]);
        assert_eq!((v[0].before, v[0].after, v[0].required), (1, 0, 2));
        // A swap (one in, one out) does not lower the count.
        let swap = [
            change("apache", "a", Yes, Some(No)),
            change("apache", "b", No, Some(Yes)),
        ];
        assert_eq!(below_threshold(&pools, &swap), []);
    }

    #[test]
    fn pools_not_read_use_the_changes_and_the_default_threshold() {
        let v = below_threshold(
            &BTreeMap::new(),
            &[
                change("apache", "a", Yes, Some(No)),
                change("apache", "b", Yes, Some(No)),
            ],
        );
        assert_eq!(
            (v[0].nodes, v[0].before, v[0].after, v[0].threshold),
            (2, 2, 0, DepoolThreshold::DEFAULT)
        );
        let zero: BTreeMap<_, _> = [pool("apache", 0.0, &[("a", Yes)])].into_iter().collect();
        assert_eq!(
            below_threshold(&zero, &[change("apache", "a", Yes, Some(No))]),
            []
        );
    }

    #[test]
    fn refusals_say_how_many_and_list_ten() {
        let below = |n: usize| BelowThreshold {
            pool: key(&format!("s{n}"), "x").pool,
            threshold: DepoolThreshold::DEFAULT,
            nodes: 2,
            before: 2,
            after: 0,
            required: 1,
        };
        let one = Refusal::BelowThreshold(vec![below(1)]).to_string();
        assert!(
            one.starts_with(
                "it would leave 1 pool below its depool threshold: eqiad/appservers/s1: 0 of 2"
            ),
            "{one}"
        );
        let ten = Refusal::BelowThreshold((0..10).map(below).collect()).to_string();
        assert!(!ten.contains("more") && ten.contains("/s9: "), "{ten}");
        let many = Refusal::BelowThreshold((0..12).map(below).collect()).to_string();
        assert!(
            many.starts_with("it would leave 12 pools below their depool threshold: "),
            "{many}"
        );
        assert!(many.ends_with("; and 2 more"), "{many}");
        assert!(many.contains("/s9: ") && !many.contains("/s10: "), "{many}");
        let keys = vec![key("a", "n1"), key("a", "n2")];
        assert_eq!(
            Refusal::Reactivation(keys).to_string(),
            "it would put 2 inactive objects back into service (pooled=yes) by a pattern: \
             eqiad/appservers/a/n1; eqiad/appservers/a/n2"
        );
    }

    #[test]
    fn host_verbs_respect_inactive_objects() {
        use crate::action::{Edit, SetFields};
        let st = |p| PoolState::new(p, Weight(5));
        let set = |p: Option<Pooled>, w: Option<u16>| {
            Some(Edit::Set(SetFields {
                pooled: p,
                weight: w.map(Weight),
            }))
        };
        assert_eq!(HostVerb::Pool.edit(&st(No), false), set(Some(Yes), None));
        assert_eq!(HostVerb::Pool.edit(&st(Inactive), false), None);
        assert_eq!(
            HostVerb::Pool.edit(&st(Inactive), true),
            set(Some(Yes), None)
        );
        assert_eq!(HostVerb::Depool.edit(&st(Yes), false), set(Some(No), None));
        assert_eq!(HostVerb::Depool.edit(&st(Inactive), true), None);
        assert_eq!(
            HostVerb::Drain.edit(&st(Inactive), false),
            set(None, Some(0))
        );
        assert_eq!(
            HostVerb::Decommission.edit(&st(Yes), false),
            set(Some(Inactive), None)
        );
        assert_eq!(
            Overrides::default(),
            Overrides {
                include_inactive: false,
                allow_below_threshold: false
            }
        );
    }

    #[test]
    fn lowering_means_leaving_yes() {
        assert!(lowers_pooled(&change("s", "a", Yes, Some(No))));
        assert!(lowers_pooled(&change("s", "a", Yes, Some(Inactive))));
        assert!(lowers_pooled(&change("s", "a", Yes, None)));
        assert!(!lowers_pooled(&change("s", "a", Yes, Some(Yes))));
        assert!(!lowers_pooled(&change("s", "a", No, None)));
        assert!(!lowers_pooled(&change("s", "a", Inactive, Some(No))));
    }

    #[test]
    fn reactivation_needs_the_exact_host_name() {
        let changes = [
            change("apache", "mw1018", Inactive, Some(Yes)),
            change("apache", "mw1019", Inactive, Some(No)),
            change("apache", "mw1020", No, Some(Yes)),
        ];
        let by_pattern: Selector = "name=mw10.*".parse().unwrap();
        let swept: Vec<String> = reactivations(&by_pattern, &changes)
            .iter()
            .map(|c| c.key.node.to_string())
            .collect();
        assert_eq!(swept, ["mw1018"]);
        let exact: Selector = "dc=eqiad,name=mw1018".parse().unwrap();
        assert!(reactivations(&exact, &changes).is_empty());
        let no_name: Selector = "cluster=appservers".parse().unwrap();
        assert_eq!(reactivations(&no_name, &changes).len(), 1);
    }
}
