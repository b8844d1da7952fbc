//! Files to [`Desired`] state: the pure half of loading a data directory.
//!
//! Two layouts are understood:
//! - **conftool-rs** (the contract): `services.yaml` (`cluster -> service -> {port,
//!   default_values}`) and `<dc>/pools.yaml` (`cluster -> node -> {services: [..]}`).
//! - **Python conftool**: `node/<dc>.yaml` shaped `dc: {cluster: {node: [services]}}`, with an
//!   optional `services.yaml`. Without one, any service name is accepted, new objects get
//!   that tool's defaults (`pooled: inactive`, `weight: 0`), and the service definitions in
//!   etcd are not the directory's to manage ([`ServiceDefs::Unmanaged`]): none is written,
//!   none deleted. A missing file says nothing about them; it must not delete them all.
//!
//! Node labels are read with the nodes, in both layouts: see [`crate::labels`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conftool_core::{
    Cluster, Datacenter, Defaults, LabelMap, Labels, NodeName, ObjectKey, Service, ServiceDef,
};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::caps::{Budget, Cap, Caps};
use crate::error::{shown, Error};
use crate::labels::{LabelsLoad, LabelsSeed, NodeLabels, LABELS_DIR};
use crate::layout::{classify_with, listing_of, problems, Notice};
use crate::source::Files;
use crate::typed_load::{load_typed_counted, TypedDesired};
use crate::yaml::{any, parse, plain, FieldSeed, MapSeed, NameListSeed};
use conftool_core::schema::Schema;

/// The services file name.
pub const SERVICES_FILE: &str = "services.yaml";

/// Whether a sync owns the service definitions (`/v1/services/...`) in etcd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServiceDefs {
    /// `services.yaml` is the truth: definitions are written as declared, and those it does
    /// not declare are deleted (within [`crate::Limits`]).
    #[default]
    Declared,
    /// The directory has no `services.yaml` (the Python layout may omit it): the
    /// definitions in etcd are left as they are, none written, none deleted.
    Unmanaged,
}

/// Whether a sync owns the pool objects (`/v1/pools/...`) and the sync record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeDefs {
    /// The directory declares them: created, kept and deleted as it says.
    #[default]
    Declared,
    /// The directory holds only schema-declared types (no `services.yaml`, no pools, no
    /// `node/`): the pool objects are not its to manage, as the Python tool leaves a type
    /// without a data directory alone.
    Unmanaged,
}

/// What the directory declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Service definitions, written to `/v1/services/<cluster>/<service>`.
    pub services: BTreeMap<(Cluster, Service), ServiceDef>,
    /// Whether [`Desired::services`] is the whole truth about service definitions.
    pub service_defs: ServiceDefs,
    /// Every declared object, with the state it gets when created.
    pub objects: BTreeMap<ObjectKey, Defaults>,
    /// The git commit the files came from, if any.
    pub git_rev: Option<String>,
    /// Whether [`Desired::objects`] is the truth about pool objects.
    pub nodes: NodeDefs,
    /// Objects of schema-declared types, per type in dependency order (only the types
    /// whose directory the data directory has).
    pub typed: Vec<TypedDesired>,
    /// Every node's labels (nodes without labels absent), written to
    /// `/v1/labels/<dc>/<node>` when [`Desired::nodes`] is declared.
    pub labels: LabelMap,
}

type ServicesFile = BTreeMap<Cluster, BTreeMap<Service, ServiceDef>>;

/// Parse and validate a directory's files, within the default [`Caps`].
pub fn load(files: &Files) -> Result<Desired, Error> {
    load_with(files, None)
}

/// [`load`], with the object types of a schema: the files of each declared type whose
/// directory exists are read too (the files must have been read with the types' names:
/// [`crate::read_dir_with`]).
pub fn load_with(files: &Files, schema: Option<&Schema>) -> Result<Desired, Error> {
    load_capped(files, schema, &Caps::default())
}

