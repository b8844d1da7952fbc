//! Desired state + current state -> [`Plan`]: plain data, no I/O.
//!
//! The sync semantics (a contract): new objects are created with their service's defaults;
//! objects still declared are never touched; objects no longer declared are deleted; service
//! definitions are written as declared (those not declared are deleted, unless the
//! directory does not manage them: [`ServiceDefs::Unmanaged`]). Every write is guarded by
//! compare-and-swap on what was read, and a plan with nothing to do produces no writes at
//! all.

use std::collections::{BTreeMap, BTreeSet};

use conftool_core::{
    Cluster, Datacenter, Defaults, Guard, KeyNames, Keyspace, Kv, ObjectKey, PoolState, Pooled,
    Service, ServiceDef, Snapshot, SyncRecord, Write,
};

use crate::labels::{plan_labels, CurrentLabels, LabelPlan};
use crate::load::{Desired, NodeDefs, ServiceDefs};
use crate::merge::merge;
use crate::typed_plan::{plan_typed, TypedPlan};

/// What etcd holds now, decoded from one [`Snapshot`] of `<ns>/v1/`.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The revision the snapshot was read at.
    pub revision: i64,
    /// Objects, each with its mod revision and raw value, sorted by key (each key once): a
    /// sorted list rather than a map, as the plan only walks it in order, and building a
    /// map from a million read objects held both at once.
    pub objects: Vec<(ObjectKey, (i64, Vec<u8>))>,
    /// Service definitions: mod revision and raw value.
    pub services: BTreeMap<(Cluster, Service), (i64, Vec<u8>)>,
    /// The sync record, if any.
    pub meta: Option<(i64, Vec<u8>)>,
    /// Node labels: mod revision and raw value (these keys are in [`Current::other`] too,
    /// where a schema-only directory's types may own them).
    pub labels: CurrentLabels,
    /// Every other key under `<namespace>/v1/`, relative to it (objects of
    /// schema-declared types among them).
    pub other: Vec<Kv>,
}

impl Current {
    /// Decode a snapshot of the keyspace root. Keys that are not well-formed object or
    /// service keys are not this tool's to manage and are left alone.
    pub fn from_snapshot(ks: &Keyspace, snap: Snapshot) -> Current {
        let mut building = Building::new(ks);
        building.add(snap.kvs);
        building.finish(snap.revision)
    }
}

/// A [`Current`] decoded a page of the keyspace root at a time ([`Store::read_prefix_pages`](conftool_core::Store::read_prefix_pages)):
/// each page's keys are parsed and dropped as it comes, so the whole read is never held
/// next to its decoded form.
pub struct Building<'k> {
    ks: &'k Keyspace,
    meta_key: String,
    root: String,
    cur: Current,
    objects: Vec<(ObjectKey, (i64, Vec<u8>))>,
    names: KeyNames,
}

impl<'k> Building<'k> {
    /// Nothing decoded yet.
    pub fn new(ks: &'k Keyspace) -> Self {
        Building {
            ks,
            meta_key: ks.sync_meta_key(),
            root: ks.root_prefix(),
            cur: Current::default(),
            objects: Vec::new(),
            names: KeyNames::default(),
        }
    }

    /// Decode the next keys of the read, in key order.
    pub fn add(&mut self, kvs: Vec<Kv>) {
        let ks = self.ks;
        let cur = &mut self.cur;
        for kv in kvs {
            let entry = (kv.mod_revision, kv.value);
            if let Some(k) = self.names.object_key(ks, &kv.key) {
                self.objects.push((k, entry));
            } else if let Some(k) = ks.parse_service_key(&kv.key) {
                cur.services.insert(k, entry);
            } else if kv.key == self.meta_key {
                cur.meta = Some(entry);
            } else if let Some(rel) = kv.key.strip_prefix(&self.root) {
                if let Some(at) = ks.parse_label_key(&kv.key) {
                    cur.labels.insert(at, (entry.0, entry.1.clone()));
                }
                cur.other.push(Kv {
                    key: rel.to_string(),
                    value: entry.1,
                    mod_revision: entry.0,
                });
            }
        }
    }

