//! From etcd's desired state and HAProxy's current view of one backend to the runtime API
//! commands that close the gap: pure, so every rule is unit-tested here.
//!
//! - `pooled: yes` → `state ready` with its weight; `no` → `state drain` (no new
//!   connections, those in flight finish); `inactive` → `state maint`.
//! - **Weights.** etcd's weights run 0..=65535, HAProxy's 0..=256. The agent *clamps*
//!   ([`haproxy_weight`]): weights up to 256 keep their exact value (and so their exact
//!   ratios: the weights people use, 1 to 100, are untouched) and anything above counts as
//!   256. Scaling instead would turn the common weight 10 into 0 (no traffic at all).
//! - **Drain, then out.** A depooled server first drains (no new requests); the requests
//!   still in flight on it get [`DrainClock`]'s timeout to finish, after which they are
//!   ended (`shutdown sessions server`), once.
//! - Only what differs is sent: a server already right gets no command, so re-planning the
//!   same state is a no-op.
//! - Nodes etcd has that the backend lacks, and backend servers etcd does not know, are
//!   reported, never added or removed: HAProxy's configuration owns the server list.
//! - **Depool threshold** (PyBal's), counted as confctl counts it: when the pool's *serving*
//!   nodes (`pooled: yes` with a weight above 0) are fewer than its service's [`PoolLimits`]
//!   require (the [`DepoolThreshold`] share of its nodes that are not `inactive`, or
//!   `min_pooled`, whichever is more), depooled and drained nodes are kept in rotation to
//!   make up the difference (a drained one at weight 1), and reported. Which ones: first
//!   those HAProxy is sending traffic to now (so keeping them changes nothing), then by node
//!   name; deterministic, so re-planning keeps the same ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[cfg(doc)]
use conftool_core::DepoolThreshold;
use conftool_core::{NodeName, PoolLimits, PoolState, Pooled, Weight};

use crate::haproxy::{AdminState, Command, ServerState};
use crate::names::{BackendName, ServerName};

/// The HAProxy weight of an etcd weight: clamped to HAProxy's largest, 256.
///
/// ```
/// use conftool_core::Weight;
/// assert_eq!(conftool_lb::haproxy_weight(Weight(10)), 10);
/// assert_eq!(conftool_lb::haproxy_weight(Weight(20000)), 256);
/// ```
pub fn haproxy_weight(w: Weight) -> u16 {
    w.get().min(256)
}

/// What the agent will do to one backend, and what it noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPlan {
    /// The backend.
    pub backend: BackendName,
    /// Commands, in the order to send them.
    pub commands: Vec<Command>,
    /// Nodes etcd has (not `inactive`) that the backend has no server for.
    pub missing_in_backend: Vec<NodeName>,
    /// Backend servers etcd does not know (including those whose name is not a node name).
    pub unknown_to_etcd: Vec<ServerName>,
    /// Servers of nodes depooled in etcd but kept in rotation by the depool threshold.
    pub kept_by_threshold: Vec<ServerName>,
    /// Servers that are to drain (depooled in etcd, not kept by the threshold).
    pub draining: Vec<ServerName>,
    /// Nodes the limits require serving.
    pub required: usize,
    /// Nodes serving in etcd (`pooled: yes`, weight above 0).
    pub pooled: usize,
}

