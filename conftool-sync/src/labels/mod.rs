//! Node labels (racks, rows, hypervisors) in the data directory, synced to
//! `<namespace>/v1/labels/<dc>/<node>` (see [`conftool_core::Labels`]).
//!
//! Where they are declared:
//! - **conftool-rs layout**: in the node's entry of `<dc>/pools.yaml`,
//!   `mw1018: {services: [apache], labels: {rack: B4, row: B}}`. A node in several clusters
//!   of a datacenter has one set of labels: every entry that gives `labels` must give the
//!   same ones (an entry without `labels` says nothing about them; `labels: {}` says "none").
//! - **Python conftool layout**: `labels/<dc>.yaml` beside `node/<dc>.yaml`, shaped
//!   `node -> {label: value}`, every node one that `node/<dc>.yaml` declares. Not inside
//!   `node/`: a directory may be read by both tools while a fleet switches over, and the
//!   Python tool's sync loads every `node/*.yaml` as node data (`node/eqiad.labels.yaml`
//!   would fail to load, and it then skips every removal), while it reads only the
//!   directories of the types its schema declares (`<dir>/<type>/*.yaml`): `labels/` is
//!   left alone.
//!
//! How they are synced: like service definitions, as declared. A node's labels are created,
//! rewritten when they differ (by meaning: stored JSON with other spacing or order is the
//! same labels), deleted when no longer declared (labels removed, or the node removed); an
//! unchanged one is never rewritten. They are part of the one plan: in the diff, counted by
//! `--check`, written in the same batched compare-and-swap transactions, audited.
//!
//! Label deletions are not counted by `--max-delete-share` (nor guarded otherwise): labels
//! carry no traffic and no pool consumer reads them; the guard is for the objects whose loss
//! drops traffic. A node that lost its labels is no longer found by a label selector; the
//! diff shows that (`-` lines under `/v1/labels/`) before anything is written.

mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use conftool_core::{Datacenter, Guard, Keyspace, LabelMap, Labels, NodeName, Write};

use crate::error::{shown, Error};
use crate::source::Files;
use crate::typed_load::TypedDesired;
use yaml::parse_python_labels;
pub(crate) use yaml::{read_pools, LabelsSeed, NodeLabels};

/// The Python layout's directory of `<dc>.yaml` labels files.
pub const LABELS_DIR: &str = "labels";

/// Whether the files are in the Python layout (some `node/<dc>.yaml`): only then is
/// `labels/` the labels directory.
pub(crate) fn python_layout(files: &Files) -> bool {
    files.files.keys().any(|p| {
        let parts: Vec<_> = p.iter().collect();
        parts.len() == 2
            && parts[0] == crate::layout::NODE_DIR
            && parts[1].to_string_lossy().ends_with(".yaml")
    })
}

/// Labels gathered while a directory is loaded.
#[derive(Debug, Default)]
pub(crate) struct LabelsLoad {
    labels: LabelMap,
    /// Python layout: the nodes each `node/<dc>.yaml` declares.
    python: BTreeMap<Datacenter, BTreeSet<NodeName>>,
}

impl LabelsLoad {
    /// The labels of one `<dc>/pools.yaml` ([`read_pools`]).
    pub(crate) fn pools_file(&mut self, dc: &Datacenter, labels: BTreeMap<NodeName, Labels>) {
        self.add(dc, labels);
    }

    /// The nodes one `node/<dc>.yaml` declares.
    pub(crate) fn python_file<'a>(
        &mut self,
        dc: &Datacenter,
        nodes: impl IntoIterator<Item = &'a NodeName>,
    ) {
        self.python
            .entry(dc.clone())
            .or_default()
            .extend(nodes.into_iter().cloned());
    }

    fn add(&mut self, dc: &Datacenter, labels: BTreeMap<NodeName, Labels>) {
        for (node, l) in labels {
            // No labels, no key.
            if !l.is_empty() {
                self.labels.insert((dc.clone(), node), l);
            }
        }
    }

    /// Every declared node's labels; with the Python layout, read from `labels/<dc>.yaml`.
    /// `typed`: the schema-declared types the directory has, none of which may own the
    /// labels' keys.
    pub(crate) fn finish(
        mut self,
        files: &Files,
        typed: &[TypedDesired],
    ) -> Result<LabelMap, Error> {
        let layout = |reason: String| Error::Layout {
            dir: files.dir.clone(),
            reason,
        };
        if let Some(t) = typed
            .iter()
            .find(|t| t.ty.path == LABELS_DIR || t.ty.path.starts_with("labels/"))
        {
            return Err(layout(format!(
                "the object type {} (path {}) would own the node labels' keys \
                 (/v1/{LABELS_DIR}/...); give it another path",
                t.ty.name, t.ty.path
            )));
        }
        if !python_layout(files) {
            return Ok(self.labels);
        }
        if files.types.iter().any(|t| t == LABELS_DIR) {
            return Err(layout(format!(
                "the schema declares an object type named {LABELS_DIR}, whose files would be \
                 {LABELS_DIR}/*.yaml, where the Python layout keeps node labels; rename the type"
            )));
        }
        for (rel, text) in &files.files {
            let mut parts = rel.iter();
            let (Some(dir), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if dir != LABELS_DIR {
                continue;
            }
            let name = name.to_string_lossy();
            let Some(stem) = name.strip_suffix(".yaml") else {
                continue;
            };
            let file = files.display_path(rel);
            let dc: Datacenter = stem.parse().map_err(|e| Error::Yaml {
                file: file.clone(),
                line: None,
                message: format!("{e} (from the file's path)"),
            })?;
            let declared = self.python.get(&dc);
            let node_file = Path::new(crate::layout::NODE_DIR).join(format!("{dc}.yaml"));
            let check = |n: &NodeName| match declared {
                Some(nodes) if nodes.contains(n) => Ok(()),
                Some(_) => Err(format!("node {n} is not in {}", shown(&node_file))),
                None => Err(format!(
                    "node {n}: there is no {} for these labels' datacenter",
                    shown(&node_file)
                )),
            };
            let labels = parse_python_labels(&file, text, &check)?;
            self.add(&dc, labels);
        }
        Ok(self.labels)
    }
}