    /// What etcd holds, read at `revision`.
    pub fn finish(self, revision: i64) -> Current {
        let mut cur = self.cur;
        cur.revision = revision;
        // Keys are unique (each parsed from one etcd key); etcd's byte order is not theirs
        // (`a-b/` sorts before `a/`), so they are sorted, in place.
        cur.objects = self.objects;
        cur.objects.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        cur
    }
}

/// A service definition to write or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    /// Which service.
    pub key: (Cluster, Service),
    /// The new definition (`None`: delete).
    pub new: Option<ServiceDef>,
    /// The stored value and its mod revision, if any.
    pub old: Option<(i64, String)>,
}

/// An object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Which object.
    pub key: ObjectKey,
    /// Its mod revision when read (the delete's guard).
    pub mod_revision: i64,
    /// Its value when read.
    pub old: String,
}

/// A new sync record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaChange {
    /// The record to write.
    pub new: String,
    /// The stored record and its mod revision, if any (the write is guarded on it: created
    /// only if absent, replaced only if unchanged since read).
    pub old: Option<(i64, String)>,
}

impl MetaChange {
    /// The compare-and-swap guard of the write.
    pub fn guard(&self) -> Guard {
        self.old
            .as_ref()
            .map_or(Guard::Absent, |(rev, _)| Guard::Unchanged(*rev))
    }
}

/// The changes that make etcd match the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Objects to create, with their initial state (their service's defaults: 8 bytes
    /// where a [`PoolState`] takes 80, for each of up to a million objects).
    pub create: Vec<(ObjectKey, Defaults)>,
    /// Objects to delete.
    pub delete: Vec<Deletion>,
    /// Service definitions to write or delete.
    pub services: Vec<ServiceChange>,
    /// The sync record, if it changes.
    pub meta: Option<MetaChange>,
    /// How many objects exist now (for the mass-deletion guard).
    pub existing: usize,
    /// How many service definitions exist now (for the mass-deletion guard).
    pub existing_services: usize,
    /// Service definitions the plan deletes that objects declared in the directory (so
    /// present after the plan) still use, with how many such objects: the guard refuses
    /// them. A consistent directory has none; a Python-layout directory whose
    /// `services.yaml` is empty (any service name accepted) can.
    pub deleted_in_use: BTreeMap<(Cluster, Service), usize>,
    /// The revision the plan was computed against.
    pub revision: i64,
    /// Objects of schema-declared types, per type in dependency order.
    pub typed: Vec<TypedPlan>,
    /// Node labels to write or delete ([`crate::labels`]).
    pub labels: LabelPlan,
}

/// Compute the plan. Pure: reads nothing, writes nothing.
pub fn plan(desired: &Desired, current: &Current) -> Plan {
    let mut p = Plan {
        existing: current.objects.len(),
        existing_services: current.services.len(),
        revision: current.revision,
        typed: plan_typed(&desired.typed, current),
        ..Plan::default()
    };
    if desired.nodes == NodeDefs::Unmanaged {
        // Neither the pool objects nor the sync record (which lists their datacenters).
        p.existing = 0;
        return p;
    }
    // At least this many creates: an initial sync's whole fleet in one allocation, not in
    // doublings that leave up to half of it unused.
    p.create
        .reserve(desired.objects.len().saturating_sub(current.objects.len()));
    // Both maps are sorted by key: one merge pass finds what to create and to delete.
    merge(
        &desired.objects,
        current.objects.iter().map(|(k, v)| (k, v)),
        |key, defaults| p.create.push((key.clone(), *defaults)),
        |key, (rev, raw)| {
            p.delete.push(Deletion {
                key: key.clone(),
                mod_revision: *rev,
                old: String::from_utf8_lossy(raw).into_owned(),
            })
        },
    );
    if desired.service_defs == ServiceDefs::Declared {
        plan_services(desired, current, &mut p);
    }
    p.labels = plan_labels(&desired.labels, &current.labels);
    p.meta = meta_change(desired, current, !p.is_empty());
    p
}

