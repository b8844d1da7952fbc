//! Where the coordinator keeps its state in etcd (pure): under `<namespace>/v1/rebootmgr/`,
//! which conftool reserves for it (no pool consumer reads it), and one leased lock.
//!
//! ```text
//! rebootmgr/stop                              => {"by", "reason", "since"}  every reboot
//! rebootmgr/stop/groups/<group>               => ...                        one group's
//! rebootmgr/stop/nodes/<node>                 => ...                        one node's
//! rebootmgr/nodes/<node>/reboot_required      => anything: a reboot is asked for
//! rebootmgr/nodes/<node>/needs_person         => {"reason", "since", ...}   it stopped; a person looks
//! rebootmgr/groups/<group>/reports/<node>     => {"at", "boot_id", "checks": [...]}
//! rebootmgr/groups/<group>/reboots/<node>     => {"phase", "slot", "operation", ...}  in progress
//! locks/rebootmgr:<group>/<holder>            => the group's reboot slots (leased)
//! ```
//!
//! Any content at a stop key stops, as with conftool's own stop switch (`/v1/stop`).

use conftool_core::{Keyspace, LockName, NodeName};

use crate::error::Error;
use crate::names::GroupName;

/// Which of the coordinator's stop switches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopScope {
    /// Every node's reboots.
    All,
    /// One group's.
    Group(GroupName),
    /// One node's.
    Node(NodeName),
}

impl std::fmt::Display for StopScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopScope::All => f.write_str("every reboot"),
            StopScope::Group(g) => write!(f, "group {g}"),
            StopScope::Node(n) => write!(f, "node {n}"),
        }
    }
}

/// A key of ours, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebootKey {
    /// A stop switch.
    Stop(StopScope),
    /// A node's reboot is asked for.
    Trigger(NodeName),
    /// A node needs a person.
    Mark(NodeName),
    /// A member's report.
    Report(GroupName, NodeName),
    /// A reboot in progress.
    Reboot(GroupName, NodeName),
}

/// The coordinator's keys under one namespace.
///
/// ```
/// use conftool_rebootmgr::keys::{RebootKey, RebootKeys};
/// let keys = RebootKeys::new(&conftool_core::Keyspace::new("/conftool"));
/// let node = "mw1018".parse()?;
/// assert_eq!(keys.trigger(&node), "/conftool/v1/rebootmgr/nodes/mw1018/reboot_required");
/// assert_eq!(keys.parse(&keys.trigger(&node)), Some(RebootKey::Trigger(node)));
/// # Ok::<(), conftool_core::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootKeys {
    root: String,
}

impl RebootKeys {
    /// The keys under `ks`'s namespace.
    pub fn new(ks: &Keyspace) -> RebootKeys {
        RebootKeys {
            root: format!("{}rebootmgr/", ks.root_prefix()),
        }
    }

    /// `<namespace>/v1/rebootmgr/`: everything of ours.
    pub fn prefix(&self) -> &str {
        &self.root
    }

    /// `<namespace>/v1/rebootmgr/stop`: the prefix of every stop switch of ours (and the
    /// key of the one that stops everything).
    pub fn stops_prefix(&self) -> String {
        format!("{}stop", self.root)
    }

    /// A stop switch's key.
    pub fn stop(&self, scope: &StopScope) -> String {
        match scope {
            StopScope::All => self.stops_prefix(),
            StopScope::Group(g) => format!("{}stop/groups/{g}", self.root),
            StopScope::Node(n) => format!("{}stop/nodes/{n}", self.root),
        }
    }

    /// Everything about one node that is not its group's.
    pub fn node_prefix(&self, node: &NodeName) -> String {
        format!("{}nodes/{node}/", self.root)
    }

    /// The key that asks for a node's reboot.
    pub fn trigger(&self, node: &NodeName) -> String {
        format!("{}reboot_required", self.node_prefix(node))
    }

