//! Files to [`Desired`] state: the pure half of loading a data directory.
//!
//! Two layouts are understood:
//! - **conftool-rs** (the contract): `services.yaml` (`cluster -> service -> {port,
//!   default_values}`) and `<dc>/pools.yaml` (`cluster -> node -> {services: [..]}`).
//! - **Python conftool**: `node/<dc>.yaml` shaped `dc: {cluster: {node: [services]}}`, with an
//!   optional `services.yaml`. Without one, any service name is accepted and new objects get
//!   that tool's defaults (`pooled: inactive`, `weight: 0`).

use std::collections::BTreeMap;
use std::path::Path;

use conftool_core::{Cluster, Datacenter, Defaults, NodeName, ObjectKey, Service, ServiceDef};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::error::Error;
use crate::source::Files;
use crate::yaml::{any, parse, plain, MapSeed, NameListSeed};

/// The services file name.
pub const SERVICES_FILE: &str = "services.yaml";

/// What the directory declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Service definitions, written to `/v1/services/<cluster>/<service>`.
    pub services: BTreeMap<(Cluster, Service), ServiceDef>,
    /// Every declared object, with the state it gets when created.
    pub objects: BTreeMap<ObjectKey, Defaults>,
    /// The git commit the files came from, if any.
    pub git_rev: Option<String>,
}

type ServicesFile = BTreeMap<Cluster, BTreeMap<Service, ServiceDef>>;

/// Parse and validate a directory's files.
pub fn load(files: &Files) -> Result<Desired, Error> {
    let layout_err = |reason: String| Error::Layout {
        dir: files.dir.clone(),
        reason,
    };
    let services_path = Path::new(SERVICES_FILE);
    let services: Option<ServicesFile> = match files.files.get(services_path) {
        Some(text) => Some(parse(
            &files.display_path(services_path),
            text,
            MapSeed {
                check: &any,
                value: |_: &Cluster| MapSeed {
                    check: &any,
                    value: plain::<ServiceDef>,
                },
            },
        )?),
        None => None,
    };
    let mut pools = Vec::new();
    let mut legacy = Vec::new();
    for (rel, text) in &files.files {
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        match parts.as_slice() {
            [dc, f] if f == "pools.yaml" && dc != "node" => pools.push((dc.clone(), rel, text)),
            [n, f] if n == "node" => {
                let dc = f.trim_end_matches(".yaml").to_string();
                legacy.push((dc, rel, text));
            }
            _ => {}
        }
    }
    if !pools.is_empty() && !legacy.is_empty() {
        return Err(layout_err(
            "has both <dc>/pools.yaml files and a node/ directory (Python conftool layout); use one"
                .into(),
        ));
    }
    let is_legacy = !legacy.is_empty();
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

    let mut desired = Desired {
        git_rev: files.git_rev.clone(),
        ..Desired::default()
    };
    for (cluster, defs) in &services {
        for (service, def) in defs {
            desired
                .services
                .insert((cluster.clone(), service.clone()), def.clone());
        }
    }
    for (dc, rel, text) in pools.iter().chain(&legacy) {
        let file = files.display_path(rel);
        let dc: Datacenter = dc.parse().map_err(|e| Error::Yaml {
            file: file.clone(),
            line: None,
            message: format!("{e} (from the file's path)"),
        })?;
        let nodes = if is_legacy {
            parse_legacy(&file, text, &dc, known)?
        } else {
            parse_pools(&file, text, known)?
        };
        for (cluster, by_node) in nodes {
            for (node, svcs) in by_node {
                for service in svcs {
                    let defaults = known
                        .and_then(|k| k.get(&cluster))
                        .and_then(|c| c.get(&service))
                        .map_or(Defaults::LEGACY, |d| d.default_values);
                    let key = ObjectKey::new(dc.clone(), cluster.clone(), service, node.clone());
                    desired.objects.insert(key, defaults);
                }
            }
        }
    }
    Ok(desired)
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

/// `<dc>/pools.yaml`: `cluster -> node -> {services: [..]}`.
fn parse_pools(file: &Path, text: &str, known: Option<&ServicesFile>) -> Result<Nodes, Error> {
    let ccheck = cluster_check(known);
    parse(
        file,
        text,
        MapSeed {
            check: &ccheck,
            value: |cluster: &Cluster| NodesSeed {
                cluster: cluster.clone(),
                known,
                wrapped: true,
            },
        },
    )
}

/// `node/<dc>.yaml`: `dc: {cluster: {node: [services]}}`, the file's single key being its
/// datacenter.
fn parse_legacy(
    file: &Path,
    text: &str,
    dc: &Datacenter,
    known: Option<&ServicesFile>,
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
                    wrapped: false,
                },
            },
        },
    )?;
    Ok(by_dc.remove(dc).unwrap_or_default())
}