/// [`load_with`], within `caps`: files adding up to more than [`Caps::max_bytes`] are not
/// parsed (the sources refuse them before reading; files given in memory are checked
/// here), and reading stops at the first object past [`Caps::max_objects`]
/// ([`Error::OverCap`]).
pub fn load_capped(files: &Files, schema: Option<&Schema>, caps: &Caps) -> Result<Desired, Error> {
    let mut total = 0u64;
    for (rel, text) in &files.files {
        total = total.saturating_add(text.len() as u64);
        if total > caps.max_bytes {
            return Err(Error::OverCap {
                file: files.display_path(rel),
                line: None,
                cap: Cap::Bytes {
                    limit: caps.max_bytes,
                    total: Some(total),
                },
            });
        }
    }
    let budget = Budget::new(caps.max_objects);
    load_counted(files, schema, &budget).map_err(|e| match e {
        // The budget's refusal reaches here as a YAML error at the object's place.
        Error::Yaml { file, line, .. } if budget.is_over() => Error::OverCap {
            file,
            line,
            cap: Cap::Objects {
                limit: budget.limit(),
            },
        },
        e => e,
    })
}

fn load_counted(files: &Files, schema: Option<&Schema>, budget: &Budget) -> Result<Desired, Error> {
    refuse_unread(files)?;
    let layout_err = |reason: String| Error::Layout {
        dir: files.dir.clone(),
        reason,
    };
    let services_path = Path::new(SERVICES_FILE);
    let services = read_services(files)?;
    let typed = match schema {
        Some(schema) => {
            let order = schema.order().map_err(|e| layout_err(e.to_string()))?;
            load_typed_counted(files, &order, budget)?
        }
        None => Vec::new(),
    };
    let node_files = NodeFiles::of(files)?;
    let is_legacy = node_files.is_legacy();
    if services.is_none() && node_files.pools.is_empty() && !is_legacy && !typed.is_empty() {
        return Ok(Desired {
            git_rev: files.git_rev.clone(),
            service_defs: ServiceDefs::Unmanaged,
            nodes: NodeDefs::Unmanaged,
            typed,
            ..Desired::default()
        });
    }
    let services = match services {
        Some(s) => s,
        None if is_legacy => ServicesFile::new(),
        None => {
            return Err(layout_err(format!(
                "missing {SERVICES_FILE} (and no node/ directory of the Python conftool layout)"
            )))
        }
    };
    let known = (!services.is_empty() || !is_legacy).then_some(&services);

    if let Some(t) = typed
        .iter()
        .find(|t| t.ty.path == "services" || t.ty.path.starts_with("services/"))
        .filter(|_| files.files.contains_key(services_path))
    {
        return Err(layout_err(format!(
            "both {SERVICES_FILE} and the object type {} (path {}) declare the service \
             definitions; use one",
            t.ty.name, t.ty.path
        )));
    }
    let mut desired = Desired {
        typed,
        git_rev: files.git_rev.clone(),
        service_defs: if files.files.contains_key(services_path) {
            ServiceDefs::Declared
        } else {
            ServiceDefs::Unmanaged
        },
        ..Desired::default()
    };
    for (cluster, defs) in &services {
        for (service, def) in defs {
            desired
                .services
                .insert((cluster.clone(), service.clone()), def.clone());
        }
    }
    let (objects, labels) = node_files.load(files, known, budget)?;
    desired.objects = objects;
    desired.labels = labels.finish(files, &desired.typed)?;
    Ok(desired)
}

/// Refuse files the layout would not read: the sources hand over only what it reads, and
/// files given in memory are judged by the same rules, so that none is ignored without a
/// word.
fn refuse_unread(files: &Files) -> Result<(), Error> {
    let judged = classify_with(&listing_of(files.files.keys()), &files.types);
    let unread: Vec<Notice> = judged
        .errors
        .into_iter()
        .chain(judged.warnings)
        .map(|n| Notice {
            path: files.display_path(&n.path),
            reason: n.reason,
        })
        .collect();
    if unread.is_empty() {
        Ok(())
    } else {
        Err(problems(&files.dir, unread))
    }
}

/// `services.yaml`, if the directory has one.
fn read_services(files: &Files) -> Result<Option<ServicesFile>, Error> {
    let services_path = Path::new(SERVICES_FILE);
    let Some(text) = files.files.get(services_path) else {
        return Ok(None);
    };
    let services = parse(
        &files.display_path(services_path),
        text,
        MapSeed {
            check: &any,
            value: |_: &Cluster| MapSeed {
                check: &any,
                value: plain::<ServiceDef>,
            },
        },
    )?;
    Ok(Some(services))
}

/// A file of nodes: its datacenter (as its path names it), its path and its text.
type NodeFile<'a> = (String, &'a PathBuf, &'a String);

