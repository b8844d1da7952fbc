//! The answer of a recursive v2 read, flattened while it is parsed.
//!
//! The answer comes from a server the migration does not control, so what it costs is
//! bounded: nodes are flattened into [`V2Entry`]s as the JSON is read (no tree of the whole
//! answer is built first), the read stops at the first entry past the cap on keys, and a
//! key that appears twice (which a v2 store cannot hold) makes the answer untrustworthy.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{V2Entry, V2Kind, V2Read};

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Not the JSON of a recursive v2 read of the prefix.
    Invalid(String),
    /// More keys than the cap; the rest was not read.
    TooManyKeys {
        /// The cap.
        limit: usize,
    },
    /// A key listed twice.
    Duplicate {
        /// The key, as the server sent it.
        key: String,
    },
}

/// Parse a v2 `GET ...?recursive=true` answer into entries sorted by key (the prefix's own
/// node excluded), holding at most `max_keys` of them. Pure.
pub fn parse(body: &[u8], index: u64, prefix: &str, max_keys: usize) -> Result<V2Read, ParseError> {
    let mut flat = Flat {
        entries: Vec::new(),
        max: max_keys,
        over: false,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let root = AnswerSeed { flat: &mut flat }
        .deserialize(&mut de)
        .and_then(|root| de.end().map(|()| root));
    let root = match root {
        Ok(root) => root,
        Err(_) if flat.over => return Err(ParseError::TooManyKeys { limit: max_keys }),
        Err(e) => return Err(ParseError::Invalid(e.to_string())),
    };
    let Some(root) = root else {
        return Err(ParseError::Invalid("no node in the answer".into()));
    };
    if !root.dir {
        return Err(ParseError::Invalid(format!(
            "{prefix} is a value, not a directory of keys"
        )));
    }
    let mut entries = flat.entries;
    let under = format!("{}/", prefix.trim_end_matches('/'));
    if let Some(e) = entries.iter().find(|e| !e.key.starts_with(&under)) {
        return Err(ParseError::Invalid(format!(
            "key {} is not under {prefix}",
            conftool_core::escape_controls(&e.key)
        )));
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(pair) = entries.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(ParseError::Duplicate {
            key: pair[0].key.clone(),
        });
    }
    Ok(V2Read {
        index,
        entries,
        endpoint: String::new(),
    })
}

/// The entries read so far, against the cap.
struct Flat {
    entries: Vec<V2Entry>,
    max: usize,
    over: bool,
}

impl Flat {
    fn push<E: de::Error>(&mut self, node: Node) -> Result<(), E> {
        if self.entries.len() >= self.max {
            self.over = true;
            return Err(E::custom(format!("more than {} keys", self.max)));
        }
        let key = node.key.ok_or_else(|| E::custom("a node without a key"))?;
        let kind = match (node.dir, node.ttl, node.value) {
            (true, _, _) => V2Kind::Dir,
            (false, Some(ttl), _) => V2Kind::Expiring { ttl },
            (false, None, Some(value)) => V2Kind::Value {
                value,
                modified_index: node.modified_index,
            },
            (false, None, None) => {
                return Err(E::custom(format!(
                    "{}: a value node without a value",
                    conftool_core::escape_controls(&key)
                )))
            }
        };
        self.entries.push(V2Entry { key, kind });
        Ok(())
    }
}

/// One node's own fields (its children have gone to [`Flat`] already).
#[derive(Default)]
struct Node {
    key: Option<String>,
    value: Option<String>,
    dir: bool,
    ttl: Option<i64>,
    modified_index: u64,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum Field {
    #[serde(rename = "key")]
    Key,
    #[serde(rename = "value")]
    Value,
    #[serde(rename = "dir")]
    Dir,
    #[serde(rename = "nodes")]
    Nodes,
    #[serde(rename = "ttl")]
    Ttl,
    #[serde(rename = "modifiedIndex")]
    ModifiedIndex,
    #[serde(other)]
    Other,
}

/// `{"action": "get", "node": {...}}`: the root node, if any.
struct AnswerSeed<'a> {
    flat: &'a mut Flat,
}

impl<'de> DeserializeSeed<'de> for AnswerSeed<'_> {
    type Value = Option<Node>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed<'_> {
    type Value = Option<Node>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a v2 answer {\"node\": ...}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut root = None;
        while let Some(k) = map.next_key::<String>()? {
            if k != "node" {
                map.next_value::<IgnoredAny>()?;
            } else if root.is_some() {
                return Err(de::Error::duplicate_field("node"));
            } else {
                root = Some(map.next_value_seed(NodeSeed {
                    flat: &mut *self.flat,
                })?);
            }
        }
        Ok(root)
    }
}

