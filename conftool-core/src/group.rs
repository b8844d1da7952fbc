//! Host verbs for a group of hosts (a rack, the VMs of a hypervisor, a list): one plan for
//! the whole group, judged once against every pool it touches, then written all or nothing
//! (or, with `partial`, as many hosts as the pools allow, the rest named).
//!
//! Finding the hosts' objects takes point reads, as for one host ([`Store::find_node`]): the
//! candidate keys of every host come from the service definitions and the sync record's
//! datacenters, read once for the group; without those (the Python layout), one read of the
//! pools serves the whole group.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{GetOptions, Txn, TxnOp};

use crate::error::Error;
use crate::model::{ObjectKey, PoolKey, SyncRecord};
use crate::names::{NodeName, Service};
use crate::rules::{admit, below_threshold, BelowThreshold, HostVerb, PoolMembers, Refusal};
use crate::select::{ApplyError, Atomicity, Scope};
use crate::selection::{Applied, Change, Selected, Selection};
use crate::store::Store;
use crate::writer::Writer;

/// One host of a group: what it has and what the verb would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The host, by the name it is known by in etcd.
    pub host: NodeName,
    /// Its objects as read (of the one service, if given).
    pub objects: Vec<Selected>,
    /// What the verb changes.
    pub changes: Vec<Change>,
    /// Objects the verb leaves alone (`inactive` ones for pool and depool).
    pub skipped: Vec<ObjectKey>,
}

/// A host verb planned for a group; see the module docs. Plain data: print it (a dry run),
/// or give it to [`Writer::apply_hosts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// The verb.
    pub verb: HostVerb,
    /// Only this service's pools, if given.
    pub service: Option<Service>,
    /// Hosts found in pools, in the order given.
    pub hosts: Vec<HostPlan>,
    /// Hosts in no pool (of the service): conftool does not manage them.
    pub not_found: Vec<NodeName>,
    /// The pools the group's changes lower, as read when planning.
    pub pools: BTreeMap<PoolKey, PoolMembers>,
    /// Pools the whole group would leave below their limits (empty: it fits).
    pub below: Vec<BelowThreshold>,
    /// With `partial`: hosts held back, each with the pools it would cross.
    pub held_back: Vec<(NodeName, Vec<BelowThreshold>)>,
    /// Whether hosts that do not fit are held back (instead of refusing the group).
    pub partial: bool,
    /// Whether `inactive` objects are included (pool).
    pub include_inactive: bool,
}

impl GroupPlan {
    /// The hosts that would be written: all (when the group fits), or those admitted.
    pub fn admitted(&self) -> Vec<&HostPlan> {
        let held: BTreeSet<&NodeName> = self.held_back.iter().map(|(h, _)| h).collect();
        self.hosts
            .iter()
            .filter(|h| !held.contains(&h.host))
            .collect()
    }

    /// The changes that would be written.
    pub fn changes(&self) -> Vec<Change> {
        if !self.partial && !self.below.is_empty() {
            return Vec::new();
        }
        self.admitted()
            .into_iter()
            .flat_map(|h| h.changes.iter().cloned())
            .collect()
    }

    /// Whether the plan is refused as a whole (all or nothing, and it does not fit).
    pub fn refused(&self) -> bool {
        !self.partial && !self.below.is_empty()
    }
}