/// The files of nodes, in one layout or the other (never both).
struct NodeFiles<'a> {
    /// `<dc>/pools.yaml` (conftool-rs).
    pools: Vec<NodeFile<'a>>,
    /// `node/<dc>.yaml` (Python conftool).
    legacy: Vec<NodeFile<'a>>,
}

impl<'a> NodeFiles<'a> {
    /// The files of nodes among `files` (not those of schema-declared types); an error if
    /// both layouts are there.
    fn of(files: &'a Files) -> Result<Self, Error> {
        let mut pools = Vec::new();
        let mut legacy = Vec::new();
        let python = crate::labels::python_layout(files);
        for (rel, text) in &files.files {
            if rel
                .iter()
                .next()
                .is_some_and(|t| files.types.iter().any(|n| t == n.as_str()))
            {
                continue;
            }
            let owned: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let parts: Vec<&str> = owned.iter().map(String::as_str).collect();
            match parts.as_slice() {
                ["node", f] => {
                    // Only the one suffix: `eqiad.yaml.yaml` is for a datacenter `eqiad.yaml`.
                    let dc = f.strip_suffix(".yaml").unwrap_or(f).to_string();
                    legacy.push((dc, rel, text));
                }
                // Labels of the Python layout, read with its nodes (see crate::labels).
                [LABELS_DIR, _] if python => {}
                [dc, "pools.yaml"] => pools.push((dc.to_string(), rel, text)),
                _ => {}
            }
        }
        if let (Some((_, p, _)), Some((_, l, _))) = (pools.first(), legacy.first()) {
            return Err(Error::Layout {
                dir: files.dir.clone(),
                reason: format!(
                    "has both {} (conftool-rs layout) and {} (Python conftool layout); use one",
                    shown(p),
                    shown(l)
                ),
            });
        }
        Ok(NodeFiles { pools, legacy })
    }

    /// Whether the nodes are in the Python conftool's layout.
    fn is_legacy(&self) -> bool {
        !self.legacy.is_empty()
    }

    /// Every object the files declare, with the defaults of its service (`known`, else the
    /// Python tool's), and the nodes' labels read with them.
    fn load(
        &self,
        files: &Files,
        known: Option<&ServicesFile>,
        budget: &Budget,
    ) -> Result<(BTreeMap<ObjectKey, Defaults>, LabelsLoad), Error> {
        // Collected, then the map built sorted: inserted one at a time, its nodes would stay
        // about half full. (A key twice keeps one entry, with the same defaults either way.)
        let mut objects = Vec::new();
        let mut labels = LabelsLoad::default();
        for (dc, rel, text) in self.pools.iter().chain(&self.legacy) {
            let file = files.display_path(rel);
            let dc: Datacenter = dc.parse().map_err(|e| Error::Yaml {
                file: file.clone(),
                line: None,
                message: format!("{e} (from the file's path)"),
            })?;
            let nodes = if self.is_legacy() {
                let nodes = parse_legacy(&file, text, &dc, known, budget)?;
                labels.python_file(&dc, nodes.values().flat_map(BTreeMap::keys));
                nodes
            } else {
                let (nodes, of_nodes) = parse_pools(&file, text, known, budget)?;
                labels.pools_file(&dc, of_nodes);
                nodes
            };
            for (cluster, by_node) in nodes {
                // Per service, in node order: the cluster's objects come out in key order
                // (service, then node), so the map below is built from sorted runs rather
                // than sorting a list that interleaves the services node by node.
                let mut by_service: BTreeMap<Service, Vec<(ObjectKey, Defaults)>> = BTreeMap::new();
                for (node, svcs) in by_node {
                    for service in svcs {
                        let known = known
                            .and_then(|k| k.get(&cluster))
                            .and_then(|c| c.get_key_value(&service));
                        let defaults = known.map_or(Defaults::LEGACY, |(_, d)| d.default_values);
                        // The declared name, shared by every object of the service, rather
                        // than the copy each node's list holds.
                        let service = known.map_or(service, |(s, _)| s.clone());
                        let key = ObjectKey::new(
                            dc.clone(),
                            cluster.clone(),
                            service.clone(),
                            node.clone(),
                        );
                        by_service.entry(service).or_default().push((key, defaults));
                    }
                }
                for (_, run) in by_service {
                    objects.extend(run);
                }
            }
        }
        Ok((objects.into_iter().collect(), labels))
    }
}

