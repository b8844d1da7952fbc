//! Strict YAML reading: duplicate keys and unknown names are errors that point at the line.
//!
//! Deserializing straight into a map silently keeps the last of two duplicate keys, and a
//! check made after deserializing has lost its position. So the maps here are read through
//! seeds that validate each key *inside* the deserializer's visitor: the YAML library then
//! attaches the key's own line and column to the error.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::Error;

/// An extra rule for a name (e.g. "must be defined in services.yaml").
pub(crate) type Check<'a, K> = &'a dyn Fn(&K) -> Result<(), String>;

/// Accept any name.
pub(crate) fn any<K>(_: &K) -> Result<(), String> {
    Ok(())
}

/// Reads one name (a map key or a list item), validates it and applies `check`.
pub(crate) struct NameSeed<'a, K> {
    pub check: Check<'a, K>,
}

impl<'de, K> DeserializeSeed<'de> for NameSeed<'_, K>
where
    K: FromStr,
    K::Err: Display,
{
    type Value = K;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<K> Visitor<'_> for NameSeed<'_, K>
where
    K: FromStr,
    K::Err: Display,
{
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        let k: K = v.parse().map_err(E::custom)?;
        (self.check)(&k).map_err(E::custom)?;
        Ok(k)
    }
}

/// A mapping from validated names to values read by a seed made from the key; duplicate keys
/// are rejected.
pub(crate) struct MapSeed<'a, K, F> {
    pub check: Check<'a, K>,
    pub value: F,
}

impl<'de, K, F, VS> DeserializeSeed<'de> for MapSeed<'_, K, F>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
    F: Fn(&K) -> VS,
    VS: DeserializeSeed<'de>,
{
    type Value = BTreeMap<K, VS::Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, K, F, VS> Visitor<'de> for MapSeed<'_, K, F>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
    F: Fn(&K) -> VS,
    VS: DeserializeSeed<'de>,
{
    type Value = BTreeMap<K, VS::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        loop {
            let unique = |k: &K| {
                if out.contains_key(k) {
                    Err(format!("duplicate key {k}"))
                } else {
                    (self.check)(k)
                }
            };
            let Some(k) = map.next_key_seed(NameSeed { check: &unique })? else {
                return Ok(out);
            };
            let v = map.next_value_seed((self.value)(&k))?;
            out.insert(k, v);
        }
    }
}

/// A list of validated names without repeats.
pub(crate) struct NameListSeed<'a, K> {
    pub check: Check<'a, K>,
}

impl<'de, K> DeserializeSeed<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<K>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, K> Visitor<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of names")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<K>, A::Error> {
        let mut out: Vec<K> = Vec::new();
        loop {
            let unique = |k: &K| {
                if out.contains(k) {
                    Err(format!("{k} is listed twice"))
                } else {
                    (self.check)(k)
                }
            };
            match seq.next_element_seed(NameSeed { check: &unique })? {
                Some(k) => out.push(k),
                None => return Ok(out),
            }
        }
    }
}

/// A plain `Deserialize` value, as a seed (for map values that need no context).
pub(crate) fn plain<T>(_: &impl Sized) -> PhantomData<T> {
    PhantomData
}

/// Parse `text` (the contents of `file`) with `seed`, mapping errors to `file:line:column`.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    file: &Path,
    text: &'de str,
    seed: S,
) -> Result<S::Value, Error> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Error::Yaml {
            file: file.to_path_buf(),
            line: None,
            message: "file is empty".into(),
        });
    }
    let de = yaml_serde::Deserializer::from_str(text);
    seed.deserialize(de).map_err(|e| yaml_error(file, &e))
}

fn yaml_error(file: &Path, e: &yaml_serde::Error) -> Error {
    let mut message = e.to_string();
    let line = e.location().map(|loc| {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
        (loc.line(), loc.column())
    });
    Error::Yaml {
        file: file.to_path_buf(),
        line,
        message,
    }
}
