//! The stop switch ([`crate::coordination`]): `<namespace>/v1/stop` stops every automated
//! run, `<namespace>/v1/stop/<cluster>` the runs on that cluster's hosts. Runs check it
//! before they start and after every step; any content at the key stops, also content this
//! version cannot read. Setting and clearing it are audited writes.

use std::time::SystemTime;

use crate::audit::rfc3339;
use crate::coordination::{Stop, StopRecord, StopScope};
use crate::error::Error;
use crate::names::Cluster;
use crate::store::Store;
use crate::write::{Guard, Write};
use crate::writer::Writer;

impl Store {
    /// Every stop switch that is set.
    pub async fn stops(&self) -> Result<Vec<Stop>, Error> {
        let ks = self.keyspace().clone();
        let all = ks.stop_key(&StopScope::All);
        // One read: the global key and every cluster's (`<ns>/v1/stop` is a prefix of both;
        // keys like `<ns>/v1/stopx` are not stop switches and are left out).
        let snap = self.read_prefix(&all).await?;
        let mut out = Vec::new();
        for kv in snap.kvs {
            let scope = if kv.key == all {
                StopScope::All
            } else {
                match kv
                    .key
                    .strip_prefix(&format!("{all}/"))
                    .and_then(|c| c.parse::<Cluster>().ok())
                {
                    Some(c) => StopScope::Cluster(c),
                    None => continue,
                }
            };
            out.push(Stop {
                scope,
                record: serde_json::from_slice(&kv.value).ok(),
            });
        }
        Ok(out)
    }

    /// The stop switch that stops a run on `clusters` (the global one first), if any is set.
    pub async fn stopped(&self, clusters: &[Cluster]) -> Result<Option<Stop>, Error> {
        let stops = self.stops().await?;
        Ok(stops
            .into_iter()
            .filter(|s| match &s.scope {
                StopScope::All => true,
                StopScope::Cluster(c) => clusters.contains(c),
            })
            .min_by_key(|s| s.scope != StopScope::All))
    }
}

impl Writer<'_> {
    /// Set a stop switch (replacing what it said), saying who and why; audited.
    pub async fn set_stop(&mut self, scope: &StopScope, reason: &str) -> Result<(), Error> {
        let key = self.store.keyspace().stop_key(scope);
        let record = StopRecord {
            by: self.audit.actor().user.clone(),
            reason: reason.to_string(),
            since: rfc3339(SystemTime::now()),
            extra: serde_json::Map::new(),
        };
        // Strings only: serializing cannot fail.
        let value = serde_json::to_string(&record).unwrap_or_default();
        self.write_one(&key, Some(value)).await
    }

    /// Clear a stop switch; whether it was set.
    pub async fn clear_stop(&mut self, scope: &StopScope) -> Result<bool, Error> {
        let key = self.store.keyspace().stop_key(scope);
        let snap = self.store.read_prefix(&key).await?;
        if !snap.kvs.iter().any(|kv| kv.key == key) {
            return Ok(false);
        }
        self.write_one(&key, None).await.map(|()| true)
    }

    /// Put (or delete) one key outside the pools, compare-and-swap on what was read, audited
    /// as one run of planned writes.
    async fn write_one(&mut self, key: &str, value: Option<String>) -> Result<(), Error> {
        for _ in 0..crate::select::MAX_ROUNDS {
            let snap = self.store.read_prefix(key).await?;
            let now = snap.kvs.iter().find(|kv| kv.key == key);
            let guard = now.map_or(Guard::Absent, |kv| Guard::Unchanged(kv.mod_revision));
            let before = now.map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
            let write = match &value {
                Some(v) => Write::Put {
                    key: key.to_string(),
                    value: v.clone(),
                    guard,
                },
                None => Write::Delete {
                    key: key.to_string(),
                    guard,
                },
            };
            let mut run = self.planned();
            let report = run.commit(&[(write, before.as_deref())]).await;
            let error = report.error.as_ref().map(|e| crate::audit::error_chain(e));
            run.finish(error.as_deref(), &[])?;
            if let Some(e) = report.error {
                return Err(e);
            }
            if report.conflicted.is_empty() {
                return Ok(());
            }
        }
        Err(Error::Conflict(crate::Contention::Key(key.to_string())))
    }
}
