//! Reading and writing the coordinator's keys ([`crate::keys`]) through the conftool
//! library: three small range reads per run (the stop switches, the node's own keys, its
//! group's), and writes through the one audited, compare-and-swap write path
//! ([`Writer::planned`]) that every conftool tool uses.

use std::collections::BTreeMap;

use conftool_core::{Guard, Kv, Write};
use conftool_core::{NodeName, Store, Writer};

use crate::constraints::HeldBack;
use crate::error::Error;
use crate::keys::{RebootKey, RebootKeys, StopScope};
use crate::names::GroupName;
use crate::records::{self, Mark, Reboot, Report};

/// A key as read: its value and the revision to guard a write of it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<T> {
    /// The record.
    pub value: T,
    /// The key's mod revision.
    pub revision: i64,
}

/// What a run reads of etcd about its node and its group.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The coordinator's stop switches that apply to this node (every reboot, its group,
    /// itself).
    pub stops: Vec<HeldBack>,
    /// The node's trigger key's mod revision, if it is set.
    pub trigger_key: Option<i64>,
    /// The node needs a person.
    pub mark: Option<Read<Mark>>,
    /// Every member's last report, this node's included.
    pub reports: BTreeMap<NodeName, Report>,
    /// This node's last report's revision.
    pub own_report: Option<Read<Report>>,
    /// The group's reboots in progress.
    pub reboots: BTreeMap<NodeName, Read<Reboot>>,
    /// Keys of ours that did not parse, with why (skipped, and said).
    pub unreadable: Vec<(String, String)>,
}

impl View {
    /// Read what `node` of `group` needs.
    pub async fn read(
        store: &Store,
        keys: &RebootKeys,
        group: &GroupName,
        node: &NodeName,
    ) -> Result<View, Error> {
        let mut view = View::default();
        for prefix in [
            keys.stops_prefix(),
            keys.node_prefix(node),
            keys.group_prefix(group),
        ] {
            for kv in store.read_prefix(&prefix).await?.kvs {
                view.take(keys, group, node, kv);
            }
        }
        Ok(view)
    }

    fn take(&mut self, keys: &RebootKeys, group: &GroupName, node: &NodeName, kv: Kv) {
        let Some(key) = keys.parse(&kv.key) else {
            return;
        };
        let revision = kv.mod_revision;
        let result = match key {
            RebootKey::Stop(scope) => {
                let applies = match &scope {
                    StopScope::All => true,
                    StopScope::Group(g) => g == group,
                    StopScope::Node(n) => n == node,
                };
                if applies {
                    // Any content stops, also content that is not a record.
                    let record = serde_json::from_slice(&kv.value).ok();
                    self.stops.push(HeldBack::RebootStopped(scope, record));
                }
                Ok(())
            }
            RebootKey::Trigger(n) if &n == node => {
                self.trigger_key = Some(revision);
                Ok(())
            }
            RebootKey::Mark(n) if &n == node => records::parse(&kv.key, &kv.value)
                .map(|value| self.mark = Some(Read { value, revision })),
            RebootKey::Report(g, n) if &g == group => records::parse::<Report>(&kv.key, &kv.value)
                .map(|value| {
                    if &n == node {
                        self.own_report = Some(Read {
                            value: value.clone(),
                            revision,
                        });
                    }
                    self.reports.insert(n, value);
                }),
            RebootKey::Reboot(g, n) if &g == group => {
                records::parse(&kv.key, &kv.value).map(|value| {
                    self.reboots.insert(n, Read { value, revision });
                })
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.unreadable.push((kv.key, e.to_string()));
        }
    }
}

/// Write (`Some`) or delete (`None`) one of our keys, if `guard` holds; audited as one run
/// of planned writes. The revision it landed at (`None`: the key changed since it was read).
pub async fn write_key(
    writer: &mut Writer<'_>,
    key: &str,
    value: Option<String>,
    guard: Guard,
    before: Option<&str>,
) -> Result<Option<i64>, Error> {
    let write = match value {
        Some(value) => Write::Put {
            key: key.to_string(),
            value,
            guard,
        },
        None => Write::Delete {
            key: key.to_string(),
            guard,
        },
    };
    let mut run = writer.planned();
    let report = run.commit(&[(write, before)]).await;
    let error = report
        .error
        .as_ref()
        .map(|e| conftool_core::audit::error_chain(e));
    run.finish(error.as_deref(), &[])?;
    if let Some(e) = report.error {
        return Err(e.into());
    }
    Ok(report.applied.first().map(|(_, revision)| *revision))
}

/// One key's value and revision, if it exists.
pub async fn read_key(store: &Store, key: &str) -> Result<Option<Kv>, Error> {
    Ok(store
        .read_prefix(key)
        .await?
        .kvs
        .into_iter()
        .find(|kv| kv.key == key))
}

/// Set (replacing) or clear a key that anyone may set (a stop switch, a trigger, a mark):
/// read, then written guarded by what was read, a few times if it keeps changing. Whether
/// it changed anything.
pub async fn set_key(
    writer: &mut Writer<'_>,
    key: &str,
    value: Option<String>,
) -> Result<bool, Error> {
    for _ in 0..5 {
        let now = read_key(writer.store(), key).await?;
        if now.is_none() && value.is_none() {
            return Ok(false);
        }
        let guard = now
            .as_ref()
            .map_or(Guard::Absent, |kv| Guard::Unchanged(kv.mod_revision));
        let before = now.map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
        if write_key(writer, key, value.clone(), guard, before.as_deref())
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Err(conftool_core::Error::Conflict(conftool_core::Contention::Key(key.to_string())).into())
}
