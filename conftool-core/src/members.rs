//! Reading whole pools, for the rules that judge a change by the pool it leaves behind
//! ([`crate::rules`]): each pool's objects and its service's limits (depool threshold,
//! `min_pooled`), in one transaction of range reads (batched only past etcd's
//! operations-per-transaction limit), each pool with the revision it was read at: the guard
//! under which a write judged by it is committed.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{GetOptions, Txn, TxnOp};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::error::Error;
use crate::model::{PoolKey, PoolLimits, PoolState, ServiceDef};
use crate::names::{Cluster, NodeName, Service};
use crate::rules::{Member, PoolMembers};
use crate::store::{prefix_end, Store};
use crate::write::Kv;

impl Store {
    /// Every object of each pool, with the pool's limits (the service definition's, else the
    /// defaults) and the revision it was read at. Malformed values are left out.
    pub async fn pool_members(
        &self,
        pools: &BTreeSet<PoolKey>,
    ) -> Result<BTreeMap<PoolKey, PoolMembers>, Error> {
        let ks = self.keyspace().clone();
        // Owned keys: futures that borrow across the stream below would not be `Send`.
        let pools: Vec<PoolKey> = pools.iter().cloned().collect();
        // Two reads per pool: its objects, and its service definition.
        let per_txn = (self.limits().max_txn_ops / 2).max(1);
        let txns: Vec<(Vec<PoolKey>, Txn)> = pools
            .chunks(per_txn)
            .map(|chunk| {
                let ops: Vec<TxnOp> = chunk
                    .iter()
                    .flat_map(|p| {
                        let prefix =
                            ks.pools_prefix_for(Some(&p.dc), Some(&p.cluster), Some(&p.service));
                        let end = prefix_end(prefix.as_bytes());
                        [
                            TxnOp::get(prefix, Some(GetOptions::new().with_range(end))),
                            TxnOp::get(ks.service_key(&p.cluster, &p.service), None),
                        ]
                    })
                    .collect();
                (chunk.to_vec(), Txn::new().and_then(ops))
            })
            .collect();
        let results: Vec<(Vec<PoolKey>, i64, Vec<Vec<Kv>>)> = stream::iter(txns)
            .map(|(chunk, txn)| async move {
                let (revision, gets) = self.txn_gets(txn).await?;
                Ok::<_, Error>((chunk, revision, gets))
            })
            .buffer_unordered(self.limits().in_flight.max(1))
            .try_collect()
            .await?;
        let mut out = BTreeMap::new();
        for (chunk, revision, gets) in results {
            let mut gets = gets.into_iter();
            for pool in chunk {
                let (objects, service) = (gets.next(), gets.next());
                let mut members = PoolMembers {
                    revision,
                    limits: limits_of(service.as_deref().and_then(<[Kv]>::first)),
                    ..PoolMembers::default()
                };
                // Every key read is under this pool's prefix: only its node name is left to
                // read (a path below a node is not an object).
                let prefix =
                    ks.pools_prefix_for(Some(&pool.dc), Some(&pool.cluster), Some(&pool.service));
                for kv in objects.into_iter().flatten() {
                    let node = kv
                        .key
                        .strip_prefix(prefix.as_str())
                        .filter(|n| !n.contains('/'))
                        .and_then(|n| n.parse::<NodeName>().ok());
                    let (Some(node), Ok(state)) = (node, PoolState::from_json(&kv.key, &kv.value))
                    else {
                        continue;
                    };
                    members.members.insert(node, Member::from(&state));
                }
                out.insert(pool, members);
            }
        }
        Ok(out)
    }

    /// The limits of each pool's service (its definition's, else the defaults): one
    /// transaction of point reads (batched only past etcd's operations-per-transaction limit).
    pub(crate) async fn pool_limits(
        &self,
        pools: &BTreeSet<PoolKey>,
    ) -> Result<BTreeMap<PoolKey, PoolLimits>, Error> {
        let ks = self.keyspace().clone();
        let services: Vec<(Cluster, Service)> = pools
            .iter()
            .map(|p| (p.cluster.clone(), p.service.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let per_txn = self.limits().max_txn_ops.max(1);
        let mut defs = BTreeMap::new();
        for chunk in services.chunks(per_txn) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|(c, s)| TxnOp::get(ks.service_key(c, s), None))
                .collect();
            let (_, gets) = self.txn_gets(Txn::new().and_then(ops)).await?;
            for (service, kvs) in chunk.iter().zip(gets) {
                defs.insert(service.clone(), limits_of(kvs.first()));
            }
        }
        Ok(pools
            .iter()
            .map(|p| {
                let key = (p.cluster.clone(), p.service.clone());
                (p.clone(), defs.get(&key).copied().unwrap_or_default())
            })
            .collect())
    }
}

/// The limits a service definition as read sets: its own, or the defaults when it is
/// absent or unreadable.
fn limits_of(def: Option<&Kv>) -> PoolLimits {
    def.and_then(|kv| serde_json::from_slice::<ServiceDef>(&kv.value).ok())
        .map(|d| d.limits())
        .unwrap_or_default()
}