/// The service definitions to write and to delete, and which deletions are still in use.
fn plan_services(desired: &Desired, current: &Current, p: &mut Plan) {
    for (key, def) in &desired.services {
        let old = current.services.get(key);
        let same = old.is_some_and(|(_, raw)| {
            serde_json::from_slice::<serde_json::Value>(raw).ok() == serde_json::to_value(def).ok()
        });
        if !same {
            p.services.push(ServiceChange {
                key: key.clone(),
                new: Some(def.clone()),
                old: old.map(|(rev, raw)| (*rev, String::from_utf8_lossy(raw).into_owned())),
            });
        }
    }
    let mut used: BTreeMap<(&Cluster, &Service), usize> = BTreeMap::new();
    for k in desired.objects.keys() {
        *used.entry((&k.pool.cluster, &k.pool.service)).or_default() += 1;
    }
    for (key, (rev, raw)) in &current.services {
        if !desired.services.contains_key(key) {
            if let Some(&n) = used.get(&(&key.0, &key.1)) {
                p.deleted_in_use.insert(key.clone(), n);
            }
            p.services.push(ServiceChange {
                key: key.clone(),
                new: None,
                old: Some((*rev, String::from_utf8_lossy(raw).into_owned())),
            });
        }
    }
}

/// The sync record: `{"datacenters": [...], "git_rev": "<sha>"}`: what is live, and the
/// datacenters it spans (so that a host's objects can be found without reading the whole
/// fleet). After a sync from a working tree that changed something, `git_rev` is `null`
/// (what is live no longer matches a commit); a working-tree sync that changes nothing
/// keeps the stored revision. Written only when it differs from what is stored, which
/// includes when there is none: the objects were made by another tool (the Python one, or
/// `conftool-migrate` copying its state), and the host verbs' point reads need the record,
/// so the first sync after a migration writes it (`git_rev` unknown: `null`).
fn meta_change(desired: &Desired, current: &Current, changes: bool) -> Option<MetaChange> {
    let stored: Option<serde_json::Value> = current
        .meta
        .as_ref()
        .and_then(|(_, raw)| serde_json::from_slice(raw).ok());
    let git_rev = match &desired.git_rev {
        Some(rev) => Some(rev.clone()),
        None if changes => None,
        None => stored
            .as_ref()
            .and_then(|m| m.get("git_rev"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
    };
    let datacenters: BTreeSet<&Datacenter> = desired.objects.keys().map(|k| &k.pool.dc).collect();
    let record = SyncRecord {
        datacenters: datacenters.into_iter().cloned().collect(),
        git_rev,
    };
    let want = serde_json::to_value(&record).unwrap_or_default();
    if stored.as_ref() == Some(&want) {
        return None;
    }
    Some(MetaChange {
        new: want.to_string(),
        old: current
            .meta
            .as_ref()
            .map(|(rev, raw)| (*rev, String::from_utf8_lossy(raw).into_owned())),
    })
}

impl Plan {
    /// Nothing to do (the sync record aside).
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.delete.is_empty()
            && self.services.is_empty()
            && self.labels.is_empty()
            && self
                .typed
                .iter()
                .all(|t| t.create.is_empty() && t.delete.is_empty())
    }

    /// Nothing at all to write.
    pub fn writes_nothing(&self) -> bool {
        self.is_empty() && self.meta.is_none()
    }

    /// The service definitions the plan deletes.
    pub fn service_deletions(&self) -> Vec<&(Cluster, Service)> {
        self.services
            .iter()
            .filter(|s| s.new.is_none())
            .map(|s| &s.key)
            .collect()
    }

    /// Deletions of objects that are `pooled: yes` now, or may be: a value this version
    /// cannot read (a newer writer's shape, a hand-made key) counts as serving, so the
    /// guard errs on the side of not deleting it.
    pub fn pooled_deletions(&self) -> Vec<&Deletion> {
        self.delete
            .iter()
            .filter(|d| match serde_json::from_str::<PoolState>(&d.old) {
                Ok(state) => state.pooled == Pooled::Yes,
                Err(_) => !clearly_not_pooled(&d.old),
            })
            .collect()
    }

    /// The guarded writes that carry out the plan, creates and service writes first.
    pub fn writes(&self, ks: &Keyspace) -> Vec<Write> {
        self.writes_with_before(ks)
            .into_iter()
            .map(|(w, _)| w)
            .collect()
    }

    /// [`Plan::writes`], each with the value it replaces (`None` for a create), for the
    /// audit trail.
    pub fn writes_with_before<'a>(&'a self, ks: &'a Keyspace) -> Vec<(Write, Option<&'a str>)> {
        self.write_stages(ks).concat()
    }

    /// [`Plan::writes_with_before`] in stages, each committed after the one before has
    /// landed: the creates of each schema-declared type in dependency order, then the pool
    /// objects and service definitions, then each type's deletes in reverse order; the sync
    /// record in the last stage. Without schema types, one stage. (Within a stage, batches
    /// of transactions may land in any order.)
    pub fn write_stages<'a>(&'a self, ks: &'a Keyspace) -> Vec<Vec<(Write, Option<&'a str>)>> {
        self.lazy_stages(ks)
            .into_iter()
            .map(|s| s.writes.collect())
            .collect()
    }

    /// [`Plan::write_stages`], each stage's writes made as they are taken: a sync commits
    /// them a slice at a time, so that a million writes are never all in memory at once.
    pub fn lazy_stages<'a>(&'a self, ks: &'a Keyspace) -> Vec<Stage<'a>> {
        let mut stages: Vec<Stage<'a>> = Vec::new();
        for t in &self.typed {
            stages.push(Stage::new(t.create.len(), t.create_writes(ks)));
        }
        let services = self.services.iter().map(move |s| {
            let key = ks.service_key(&s.key.0, &s.key.1);
            let guard = s
                .old
                .as_ref()
                .map_or(Guard::Absent, |(rev, _)| Guard::Unchanged(*rev));
            let write = match &s.new {
                Some(def) => Write::Put {
                    key,
                    value: serde_json::to_string(def).unwrap_or_default(),
                    guard,
                },
                None => Write::Delete { key, guard },
            };
            (write, s.old.as_ref().map(|(_, v)| v.as_str()))
        });
        let mut states = StateTexts::default();
        let creates = self.create.iter().map(move |(key, defaults)| {
            let i = states.index(defaults);
            let write = Write::Put {
                key: ks.object_key(key),
                value: states.text(i).to_string(),
                guard: Guard::Absent,
            };
            (write, None)
        });
        let deletes = self.delete.iter().map(move |d| {
            let write = Write::Delete {
                key: ks.object_key(&d.key),
                guard: Guard::Unchanged(d.mod_revision),
            };
            (write, Some(d.old.as_str()))
        });
        let pools = self.services.len() + self.create.len() + self.delete.len();
        stages.push(Stage::new(
            pools + self.labels.changes.len(),
            services
                .chain(creates)
                .chain(deletes)
                .chain(self.labels.writes(ks)),
        ));
        for t in self.typed.iter().rev() {
            stages.push(Stage::new(t.delete.len(), t.delete_writes(ks)));
        }
        stages.retain(|s| s.len > 0);
        if let Some(meta) = &self.meta {
            let write = Write::Put {
                key: ks.sync_meta_key(),
                value: meta.new.clone(),
                guard: meta.guard(),
            };
            let record = std::iter::once((write, meta.old.as_ref().map(|(_, v)| v.as_str())));
            match stages.pop() {
                Some(last) => stages.push(Stage::new(last.len + 1, last.writes.chain(record))),
                None => stages.push(Stage::new(1, record)),
            }
        }
        stages
    }
}

