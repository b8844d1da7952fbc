//! A synthetic fleet of exactly N objects: the data directory the tools read, and the etcd
//! keys and values a sync must produce from it (which the floor writes directly).
//!
//! Shape: 2 datacenters x 5 clusters, each cluster with 4 services; every node is in 3 of its
//! cluster's 4 services, so "moving" a node between services is one delete plus one create.
//! Each (dc, cluster) group holds a tenth of the objects, so `dc=eqiad,cluster=appservers`
//! selects 10% of the fleet. Generation is deterministic: the floor process regenerates the
//! same fleet from N instead of parsing YAML.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

/// Datacenters and the digit their node names carry.
const DCS: [(&str, u32); 2] = [("eqiad", 1), ("codfw", 2)];

/// One service: name, port, default pooled state, default weight.
type ServiceSpec = (&'static str, u16, &'static str, u32);

/// Clusters: name, node-name prefix, services.
const CLUSTERS: [(&str, &str, [ServiceSpec; 4]); 5] = [
    ("cache_text", "cp", CACHE),
    ("cache_upload", "cu", CACHE),
    ("appservers", "mw", APP),
    ("api_appserver", "mwapi", APP),
    ("jobrunner", "mwjob", JOB),
];
const CACHE: [ServiceSpec; 4] = [
    ("varnish-fe", 80, "no", 10),
    ("varnish-be", 3128, "no", 10),
    ("nginx", 443, "no", 10),
    ("ats-be", 3129, "no", 10),
];
const APP: [ServiceSpec; 4] = [
    ("apache", 80, "yes", 1),
    ("nginx", 443, "yes", 1),
    ("php-fpm", 9000, "yes", 1),
    ("envoy", 8080, "yes", 1),
];
const JOB: [ServiceSpec; 4] = [
    ("apache", 80, "yes", 5),
    ("nginx", 443, "yes", 5),
    ("php-fpm", 9000, "yes", 5),
    ("envoy", 8080, "inactive", 0),
];

/// Groups are (dc, cluster) pairs; this is the one the selection rows act on.
pub(crate) const SELECTOR: &str = "dc=eqiad,cluster=appservers";
/// The etcd prefix [`SELECTOR`] narrows its read to.
pub(crate) const SELECTED_PREFIX: &str = "/v1/pools/eqiad/appservers/";
/// The root of everything the tools manage.
pub(crate) const ROOT_PREFIX: &str = "/v1/";
/// Where the pool objects live.
pub(crate) const POOLS_PREFIX: &str = "/v1/pools/";
const SELECTED: (usize, usize) = (0, 2);

/// One node: its group, name and the indexes of the cluster services it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    dc: usize,
    cluster: usize,
    name: String,
    services: Vec<usize>,
}

/// A fleet: nodes in pools.
#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    nodes: Vec<Node>,
}

/// What [`Fleet::churn`] changed.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub(crate) struct Churn {
    /// Nodes added, removed, moved between services.
    pub nodes_added: usize,
    pub nodes_removed: usize,
    pub nodes_moved: usize,
    /// Objects created and deleted by a sync of the churned fleet.
    pub objects_created: usize,
    pub objects_deleted: usize,
}

fn node_name(dc: usize, cluster: usize, index: usize) -> String {
    format!("{}{}{index:06}", CLUSTERS[cluster].1, DCS[dc].1)
}

/// Node `j` of a group is in every service but `j % 4`.
fn services_of(j: usize, shift: usize) -> Vec<usize> {
    (0..4).filter(|&s| s != (j + shift) % 4).collect()
}

