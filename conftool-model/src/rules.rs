//! The rules a change of pool state must pass before it is written. Pure: they judge a
//! list of [`Change`]s against data already read.
//!
//! - **Depool threshold**: a change that lowers a pool's count of *serving* nodes
//!   (`pooled: yes` with a weight above 0: a drained node takes no traffic) and leaves it
//!   below what the service's [`PoolLimits`] require (its [`DepoolThreshold`](crate::DepoolThreshold) share of the
//!   pool's nodes that are not `inactive`, as a load balancer sees the pool, or its
//!   `min_pooled`, whichever is more) is refused. A pool already below accepts any change
//!   that does not lower the count, so it can be repaired. The store makes the check and
//!   the write one transaction, so concurrent writers cannot together do what one is refused.
//! - **Inactive objects**: `inactive` objects are out of rotation on purpose
//!   (decommissioned, or new and not yet ready). A write by pattern leaves them alone,
//!   whatever it sets ([`leaves_alone`]); naming the host exactly (as people pool a new host),
//!   setting `pooled=inactive` itself, or an explicit opt-in reaches them.

use std::collections::BTreeMap;
use std::fmt;

use crate::action::Edit;
use crate::model::{PoolKey, PoolLimits, PoolState, Pooled, Weight};
use crate::names::NodeName;
use crate::selection::Change;
use crate::selector::Selector;

/// One node of a pool, as the rules count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its `pooled` state.
    pub pooled: Pooled,
    /// Its weight.
    pub weight: Weight,
}

impl Member {
    /// Whether a load balancer knows it (it is not `inactive`).
    pub fn counted(self) -> bool {
        self.pooled != Pooled::Inactive
    }

    /// Whether it takes traffic: `pooled: yes` with a weight above 0.
    pub fn serving(self) -> bool {
        self.pooled == Pooled::Yes && self.weight.0 > 0
    }
}

impl From<&PoolState> for Member {
    fn from(s: &PoolState) -> Member {
        Member {
            pooled: s.pooled,
            weight: s.weight,
        }
    }
}

/// What a pool holds now: its limits and each node's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolMembers {
    /// The service's depool threshold and `min_pooled`.
    pub limits: PoolLimits,
    /// Every node of the pool with its state.
    pub members: BTreeMap<NodeName, Member>,
    /// The etcd revision the pool was read at (the guard of a write judged by it).
    pub revision: i64,
}

impl PoolMembers {
    /// Nodes a load balancer knows (not `inactive`).
    pub fn nodes(&self) -> usize {
        self.members.values().filter(|m| m.counted()).count()
    }

    /// Nodes that take traffic (`pooled: yes`, weight above 0).
    pub fn serving(&self) -> usize {
        self.members.values().filter(|m| m.serving()).count()
    }
}

/// A pool that a change would leave with too few serving nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BelowThreshold {
    /// The pool.
    pub pool: PoolKey,
    /// Its limits.
    pub limits: PoolLimits,
    /// Its nodes (not `inactive`) before the change.
    pub nodes: usize,
    /// Serving nodes before the change.
    pub before: usize,
    /// Serving nodes after the change.
    pub after: usize,
    /// The least number of serving nodes the limits allow.
    pub required: usize,
}

impl fmt::Display for BelowThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} of {} nodes would stay serving (now {}), below its {} (at least {})",
            self.pool, self.after, self.nodes, self.before, self.limits, self.required
        )
    }
}

/// The rules a caller lifted for a write, explicitly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Let a write by pattern change `inactive` objects.
    pub include_inactive: bool,
    /// Let a change leave pools below their depool threshold or `min_pooled`.
    pub allow_below_threshold: bool,
}

/// The verbs of restart scripts and reboot managers, for every pool a host is in (or one
/// service), each with its rule about `inactive` objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub fn edit(self, state: &PoolState, include_inactive: bool) -> Option<Edit> {
        use crate::action::SetFields;
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

    /// The verb's name on the command line: `pool`, `depool`, `drain`, `decommission`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostVerb::Pool => "pool",
            HostVerb::Depool => "depool",
            HostVerb::Drain => "drain",
            HostVerb::Decommission => "decommission",
        }
    }
}

