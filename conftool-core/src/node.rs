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
use crate::write::{Kv, Snapshot};

impl Store {
    /// The objects of the first of `names` that is in any pool (or in `service`'s pools),
    /// with the selector that selects them; `None` if none is.
    pub async fn find_node(
        &self,
        names: &[NodeName],
        service: Option<&Service>,
    ) -> Result<Option<(Selector, Selection)>, Error> {
        let selector = |n: &NodeName| Selector::for_node(n, service);
        if let Some(found) = self.find_node_by_points(names, service).await? {
            let sel = selector(&found.0)?;
            return Ok(Some((sel, found.1)));
        }
        for name in names {
            let sel = selector(name)?;
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
        let pools: Vec<PoolKey> = services
            .iter()
            .filter_map(|kv| ks.parse_service_key(&kv.key))
            .filter(|(_, s)| service.is_none_or(|want| s == want))
            .flat_map(|(cluster, s)| {
                record.datacenters.iter().map(move |dc| PoolKey {
                    dc: dc.clone(),
                    cluster: cluster.clone(),
                    service: s.clone(),
                })
            })
            .collect();
        if pools.is_empty() {
            return Ok(None);
        }
        let keys: Vec<ObjectKey> = names
            .iter()
            .flat_map(|n| {
                pools.iter().map(move |p| ObjectKey {
                    pool: p.clone(),
                    node: n.clone(),
                })
            })
            .collect();
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
            .buffer_unordered(self.limits().in_flight.max(1))
            .try_collect()
            .await?;
        let revision = results.iter().map(|(r, _)| *r).max().unwrap_or_default();
        let found: Vec<Kv> = results
            .into_iter()
            .flat_map(|(_, gets)| gets)
            .flatten()
            .collect();
        for name in names {
            let snap = Snapshot {
                revision,
                kvs: found
                    .iter()
                    .filter(|kv| {
                        ks.parse_object_key(&kv.key)
                            .is_some_and(|k| &k.node == name)
                    })
                    .cloned()
                    .collect(),
            };
            if snap.kvs.is_empty() {
                continue;
            }
            let sel = Selector::for_node(name, service)?;
            let mut selection = Selection::from_snapshot(&ks, &sel, &snap);
            selection
                .objects
                .sort_by(|a: &Selected, b: &Selected| a.key.cmp(&b.key));
            return Ok(Some((name.clone(), selection)));
        }
        Ok(None)
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
