//! Finding one node's objects without reading the whole fleet.
//!
//! Object keys end with the node name, so no prefix holds one node's objects, and etcd 3.4
//! pays for the whole range even when a read is limited. But the candidate keys are few: one
//! per datacenter (from the sync record) and defined service (from `/v1/services/`). Both
//! are read in one small transaction, then the candidates in point reads batched into
//! transactions: a few milliseconds at any fleet size. When that finds nothing (no record
//! yet, or services that have no definition, as with the Python layout), the full read is
//! the fallback, so the answer is always the same as [`Store::select`]'s.

use etcd_client::{GetOptions, Txn, TxnOp, TxnOpResponse};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Error;
use crate::model::{ObjectKey, PoolKey, SyncRecord};
use crate::names::{NodeName, Service};
use crate::selection::{Selected, Selection};
use crate::selector::Selector;
use crate::store::Store;
use crate::write::Kv;

impl Store {
    /// The objects of the first of `names` that is in any pool (or in `service`'s pools),
    /// with the selector that selects them; `None` if none is.
    pub async fn find_node(
        &self,
        names: &[NodeName],
        service: Option<&Service>,
    ) -> Result<Option<(Selector, Selection)>, Error> {
        if let Some(found) = self.find_node_by_points(names, service).await? {
            let sel = Selector::for_node(&found.0, service)?;
            return Ok(Some((sel, found.1)));
        }
        for name in names {
            let sel = Selector::for_node(name, service)?;
            let selection = self.select(&sel).await?;
            if !selection.objects.is_empty() || !selection.malformed.is_empty() {
                return Ok(Some((sel, selection)));
            }
        }
        Ok(None)
    }

    async fn find_node_by_points(
        &self,
        names: &[NodeName],
        service: Option<&Service>,
    ) -> Result<Option<(NodeName, Selection)>, Error> {
        let ks = self.keyspace().clone();
        let services_prefix = ks.services_prefix();
        let head = Txn::new().and_then(vec![
            TxnOp::get(
                services_prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
            TxnOp::get(ks.sync_meta_key(), None),
        ]);
        let (_, mut head) = self.txn_gets(head).await?;
        let meta = head.pop().unwrap_or_default();
        let services = head.pop().unwrap_or_default();
        let record: SyncRecord = match meta.first() {
            Some(kv) => serde_json::from_slice(&kv.value).unwrap_or_default(),
            None => return Ok(None),
        };
        let pools = candidate_pools(&ks, &services, &record, service);
        if pools.is_empty() {
            return Ok(None);
        }
        let keys = candidate_keys(names, &pools);
        let found = self.read_objects(&keys).await?;
        Ok(first_found(names, found))
    }

    /// These objects, by point reads batched into transactions (absent ones are missing
    /// from the selection). Their values are read at up to a few revisions (one per
    /// transaction), each object with its own mod revision: enough for compare-and-swap.
    pub async fn read_objects(
        &self,
        keys: &std::collections::BTreeSet<ObjectKey>,
    ) -> Result<Selection, Error> {
        let ks = self.keyspace().clone();
        let keys: Vec<&ObjectKey> = keys.iter().collect();
        let txns: Vec<Txn> = keys
            .chunks(self.limits().max_txn_ops.max(1))
            .map(|chunk| {
                Txn::new().and_then(
                    chunk
                        .iter()
                        .map(|k| TxnOp::get(ks.object_key(k), None))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let results: Vec<(i64, Vec<Vec<Kv>>)> = stream::iter(txns)
            .map(|t| self.txn_gets(t))
            .buffered(self.limits().in_flight.max(1))
            .try_collect()
            .await?;
        let mut selection = Selection {
            revision: results.iter().map(|(r, _)| *r).max().unwrap_or_default(),
            ..Selection::default()
        };
        let mut names = crate::keys::KeyNames::default();
        for kv in results.into_iter().flat_map(|(_, gets)| gets).flatten() {
            let Some(key) = names.object_key(&ks, &kv.key) else {
                continue;
            };
            match crate::model::PoolState::from_json(&kv.key, &kv.value) {
                Ok(state) => selection.objects.push(Selected {
                    key,
                    state,
                    mod_revision: kv.mod_revision,
                }),
                Err(e) => selection.malformed.push((kv.key, e.to_string())),
            }
        }
        selection.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(selection)
    }

    /// Run a transaction of gets; returns its revision and each get's keys.
    pub(crate) async fn txn_gets(&self, txn: Txn) -> Result<(i64, Vec<Vec<Kv>>), Error> {
        let resp = self.run_txn(txn).await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        let gets = resp
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(g) => g
                    .kvs()
                    .iter()
                    .map(|kv| Kv {
                        key: String::from_utf8_lossy(kv.key()).into_owned(),
                        value: kv.value().to_vec(),
                        mod_revision: kv.mod_revision(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        Ok((revision, gets))
    }
}

/// The pools a node could be in: every defined service (or just `service`) in every
/// datacenter of the sync record.
fn candidate_pools(
    ks: &crate::keys::Keyspace,
    services: &[Kv],
    record: &SyncRecord,
    service: Option<&Service>,
) -> Vec<PoolKey> {
    let mut pools = Vec::new();
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
    pools
}

/// Every candidate key of every name.
fn candidate_keys(names: &[NodeName], pools: &[PoolKey]) -> std::collections::BTreeSet<ObjectKey> {
    let mut keys = std::collections::BTreeSet::new();
    for n in names {
        for p in pools {
            keys.insert(ObjectKey {
                pool: p.clone(),
                node: n.clone(),
            });
        }
    }
    keys
}

/// The objects of the first of `names` that has any.
fn first_found(names: &[NodeName], found: Selection) -> Option<(NodeName, Selection)> {
    let name = names
        .iter()
        .find(|n| found.objects.iter().any(|o| &o.key.node == *n))?;
    let objects = found
        .objects
        .iter()
        .filter(|o| &o.key.node == name)
        .cloned()
        .collect();
    Some((
        name.clone(),
        Selection {
            revision: found.revision,
            objects,
            malformed: Vec::new(),
            unreadable: Vec::new(),
        },
    ))
}