impl fmt::Display for HostVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// It would leave pools below their depool threshold or `min_pooled`.
    #[error(
        "it would leave {} below {} depool threshold: {}",
        plural(.0.len(), "pool"),
        if .0.len() == 1 { "its" } else { "their" },
        list(.0)
    )]
    BelowThreshold(Vec<BelowThreshold>),
    /// A write said to be about one host (`--host`) selects objects of several.
    #[error(
        "the objects selected belong to {} hosts ({}{}), not one",
        .0.len(),
        .0.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        if .0.len() > 5 { ", ..." } else { "" }
    )]
    NotOneHost(Vec<String>),
}

/// The `--host` rule: a write said to be about one host must select objects of one name
/// (node or schema object) only; refused with the names otherwise.
pub fn one_host<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), Refusal> {
    let names: std::collections::BTreeSet<&str> = names.into_iter().collect();
    if names.len() <= 1 {
        return Ok(());
    }
    Err(Refusal::NotOneHost(
        names.into_iter().map(str::to_string).collect(),
    ))
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

/// Whether a change can lower a pool's serving count (only those need the pool read).
pub fn lowers_serving(change: &Change) -> bool {
    change.before.serving() && change.after.as_ref().is_none_or(|a| !a.serving())
}

/// The pools that `changes` would leave below their limits, given what each affected pool
/// holds now (a pool missing from `pools` is judged by the changes alone, with the default
/// limits). Sorted by pool.
pub fn below_threshold(
    pools: &BTreeMap<PoolKey, PoolMembers>,
    changes: &[Change],
) -> Vec<BelowThreshold> {
    let mut after: BTreeMap<&PoolKey, PoolMembers> = BTreeMap::new();
    for c in changes.iter().filter(|c| lowers_serving(c)) {
        after
            .entry(&c.key.pool)
            .or_insert_with(|| pools.get(&c.key.pool).cloned().unwrap_or_default());
    }
    for c in changes {
        if let Some(members) = after.get_mut(&c.key.pool) {
            // The pool as read may predate the selection by a few revisions: the change's own
            // `before` is the state it replaces.
            members
                .members
                .insert(c.key.node.clone(), Member::from(&c.before));
        }
    }
    let mut out = Vec::new();
    for (pool, mut members) in after {
        let nodes = members.nodes();
        let before = members.serving();
        for c in changes.iter().filter(|c| &c.key.pool == pool) {
            match &c.after {
                Some(a) => members.members.insert(c.key.node.clone(), Member::from(a)),
                None => members.members.remove(&c.key.node),
            };
        }
        let now = members.serving();
        let required = members.limits.required(nodes);
        if now < before && now < required {
            out.push(BelowThreshold {
                pool: pool.clone(),
                limits: members.limits,
                nodes,
                before,
                after: now,
                required,
            });
        }
    }
    out
}

/// Which of several hosts' changes fit together: hosts in order, each admitted if its
/// changes, added to those admitted before it, leave no pool below its limits (judged
/// against what the pools hold now); the others are held back with the pools they would
/// cross. For `--partial` group writes: as many hosts as the pools allow, the rest named.
pub fn admit(
    pools: &BTreeMap<PoolKey, PoolMembers>,
    hosts: &[Vec<Change>],
) -> (Vec<usize>, Vec<(usize, Vec<BelowThreshold>)>) {
    let mut admitted = Vec::new();
    let mut held = Vec::new();
    let mut so_far: Vec<Change> = Vec::new();
    for (i, changes) in hosts.iter().enumerate() {
        let mut with = so_far.clone();
        with.extend(changes.iter().cloned());
        let below = below_threshold(pools, &with);
        if below.is_empty() {
            admitted.push(i);
            so_far = with;
        } else {
            held.push((i, below));
        }
    }
    (admitted, held)
}

/// Whether a write by `sel` leaves an object in state `before` alone, although `edit` would
/// change it: `inactive` objects are reached only by a selector that names their host
/// exactly, by `set/pooled=inactive` itself, or with `include_inactive`. Deletions are not
/// held back (removing a decommissioned cluster is a deliberate act on every object).
pub fn leaves_alone(
    sel: &Selector,
    node: &NodeName,
    before: &PoolState,
    edit: &Edit,
    include_inactive: bool,
) -> bool {
    let Edit::Set(fields) = edit else {
        return false;
    };
    before.pooled == Pooled::Inactive
        && !include_inactive
        && fields.pooled != Some(Pooled::Inactive)
        && !sel.names_exactly(node.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DepoolThreshold, ObjectKey};

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
                limits: PoolLimits {
                    threshold: DepoolThreshold::new(threshold).unwrap(),
                    min_pooled: 0,
                },
                members: states
                    .iter()
                    .map(|(n, p)| {
                        (
                            n.parse().unwrap(),
                            Member {
                                pooled: *p,
                                weight: Weight(1),
                            },
                        )
                    })
                    .collect(),
                revision: 0,
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
            "eqiad/appservers/apache: 1 of 4 nodes would stay serving (now 4), below its \
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
            (v[0].nodes, v[0].before, v[0].after, v[0].limits),
            (2, 2, 0, PoolLimits::default())
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
            limits: PoolLimits::default(),
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
    fn lowering_means_leaving_service() {
        assert!(lowers_serving(&change("s", "a", Yes, Some(No))));
        assert!(lowers_serving(&change("s", "a", Yes, Some(Inactive))));
        assert!(lowers_serving(&change("s", "a", Yes, None)));
        assert!(!lowers_serving(&change("s", "a", Yes, Some(Yes))));
        assert!(!lowers_serving(&change("s", "a", No, None)));
        assert!(!lowers_serving(&change("s", "a", Inactive, Some(No))));
        // A drain (weight 0) leaves service; a pooled node of weight 0 was not serving.
        let drain = weighted("s", "a", (Yes, 3), Some((Yes, 0)));
        assert!(lowers_serving(&drain));
        assert!(!lowers_serving(&weighted(
            "s",
            "a",
            (Yes, 0),
            Some((No, 0))
        )));
        assert!(!lowers_serving(&weighted("s", "a", (Yes, 0), None)));
        assert!(!lowers_serving(&weighted(
            "s",
            "a",
            (Yes, 1),
            Some((Yes, 7))
        )));
    }

    fn weighted(
        service: &str,
        node: &str,
        from: (Pooled, u16),
        to: Option<(Pooled, u16)>,
    ) -> Change {
        Change {
            key: key(service, node),
            before: PoolState::new(from.0, Weight(from.1)),
            after: to.map(|(p, w)| PoolState::new(p, Weight(w))),
            mod_revision: 1,
        }
    }

    #[test]
    fn draining_every_node_is_refused_like_depooling_them() {
        let pools: BTreeMap<_, _> = [pool("apache", 0.5, &[("a", Yes), ("b", Yes), ("c", Yes)])]
            .into_iter()
            .collect();
        let drain: Vec<Change> = ["a", "b", "c"]
            .iter()
            .map(|n| weighted("apache", n, (Yes, 1), Some((Yes, 0))))
            .collect();
        let v = below_threshold(&pools, &drain);
        assert_eq!(
            (v[0].nodes, v[0].before, v[0].after, v[0].required),
            (3, 3, 0, 2)
        );
        // One drained node is within the share; a node already at weight 0 is not serving,
        // so draining the two others would leave none.
        assert_eq!(below_threshold(&pools, &drain[..1]), []);
        let mut one_drained = pools.clone();
        if let Some(p) = one_drained.values_mut().next() {
            p.members.insert(
                "a".parse().unwrap(),
                Member {
                    pooled: Yes,
                    weight: Weight(0),
                },
            );
        }
        let v = below_threshold(&one_drained, &drain[1..2]);
        assert_eq!((v[0].before, v[0].after, v[0].required), (2, 1, 2));
    }

    #[test]
    fn min_pooled_is_a_floor_under_the_share() {
        let mut pools: BTreeMap<_, _> = [pool("apache", 0.0, &[("a", Yes)])].into_iter().collect();
        // Threshold 0: the only node may go...
        assert_eq!(
            below_threshold(&pools, &[change("apache", "a", Yes, Some(No))]),
            []
        );
        // ...unless min_pooled keeps one.
        for p in pools.values_mut() {
            p.limits.min_pooled = 1;
        }
        let v = below_threshold(&pools, &[change("apache", "a", Yes, Some(No))]);
        assert_eq!((v[0].nodes, v[0].after, v[0].required), (1, 0, 1));
        assert_eq!(
            v[0].to_string(),
            "eqiad/appservers/apache: 0 of 1 nodes would stay serving (now 1), below its \
             depool threshold 0 and min_pooled 1 (at least 1)"
        );
        // The larger of the two counts: 0.5 of 10 is 5, min_pooled 7 wins.
        let l = PoolLimits {
            threshold: DepoolThreshold::new(0.5).unwrap(),
            min_pooled: 7,
        };
        assert_eq!((l.required(10), l.required(20)), (7, 10));
    }

    #[test]
    fn one_host_means_one_name() {
        assert_eq!(one_host([]), Ok(()));
        assert_eq!(one_host(["mw1", "mw1"]), Ok(()));
        let e = one_host(["mw2", "mw1", "mw2"]).unwrap_err();
        assert_eq!(e, Refusal::NotOneHost(vec!["mw1".into(), "mw2".into()]));
        assert_eq!(
            e.to_string(),
            "the objects selected belong to 2 hosts (mw1, mw2), not one"
        );
        let many: Vec<String> = (0..7).map(|i| format!("h{i}")).collect();
        let e = one_host(many.iter().map(String::as_str)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the objects selected belong to 7 hosts (h0, h1, h2, h3, h4, ...), not one"
        );
    }

    #[test]
    fn admitting_hosts_in_order_until_the_pools_are_full() {
        // 6 nodes at 0.5: 3 may leave. Hosts a+b (one node each), then c+d together, then e.
        let pools: BTreeMap<_, _> = [pool(
            "apache",
            0.5,
            &[
                ("a", Yes),
                ("b", Yes),
                ("c", Yes),
                ("d", Yes),
                ("e", Yes),
                ("f", Yes),
            ],
        )]
        .into_iter()
        .collect();
        let out = |n: &str| change("apache", n, Yes, Some(No));
        let hosts = vec![
            vec![out("a")],
            vec![out("b")],
            vec![out("c"), out("d")],
            vec![out("e")],
            vec![],
        ];
        let (admitted, held) = admit(&pools, &hosts);
        // a, b fit; c+d would make 4 out: held; e fits (3 out); a host with no change fits.
        assert_eq!(admitted, [0, 1, 3, 4]);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0, 2);
        assert_eq!((held[0].1[0].after, held[0].1[0].required), (2, 3));
        // Everything fits when nothing lowers.
        let back = vec![vec![change("apache", "a", No, Some(Yes))]];
        assert_eq!(admit(&pools, &back), (vec![0], vec![]));
    }

    #[test]
    fn a_pattern_leaves_inactive_objects_alone_whatever_it_sets() {
        use crate::action::SetFields;
        let set = |p: Option<Pooled>, w: Option<u16>| {
            Edit::Set(SetFields {
                pooled: p,
                weight: w.map(Weight),
            })
        };
        let inactive = PoolState::new(Inactive, Weight(1));
        let active = PoolState::new(No, Weight(1));
        let node: NodeName = "mw1018".parse().unwrap();
        let pattern: Selector = "name=mw10.*".parse().unwrap();
        let no_name: Selector = "cluster=appservers".parse().unwrap();
        let exact: Selector = "dc=eqiad,name=mw1018".parse().unwrap();
        for edit in [
            set(Some(Yes), None),
            set(Some(No), None),
            set(None, Some(5)),
        ] {
            assert!(
                leaves_alone(&pattern, &node, &inactive, &edit, false),
                "{edit:?}"
            );
            assert!(
                leaves_alone(&no_name, &node, &inactive, &edit, false),
                "{edit:?}"
            );
            // Named exactly, or opted in: reached.
            assert!(
                !leaves_alone(&exact, &node, &inactive, &edit, false),
                "{edit:?}"
            );
            assert!(
                !leaves_alone(&pattern, &node, &inactive, &edit, true),
                "{edit:?}"
            );
            // Objects that are not inactive are never held back.
            assert!(
                !leaves_alone(&pattern, &node, &active, &edit, false),
                "{edit:?}"
            );
        }
        // pooled=inactive itself, and deletions, reach them.
        assert!(!leaves_alone(
            &pattern,
            &node,
            &inactive,
            &set(Some(Inactive), Some(0)),
            false
        ));
        assert!(!leaves_alone(
            &pattern,
            &node,
            &inactive,
            &Edit::Delete,
            false
        ));
    }
}