type Nodes = BTreeMap<Cluster, BTreeMap<NodeName, Vec<Service>>>;

/// The rule for a cluster key: defined in services.yaml (when there is one).
fn cluster_check(known: Option<&ServicesFile>) -> impl Fn(&Cluster) -> Result<(), String> + '_ {
    move |c: &Cluster| match known {
        Some(k) if !k.contains_key(c) => {
            Err(format!("cluster {c} is not defined in {SERVICES_FILE}"))
        }
        _ => Ok(()),
    }
}

/// The rule for a service of `cluster`: defined in services.yaml (when there is one).
fn service_check<'a>(
    known: Option<&'a ServicesFile>,
    cluster: &'a Cluster,
) -> impl Fn(&Service) -> Result<(), String> + 'a {
    move |s: &Service| match known.map(|k| k.get(cluster)) {
        Some(defs) if !defs.is_some_and(|d| d.contains_key(s)) => Err(format!(
            "service {s} is not defined for cluster {cluster} in {SERVICES_FILE}"
        )),
        _ => Ok(()),
    }
}

/// `<dc>/pools.yaml`: `cluster -> node -> {services: [..][, labels: {..}]}`, and the labels.
fn parse_pools(
    file: &Path,
    text: &str,
    known: Option<&ServicesFile>,
    budget: &Budget,
) -> Result<(Nodes, BTreeMap<NodeName, Labels>), Error> {
    let ccheck = cluster_check(known);
    crate::labels::read_pools(|labels| {
        parse(
            file,
            text,
            MapSeed {
                check: &ccheck,
                value: |cluster: &Cluster| NodesSeed {
                    cluster: cluster.clone(),
                    known,
                    labels: Some(labels),
                    budget,
                },
            },
        )
    })
}

/// `node/<dc>.yaml`: `dc: {cluster: {node: [services]}}`, the file's single key being its
/// datacenter.
fn parse_legacy(
    file: &Path,
    text: &str,
    dc: &Datacenter,
    known: Option<&ServicesFile>,
    budget: &Budget,
) -> Result<Nodes, Error> {
    let ccheck = cluster_check(known);
    let dc_check = |d: &Datacenter| {
        if d == dc {
            Ok(())
        } else {
            Err(format!("datacenter {d} in a file named for {dc}"))
        }
    };
    let mut by_dc = parse(
        file,
        text,
        MapSeed {
            check: &dc_check,
            value: |_: &Datacenter| MapSeed {
                check: &ccheck,
                value: |cluster: &Cluster| NodesSeed {
                    cluster: cluster.clone(),
                    known,
                    labels: None,
                    budget,
                },
            },
        },
    )?;
    Ok(by_dc.remove(dc).unwrap_or_default())
}

/// The nodes of one cluster: `node -> {services: [..], labels: {..}}` (with `labels`, the
/// conftool-rs layout) or `node -> [..]`.
struct NodesSeed<'a> {
    cluster: Cluster,
    known: Option<&'a ServicesFile>,
    labels: Option<&'a NodeLabels>,
    budget: &'a Budget,
}

impl<'de> DeserializeSeed<'de> for NodesSeed<'_> {
    type Value = BTreeMap<NodeName, Vec<Service>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let defined = service_check(self.known, &self.cluster);
        let budget = self.budget;
        let scheck = |s: &Service| {
            defined(s)?;
            budget.take_one()
        };
        let cluster = &self.cluster;
        let labels = self.labels;
        MapSeed {
            check: &any,
            value: |node: &NodeName| NodeSeed {
                check: &scheck,
                labels: labels.map(|l| (l, cluster, node.clone())),
            },
        }
        .deserialize(d)
    }
}

/// One node's services: `{services: [..][, labels: {..}]}` (its labels go to `labels`) or a
/// bare list.
struct NodeSeed<'a> {
    check: &'a dyn Fn(&Service) -> Result<(), String>,
    labels: Option<(&'a NodeLabels, &'a Cluster, NodeName)>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Vec<Service>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Service>, D::Error> {
        if self.labels.is_some() {
            d.deserialize_struct("node", NODE_FIELDS, self)
        } else {
            NameListSeed { check: self.check }.deserialize(d)
        }
    }
}