impl Store {
    /// The objects of each host (each given by the names it may be known by, the first
    /// found wins), of `service` only if given; `None` for hosts in no pool.
    pub async fn find_nodes(
        &self,
        hosts: &[Vec<NodeName>],
        service: Option<&Service>,
    ) -> Result<Vec<Option<(NodeName, Selection)>>, Error> {
        let ks = self.keyspace().clone();
        let head = Txn::new().and_then(vec![
            TxnOp::get(
                ks.services_prefix().as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
            TxnOp::get(ks.sync_meta_key(), None),
        ]);
        let (_, mut head) = self.txn_gets(head).await?;
        let meta = head.pop().unwrap_or_default();
        let services = head.pop().unwrap_or_default();
        let record: Option<SyncRecord> = meta
            .first()
            .and_then(|kv| serde_json::from_slice(&kv.value).ok());
        let mut pools = Vec::new();
        if let Some(record) = &record {
            for (cluster, s) in services
                .iter()
                .filter_map(|kv| ks.parse_service_key(&kv.key))
            {
                if service.is_some_and(|want| *want != s) {
                    continue;
                }
                for dc in &record.datacenters {
                    pools.push(PoolKey {
                        dc: dc.clone(),
                        cluster: cluster.clone(),
                        service: s.clone(),
                    });
                }
            }
        }
        let mut keys = BTreeSet::new();
        for names in hosts {
            for n in names {
                for p in &pools {
                    keys.insert(ObjectKey {
                        pool: p.clone(),
                        node: n.clone(),
                    });
                }
            }
        }
        let mut found = self.read_objects(&keys).await?;
        let missing = hosts.iter().any(|names| {
            !names
                .iter()
                .any(|n| found.objects.iter().any(|o| &o.key.node == n))
        });
        if pools.is_empty() || missing {
            // No sync record, services without a definition (the Python layout), or a host
            // not found by point reads: one read of the pools for the whole group, so the
            // answer is always the same as a selection's.
            let all = self.read_prefix(&ks.pools_prefix()).await?;
            let wanted: BTreeSet<&NodeName> = hosts.iter().flatten().collect();
            let snap = crate::write::Snapshot {
                revision: all.revision,
                kvs: all
                    .kvs
                    .into_iter()
                    .filter(|kv| {
                        ks.parse_object_key(&kv.key).is_some_and(|k| {
                            wanted.contains(&k.node) && service.is_none_or(|s| &k.pool.service == s)
                        })
                    })
                    .collect(),
            };
            let sel = crate::selector::Selector::any();
            found = Selection::from_snapshot(&ks, &sel, &snap);
        }
        let mut out = Vec::with_capacity(hosts.len());
        for names in hosts {
            let hit = names.iter().find_map(|n| {
                let objects: Vec<Selected> = found
                    .objects
                    .iter()
                    .filter(|o| &o.key.node == n)
                    .cloned()
                    .collect();
                (!objects.is_empty()).then(|| {
                    (
                        n.clone(),
                        Selection {
                            revision: found.revision,
                            objects,
                            malformed: Vec::new(),
                            unreadable: Vec::new(),
                        },
                    )
                })
            });
            out.push(hit);
        }
        Ok(out)
    }
}

impl Writer<'_> {
    /// Plan `verb` for a group of hosts (each given by the names it may be known by): every
    /// host's objects, what the verb changes, judged once against every pool the group
    /// lowers. Nothing is written.
    pub async fn plan_hosts(
        &self,
        verb: HostVerb,
        hosts: &[Vec<NodeName>],
        service: Option<&Service>,
        partial: bool,
    ) -> Result<GroupPlan, Error> {
        let include_inactive = self.overrides().include_inactive;
        let found = self.store.find_nodes(hosts, service).await?;
        let mut plan = GroupPlan {
            verb,
            service: service.cloned(),
            hosts: Vec::new(),
            not_found: Vec::new(),
            pools: BTreeMap::new(),
            below: Vec::new(),
            held_back: Vec::new(),
            partial,
            include_inactive,
        };
        let mut seen = BTreeSet::new();
        for (names, hit) in hosts.iter().zip(found) {
            let Some((host, selection)) = hit else {
                if let Some(first) = names.first() {
                    plan.not_found.push(first.clone());
                }
                continue;
            };
            if !seen.insert(host.clone()) {
                continue; // named twice
            }
            let edit = |o: &Selected| verb.edit(&o.state, include_inactive);
            plan.hosts.push(HostPlan {
                skipped: selection
                    .objects
                    .iter()
                    .filter(|o| edit(o).is_none())
                    .map(|o| o.key.clone())
                    .collect(),
                changes: selection.changes(edit),
                objects: selection.objects,
                host,
            });
        }
        if self.overrides().allow_below_threshold {
            return Ok(plan);
        }
        let all: Vec<Change> = plan.hosts.iter().flat_map(|h| h.changes.clone()).collect();
        let lowered: BTreeSet<PoolKey> = all
            .iter()
            .filter(|c| crate::rules::lowers_serving(c))
            .map(|c| c.key.pool.clone())
            .collect();
        if lowered.is_empty() {
            return Ok(plan);
        }
        plan.pools = self.store.pool_members(&lowered).await?;
        plan.below = below_threshold(&plan.pools, &all);
        if partial {
            let per_host: Vec<Vec<Change>> = plan.hosts.iter().map(|h| h.changes.clone()).collect();
            let (_, held) = admit(&plan.pools, &per_host);
            plan.held_back = held
                .into_iter()
                .map(|(i, why)| (plan.hosts[i].host.clone(), why))
                .collect();
        }
        Ok(plan)
    }

    /// Write a group plan: its changes (all, or the admitted hosts'), judged again and
    /// written atomically with that judgement (one transaction when they fit, else a chain,
    /// see the crate's `guarded` module); recorded in the open operation, if any. A group refused as a
    /// whole is [`Refusal::BelowThreshold`], nothing written. With `partial`, a race that
    /// makes an admitted host no longer fit re-plans the group.
    pub async fn apply_hosts(&mut self, plan: &GroupPlan) -> Result<Vec<Applied>, ApplyError> {
        let fail = |error| ApplyError {
            applied: Vec::new(),
            error,
        };
        if plan.refused() {
            return Err(fail(Refusal::BelowThreshold(plan.below.clone()).into()));
        }
        let mut plan = plan.clone();
        for _ in 0..crate::rounds::MAX_ROUNDS {
            let keys: BTreeSet<ObjectKey> = plan
                .admitted()
                .iter()
                .flat_map(|h| h.objects.iter().map(|o| o.key.clone()))
                .collect();
            let changes = plan.changes();
            if changes.is_empty() {
                return Ok(Vec::new());
            }
            let (verb, include) = (plan.verb, plan.include_inactive);
            let edit = move |o: &Selected| verb.edit(&o.state, include);
            let fits = changes.len() + plan.pools.len() < self.store.limits().max_txn_ops;
            let atomicity = if fits {
                Atomicity::All
            } else {
                Atomicity::Batched
            };
            // The plan's read of the pools judges the first round (and guards it).
            let judged = (!plan.pools.is_empty()).then_some(&plan.pools);
            match self
                .apply_scoped(Scope::Keys(&keys), changes, &edit, atomicity, judged)
                .await
            {
                Err(e) if plan.partial && e.applied.is_empty() && is_refusal(&e.error) => {
                    let hosts: Vec<Vec<NodeName>> =
                        plan.hosts.iter().map(|h| vec![h.host.clone()]).collect();
                    let service = plan.service.clone();
                    plan = self
                        .plan_hosts(plan.verb, &hosts, service.as_ref(), true)
                        .await
                        .map_err(fail)?;
                }
                other => return other,
            }
        }
        Err(fail(Error::Conflict(crate::Contention::Group)))
    }
}

/// Whether an error is a threshold refusal.
fn is_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::Model(conftool_model::Error::Refused(Refusal::BelowThreshold(_)))
    )
}
