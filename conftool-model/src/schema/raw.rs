//! `schema.yaml` as written: the shapes serde reads, before any cross-check.
//!
//! Mappings keep their order (the fields' order is the stored JSON's order, as in the Python
//! tool, whose dicts keep insertion order) and refuse duplicate keys (a plain map would keep
//! the last of two silently).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

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

/// One object type as written. What the Python tool requires is required (`path`, `tags`,
/// `schema`); keys it ignores are kept in [`RawType::ignored`] for the caller to warn about.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawType {
    /// Keyspace path, relative to `<namespace>/v1/`.
    pub path: String,
    /// Tag names, outermost first.
    pub tags: Vec<String>,
    /// Fields, in order.
    pub schema: Ordered<RawField>,
    /// JSON Schema rules. As in the Python tool, an empty mapping, `null` or `false` means
    /// none: the type is then an ordinary one.
    #[serde(default, deserialize_with = "json_schema_if_any")]
    pub json_schema: Option<RawJsonSchema>,
    /// Fields beyond the schema allowed (YAML 1.1's `yes`/`on` say so too, as in PyYAML).
    #[serde(default, deserialize_with = "yaml11_bool")]
    pub free_form: bool,
    /// Types synced before this one.
    #[serde(default)]
    pub depends: Vec<String>,
    /// Keys the Python tool ignores, in order.
    #[serde(flatten)]
    pub ignored: Ordered<IgnoredAny>,
}

/// One field as written. `default` is required (the Python tool requires it); `type` is
/// required except in `json_schema` types, whose rules validate the values (the Python
/// tool never reads it there).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawField {
    /// Its type as written (`string`, `int`, `enum:a|b`, ...).
    #[serde(rename = "type", default)]
    pub ty: Option<String>,
    /// The value a new object gets.
    pub default: Value,
    /// Documentation (kept by the Python tool for its help output; unused here).
    #[serde(default)]
    pub docstring: Option<Value>,
    /// An example value (unused here).
    #[serde(default)]
    pub example: Option<Value>,
    /// Whether the Python tool hides it in help (unused here).
    #[serde(default)]
    pub hidden: Option<Value>,
    /// Keys the Python tool ignores, in order.
    #[serde(flatten)]
    pub ignored: Ordered<IgnoredAny>,
}

/// `json_schema:` as written (the Python tool's `JsonSchemaLoader(**json_schema)`: any
/// other key is an error there too).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonSchema {
    /// Directory of the JSON Schema files (the Python tool's default: `schemas`).
    #[serde(default = "default_base_path")]
    pub base_path: String,
    /// Rule name -> rule.
    #[serde(default, deserialize_with = "rules_or_null")]
    pub rules: Ordered<RawRule>,
}

fn default_base_path() -> String {
    "schemas".into()
}

/// The forms of a boolean in YAML 1.1 (PyYAML), beyond YAML 1.2's `true`/`false`.
///
/// ```
/// use conftool_model::schema::raw::yaml11_bool_str;
/// assert_eq!(yaml11_bool_str("Yes"), Some(true));
/// assert_eq!(yaml11_bool_str("OFF"), Some(false));
/// assert_eq!(yaml11_bool_str("y"), None);
/// ```
pub fn yaml11_bool_str(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => Some(true),
        "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn yaml11_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct B;
    impl Visitor<'_> for B {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            yaml11_bool_str(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(B)
}

fn json_schema_if_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RawJsonSchema>, D::Error> {
    struct J;
    impl<'de> Visitor<'de> for J {
        type Value = Option<RawJsonSchema>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping with base_path and rules")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            if v {
                Err(E::invalid_value(de::Unexpected::Bool(v), &self))
            } else {
                Ok(None)
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let mut counted = Counting {
                inner: map,
                keys: 0,
            };
            let js =
                RawJsonSchema::deserialize(de::value::MapAccessDeserializer::new(&mut counted))?;
            // Python tests the mapping's truth: an empty one is no json_schema at all.
            Ok((counted.keys > 0).then_some(js))
        }
    }
    d.deserialize_any(J)
}

/// A map access that counts the keys it hands out.
struct Counting<A> {
    inner: A,
    keys: usize,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for &mut Counting<A> {
    type Error = A::Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let k = self.inner.next_key_seed(seed)?;
        self.keys += usize::from(k.is_some());
        Ok(k)
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

fn rules_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Ordered<RawRule>, D::Error> {
    Ok(Option::<Ordered<RawRule>>::deserialize(d)?.unwrap_or_default())
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
