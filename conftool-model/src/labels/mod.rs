//! Node labels: where a host is (`rack: B4`, `row: B`, `hypervisor: ganeti1021`), so that
//! fleet tools can act on a group of hosts ("every host of rack B4 in eqiad").
//!
//! Labels are static facts about a node, declared in the data directory and synced to etcd
//! like service definitions. They live outside `/v1/pools` (a contract), so no pool consumer
//! (PyBal, the Python conftool, the LB agent) ever reads them:
//!
//! ```text
//! <namespace>/v1/labels/<dc>/<node>  => {"rack":"B4","row":"B"}   (names sorted, compact JSON)
//! ```
//!
//! - [`LabelName`]: 1 to 63 of lowercase ASCII letters, digits, `_`, `-`, `.` (the names are
//!   few and chosen by people writing YAML: one spelling each, so `Rack` is refused rather
//!   than kept beside `rack`).
//! - [`LabelValue`]: a path-safe name, as node names are (ASCII letters, digits, `.`, `_`,
//!   `-`, at most 253, not `.` or `..`): racks and hosts are named like hosts.
//! - [`Labels`]: one node's labels, a map sorted by name.
//! - [`LabelSelector`]: `rack=B4` or `rack=B4,row=B`, every term must match, exactly (no
//!   regular expressions: a rack depool must not reach a rack it did not name).
//! - The keys: [`Keyspace::labels_prefix`], [`Keyspace::label_key`],
//!   [`Keyspace::parse_label_key`]; [`decode_labels`] reads a range read of them.

mod selector;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::keys::Keyspace;
use crate::names::{validate_name, Datacenter, NodeName};
use crate::write::Snapshot;

pub use selector::LabelSelector;

/// The longest label name accepted (a DNS label's limit, as Kubernetes label names).
pub const MAX_LABEL_NAME_LEN: usize = 63;

/// Which half of a label an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LabelPart {
    /// The label's name (`rack`).
    Name,
    /// The label's value (`B4`).
    Value,
}

impl fmt::Display for LabelPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabelPart::Name => "name",
            LabelPart::Value => "value",
        })
    }
}