/// One node's labels to create, rewrite or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelChange {
    /// The node's datacenter.
    pub dc: Datacenter,
    /// The node.
    pub node: NodeName,
    /// The labels to store (`None`: delete the key).
    pub new: Option<Labels>,
    /// The stored value and its mod revision, if any (the write's guard).
    pub old: Option<(i64, String)>,
}

impl LabelChange {
    /// The guarded write: created only if absent, replaced or deleted only if unchanged
    /// since read.
    pub fn write(&self, ks: &Keyspace) -> Write {
        let key = ks.label_key(&self.dc, &self.node);
        let guard = self
            .old
            .as_ref()
            .map_or(Guard::Absent, |(rev, _)| Guard::Unchanged(*rev));
        match &self.new {
            Some(labels) => Write::Put {
                key,
                value: labels.to_json(),
                guard,
            },
            None => Write::Delete { key, guard },
        }
    }
}

/// The labels part of a [`crate::Plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelPlan {
    /// Labels to create, rewrite or delete, by datacenter and node.
    pub changes: Vec<LabelChange>,
    /// How many nodes have labels in etcd now.
    pub existing: usize,
}

impl LabelPlan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The guarded writes, each with the value it replaces, for the audit trail.
    pub fn writes<'a>(
        &'a self,
        ks: &'a Keyspace,
    ) -> impl Iterator<Item = (Write, Option<&'a str>)> + 'a {
        self.changes
            .iter()
            .map(move |c| (c.write(ks), c.old.as_ref().map(|(_, v)| v.as_str())))
    }

    /// The diff's lines: `(key, value)` as stored now (`old`) and as they will be (`new`).
    pub(crate) fn diff_lines(
        &self,
        ks: &Keyspace,
        old: &mut Vec<(String, String)>,
        new: &mut Vec<(String, String)>,
    ) {
        for c in &self.changes {
            let key = ks.label_key(&c.dc, &c.node);
            if let Some((_, v)) = &c.old {
                old.push((key.clone(), v.clone()));
            }
            if let Some(l) = &c.new {
                new.push((key, l.to_json()));
            }
        }
    }
}

/// What etcd holds under `/v1/labels/`: each node's raw value and mod revision.
pub type CurrentLabels = BTreeMap<(Datacenter, NodeName), (i64, Vec<u8>)>;

/// The label writes that make `current` match `desired`. A stored value that is not valid
/// labels is rewritten (or deleted), as any other difference.
pub(crate) fn plan_labels(desired: &LabelMap, current: &CurrentLabels) -> LabelPlan {
    let text = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    let mut changes = Vec::new();
    for ((dc, node), want) in desired {
        let old = current.get(&(dc.clone(), node.clone()));
        let same = old
            .is_some_and(|(_, raw)| Labels::from_json("", raw).is_ok_and(|stored| stored == *want));
        if !same {
            changes.push(LabelChange {
                dc: dc.clone(),
                node: node.clone(),
                new: Some(want.clone()),
                old: old.map(|(rev, raw)| (*rev, text(raw))),
            });
        }
    }
    for ((dc, node), (rev, raw)) in current {
        if !desired.contains_key(&(dc.clone(), node.clone())) {
            changes.push(LabelChange {
                dc: dc.clone(),
                node: node.clone(),
                new: None,
                old: Some((*rev, text(raw))),
            });
        }
    }
    changes.sort_by(|a, b| (&a.dc, &a.node).cmp(&(&b.dc, &b.node)));
    LabelPlan {
        changes,
        existing: current.len(),
    }
}

#[cfg(test)]
mod tests;
