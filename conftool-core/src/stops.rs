//! The stop switch ([`crate::coordination`]): `<namespace>/v1/stop` stops every automated
//! run, `<namespace>/v1/stop/<cluster>` the runs on that cluster's hosts. Runs check it
//! before they start and after every step; any content at the key stops, also content this
//! version cannot read. Setting and clearing it are audited writes.

use std::time::SystemTime;

use crate::audit::{rfc3339, AuditEntry};
use crate::coordination::{Stop, StopRecord, StopScope};
use crate::error::{Contention, Error};
use crate::keys::Keyspace;
use crate::names::Cluster;
use crate::rounds::{after, finish, rounds, RoundChange, Rounds, Run};
use crate::store::{CommitReport, Store};
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

    /// Put (or delete) one key outside the pools, compare-and-swap on what was read, by the
    /// round loop of every write (`crate::rounds`), audited as one write.
    async fn write_one(&mut self, key: &str, value: Option<String>) -> Result<(), Error> {
        let store = self.store;
        let mut w = KeyRounds { store, key, value };
        self.audit.begin();
        let mut run = Run::new();
        let result = match w.replan().await {
            Ok(changes) => {
                rounds(&mut w, store.keyspace(), &mut self.audit, changes, &mut run).await
            }
            Err(e) => Err(e),
        };
        finish(&mut self.audit, result, run)
            .map(drop)
            .map_err(|s| s.error)
    }
}

/// One key's new value (`None`: deleted), guarded by what was read.
struct KeyChange {
    write: Write,
    before: Option<String>,
}

impl RoundChange for KeyChange {
    type Key = String;

    fn key(&self) -> String {
        self.write.key().to_string()
    }

    fn write(&self, _: &Keyspace) -> Write {
        self.write.clone()
    }

    fn entry(&self, _: &Keyspace, write: &Write, revision: Option<i64>) -> AuditEntry {
        AuditEntry::from_text(
            write.key().to_string(),
            self.before.as_deref(),
            after(write),
            revision,
        )
    }
}

/// A write of one key, as the round loop drives it: planned (and re-planned) by reading the
/// key, and gives up naming it.
struct KeyRounds<'a> {
    store: &'a Store,
    key: &'a str,
    value: Option<String>,
}

impl Rounds for KeyRounds<'_> {
    type Change = KeyChange;
    type Guards = ();

    async fn judge(&mut self, _: &[KeyChange]) -> Result<(), Error> {
        Ok(())
    }

    async fn commit(&mut self, _: &[KeyChange], writes: &[Write], (): ()) -> CommitReport {
        self.store.commit_partial(writes).await
    }

    async fn replan(&mut self) -> Result<Vec<KeyChange>, Error> {
        let key = self.key;
        let snap = self.store.read_prefix(key).await?;
        let now = snap.kvs.iter().find(|kv| kv.key == key);
        let guard = now.map_or(Guard::Absent, |kv| Guard::Unchanged(kv.mod_revision));
        let before = now.map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
        let write = match &self.value {
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
        Ok(vec![KeyChange { write, before }])
    }

    fn contended(&self, _: usize) -> Contention {
        Contention::Key(self.key.to_string())
    }
}