/// The values of created objects: the JSON text of each of the few distinct default states
/// a plan creates objects with, made once each rather than once an object.
#[derive(Debug, Default)]
pub(crate) struct StateTexts(Vec<(Defaults, String)>);

impl StateTexts {
    /// Which text is `defaults`' (made the first time it is asked for).
    pub(crate) fn index(&mut self, defaults: &Defaults) -> usize {
        match self.0.iter().position(|(d, _)| d == defaults) {
            Some(i) => i,
            None => {
                self.0.push((*defaults, defaults.state().to_json()));
                self.0.len() - 1
            }
        }
    }

    /// The `i`th text (`""` for an index [`StateTexts::index`] did not give).
    pub(crate) fn text(&self, i: usize) -> &str {
        self.0.get(i).map_or("", |(_, t)| t.as_str())
    }
}

/// One stage of a plan's writes ([`Plan::lazy_stages`]): how many, and the writes, each
/// with the value it replaces (`None` for a create), made one at a time.
pub struct Stage<'a> {
    /// How many writes the stage holds.
    pub len: usize,
    /// The writes, in order.
    pub writes: Box<dyn Iterator<Item = (Write, Option<&'a str>)> + 'a>,
}

impl<'a> Stage<'a> {
    fn new(len: usize, writes: impl Iterator<Item = (Write, Option<&'a str>)> + 'a) -> Self {
        Stage {
            len,
            writes: Box::new(writes),
        }
    }
}

impl std::fmt::Debug for Stage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage").field("len", &self.len).finish()
    }
}

