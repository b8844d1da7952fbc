//! What an operator does beside the runs: `status` (the group's slot, who holds it with
//! which boot and since when, reboots in progress, nodes that need a person, stop
//! switches, the members' reports), and the switches: stop and go, a person's all-clear
//! on a marked node, a reboot asked for through etcd.

use std::collections::BTreeMap;

use conftool_core::{LockHolder, NodeName, StopRecord};
use serde::Serialize;

use crate::error::Error;
use crate::keys::{RebootKey, StopScope};
use crate::node::Node;
use crate::records::{self, Mark, Reboot, Report, Stamp};
use crate::view;

/// The group as etcd has it; serialized as the `status` command's JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The group.
    pub group: String,
    /// How many may reboot at once.
    pub concurrency: u32,
    /// The slots' holders, with their lease's seconds left (`null`: etcd did not say).
    pub slots: Vec<SlotHolder>,
    /// Reboots in progress (phase, boot id, since when, operation).
    pub reboots: Vec<Reboot>,
    /// Nodes that need a person, with why.
    pub needs_person: BTreeMap<String, Mark>,
    /// Stop switches of ours that are set (every one, also other groups' and nodes').
    pub stops: Vec<StopSet>,
    /// conftool's own stop switches that are set (they stop reboots too).
    pub conftool_stops: Vec<String>,
    /// Nodes whose reboot is asked for through etcd.
    pub requested: Vec<String>,
    /// The members' last reports.
    pub reports: Vec<Report>,
}

/// One holder of a slot.
#[derive(Debug, Clone, Serialize)]
pub struct SlotHolder {
    /// The lock entry.
    #[serde(flatten)]
    pub holder: LockHolder,
    /// Seconds left on its lease.
    pub ttl_left_secs: Option<i64>,
    /// Whether it holds a slot (else it waits).
    pub holding: bool,
}

/// A stop switch that is set.
#[derive(Debug, Clone, Serialize)]
pub struct StopSet {
    /// What it stops.
    pub scope: String,
    /// Who set it, why, since when (`null`: content that is not a record; it stops all
    /// the same).
    pub record: Option<StopRecord>,
}

impl Node {
    /// The group's state.
    pub async fn status(&self) -> Result<Status, Error> {
        let lock = self.store.lock_state(&self.slot).await?;
        let mut status = Status {
            group: self.cfg.group.to_string(),
            concurrency: self.cfg.slot.concurrency,
            slots: lock
                .entries
                .into_iter()
                .enumerate()
                .map(|(i, (holder, ttl))| SlotHolder {
                    holder,
                    ttl_left_secs: ttl,
                    holding: i < lock.holding,
                })
                .collect(),
            reboots: Vec::new(),
            needs_person: BTreeMap::new(),
            stops: Vec::new(),
            conftool_stops: self
                .store
                .stops()
                .await?
                .into_iter()
                .map(|s| s.to_string())
                .collect(),
            requested: Vec::new(),
            reports: Vec::new(),
        };
        for kv in self.store.read_prefix(self.keys.prefix()).await?.kvs {
            match self.keys.parse(&kv.key) {
                Some(RebootKey::Stop(scope)) => status.stops.push(StopSet {
                    scope: scope.to_string(),
                    record: serde_json::from_slice(&kv.value).ok(),
                }),
                Some(RebootKey::Trigger(n)) => status.requested.push(n.to_string()),
                Some(RebootKey::Mark(n)) => {
                    status
                        .needs_person
                        .insert(n.to_string(), records::parse(&kv.key, &kv.value)?);
                }
                Some(RebootKey::Report(g, _)) if g == self.cfg.group => {
                    status.reports.push(records::parse(&kv.key, &kv.value)?);
                }
                Some(RebootKey::Reboot(g, _)) if g == self.cfg.group => {
                    status.reboots.push(records::parse(&kv.key, &kv.value)?);
                }
                _ => {}
            }
        }
        Ok(status)
    }

    /// Set (`Some(reason)`) or clear a stop switch of ours; whether it changed anything.
    pub async fn set_stop(&self, scope: &StopScope, reason: Option<&str>) -> Result<bool, Error> {
        let value = reason.map(|r| {
            records::json(&StopRecord {
                by: self.actor.user.clone(),
                reason: r.to_string(),
                since: Stamp::now().to_string(),
                extra: serde_json::Map::new(),
            })
        });
        let why = match reason {
            Some(r) => format!("rebootmgr: stop {scope}: {r}"),
            None => format!("rebootmgr: go {scope}"),
        };
        let mut writer = self.writer(&why)?;
        view::set_key(&mut writer, &self.keys.stop(scope), value).await
    }

    /// A person's all-clear on a node marked as needing one; whether it was marked. What
    /// the mark's operation still holds depooled is left to them (`confctl operation end`).
    pub async fn clear_mark(&self, node: &NodeName) -> Result<bool, Error> {
        let mut writer = self.writer(&format!("rebootmgr: {node} looked after"))?;
        view::set_key(&mut writer, &self.keys.mark(node), None).await
    }

    /// Ask for (`true`) or withdraw a node's reboot through etcd; whether it changed
    /// anything.
    pub async fn request(&self, node: &NodeName, on: bool) -> Result<bool, Error> {
        let mut writer = self.writer(&format!("rebootmgr: reboot of {node} requested"))?;
        let value = on.then(|| {
            records::json(&serde_json::json!({"by": self.actor.user, "since": Stamp::now()}))
        });
        view::set_key(&mut writer, &self.keys.trigger(node), value).await
    }
}
