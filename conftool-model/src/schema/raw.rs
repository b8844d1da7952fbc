//! `schema.yaml` as written: the shapes serde reads, before any cross-check.
//!
//! Mappings keep their order (the fields' order is the stored JSON's order, as in the Python
//! tool, whose dicts keep insertion order) and refuse duplicate keys (a plain map would keep
//! the last of two silently).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::field::FieldType;

/// A mapping read in order, duplicate keys refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    let v = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// The whole file: object type name -> definition.
pub type RawSchema = Ordered<RawType>;

/// One object type as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawType {
    /// Keyspace path, relative to `<namespace>/v1/`.
    pub path: String,
    /// Tag names, outermost first.
    pub tags: Vec<String>,
    /// Fields, in order.
    pub schema: Ordered<RawField>,
    /// JSON Schema rules.
    #[serde(default)]
    pub json_schema: Option<RawJsonSchema>,
    /// Fields beyond the schema allowed.
    #[serde(default)]
    pub free_form: bool,
    /// Types synced before this one.
    #[serde(default)]
    pub depends: Vec<String>,
}

/// One field as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// Its type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// The value a new object gets (required, as the Python tool requires it).
    pub default: Value,
    /// Documentation (kept by the Python tool for its help output; unused here).
    #[serde(default)]
    pub docstring: Option<String>,
    /// An example value (unused here).
    #[serde(default)]
    pub example: Option<Value>,
    /// Whether the Python tool hides it in help (unused here).
    #[serde(default)]
    pub hidden: Option<bool>,
}

/// `json_schema:` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonSchema {
    /// Directory of the JSON Schema files (the Python tool's default: `schemas`).
    #[serde(default = "default_base_path")]
    pub base_path: String,
    /// Rule name -> rule.
    #[serde(default)]
    pub rules: Ordered<RawRule>,
}

fn default_base_path() -> String {
    "schemas".into()
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// `tag=regex,...,name=regex`.
    pub selector: String,
    /// The JSON Schema file, relative to `base_path`.
    pub schema: String,
}

/// The JSON Schema files a schema needs, each as `base_path/schema` (relative paths are
/// resolved by the caller), in order, without repeats.
pub fn rule_files(raw: &RawSchema) -> Vec<String> {
    let mut seen = BTreeMap::new();
    for (_, t) in &raw.0 {
        if let Some(js) = &t.json_schema {
            for (_, r) in &js.rules.0 {
                let p = join(&js.base_path, &r.schema);
                let n = seen.len();
                seen.entry(p).or_insert(n);
            }
        }
    }
    let mut v: Vec<(String, usize)> = seen.into_iter().collect();
    v.sort_by_key(|(_, n)| *n);
    v.into_iter().map(|(p, _)| p).collect()
}

/// `os.path.join(base, file)`: an absolute `file` stands alone.
pub fn join(base: &str, file: &str) -> String {
    if file.starts_with('/') || base.is_empty() {
        file.to_string()
    } else if base.ends_with('/') {
        format!("{base}{file}")
    } else {
        format!("{base}/{file}")
    }
}