/// The fields of a node entry in `<dc>/pools.yaml`.
const NODE_FIELDS: &[&str] = &["services", "labels"];

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Vec<Service>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a node entry {services: [..]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Service>, A::Error> {
        // The field name is checked while it is read, so the error points at its line.
        let mut services = None;
        let mut seen = Vec::new();
        while let Some(field) = map.next_key_seed(FieldSeed {
            fields: NODE_FIELDS,
            seen: &seen,
        })? {
            seen.push(field);
            if field == "labels" {
                let of = self.labels.as_ref().map(|(l, c, n)| (*l, *c, n));
                map.next_value_seed(LabelsSeed { of })?;
            } else {
                services = Some(map.next_value_seed(NameListSeed { check: self.check })?);
            }
        }
        services.ok_or_else(|| de::Error::missing_field("services"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;
    use conftool_core::{Pooled, Weight};

    const SERVICES: &str = "cache_text:\n  varnish-fe:\n    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n  nginx:\n    port: 443\n    default_values: {pooled: yes, weight: 1}\nappservers:\n  apache:\n    port: 80\n    default_values: {pooled: true, weight: 1}\n";

    fn files(extra: &[(&str, &str)]) -> Files {
        let mut v = vec![("services.yaml".to_string(), SERVICES.to_string())];
        v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        Files::in_memory("conf", v)
    }

    fn key(dc: &str, cluster: &str, service: &str, node: &str) -> ObjectKey {
        ObjectKey::new(
            dc.parse().unwrap(),
            cluster.parse().unwrap(),
            service.parse().unwrap(),
            node.parse().unwrap(),
        )
    }

    /// The error's `file:line` (or just `file`), and its whole message.
    fn place(e: &Error) -> (String, String) {
        match e {
            Error::Yaml { file, line, .. } => (
                match line {
                    Some((l, _)) => format!("{}:{l}", file.display()),
                    None => file.display().to_string(),
                },
                e.to_string(),
            ),
            other => (String::new(), other.to_string()),
        }
    }

    #[test]
    fn loads_objects_with_their_service_defaults() {
        let d = load(&files(&[
            (
                "eqiad/pools.yaml",
                "cache_text:\n  cp1052: {services: [nginx, varnish-fe]}\nappservers:\n  mw1018:\n    services: [apache]\n  mw1019: {services: []}\n",
            ),
            ("codfw/pools.yaml", "# nothing here yet\n{}\n"),
        ]))
        .unwrap();
        let yes1 = Defaults {
            pooled: Pooled::Yes,
            weight: Weight(1),
        };
        let no10 = Defaults {
            pooled: Pooled::No,
            weight: Weight(10),
        };
        let want: BTreeMap<ObjectKey, Defaults> = [
            (key("eqiad", "cache_text", "nginx", "cp1052"), yes1),
            (key("eqiad", "cache_text", "varnish-fe", "cp1052"), no10),
            (key("eqiad", "appservers", "apache", "mw1018"), yes1),
        ]
        .into_iter()
        .collect();
        assert_eq!(d.objects, want);
        assert_eq!(d.services.len(), 3);
        let apache = &d.services[&("appservers".parse().unwrap(), "apache".parse().unwrap())];
        assert_eq!(apache.port, 80);
        assert_eq!(apache.default_values, yes1);
        assert_eq!(d.git_rev, None);
    }

    #[test]
    fn a_wrong_shape_says_what_was_expected_where() {
        for (pools, want) in [
            (
                "appservers:\n  [a, b]: {services: [apache]}\n",
                "conf/eqiad/pools.yaml:2:3: appservers: invalid type: sequence, expected a name",
            ),
            (
                "appservers: [x]\n",
                "conf/eqiad/pools.yaml:1:13: appservers: invalid type: sequence, expected a mapping",
            ),
            (
                "appservers:\n  mw1: {[x]: 1}\n",
                "conf/eqiad/pools.yaml:2:9: appservers.mw1: invalid type: sequence, expected a \
                 field name",
            ),
            (
                "appservers:\n  mw1: 3\n",
                "conf/eqiad/pools.yaml:2:8: appservers.mw1: invalid type: integer `3`, expected \
                 a node entry {services: [..]}",
            ),
        ] {
            let err = load(&files(&[("eqiad/pools.yaml", pools)])).unwrap_err();
            assert_eq!(err.to_string(), want, "{pools:?}");
        }
    }

    #[test]
    fn a_python_datacenter_named_pools_is_one_of_node_s_files() {
        // node/pools.yaml is the Python layout's file for a datacenter called "pools", not
        // the conftool-rs layout's pools file of a datacenter called "node".
        let f = Files::in_memory(
            "conf",
            [(
                "node/pools.yaml".to_string(),
                "pools:\n  appservers:\n    mw1: [apache]\n".to_string(),
            )],
        );
        let d = load(&f).unwrap();
        let keys: Vec<String> = d.objects.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["pools/appservers/apache/mw1"]);
        assert_eq!(d.service_defs, ServiceDefs::Unmanaged);
    }

    #[test]
    fn the_commit_read_from_reaches_the_desired_state() {
        let mut f = files(&[(
            "eqiad/pools.yaml",
            "appservers:\n  mw1018: {services: [apache]}\n",
        )]);
        f.git_rev = Some("0123abcd".into());
        let d = load(&f).unwrap();
        assert_eq!(d.git_rev.as_deref(), Some("0123abcd"));
        assert_eq!(d.service_defs, ServiceDefs::Declared);
        assert_eq!(d.objects.len(), 1);
    }

    #[test]
    fn pooled_spellings_mean_what_people_meant() {
        for (written, meant) in [
            ("yes", Pooled::Yes),
            ("\"yes\"", Pooled::Yes),
            ("true", Pooled::Yes),
            ("True", Pooled::Yes),
            ("no", Pooled::No),
            ("\"no\"", Pooled::No),
            ("false", Pooled::No),
            ("inactive", Pooled::Inactive),
        ] {
            let svc = format!(
                "c:\n  s:\n    port: 1\n    default_values: {{pooled: {written}, weight: 0}}\n"
            );
            let f = Files::in_memory("conf", [("services.yaml".to_string(), svc)]);
            let d = load(&f).unwrap_or_else(|e| panic!("{written}: {e}"));
            let def = d.services.values().next().unwrap();
            assert_eq!(def.default_values.pooled, meant, "{written}");
        }
    }

    #[test]
    fn python_layout_without_services_uses_legacy_defaults() {
        let f = Files::in_memory(
            "conf",
            [(
                "node/eqiad.yaml".to_string(),
                "eqiad:\n  cache_text:\n    cp1052: [nginx, varnish-fe]\n".to_string(),
            )],
        );
        let d = load(&f).unwrap();
        assert!(d.services.is_empty());
        assert_eq!(d.service_defs, ServiceDefs::Unmanaged);
        let want: BTreeMap<ObjectKey, Defaults> = [
            (
                key("eqiad", "cache_text", "nginx", "cp1052"),
                Defaults::LEGACY,
            ),
            (
                key("eqiad", "cache_text", "varnish-fe", "cp1052"),
                Defaults::LEGACY,
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(d.objects, want);

        // With a services.yaml, the Python layout is checked against it like ours.
        let with = files(&[(
            "node/eqiad.yaml",
            "eqiad:\n  cache_text:\n    cp1052: [nginx]\n",
        )]);
        let d = load(&with).unwrap();
        assert_eq!(d.service_defs, ServiceDefs::Declared);
        assert_eq!(
            d.objects[&key("eqiad", "cache_text", "nginx", "cp1052")].weight,
            Weight(1)
        );
    }

    #[test]
    fn crlf_and_aliases_are_fine() {
        let d = load(&files(&[(
            "eqiad/pools.yaml",
            "cache_text:\r\n  cp1052: &n {services: [nginx]}\r\n  cp1053: *n\r\n",
        )]))
        .unwrap();
        assert_eq!(d.objects.len(), 2);
    }

    /// Every bad input fails with the file and the line of the offending text.
    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (file, contents, expected place, expected message part)
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx, varnish-fe]}\n  cp1052: {services: [nginx]}\n", "conf/eqiad/pools.yaml:3", "duplicate key cp1052"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx]}\ncache_text:\n  cp1053: {services: [nginx]}\n", "conf/eqiad/pools.yaml:3", "duplicate key cache_text"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052:\n    services: [nginx]\n    services: [varnish-fe]\n", "conf/eqiad/pools.yaml:4", "duplicate"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx, varnish-be]}\n", "conf/eqiad/pools.yaml:2", "service varnish-be is not defined for cluster cache_text"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052:\n    services: [nginx]\n    extra: 1\n", "conf/eqiad/pools.yaml:4", "unknown field `extra`"),
            ("eqiad/pools.yaml", "\ncache_txt:\n  cp1052: {services: [nginx]}\n", "conf/eqiad/pools.yaml:2", "cluster cache_txt is not defined"),
            ("eqiad/pools.yaml", "cache_text:\n  cp/1052: {services: [nginx]}\n", "conf/eqiad/pools.yaml:2", "invalid node name \"cp/1052\""),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: nginx}\n", "conf/eqiad/pools.yaml:2", "expected a list of names"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052:\n", "conf/eqiad/pools.yaml:2", "missing field `services`"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx,\n    nginx]}\n", "conf/eqiad/pools.yaml:3", "nginx is listed twice"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx]\n  cp1053: {services: [nginx]}\n", "conf/eqiad/pools.yaml:2", "the mapping opened with '{' here is not closed"),
            ("eqiad/pools.yaml", "# only a comment\n", "conf/eqiad/pools.yaml", "file is empty"),
            ("eqiad/pools.yaml", &format!("cache_text:\n  cp1052: {{services: {}{}}}\n", "[".repeat(100_000), "]".repeat(100_000)), "conf/eqiad/pools.yaml:2", "nested deeper than 64 levels"),
            ("services.yaml", "a:\n  b:\n    port: 80\n    default_values: {pooled: maybe, weight: 1}\n", "conf/services.yaml:4", "invalid pooled value \"maybe\""),
            ("services.yaml", "a:\n  b:\n    port: 80\n    default_values:\n      pooled: \"no\"\n      weight: 70000\n", "conf/services.yaml:6", "weight 70000 is out of range"),
            ("services.yaml", "a:\n  b:\n    port: 80\n    default_values: {pooled: no, weight: -1}\n", "conf/services.yaml:4", "weight -1 is out of range"),
            ("services.yaml", "a:\n  b:\n    port: 80\n    default_values: {pooled: no, weight: ten}\n", "conf/services.yaml:4", "invalid type: string \"ten\""),
            ("services.yaml", "a:\n  b:\n    port: 80\n    user: x\n    default_values: {pooled: no, weight: 1}\n", "conf/services.yaml:4", "unknown field `user`"),
            ("services.yaml", "a:\n  b:\n    port: 80\n    port: 81\n    default_values: {pooled: no, weight: 1}\n", "conf/services.yaml:4", "duplicate key port"),
            ("services.yaml", "a:\n  b:\n    port: 80\n    default_values:\n      pooled: no\n      weight: 1\n      weight: 2\n", "conf/services.yaml:7", "duplicate key weight"),
            ("services.yaml", "a:\n  b:\n    port: 70000\n    default_values: {pooled: no, weight: 1}\n", "conf/services.yaml:3", "70000"),
            ("services.yaml", "a: &a [*a]\n", "conf/services.yaml:1", ""),
            ("node/eqiad.yaml", "codfw:\n  cache_text:\n    cp1052: [nginx]\n", "conf/node/eqiad.yaml:1", "datacenter codfw in a file named for eqiad"),
            ("node/eqiad.yaml.yaml", "eqiad:\n  cache_text:\n    cp1052: [nginx]\n", "conf/node/eqiad.yaml.yaml:1", "datacenter eqiad in a file named for eqiad.yaml"),
            ("eqiad/pools.yaml", "cache_text:\n  cp1052: {services: [nginx]}\n\u{7}\n", "conf/eqiad/pools.yaml:3", "control characters are not allowed"),
        ];
        let mut failures = Vec::new();
        for (file, text, want_place, want_msg) in cases {
            let f = if *file == "services.yaml" {
                Files::in_memory("conf", [(file.to_string(), text.to_string())])
            } else {
                files(&[(file, text)])
            };
            match load(&f) {
                Ok(d) => failures.push(format!("{file} {text:.60?}: loaded {d:?}")),
                Err(e) => {
                    let (got_place, msg) = place(&e);
                    if got_place != *want_place || !msg.contains(want_msg) {
                        failures.push(format!(
                            "{text:.60?}: want {want_place} ..{want_msg}.., got {got_place}: {msg}"
                        ));
                    }
                    // The position is shown once, in front, not repeated in the message.
                    if msg.matches(" at line ").count() > 1 {
                        failures.push(format!("position repeated: {msg}"));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn layout_errors() {
        let both = files(&[
            (
                "eqiad/pools.yaml",
                "cache_text:\n  cp1052: {services: [nginx]}\n",
            ),
            (
                "node/codfw.yaml",
                "codfw:\n  cache_text:\n    cp2001: [nginx]\n",
            ),
        ]);
        let e = load(&both).unwrap_err().to_string();
        assert!(
            e.starts_with("conf: has both eqiad/pools.yaml") && e.contains("node/codfw.yaml"),
            "{e}"
        );
        let none = Files::in_memory(
            "conf",
            [(
                "eqiad/pools.yaml".to_string(),
                "cache_text:\n  cp1052: {services: [nginx]}\n".to_string(),
            )],
        );
        let e = load(&none).unwrap_err().to_string();
        assert!(e.starts_with("conf: missing services.yaml"), "{e}");
        let bad_dc = files(&[("bad dc/pools.yaml", "cache_text: {}\n")]);
        let e = load(&bad_dc).unwrap_err();
        assert_eq!(place(&e).0, "conf/bad dc/pools.yaml");
        assert!(e.to_string().contains("invalid datacenter name"), "{e}");
    }

    #[test]
    fn depth_scan_skips_quotes_and_comments() {
        use crate::yaml::checks::too_deep;
        let deep = "[".repeat(65);
        assert_eq!(too_deep(&format!("a: 1\nb: {deep}")), Some((2, 68)));
        assert_eq!(too_deep(&"[".repeat(64)), None);
        assert_eq!(
            too_deep(&format!("a: '{deep}'\nb: \"{deep}\\\"\"\n# {deep}\n")),
            None
        );
        assert_eq!(
            too_deep(&format!("a: x # {deep}\nb: {deep}")),
            Some((2, 68))
        );
        assert_eq!(too_deep(&"[]".repeat(1000)), None);
    }

    #[test]
    fn objects_past_the_cap_stop_the_read_at_their_place() {
        let caps = |max_objects| Caps {
            max_bytes: u64::MAX,
            max_objects,
        };
        let f = files(&[
            (
                "eqiad/pools.yaml",
                "cache_text:\n  cp1052: {services: [nginx, varnish-fe]}\n",
            ),
            (
                "codfw/pools.yaml",
                "cache_text:\n  cp2001:\n    services: [nginx]\n",
            ),
        ]);
        assert_eq!(load_capped(&f, None, &caps(3)).unwrap().objects.len(), 3);
        // One count across files (codfw's is read first): the third object is refused.
        let e = load_capped(&f, None, &caps(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conf/eqiad/pools.yaml:2:30: more than the 2 objects a sync holds; read no further \
             (raise the cap with --max-objects if this is intended)"
        );
        assert!(e.is_bad_input());
        // The Python layout counts the same way.
        let legacy = Files::in_memory(
            "conf",
            [(
                "node/eqiad.yaml".to_string(),
                "eqiad:\n  cache_text:\n    cp1052: [nginx, varnish-fe]\n".to_string(),
            )],
        );
        assert!(load_capped(&legacy, None, &caps(2)).is_ok());
        let e = load_capped(&legacy, None, &caps(1)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OverCap {
                    line: Some((3, _)),
                    cap: Cap::Objects { limit: 1 },
                    ..
                }
            ),
            "{e}"
        );
        // A YAML error is still itself, cap or not.
        let bad = files(&[("eqiad/pools.yaml", "cache_text: [\n")]);
        assert!(matches!(
            load_capped(&bad, None, &caps(1)).unwrap_err(),
            Error::Yaml { .. }
        ));
    }

    #[test]
    fn files_given_in_memory_over_the_byte_cap_are_not_parsed() {
        let f = files(&[("eqiad/pools.yaml", "not: [yaml\n")]);
        let all = f.files.values().map(|t| t.len() as u64).sum::<u64>();
        let caps = |max_bytes| Caps {
            max_bytes,
            max_objects: 10,
        };
        // Under the cap it is parsed (and fails as YAML); over it, it is not parsed at all.
        assert!(matches!(
            load_capped(&f, None, &caps(all)).unwrap_err(),
            Error::Yaml { .. }
        ));
        let e = load_capped(&f, None, &caps(all - 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "conf/services.yaml: the data files would add up to {all} bytes with this one, \
                 more than the {} bytes a sync reads; not read, nothing parsed (raise the cap \
                 with --max-input-bytes if this is intended)",
                all - 1
            )
        );
    }
}