/// The nodes of one cluster: `node -> {services: [..]}` (`wrapped`) or `node -> [..]`.
struct NodesSeed<'a> {
    cluster: Cluster,
    known: Option<&'a ServicesFile>,
    wrapped: bool,
}

impl<'de> DeserializeSeed<'de> for NodesSeed<'_> {
    type Value = BTreeMap<NodeName, Vec<Service>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let scheck = service_check(self.known, &self.cluster);
        let wrapped = self.wrapped;
        MapSeed {
            check: &any,
            value: |_: &NodeName| NodeSeed {
                check: &scheck,
                wrapped,
            },
        }
        .deserialize(d)
    }
}

/// One node's services: `{services: [..]}` or a bare list.
struct NodeSeed<'a> {
    check: &'a dyn Fn(&Service) -> Result<(), String>,
    wrapped: bool,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Vec<Service>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Service>, D::Error> {
        if self.wrapped {
            d.deserialize_struct("node", &["services"], self)
        } else {
            NameListSeed { check: self.check }.deserialize(d)
        }
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Vec<Service>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a node entry {services: [..]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Service>, A::Error> {
        let mut services = None;
        while let Some(field) = map.next_key::<String>()? {
            if field != "services" {
                return Err(de::Error::unknown_field(&field, &["services"]));
            }
            if services.is_some() {
                return Err(de::Error::duplicate_field("services"));
            }
            services = Some(map.next_value_seed(NameListSeed { check: self.check })?);
        }
        services.ok_or_else(|| de::Error::missing_field("services"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = "cache_text:\n  varnish-fe:\n    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n  nginx:\n    port: 443\n    default_values: {pooled: yes, weight: 1}\nappservers:\n  apache:\n    port: 80\n    default_values: {pooled: true, weight: 1}\n";

    fn files(extra: &[(&str, &str)]) -> Files {
        let mut v = vec![("services.yaml".to_string(), SERVICES.to_string())];
        v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        Files::in_memory("conf", v)
    }

    #[test]
    fn show_errors() {
        for pools in [
            "cache_text:\n  cp1052: {services: [nginx, varnish-fe]}\n  cp1052: {services: [nginx]}\n",
            "cache_text:\n  cp1052: {services: [nginx, varnish-be]}\n",
            "cache_text:\n  cp1052: {services: [nginx], extra: 1}\n",
            "cache_txt:\n  cp1052: {services: [nginx]}\n",
            "cache_text:\n  cp/1052: {services: [nginx]}\n",
            "cache_text:\n  cp1052: {services: nginx}\n",
            "cache_text:\n  cp1052:\n",
            "cache_text:\n  cp1052: {services: [nginx, nginx]}\n",
            "cache_text: [\n",
        ] {
            let e = load(&files(&[("eqiad/pools.yaml", pools)])).unwrap_err();
            println!("{e}");
        }
        for svc in [
            "a:\n  b:\n    port: 80\n    default_values: {pooled: maybe, weight: 1}\n",
            "a:\n  b:\n    port: 80\n    default_values: {pooled: no, weight: 70000}\n",
            "a:\n  b:\n    port: 80\n    default_values: {pooled: no, weight: -1}\n",
            "a:\n  b:\n    port: 80\n    default_values: {pooled: no, weight: ten}\n",
            "a:\n  b:\n    port: 80\n    user: x\n    default_values: {pooled: no, weight: 1}\n",
            "a: &a [*a]\n",
        ] {
            let f = Files::in_memory("conf", [("services.yaml".to_string(), svc.to_string())]);
            println!("{}", load(&f).unwrap_err());
        }
    }
}