impl PoolPlan {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// Plan one backend: `desired` is etcd's state of the pool's nodes (by node name),
/// `current` HAProxy's servers of `backend`.
pub fn plan_pool(
    backend: &BackendName,
    limits: PoolLimits,
    desired: &BTreeMap<NodeName, PoolState>,
    current: &[ServerState],
) -> PoolPlan {
    // By server name; a node's server is the one named after it.
    let have: BTreeMap<&str, &ServerState> = current
        .iter()
        .filter(|s| s.backend == *backend)
        .map(|s| (s.name.as_str(), s))
        .collect();
    let nodes = desired
        .values()
        .filter(|s| s.pooled != Pooled::Inactive)
        .count();
    let pooled = desired.values().filter(|s| s.serving()).count();
    let required = limits.required(nodes);

    // Depooled (or drained) nodes to keep in rotation: those serving now first, then by name.
    let mut kept: BTreeSet<&ServerName> = BTreeSet::new();
    if pooled < required {
        let mut candidates: Vec<(bool, &ServerName)> = desired
            .iter()
            .filter(|(_, s)| s.pooled != Pooled::Inactive && !s.serving())
            .filter_map(|(n, _)| have.get(n.as_str()).map(|s| (!s.pooled(), &s.name)))
            .collect();
        candidates.sort();
        kept = candidates
            .into_iter()
            .take(required - pooled)
            .map(|(_, n)| n)
            .collect();
    }

    let mut plan = PoolPlan {
        backend: backend.clone(),
        required,
        pooled,
        kept_by_threshold: kept.iter().map(|&n| n.clone()).collect(),
        commands: Vec::new(),
        missing_in_backend: Vec::new(),
        unknown_to_etcd: Vec::new(),
        draining: Vec::new(),
    };
    for (node, state) in desired {
        let Some(server) = have.get(node.as_str()) else {
            if state.pooled != Pooled::Inactive {
                plan.missing_in_backend.push(node.clone());
            }
            continue;
        };
        let keep = kept.contains(&server.name);
        let target = match state.pooled {
            Pooled::Yes => AdminState::Ready,
            Pooled::No if keep => AdminState::Ready,
            Pooled::No => AdminState::Drain,
            Pooled::Inactive => AdminState::Maint,
        };
        if target == AdminState::Drain {
            plan.draining.push(server.name.clone());
        }
        // The weight first: a server coming back takes traffic at its new weight at once. One
        // kept by the threshold takes traffic even if etcd says weight 0.
        let mut weight = haproxy_weight(state.weight);
        if keep {
            weight = weight.max(1);
        }
        if target == AdminState::Ready && server.weight != weight {
            plan.commands.push(Command::Weight {
                backend: backend.clone(),
                server: server.name.clone(),
                weight,
            });
        }
        if server.admin() != target {
            plan.commands.push(Command::State {
                backend: backend.clone(),
                server: server.name.clone(),
                state: target,
            });
        }
    }
    // A server whose name is not a node name is unknown to etcd too.
    plan.unknown_to_etcd = have
        .values()
        .filter(|s| s.name.to_node().map_or(true, |n| !desired.contains_key(&n)))
        .map(|s| s.name.clone())
        .collect();
    plan
}

/// When drained servers have had their time: the second step of a depool. The caller
/// passes the time (so this is tested without waiting) and the servers draining now.
#[derive(Debug, Clone, Default)]
pub struct DrainClock {
    /// Server → (when its drain was first seen, whether its sessions were ended).
    since: BTreeMap<ServerName, (Instant, bool)>,
}

impl DrainClock {
    /// Note which servers drain at `now`; return those whose in-flight requests are to be
    /// ended now: draining for at least `timeout`, and not ended before. A server that stops
    /// draining (repooled) starts over.
    pub fn due(
        &mut self,
        draining: &[ServerName],
        now: Instant,
        timeout: Duration,
    ) -> Vec<ServerName> {
        self.since.retain(|s, _| draining.contains(s));
        let mut out = Vec::new();
        for s in draining {
            let (since, ended) = self.since.entry(s.clone()).or_insert((now, false));
            if !*ended && now.duration_since(*since) >= timeout {
                *ended = true;
                out.push(s.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, admin_bits: u32, weight: u16) -> ServerState {
        ServerState {
            backend: "be".into(),
            name: name.into(),
            addr: "127.0.0.1".into(),
            op_state: 2,
            admin_bits,
            weight,
        }
    }

    fn desired(nodes: &[(&str, Pooled, u16)]) -> BTreeMap<NodeName, PoolState> {
        nodes
            .iter()
            .map(|(n, p, w)| (n.parse().expect("node"), PoolState::new(*p, Weight(*w))))
            .collect()
    }

    fn text(plan: &PoolPlan) -> Vec<String> {
        plan.commands.iter().map(|c| c.to_string()).collect()
    }

    /// The service's limits: a share of the nodes, no floor.
    fn share(s: f64) -> PoolLimits {
        PoolLimits {
            threshold: conftool_core::DepoolThreshold::new(s).expect("share"),
            min_pooled: 0,
        }
    }

    /// PyBal's default: half the pool.
    const HALF: PoolLimits = PoolLimits {
        threshold: conftool_core::DepoolThreshold::DEFAULT,
        min_pooled: 0,
    };

    #[test]
    fn maps_each_state_and_sets_the_weight_before_readiness() {
        let want = desired(&[
            ("a", Pooled::Yes, 10),
            ("b", Pooled::No, 10),
            ("c", Pooled::Inactive, 10),
            ("d", Pooled::Yes, 10),
        ]);
        let have = [
            server("a", 1, 1),
            server("b", 0, 10),
            server("c", 0, 10),
            server("d", 0, 10),
        ];
        assert_eq!(
            text(&plan_pool(&"be".into(), share(0.0), &want, &have)),
            [
                "set server be/a weight 10",
                "set server be/a state ready",
                "set server be/b state drain",
                "set server be/c state maint",
            ]
        );
    }

    #[test]
    fn the_plan_names_its_backend_and_is_empty_with_nothing_to_send() {
        let want = desired(&[("mw1", Pooled::Yes, 10)]);
        let right = plan_pool(&"be".into(), HALF, &want, &[server("mw1", 0, 10)]);
        assert_eq!(right.backend, "be");
        assert!(right.is_empty());
        let wrong = plan_pool(&"be".into(), HALF, &want, &[server("mw1", 0, 1)]);
        assert!(!wrong.is_empty());
    }

    #[test]
    fn a_server_already_right_gets_nothing() {
        let want = desired(&[
            ("a", Pooled::Yes, 10),
            ("b", Pooled::No, 3),
            ("c", Pooled::Inactive, 0),
        ]);
        // b drains with any weight; c is in forced maintenance.
        let have = [server("a", 0, 10), server("b", 8, 1), server("c", 1, 1)];
        assert!(plan_pool(&"be".into(), share(0.0), &want, &have).is_empty());
    }

    #[test]
    fn weights_are_clamped_to_256() {
        assert_eq!(haproxy_weight(Weight(0)), 0);
        assert_eq!(haproxy_weight(Weight(256)), 256);
        assert_eq!(haproxy_weight(Weight(257)), 256);
        assert_eq!(haproxy_weight(Weight(65535)), 256);
        let want = desired(&[("a", Pooled::Yes, 20000)]);
        let plan = plan_pool(&"be".into(), HALF, &want, &[server("a", 0, 10)]);
        assert_eq!(text(&plan), ["set server be/a weight 256"]);
    }

    #[test]
    fn strangers_are_reported_not_invented() {
        let want = desired(&[
            ("a", Pooled::Yes, 1),
            ("ghost", Pooled::Yes, 1),
            ("gone", Pooled::Inactive, 1),
        ]);
        let have = [server("a", 0, 1), server("extra", 0, 1)];
        let plan = plan_pool(&"be".into(), share(0.0), &want, &have);
        assert!(plan.is_empty());
        assert_eq!(plan.missing_in_backend, ["ghost".parse().expect("node")]);
        assert_eq!(plan.unknown_to_etcd, ["extra"]);
    }

    #[test]
    fn other_backends_are_ignored() {
        let want = desired(&[("a", Pooled::No, 1)]);
        let mut other = server("a", 0, 1);
        other.backend = "other".into();
        let plan = plan_pool(&"be".into(), share(0.0), &want, &[other]);
        assert_eq!(plan.missing_in_backend, ["a".parse().expect("node")]);
        assert!(plan.commands.is_empty());
    }

    #[test]
    fn a_server_not_named_after_a_node_is_reported_not_refused() {
        let want = desired(&[("a", Pooled::Yes, 1)]);
        let have = [server("a", 0, 1), server("a@old", 0, 1)];
        let plan = plan_pool(&"be".into(), share(0.0), &want, &have);
        assert!(plan.is_empty());
        assert_eq!(plan.unknown_to_etcd, ["a@old"]);
    }

    #[test]
    fn the_threshold_keeps_depooled_servers_in_rotation() {
        // 4 nodes, threshold 0.5 → 2 must serve; only 1 is pooled.
        let want = desired(&[
            ("a", Pooled::No, 1),
            ("b", Pooled::No, 1),
            ("c", Pooled::No, 1),
            ("d", Pooled::Yes, 1),
        ]);
        // c is serving now: it is the one kept (no change), a and b drain.
        let have = [
            server("a", 0, 1),
            server("b", 0, 1),
            server("c", 0, 1),
            server("d", 0, 1),
        ];
        let mut have_c = have.clone();
        for s in &mut have_c[..2] {
            s.admin_bits = 8;
        }
        let plan = plan_pool(&"be".into(), HALF, &want, &have_c);
        assert_eq!(plan.kept_by_threshold, ["c"]);
        assert_eq!((plan.required, plan.pooled), (2, 1));
        assert!(plan.is_empty(), "{:?}", plan.commands);
        // All four serving: the first by name is kept, the others drain.
        let plan = plan_pool(&"be".into(), HALF, &want, &have);
        assert_eq!(plan.kept_by_threshold, ["a"]);
        assert_eq!(
            text(&plan),
            ["set server be/b state drain", "set server be/c state drain"]
        );
        // Planning again from the outcome keeps the same one.
        let mut after = have.clone();
        after[1].admin_bits = 8;
        after[2].admin_bits = 8;
        let again = plan_pool(&"be".into(), HALF, &want, &after);
        assert_eq!(again.kept_by_threshold, ["a"]);
        assert!(again.is_empty());
    }

    #[test]
    fn drained_nodes_do_not_serve_and_min_pooled_is_a_floor() {
        // 3 nodes at 0.5 (2 must serve); all drained by etcd (weight 0): the first two by
        // name are kept in rotation at weight 1, the third stays at weight 0.
        let want = desired(&[
            ("a", Pooled::Yes, 0),
            ("b", Pooled::Yes, 0),
            ("c", Pooled::Yes, 0),
        ]);
        let have = [server("a", 0, 5), server("b", 0, 5), server("c", 0, 5)];
        let plan = plan_pool(&"be".into(), HALF, &want, &have);
        assert_eq!((plan.required, plan.pooled), (2, 0));
        assert_eq!(plan.kept_by_threshold, ["a", "b"]);
        assert_eq!(
            text(&plan),
            [
                "set server be/a weight 1",
                "set server be/b weight 1",
                "set server be/c weight 0"
            ]
        );
        // min_pooled 3 of 4 at share 0: one depooled node is kept.
        let floor = PoolLimits {
            min_pooled: 3,
            ..share(0.0)
        };
        let want = desired(&[
            ("a", Pooled::Yes, 1),
            ("b", Pooled::Yes, 1),
            ("c", Pooled::No, 1),
            ("d", Pooled::No, 1),
        ]);
        let have = [
            server("a", 0, 1),
            server("b", 0, 1),
            server("c", 0, 1),
            server("d", 0, 1),
        ];
        let plan = plan_pool(&"be".into(), floor, &want, &have);
        assert_eq!((plan.required, plan.pooled), (3, 2));
        assert_eq!(plan.kept_by_threshold, ["c"]);
        assert_eq!(text(&plan), ["set server be/d state drain"]);
    }

    #[test]
    fn inactive_nodes_do_not_count_towards_the_threshold() {
        // 2 active nodes (threshold 0.5 → 1), 1 pooled: nothing kept.
        let want = desired(&[
            ("a", Pooled::Yes, 1),
            ("b", Pooled::No, 1),
            ("c", Pooled::Inactive, 1),
        ]);
        let have = [server("a", 0, 1), server("b", 0, 1), server("c", 0, 1)];
        let plan = plan_pool(&"be".into(), HALF, &want, &have);
        assert!(plan.kept_by_threshold.is_empty());
        assert_eq!(
            text(&plan),
            ["set server be/b state drain", "set server be/c state maint"]
        );
    }

    #[test]
    fn drained_servers_are_ended_once_after_the_timeout() {
        let mut c = DrainClock::default();
        let t0 = Instant::now();
        let sec = Duration::from_secs(1);
        let d = |v: &[&str]| v.iter().map(|s| ServerName::from(*s)).collect::<Vec<_>>();
        assert!(c.due(&d(&["a"]), t0, 10 * sec).is_empty());
        assert!(c.due(&d(&["a", "b"]), t0 + 5 * sec, 10 * sec).is_empty());
        assert_eq!(c.due(&d(&["a", "b"]), t0 + 10 * sec, 10 * sec), ["a"]);
        assert!(
            c.due(&d(&["a", "b"]), t0 + 12 * sec, 10 * sec).is_empty(),
            "once"
        );
        assert_eq!(c.due(&d(&["a", "b"]), t0 + 15 * sec, 10 * sec), ["b"]);
        // a repooled, then drained again: its clock starts over.
        assert!(c.due(&d(&["b"]), t0 + 16 * sec, 10 * sec).is_empty());
        assert!(c.due(&d(&["a", "b"]), t0 + 17 * sec, 10 * sec).is_empty());
        assert_eq!(c.due(&d(&["a", "b"]), t0 + 27 * sec, 10 * sec), ["a"]);
    }

    #[test]
    fn the_plan_lists_what_drains() {
        let want = desired(&[
            ("a", Pooled::No, 1),
            ("b", Pooled::No, 1),
            ("c", Pooled::Yes, 1),
            ("d", Pooled::Yes, 1),
        ]);
        let have = [
            server("a", 0, 1),
            server("b", 8, 1),
            server("c", 0, 1),
            server("d", 0, 1),
        ];
        let plan = plan_pool(&"be".into(), HALF, &want, &have);
        assert_eq!(plan.draining, ["a", "b"]);
        // With the threshold keeping one, only the other drains.
        let want = desired(&[
            ("a", Pooled::No, 1),
            ("b", Pooled::No, 1),
            ("c", Pooled::Yes, 1),
        ]);
        let plan = plan_pool(&"be".into(), HALF, &want, &have);
        assert_eq!(plan.kept_by_threshold, ["a"]);
        assert_eq!(plan.draining, ["b"]);
    }
}