    /// The key that says a node needs a person.
    pub fn mark(&self, node: &NodeName) -> String {
        format!("{}needs_person", self.node_prefix(node))
    }

    /// Everything about one group.
    pub fn group_prefix(&self, group: &GroupName) -> String {
        format!("{}groups/{group}/", self.root)
    }

    /// A member's report.
    pub fn report(&self, group: &GroupName, node: &NodeName) -> String {
        format!("{}reports/{node}", self.group_prefix(group))
    }

    /// A member's reboot in progress.
    pub fn reboot(&self, group: &GroupName, node: &NodeName) -> String {
        format!("{}reboots/{node}", self.group_prefix(group))
    }

    /// The group's semaphore of reboot slots: a conftool leased lock, so `confctl lock
    /// list` shows it too. (A group name longer than a lock name may be is refused.)
    pub fn slot(group: &GroupName) -> Result<LockName, Error> {
        format!("rebootmgr:{group}")
            .parse()
            .map_err(|e| Error::Store(conftool_core::Error::Model(e)))
    }

    /// Decode one of our keys; `None` for anything else.
    pub fn parse(&self, key: &str) -> Option<RebootKey> {
        let rest = key.strip_prefix(&self.root)?;
        let parts: Vec<&str> = rest.split('/').collect();
        Some(match parts.as_slice() {
            ["stop"] => RebootKey::Stop(StopScope::All),
            ["stop", "groups", g] => RebootKey::Stop(StopScope::Group(g.parse().ok()?)),
            ["stop", "nodes", n] => RebootKey::Stop(StopScope::Node(n.parse().ok()?)),
            ["nodes", n, "reboot_required"] => RebootKey::Trigger(n.parse().ok()?),
            ["nodes", n, "needs_person"] => RebootKey::Mark(n.parse().ok()?),
            ["groups", g, "reports", n] => RebootKey::Report(g.parse().ok()?, n.parse().ok()?),
            ["groups", g, "reboots", n] => RebootKey::Reboot(g.parse().ok()?, n.parse().ok()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_and_strangers_are_not_ours() {
        let keys = RebootKeys::new(&Keyspace::new(""));
        let (g, n): (GroupName, NodeName) = ("web".parse().unwrap(), "mw1".parse().unwrap());
        let all = [
            (keys.stop(&StopScope::All), RebootKey::Stop(StopScope::All)),
            (
                keys.stop(&StopScope::Group(g.clone())),
                RebootKey::Stop(StopScope::Group(g.clone())),
            ),
            (
                keys.stop(&StopScope::Node(n.clone())),
                RebootKey::Stop(StopScope::Node(n.clone())),
            ),
            (keys.trigger(&n), RebootKey::Trigger(n.clone())),
            (keys.mark(&n), RebootKey::Mark(n.clone())),
            (keys.report(&g, &n), RebootKey::Report(g.clone(), n.clone())),
            (keys.reboot(&g, &n), RebootKey::Reboot(g.clone(), n.clone())),
        ];
        for (key, want) in all {
            assert!(key.starts_with("/v1/rebootmgr/"), "{key}");
            assert_eq!(keys.parse(&key), Some(want), "{key}");
        }
        assert_eq!(
            keys.stop(&StopScope::Group(g.clone())),
            "/v1/rebootmgr/stop/groups/web"
        );
        assert_eq!(keys.reboot(&g, &n), "/v1/rebootmgr/groups/web/reboots/mw1");
        for stranger in [
            "/v1/rebootmgr/stopx",
            "/v1/rebootmgr/nodes/mw1/other",
            "/v1/rebootmgr/groups/web/reports/..",
            "/v1/stop",
        ] {
            assert_eq!(keys.parse(stranger), None, "{stranger}");
        }
        assert_eq!(RebootKeys::slot(&g).unwrap().as_str(), "rebootmgr:web");
        assert!(RebootKeys::slot(&"g".repeat(200).parse().unwrap()).is_err());
    }
}
