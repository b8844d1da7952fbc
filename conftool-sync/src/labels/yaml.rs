//! Reading labels from YAML, strictly and with places (see [`crate::yaml`]): a label name
//! or value that is not valid, a label given twice, a node whose labels differ between two
//! clusters of one file, each fail at their own line.
//!
//! A value is the text as written: `row: 3` is the label value `3`, `rack: 03` is `03`,
//! `rack: 1.10` is `1.10` (never a number read and printed back, which would turn `1.10`
//! into `1.1`); `true` is `true`. A YAML null (`rack:`, `rack: ~`, `rack: null`) is refused:
//! a label without a value is a mistake, and removing a label is removing its line.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use conftool_core::{Cluster, LabelName, LabelValue, Labels, NodeName};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::error::Error;
use crate::yaml::{any, MapSeed};

/// Reads one label value: the scalar's text as written, validated.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = LabelValue;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<LabelValue, D::Error> {
        // Through `option` so that a YAML null is told apart from the text "null" quoted.
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = LabelValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a label value")
    }
    fn visit_none<E: de::Error>(self) -> Result<LabelValue, E> {
        Err(E::custom(
            "a label needs a value (to remove a label, remove its line)",
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<LabelValue, E> {
        self.visit_none()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<LabelValue, D::Error> {
        d.deserialize_str(self)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<LabelValue, E> {
        v.parse().map_err(E::custom)
    }
}

/// Where a node's labels were first given in a pools file, to compare the next ones with.
#[derive(Debug, Clone)]
struct First {
    cluster: Cluster,
    labels: Labels,
}

/// A node whose labels differ between two clusters.
#[derive(Debug, Clone)]
pub(crate) struct Conflict {
    /// The node (in the error's path already; needed to find the first place).
    node: NodeName,
    first: First,
    second: Labels,
}

/// The labels of one pools file's nodes, gathered while it is read; every cluster that
/// gives a node labels must give the same ones.
#[derive(Debug, Default)]
pub(crate) struct NodeLabels {
    seen: RefCell<BTreeMap<NodeName, First>>,
    conflict: RefCell<Option<Conflict>>,
    /// Second pass: fail at this node's labels in this cluster, to learn their line.
    locate: Option<(Cluster, NodeName)>,
}

/// The marker of the second pass's stop.
const HERE: &str = "the first labels are here";

impl NodeLabels {
    /// `labels` given for `node` in `cluster`: the first time recorded, later compared.
    fn record(&self, cluster: &Cluster, node: &NodeName, labels: &Labels) -> Result<(), String> {
        if self
            .locate
            .as_ref()
            .is_some_and(|(c, n)| c == cluster && n == node)
        {
            return Err(HERE.into());
        }
        let mut seen = self.seen.borrow_mut();
        match seen.get(node) {
            None => {
                seen.insert(
                    node.clone(),
                    First {
                        cluster: cluster.clone(),
                        labels: labels.clone(),
                    },
                );
                Ok(())
            }
            Some(first) if first.labels == *labels => Ok(()),
            Some(first) => {
                let conflict = Conflict {
                    node: node.clone(),
                    first: first.clone(),
                    second: labels.clone(),
                };
                let message = conflict.describe(None);
                *self.conflict.borrow_mut() = Some(conflict);
                Err(message)
            }
        }
    }

    /// Every node's labels (those given as `{}` included, as no labels).
    fn into_labels(self) -> BTreeMap<NodeName, Labels> {
        self.seen
            .into_inner()
            .into_iter()
            .map(|(n, f)| (n, f.labels))
            .collect()
    }
}

impl Conflict {
    fn describe(&self, line: Option<usize>) -> String {
        let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
        format!(
            "labels {} differ from {} given in cluster {}{at}; a node's labels must be the \
             same in every cluster it is in",
            shown(&self.second),
            shown(&self.first.labels),
            self.first.cluster,
        )
    }
}

/// Labels as shown in a message: `{rack=B4,row=B}`, `{}` for none.
fn shown(labels: &Labels) -> String {
    format!("{{{labels}}}")
}

/// Read a pools file with `read` (which must hand `labels` to the seeds of its nodes), and
/// the labels its nodes carry. A node whose labels differ between two clusters fails at the
/// second one's line, naming the first one's: found by reading the file a second time,
/// only then (as [`crate::yaml`] finds a repeated field's line).
pub(crate) fn read_pools<T>(
    read: impl Fn(&NodeLabels) -> Result<T, Error>,
) -> Result<(T, BTreeMap<NodeName, Labels>), Error> {
    let labels = NodeLabels::default();
    match read(&labels) {
        Ok(v) => Ok((v, labels.into_labels())),
        Err(Error::Yaml {
            file,
            line,
            mut message,
        }) => {
            if let Some(conflict) = labels.conflict.take() {
                let locate = NodeLabels {
                    locate: Some((conflict.first.cluster.clone(), conflict.node.clone())),
                    ..NodeLabels::default()
                };
                if let Err(Error::Yaml {
                    line: Some((first_line, _)),
                    ..
                }) = read(&locate)
                {
                    message = message.replace(
                        &conflict.describe(None),
                        &conflict.describe(Some(first_line)),
                    );
                }
            }
            Err(Error::Yaml {
                file,
                line,
                message,
            })
        }
        Err(e) => Err(e),
    }
}

/// Reads one node's labels: `{name: value, ...}`, names and values validated, no name
/// twice; with `of`, recorded for the node (and compared with its other clusters').
pub(crate) struct LabelsSeed<'a> {
    pub of: Option<(&'a NodeLabels, &'a Cluster, &'a NodeName)>,
}

impl<'de> DeserializeSeed<'de> for LabelsSeed<'_> {
    type Value = Labels;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Labels, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed<'_> {
    type Value = Labels;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of label names to values, e.g. {rack: B4, row: B}")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Labels, A::Error> {
        let read: BTreeMap<LabelName, LabelValue> = MapSeed {
            check: &any,
            value: |_: &LabelName| ValueSeed,
        }
        .visit_map(map)?;
        let labels: Labels = read.into_iter().collect();
        if let Some((seen, cluster, node)) = self.of {
            // Failing here, inside the mapping, puts the error at the mapping's place.
            seen.record(cluster, node, &labels)
                .map_err(de::Error::custom)?;
        }
        Ok(labels)
    }
}

/// `labels/<dc>.yaml` of the Python layout: `node -> {name: value}`, every node one that
/// `node/<dc>.yaml` declares (`declared`).
pub(crate) fn parse_python_labels(
    file: &Path,
    text: &str,
    declared: &dyn Fn(&NodeName) -> Result<(), String>,
) -> Result<BTreeMap<NodeName, Labels>, Error> {
    crate::yaml::parse(
        file,
        text,
        MapSeed {
            check: declared,
            value: |_: &NodeName| LabelsSeed { of: None },
        },
    )
}