/// An invalid label name or value: `invalid label name "Rack": may only contain lowercase
/// letters, digits, '.', '_' and '-'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label {part} {}: {reason}", crate::error::shown(input))]
pub struct LabelError {
    /// Name or value.
    pub part: LabelPart,
    /// The rejected input.
    pub input: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A validated label name, e.g. `rack`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelName(String);

/// A validated label value, e.g. `B4`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelValue(String);

fn check_name(s: &str) -> Result<(), LabelError> {
    let reason = if s.is_empty() {
        "is empty"
    } else if s.len() > MAX_LABEL_NAME_LEN {
        "is longer than 63 characters"
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        "may only contain lowercase letters, digits, '.', '_' and '-'"
    } else {
        return Ok(());
    };
    Err(LabelError {
        part: LabelPart::Name,
        input: s.to_string(),
        reason,
    })
}

fn check_value(s: &str) -> Result<(), LabelError> {
    validate_name("label value", s).map_err(|e| LabelError {
        part: LabelPart::Value,
        input: s.to_string(),
        reason: e.reason,
    })
}

macro_rules! label_str {
    ($ty:ident, $check:ident, $what:literal) => {
        impl $ty {
            /// As a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = LabelError;
            fn from_str(s: &str) -> Result<Self, LabelError> {
                $check(s)?;
                Ok(Self(s.to_string()))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

label_str!(LabelName, check_name, "a label name");
label_str!(LabelValue, check_value, "a label value (a string)");

/// One node's labels, sorted by name. Stored as compact JSON with the names sorted
/// ([`Labels::to_json`]), so the same labels are always the same bytes.
///
/// ```
/// use conftool_model::Labels;
/// let labels: Labels = [("row", "B"), ("rack", "B4")]
///     .into_iter()
///     .map(|(n, v)| Ok((n.parse()?, v.parse()?)))
///     .collect::<Result<_, conftool_model::LabelError>>()?;
/// assert_eq!(labels.to_json(), r#"{"rack":"B4","row":"B"}"#);
/// assert_eq!(labels.to_string(), "rack=B4,row=B");
/// assert_eq!(Labels::from_json("/v1/labels/eqiad/mw1018", labels.to_json().as_bytes())?, labels);
/// assert_eq!(labels.get(&"rack".parse()?).map(|v| v.as_str()), Some("B4"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<LabelName, LabelValue>);

impl Labels {
    /// No labels.
    pub fn new() -> Labels {
        Labels::default()
    }

    /// The value of one label.
    pub fn get(&self, name: &LabelName) -> Option<&LabelValue> {
        self.0.get(name)
    }

    /// Set a label; returns the value it had.
    pub fn insert(&mut self, name: LabelName, value: LabelValue) -> Option<LabelValue> {
        self.0.insert(name, value)
    }

    /// Every label, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&LabelName, &LabelValue)> {
        self.0.iter()
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No labels at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: compact JSON, names sorted (`{"rack":"B4","row":"B"}`).
    pub fn to_json(&self) -> String {
        // A map of strings to strings always serializes; the fallback is never taken.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_string())
    }

    /// Decode a stored value (the value of `key`): a JSON object of label names to string
    /// values. Anything else is [`Error::MalformedValue`] naming the key.
    pub fn from_json(key: &str, raw: &[u8]) -> Result<Labels, Error> {
        serde_json::from_slice(raw).map_err(|e| Error::MalformedValue {
            key: key.to_string(),
            reason: format!("not a node's labels ({{\"name\": \"value\", ...}}): {e}"),
        })
    }
}

impl FromIterator<(LabelName, LabelValue)> for Labels {
    fn from_iter<I: IntoIterator<Item = (LabelName, LabelValue)>>(iter: I) -> Self {
        Labels(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a LabelName, &'a LabelValue);
    type IntoIter = std::collections::btree_map::Iter<'a, LabelName, LabelValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Labels {
    /// `rack=B4,row=B`: the selector syntax (a node's labels are the selector that matches
    /// exactly them); nothing for no labels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// Every node's labels, by datacenter and node.
pub type LabelMap = BTreeMap<(Datacenter, NodeName), Labels>;

impl Keyspace {
    /// `<namespace>/v1/labels/`: every node's labels, outside `/v1/pools` so that no pool
    /// consumer sees them.
    pub fn labels_prefix(&self) -> String {
        format!("{}labels/", self.root_prefix())
    }

    /// The labels of one datacenter (`<namespace>/v1/labels/<dc>/`), or of all.
    pub fn labels_prefix_for(&self, dc: Option<&Datacenter>) -> String {
        match dc {
            Some(dc) => format!("{}{dc}/", self.labels_prefix()),
            None => self.labels_prefix(),
        }
    }

    /// The key of one node's labels: `<namespace>/v1/labels/<dc>/<node>`.
    ///
    /// ```
    /// use conftool_model::Keyspace;
    /// let ks = Keyspace::new("/conftool");
    /// let key = ks.label_key(&"eqiad".parse()?, &"mw1018".parse()?);
    /// assert_eq!(key, "/conftool/v1/labels/eqiad/mw1018");
    /// let (dc, node) = ks.parse_label_key(&key).unwrap();
    /// assert_eq!((dc.as_str(), node.as_str()), ("eqiad", "mw1018"));
    /// assert!(ks.parse_label_key("/conftool/v1/labels/eqiad").is_none());
    /// # Ok::<(), conftool_model::NameError>(())
    /// ```
    pub fn label_key(&self, dc: &Datacenter, node: &NodeName) -> String {
        self.joined("/labels/", &[dc.as_str(), node.as_str()], "")
    }

    /// Decode a labels key; `None` for anything that is not exactly
    /// `.../labels/<dc>/<node>` with valid names.
    pub fn parse_label_key(&self, key: &str) -> Option<(Datacenter, NodeName)> {
        let rest = self.under(key, "/labels/")?;
        let (dc, node) = rest.split_once('/')?;
        Some((dc.parse().ok()?, node.parse().ok()?))
    }
}

/// The labels in a range read of (part of) [`Keyspace::labels_prefix`]. Keys that are not
/// labels keys are not labels and are skipped (readers ignore what they do not know); a
/// labels key whose value does not decode is [`Error::MalformedValue`] naming it: a group
/// of hosts read with one host missing is worse than no answer (a rack "depooled" but for
/// one host), and the next sync rewrites the value.
pub fn decode_labels(ks: &Keyspace, snap: &Snapshot) -> Result<LabelMap, Error> {
    let mut out = LabelMap::new();
    for kv in &snap.kvs {
        if let Some(at) = ks.parse_label_key(&kv.key) {
            out.insert(at, Labels::from_json(&kv.key, &kv.value)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
