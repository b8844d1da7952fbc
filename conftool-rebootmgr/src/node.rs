//! A node of a reboot group, connected: its configuration, the conftool store and the
//! identity its writes and its slot are recorded under. Everything a run does is a method
//! of [`Node`] (the run in `run`, its steps in `sequence`, `after` and `recover`, the health
//! checks and constraints in `assess`, `status` and the switches in `admin`).

use std::collections::BTreeSet;

use conftool_core::{
    Actor, AuditLog, Config, LockName, NodeName, ObjectKey, PoolKey, PoolState, Store, Writer,
};

use crate::config::RebootConfig;
use crate::error::Error;
use crate::events::Event;
use crate::keys::RebootKeys;

/// Where a run's events go (the binary writes each as one JSON line).
pub type Emit<'a> = &'a mut (dyn FnMut(Event) + Send);

/// The kind of the conftool operation a reboot depools into (`confctl operation list`
/// shows it, about the node).
pub const OPERATION_KIND: &str = "reboot";

/// A node of a reboot group, connected to etcd.
#[derive(Debug)]
pub struct Node {
    pub(crate) cfg: RebootConfig,
    pub(crate) conftool: Config,
    pub(crate) store: Store,
    pub(crate) actor: Actor,
    pub(crate) audit: AuditLog,
    pub(crate) keys: RebootKeys,
    pub(crate) name: NodeName,
    pub(crate) slot: LockName,
}

/// The node's objects in conftool's pools, as read.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// Every object of the node, with its state.
    pub objects: Vec<(ObjectKey, PoolState)>,
}

impl Objects {
    /// The pools where the node serves now.
    pub fn serving(&self) -> BTreeSet<PoolKey> {
        self.objects
            .iter()
            .filter(|(_, s)| s.serving())
            .map(|(k, _)| k.pool.clone())
            .collect()
    }

    /// Every pool the node is in.
    pub fn pools(&self) -> BTreeSet<PoolKey> {
        self.objects.iter().map(|(k, _)| k.pool.clone()).collect()
    }
}

impl Node {
    /// Read the conftool settings the configuration names and connect to etcd.
    pub async fn connect(cfg: RebootConfig) -> Result<Node, Error> {
        let conftool = Config::load(&cfg.conftool_config)?;
        let name = cfg.node_name()?;
        let slot = RebootKeys::slot(&cfg.group)?;
        let store = Store::connect(&conftool).await?;
        let mut actor = Actor::from_env("conftool-rebootmgr", conftool.username.clone());
        // The node, not the machine the process happens to run on: lock holders and
        // operations say which node holds a slot (they are the same name in production).
        actor.host = name.to_string();
        let audit = AuditLog::from_config(conftool.audit_log.as_deref());
        Ok(Node {
            keys: RebootKeys::new(&conftool.keyspace()),
            cfg,
            conftool,
            store,
            actor,
            audit,
            name,
            slot,
        })
    }

    /// This node's name.
    pub fn name(&self) -> &NodeName {
        &self.name
    }

    /// The configuration.
    pub fn config(&self) -> &RebootConfig {
        &self.cfg
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The group's slot lock.
    pub fn slot_lock(&self) -> &LockName {
        &self.slot
    }

    /// A writer, audited as this tool, with `reason`.
    pub(crate) fn writer(&self, reason: &str) -> Result<Writer<'_>, Error> {
        Ok(self
            .store
            .writer(&self.actor, &self.audit)?
            .with_reason(reason))
    }

    /// The node's objects in the pools.
    pub(crate) async fn objects(&self) -> Result<Objects, Error> {
        let found = self
            .store
            .find_node(std::slice::from_ref(&self.name), None)
            .await?;
        Ok(Objects {
            objects: found
                .map(|(_, sel)| sel.objects.into_iter().map(|o| (o.key, o.state)).collect())
                .unwrap_or_default(),
        })
    }

    /// Environment for tasks, checks and the reboot command.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REBOOTMGR_NODE", self.name.to_string()),
            ("REBOOTMGR_GROUP", self.cfg.group.to_string()),
            ("REBOOTMGR_PID", std::process::id().to_string()),
        ]
    }
}