/// One node: its fields are returned, its children flattened into [`Flat`] as they are read.
struct NodeSeed<'a> {
    flat: &'a mut Flat,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a v2 node")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut node = Node::default();
        let mut seen = [false; 6];
        while let Some(field) = map.next_key::<Field>()? {
            let (i, name) = match field {
                Field::Key => (0, "key"),
                Field::Value => (1, "value"),
                Field::Dir => (2, "dir"),
                Field::Nodes => (3, "nodes"),
                Field::Ttl => (4, "ttl"),
                Field::ModifiedIndex => (5, "modifiedIndex"),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // A repeated field would silently replace the first: refuse it.
            if std::mem::replace(&mut seen[i], true) {
                return Err(de::Error::duplicate_field(name));
            }
            match field {
                Field::Key => node.key = Some(map.next_value()?),
                Field::Value => node.value = map.next_value()?,
                Field::Dir => node.dir = map.next_value()?,
                Field::Nodes => map.next_value_seed(ChildrenSeed {
                    flat: &mut *self.flat,
                })?,
                Field::Ttl => node.ttl = map.next_value()?,
                Field::ModifiedIndex => node.modified_index = map.next_value()?,
                Field::Other => {}
            }
        }
        Ok(node)
    }
}

/// A node's `nodes`: each child flattened (after its own children) as soon as it is read.
struct ChildrenSeed<'a> {
    flat: &'a mut Flat,
}

impl<'de> DeserializeSeed<'de> for ChildrenSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChildrenSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of v2 nodes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(node) = seq.next_element_seed(NodeSeed {
            flat: &mut *self.flat,
        })? {
            self.flat.push(node)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TREE: &[u8] = br#"{"action":"get","node":{"key":"/conftool","dir":true,"nodes":[
        {"key":"/conftool/v1","dir":true,"nodes":[
            {"key":"/conftool/v1/pools","dir":true,"nodes":[
                {"key":"/conftool/v1/pools/b","value":"{\"pooled\": \"no\"}","modifiedIndex":9},
                {"key":"/conftool/v1/pools/a","value":"x","modifiedIndex":8,"createdIndex":8}
            ]},
            {"key":"/conftool/v1/empty","dir":true},
            {"key":"/conftool/v1/lock","value":"me","ttl":30,"modifiedIndex":7}
        ]}]}}"#;

    #[test]
    fn a_tree_is_flattened_in_key_order() {
        let r = parse(TREE, 42, "/conftool", 100).unwrap();
        assert_eq!(r.index, 42);
        let keys: Vec<&str> = r.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/conftool/v1",
                "/conftool/v1/empty",
                "/conftool/v1/lock",
                "/conftool/v1/pools",
                "/conftool/v1/pools/a",
                "/conftool/v1/pools/b"
            ]
        );
        assert_eq!(r.entries[2].kind, V2Kind::Expiring { ttl: 30 });
        assert_eq!(
            r.entries[5].kind,
            V2Kind::Value {
                value: "{\"pooled\": \"no\"}".into(),
                modified_index: 9
            }
        );
    }

    #[test]
    fn the_cap_on_keys_stops_the_read_at_the_first_key_past_it() {
        assert_eq!(parse(TREE, 0, "/conftool", 6).unwrap().entries.len(), 6);
        assert_eq!(
            parse(TREE, 0, "/conftool", 5).unwrap_err(),
            ParseError::TooManyKeys { limit: 5 }
        );
        // Stopped where it was: what follows is not even looked at.
        let mut body = TREE[..TREE.len() - 4].to_vec();
        body.extend_from_slice(b",{\"key\": garbage");
        assert_eq!(
            parse(&body, 0, "/conftool", 2).unwrap_err(),
            ParseError::TooManyKeys { limit: 2 }
        );
    }

    #[test]
    fn a_key_sent_twice_is_refused() {
        let twice = br#"{"node":{"key":"/c","dir":true,"nodes":[
            {"key":"/c/a","value":"{}"},{"key":"/c/b","value":"{}"},{"key":"/c/a","value":"[]"}]}}"#;
        assert_eq!(
            parse(twice, 0, "/c", 10).unwrap_err(),
            ParseError::Duplicate { key: "/c/a".into() }
        );
        // A node with two keys (or two of any field) is refused too, not read as its last.
        let two_keys = br#"{"node":{"key":"/c","dir":true,"nodes":[{"key":"/c/a","key":"/c/b","value":"{}"}]}}"#;
        let e = parse(two_keys, 0, "/c", 10).unwrap_err();
        assert!(
            matches!(&e, ParseError::Invalid(m) if m.contains("duplicate field `key`")),
            "{e:?}"
        );
    }

    #[test]
    fn foreign_keys_and_garbage_are_refused_with_keys_escaped() {
        let outside = b"{\"node\":{\"key\":\"/conftool\",\"dir\":true,\"nodes\":[{\"key\":\"/other/\\u001b[2J\",\"value\":\"1\"}]}}";
        let e = parse(outside, 0, "/conftool", 10).unwrap_err();
        assert_eq!(
            e,
            ParseError::Invalid(r"key /other/\x1b[2J is not under /conftool".into())
        );
        for bad in [
            &b"<html>"[..],
            br#"{"node":{"key":"/c","dir":true,"nodes":[{"key":"/c/x"}]}}"#,
            br#"{"node":{"key":"/c","dir":true,"nodes":[{"value":"1"}]}}"#,
            br#"{"node":{"key":"/c","value":"1"}}"#,
            br#"{"action":"get"}"#,
            br#"{"node":{"key":"/c","dir":true}} trailing"#,
        ] {
            let e = parse(bad, 0, "/c", 10).unwrap_err();
            assert!(matches!(e, ParseError::Invalid(_)), "{e:?}");
        }
    }
}