impl Fleet {
    /// A fleet of exactly `objects` objects (the last node of a group may be in fewer than
    /// 3 services to hit the number).
    pub(crate) fn generate(objects: usize) -> Fleet {
        let groups = DCS.len() * CLUSTERS.len();
        let mut nodes = Vec::with_capacity(objects / 3 + groups);
        for g in 0..groups {
            let (dc, cluster) = (g / CLUSTERS.len(), g % CLUSTERS.len());
            let mut left = objects / groups + usize::from(g < objects % groups);
            let mut j = 0;
            while left > 0 {
                let mut services = services_of(j, 0);
                services.truncate(left);
                left -= services.len();
                nodes.push(Node {
                    dc,
                    cluster,
                    name: node_name(dc, cluster, j),
                    services,
                });
                j += 1;
            }
        }
        Fleet { nodes }
    }

    /// Number of objects (node x service pairs).
    pub(crate) fn objects(&self) -> usize {
        self.nodes.iter().map(|n| n.services.len()).sum()
    }

    /// Objects in the selected group ([`SELECTOR`]).
    pub(crate) fn selected_objects(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| (n.dc, n.cluster) == SELECTED)
            .map(|n| n.services.len())
            .sum()
    }

    /// A node and service for the single-object depool: an appserver in codfw whose default
    /// is pooled=yes, so the depool really writes.
    pub(crate) fn depool_target(&self) -> Option<(String, String)> {
        self.nodes
            .iter()
            .find(|n| n.dc == 1 && n.cluster == SELECTED.1 && n.services.contains(&0))
            .map(|n| (n.name.clone(), CLUSTERS[n.cluster].2[0].0.to_string()))
    }

    /// The same fleet with `share` of its nodes changed: a third added (3 services each), a
    /// third removed, a third moved from one service to another. Spread evenly over the
    /// fleet, and never the depool target (so runs stay comparable).
    pub(crate) fn churn(&self, share: f64) -> (Fleet, Churn) {
        let k = ((self.nodes.len() as f64 * share).round() as usize).max(3);
        let (add, remove) = (k / 3, k / 3);
        let moved = k - add - remove;
        let keep = self.depool_target().map(|(n, _)| n);
        let step = (self.nodes.len() / (remove + moved)).max(1);
        let mut churn = Churn::default();
        let mut nodes = Vec::with_capacity(self.nodes.len() + add);
        let mut touched = 0;
        let mut next_pick = step / 2;
        for (i, n) in self.nodes.iter().enumerate() {
            let pick = i >= next_pick
                && touched < remove + moved
                && Some(&n.name) != keep.as_ref()
                && n.services.len() == 3;
            if !pick {
                nodes.push(n.clone());
                continue;
            }
            next_pick = i + step;
            touched += 1;
            if touched <= remove {
                churn.nodes_removed += 1;
                churn.objects_deleted += n.services.len();
                continue;
            }
            // Moved: out of its first service, into the one it was not in.
            let was = &n.services;
            let now: Vec<usize> = (0..4).filter(|&s| s != was[0]).collect();
            churn.nodes_moved += 1;
            churn.objects_created += now.iter().filter(|s| !was.contains(s)).count();
            churn.objects_deleted += was.iter().filter(|s| !now.contains(s)).count();
            nodes.push(Node {
                services: now,
                ..n.clone()
            });
        }
        let groups = DCS.len() * CLUSTERS.len();
        for a in 0..add {
            let g = a % groups;
            let (dc, cluster) = (g / CLUSTERS.len(), g % CLUSTERS.len());
            nodes.push(Node {
                dc,
                cluster,
                name: node_name(dc, cluster, 900_000 + a),
                services: services_of(a, 0),
            });
            churn.nodes_added += 1;
            churn.objects_created += 3;
        }
        (Fleet { nodes }, churn)
    }

    /// Write `services.yaml` and `<dc>/pools.yaml` into `dir`.
    pub(crate) fn write_dir(&self, dir: &Path) -> anyhow::Result<()> {
        let mut services = String::from("# Generated by conftool-bench.\n");
        for (cluster, _, specs) in CLUSTERS {
            let _ = writeln!(services, "{cluster}:");
            for (name, port, pooled, weight) in specs {
                let _ = writeln!(
                    services,
                    "  {name}:\n    port: {port}\n    default_values: {{pooled: \"{pooled}\", weight: {weight}}}"
                );
            }
        }
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        };
        write(&dir.join("services.yaml"), &services)?;
        for (d, (dc, _)) in DCS.iter().enumerate() {
            let mut pools = String::from("# Generated by conftool-bench.\n");
            for (c, (cluster, _, specs)) in CLUSTERS.iter().enumerate() {
                let mut members = self.nodes.iter().filter(|n| (n.dc, n.cluster) == (d, c));
                let Some(first) = members.next() else {
                    continue;
                };
                let _ = writeln!(pools, "{cluster}:");
                for n in std::iter::once(first).chain(members) {
                    let names: Vec<&str> = n.services.iter().map(|&s| specs[s].0).collect();
                    let _ = writeln!(pools, "  {}: {{services: [{}]}}", n.name, names.join(", "));
                }
            }
            let sub = dir.join(dc);
            std::fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
            write(&sub.join("pools.yaml"), &pools)?;
        }
        Ok(())
    }

    /// The keys and values a sync of this fleet leaves in an empty etcd, sorted by key:
    /// service definitions, then objects with their service's defaults. The values are
    /// byte-for-byte what conftool-sync writes.
    pub(crate) fn expected_kvs(&self) -> BTreeMap<String, String> {
        let mut kvs = BTreeMap::new();
        for (cluster, _, specs) in CLUSTERS {
            for (name, port, pooled, weight) in specs {
                kvs.insert(
                    format!("/v1/services/{cluster}/{name}"),
                    format!(
                        r#"{{"port":{port},"default_values":{{"pooled":"{pooled}","weight":{weight}}}}}"#
                    ),
                );
            }
        }
        for n in &self.nodes {
            let (cluster, _, specs) = CLUSTERS[n.cluster];
            for &s in &n.services {
                let (service, _, pooled, weight) = specs[s];
                kvs.insert(
                    format!("/v1/pools/{}/{cluster}/{service}/{}", DCS[n.dc].0, n.name),
                    format!(r#"{{"pooled":"{pooled}","weight":{weight}}}"#),
                );
            }
        }
        kvs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_exact_and_the_selection_is_a_tenth() {
        for n in [100, 1000, 10_001, 100_000] {
            let f = Fleet::generate(n);
            assert_eq!(f.objects(), n);
            assert_eq!(f.expected_kvs().len(), n + 20);
            assert!(f.selected_objects().abs_diff(n / 10) <= 1);
        }
    }

    #[test]
    fn churn_changes_about_one_percent_of_nodes() {
        let f = Fleet::generate(30_000);
        let (g, c) = f.churn(0.01);
        assert_eq!(c.nodes_added + c.nodes_removed + c.nodes_moved, 100);
        assert_eq!(c.nodes_moved, c.objects_created - 3 * c.nodes_added);
        let before = f.expected_kvs();
        let after = g.expected_kvs();
        let created = after.keys().filter(|k| !before.contains_key(*k)).count();
        let deleted = before.keys().filter(|k| !after.contains_key(*k)).count();
        assert_eq!((created, deleted), (c.objects_created, c.objects_deleted));
        let (node, _) = f.depool_target().unwrap();
        assert_eq!(g.depool_target().unwrap().0, node);
    }

    #[test]
    fn writes_a_directory_in_the_documented_layout() {
        let dir = tempfile::tempdir().unwrap();
        Fleet::generate(100).write_dir(dir.path()).unwrap();
        let pools = std::fs::read_to_string(dir.path().join("eqiad/pools.yaml")).unwrap();
        assert!(pools.contains("appservers:\n  mw1000000: {services: [nginx, php-fpm, envoy]}"));
        let services = std::fs::read_to_string(dir.path().join("services.yaml")).unwrap();
        assert!(services
            .contains("  apache:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 1}"));
    }
}