/// Whether a value that is not a valid [`PoolState`] still plainly says "not serving".
fn clearly_not_pooled(raw: &str) -> bool {
    let value: serde_json::Value = match serde_json::from_str(raw) {
        Ok(v) => v,
        Err(_) => return false,
    };
    match value.get("pooled") {
        Some(serde_json::Value::String(s)) => s.parse::<Pooled>().is_ok_and(|p| p != Pooled::Yes),
        Some(serde_json::Value::Bool(b)) => !b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::{Defaults, Kv};

    fn key(dc: &str, node: &str) -> ObjectKey {
        ObjectKey::new(
            dc.parse().unwrap(),
            "c".parse().unwrap(),
            "s".parse().unwrap(),
            node.parse().unwrap(),
        )
    }

    #[test]
    fn each_default_state_is_one_text_made_once() {
        let serving = Defaults {
            pooled: Pooled::Yes,
            weight: conftool_core::Weight(10),
        };
        let mut states = StateTexts::default();
        let (a, b) = (states.index(&Defaults::LEGACY), states.index(&serving));
        assert_ne!(a, b);
        assert_eq!(
            (states.index(&Defaults::LEGACY), states.index(&serving)),
            (a, b)
        );
        assert_eq!(states.0.len(), 2);
        assert_eq!(states.text(a), r#"{"pooled":"inactive","weight":0}"#);
        assert_eq!(states.text(b), r#"{"pooled":"yes","weight":10}"#);
        assert_eq!(states.text(2), "");
    }

    #[test]
    fn creates_and_deletes_exactly_the_difference() {
        let ks = Keyspace::default();
        let desired = Desired {
            objects: ["a1", "b2", "c3", "e5"]
                .into_iter()
                .map(|n| (key("eqiad", n), Defaults::LEGACY))
                .collect(),
            ..Desired::default()
        };
        let snap = Snapshot {
            revision: 7,
            kvs: ["a0", "b2", "d4", "e5", "f6"]
                .into_iter()
                .enumerate()
                .map(|(i, n)| Kv {
                    key: ks.object_key(&key("eqiad", n)),
                    value: br#"{"pooled":"no","weight":3}"#.to_vec(),
                    mod_revision: i as i64 + 2,
                })
                .collect(),
        };
        let p = plan(&desired, &Current::from_snapshot(&ks, snap));
        let created: Vec<String> = p.create.iter().map(|(k, _)| k.node.to_string()).collect();
        let deleted: Vec<(String, i64)> = p
            .delete
            .iter()
            .map(|d| (d.key.node.to_string(), d.mod_revision))
            .collect();
        assert_eq!(created, ["a1", "c3"]);
        assert_eq!(
            deleted,
            [("a0".into(), 2), ("d4".into(), 4), ("f6".into(), 6)]
        );
        assert_eq!((p.existing, p.revision), (5, 7));
        assert!(p.create.iter().all(|(_, s)| s.pooled == Pooled::Inactive));
    }

    /// etcd lists keys in byte order, where `a-b/` comes before `a/` ('-' < '/'), while
    /// names compare as names (`a` before `a-b`): the objects read are put in the names'
    /// order, so that nothing stored and declared is taken for created and deleted.
    #[test]
    fn keys_in_etcds_order_are_matched_in_the_names_order() {
        let ks = Keyspace::default();
        let keys = [
            key("a-b", "n1"),
            key("a", "n1"),
            key("a", "n1-x"),
            key("a", "n1.y"),
        ];
        let desired = Desired {
            objects: keys.iter().map(|k| (k.clone(), Defaults::LEGACY)).collect(),
            ..Desired::default()
        };
        let mut kvs: Vec<Kv> = keys
            .iter()
            .map(|k| Kv {
                key: ks.object_key(k),
                value: br#"{"pooled":"no","weight":3}"#.to_vec(),
                mod_revision: 2,
            })
            .collect();
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            kvs[0].key,
            ks.object_key(&keys[0]),
            "etcd's order: a-b/ first"
        );
        let p = plan(
            &desired,
            &Current::from_snapshot(&ks, Snapshot { revision: 3, kvs }),
        );
        assert!(p.create.is_empty() && p.delete.is_empty(), "{p:?}");
    }

    /// etcd holding service definitions c/s (used by the directory's objects) and c/old;
    /// the directory declares objects of c/s only.
    fn with_services(service_defs: ServiceDefs, declared: &[&str]) -> Plan {
        let ks = Keyspace::default();
        let def = r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#;
        let svc = |s: &str| Kv {
            key: ks.service_key(&"c".parse().unwrap(), &s.parse().unwrap()),
            value: def.as_bytes().to_vec(),
            mod_revision: 2,
        };
        let snap = Snapshot {
            revision: 7,
            kvs: vec![svc("s"), svc("old")],
        };
        let parsed: ServiceDef = serde_json::from_str(def).unwrap();
        let desired = Desired {
            objects: ["n1", "n2"]
                .into_iter()
                .map(|n| (key("eqiad", n), Defaults::LEGACY))
                .collect(),
            services: declared
                .iter()
                .map(|s| (("c".parse().unwrap(), s.parse().unwrap()), parsed.clone()))
                .collect(),
            service_defs,
            ..Desired::default()
        };
        plan(&desired, &Current::from_snapshot(&ks, snap))
    }

    #[test]
    fn service_definitions_are_deleted_only_when_declared_and_in_use_is_told() {
        let names = |p: &Plan| -> Vec<String> {
            p.service_deletions()
                .iter()
                .map(|(c, s)| format!("{c}/{s}"))
                .collect()
        };
        // Declared: c/old is not in services.yaml, so it goes; c/s stays as it is.
        let p = with_services(ServiceDefs::Declared, &["s"]);
        assert_eq!(names(&p), ["c/old"]);
        assert!(p.deleted_in_use.is_empty());
        assert_eq!(p.existing_services, 2);
        // Declared but empty (a Python-layout services.yaml of `{}`): both would go, and
        // c/s is still used by the two objects.
        let p = with_services(ServiceDefs::Declared, &[]);
        assert_eq!(names(&p), ["c/old", "c/s"]);
        let in_use: Vec<(String, usize)> = p
            .deleted_in_use
            .iter()
            .map(|((c, s), n)| (format!("{c}/{s}"), *n))
            .collect();
        assert_eq!(in_use, [("c/s".to_string(), 2)]);
        // Unmanaged (no services.yaml): nothing written or deleted.
        let p = with_services(ServiceDefs::Unmanaged, &[]);
        assert!(p.services.is_empty() && p.deleted_in_use.is_empty());
    }

    const META: &str = "/v1/meta/sync";

    /// A snapshot of `kvs` (key, value, mod revision) at revision 10.
    fn snap(kvs: &[(&str, &str, i64)]) -> Current {
        let snap = Snapshot {
            revision: 10,
            kvs: kvs
                .iter()
                .map(|(k, v, r)| Kv {
                    key: k.to_string(),
                    value: v.as_bytes().to_vec(),
                    mod_revision: *r,
                })
                .collect(),
        };
        Current::from_snapshot(&Keyspace::default(), snap)
    }

    fn desired(nodes: &[(&str, &str)], git_rev: Option<&str>) -> Desired {
        Desired {
            objects: nodes
                .iter()
                .map(|(dc, n)| (key(dc, n), Defaults::LEGACY))
                .collect(),
            git_rev: git_rev.map(str::to_string),
            ..Desired::default()
        }
    }

    const A1: &str = "/v1/pools/eqiad/c/s/a1";
    const OBJ: &str = r#"{"pooled":"no","weight":1}"#;

    #[test]
    fn the_snapshot_is_sorted_into_objects_services_and_the_record() {
        let cur = snap(&[
            (A1, OBJ, 3),
            ("/v1/services/c/s", "{}", 4),
            (META, "{}", 5),
            ("/v1/pools/eqiad/c/s", OBJ, 6),
            ("/v1/pools/eqiad/c/s/a1/x", OBJ, 6),
            ("/v1/other", "x", 7),
            ("/v1/meta/other", "x", 8),
        ]);
        assert_eq!(cur.revision, 10);
        assert_eq!(cur.objects.len(), 1);
        assert_eq!(
            cur.objects[0],
            (key("eqiad", "a1"), (3, OBJ.as_bytes().to_vec()))
        );
        assert_eq!(cur.services.len(), 1);
        assert_eq!(cur.meta, Some((5, b"{}".to_vec())));
    }

    #[test]
    fn the_sync_record_is_written_when_it_changes_only() {
        // A first sync from a work tree: written, created only if absent, no commit.
        let p = plan(
            &desired(&[("eqiad", "a1"), ("codfw", "b1")], None),
            &snap(&[]),
        );
        let meta = p.meta.clone().expect("a record");
        assert_eq!(
            meta.new,
            r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#
        );
        assert_eq!((meta.guard(), meta.old), (Guard::Absent, None));
        assert!(!p.writes_nothing() && !p.is_empty());

        // Synced from a commit: the commit is recorded, replacing the stored record if
        // unchanged since read.
        let stored = r#"{"datacenters":["eqiad"],"git_rev":null}"#;
        let cur = snap(&[(A1, OBJ, 3), (META, stored, 4)]);
        let p = plan(&desired(&[("eqiad", "a1")], Some("abc")), &cur);
        let meta = p.meta.clone().expect("a record");
        assert_eq!(meta.new, r#"{"datacenters":["eqiad"],"git_rev":"abc"}"#);
        assert_eq!(meta.old, Some((4, stored.to_string())));
        assert_eq!(meta.guard(), Guard::Unchanged(4));
        assert!(p.is_empty(), "only the record changes");
        assert!(!p.writes_nothing());

        // Nothing to do from a work tree: the recorded commit stands, nothing is written.
        let at_abc = r#"{"datacenters":["eqiad"],"git_rev":"abc"}"#;
        let cur = snap(&[(A1, OBJ, 3), (META, at_abc, 4)]);
        let p = plan(&desired(&[("eqiad", "a1")], None), &cur);
        assert_eq!(p.meta, None);
        assert!(p.writes_nothing());
        // The same commit again: nothing either.
        assert_eq!(
            plan(&desired(&[("eqiad", "a1")], Some("abc")), &cur).meta,
            None
        );

        // A work-tree sync that changes something: what is live matches no commit.
        let p = plan(&desired(&[("eqiad", "a1"), ("eqiad", "a2")], None), &cur);
        assert_eq!(
            p.meta.expect("a record").new,
            r#"{"datacenters":["eqiad"],"git_rev":null}"#
        );

        // Nothing to do and nothing recorded (objects another tool made, e.g. copied by
        // conftool-migrate): the record is written, and only it; then nothing is.
        let cur = snap(&[(A1, OBJ, 3)]);
        let p = plan(&desired(&[("eqiad", "a1")], None), &cur);
        assert!(p.is_empty(), "no object changes");
        let meta = p.meta.expect("a record");
        assert_eq!(meta.new, r#"{"datacenters":["eqiad"],"git_rev":null}"#);
        assert_eq!(meta.guard(), Guard::Absent);
        let cur = snap(&[(A1, OBJ, 3), (META, &meta.new, 4)]);
        assert!(plan(&desired(&[("eqiad", "a1")], None), &cur).writes_nothing());

        // A record that lacks a datacenter is rewritten, keeping its commit.
        let old = r#"{"datacenters":[],"git_rev":"abc","extra":1}"#;
        let cur = snap(&[(A1, OBJ, 3), (META, old, 4)]);
        let p = plan(&desired(&[("eqiad", "a1")], None), &cur);
        assert_eq!(
            p.meta.expect("a record").new,
            r#"{"datacenters":["eqiad"],"git_rev":"abc"}"#
        );
    }

    fn services(defs: &[(&str, &str)]) -> Desired {
        Desired {
            services: defs
                .iter()
                .map(|(s, json)| {
                    (
                        ("c".parse().unwrap(), s.parse().unwrap()),
                        serde_json::from_str(json).unwrap(),
                    )
                })
                .collect(),
            service_defs: ServiceDefs::Declared,
            ..Desired::default()
        }
    }

    #[test]
    fn service_definitions_are_written_when_they_differ_only() {
        let def = r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#;
        let spaced = r#"{ "default_values": {"weight": 1, "pooled": "no"}, "port": 80 }"#;
        let other = r#"{"port":81,"default_values":{"pooled":"no","weight":1}}"#;
        // The same value, however it is spelled, is not rewritten.
        let cur = snap(&[
            ("/v1/services/c/same", spaced, 3),
            ("/v1/services/c/old", def, 4),
        ]);
        let p = plan(
            &services(&[("same", def), ("changed", other), ("new", def)]),
            &cur,
        );
        let keys: Vec<(String, bool, Option<i64>)> = p
            .services
            .iter()
            .map(|s| {
                (
                    s.key.1.to_string(),
                    s.new.is_some(),
                    s.old.as_ref().map(|o| o.0),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("changed".to_string(), true, None),
                ("new".to_string(), true, None),
                ("old".to_string(), false, Some(4)),
            ]
        );
        let cur = snap(&[("/v1/services/c/changed", def, 5)]);
        let p = plan(&services(&[("changed", other)]), &cur);
        assert_eq!(p.services[0].old, Some((5, def.to_string())));
        assert_eq!(p.existing_services, 1);
    }

    #[test]
    fn the_writes_come_in_order_with_their_guards_and_before_values() {
        let ks = Keyspace::default();
        let def = r#"{"port":80,"default_values":{"pooled":"no","weight":1}}"#;
        let other = r#"{"port":81,"default_values":{"pooled":"no","weight":1}}"#;
        let old_rec = r#"{"datacenters":["eqiad"],"git_rev":null}"#;
        let cur = snap(&[
            ("/v1/pools/eqiad/c/s/gone", OBJ, 3),
            ("/v1/services/c/s", def, 4),
            (META, old_rec, 5),
        ]);
        let mut d = services(&[("s", other)]);
        d.objects = [(key("eqiad", "new"), Defaults::LEGACY)]
            .into_iter()
            .collect();
        d.git_rev = Some("abc".into());
        let p = plan(&d, &cur);
        let got: Vec<(String, Option<String>, Guard, Option<&str>)> = p
            .writes_with_before(&ks)
            .into_iter()
            .map(|(w, before)| {
                let value = match &w {
                    Write::Put { value, .. } => Some(value.clone()),
                    Write::Delete { .. } => None,
                };
                let guard = match &w {
                    Write::Put { guard, .. } | Write::Delete { guard, .. } => *guard,
                };
                (w.key().to_string(), value, guard, before)
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/v1/services/c/s".to_string(),
                    Some(other.to_string()),
                    Guard::Unchanged(4),
                    Some(def)
                ),
                (
                    "/v1/pools/eqiad/c/s/new".to_string(),
                    Some(r#"{"pooled":"inactive","weight":0}"#.to_string()),
                    Guard::Absent,
                    None
                ),
                (
                    "/v1/pools/eqiad/c/s/gone".to_string(),
                    None,
                    Guard::Unchanged(3),
                    Some(OBJ)
                ),
                (
                    META.to_string(),
                    Some(r#"{"datacenters":["eqiad"],"git_rev":"abc"}"#.to_string()),
                    Guard::Unchanged(5),
                    Some(old_rec)
                ),
            ]
        );
        let plain: Vec<Write> = p
            .writes_with_before(&ks)
            .into_iter()
            .map(|(w, _)| w)
            .collect();
        assert_eq!(p.writes(&ks), plain);
        assert_eq!(Plan::default().writes(&ks), []);
        assert!(Plan::default().is_empty() && Plan::default().writes_nothing());
    }
}
