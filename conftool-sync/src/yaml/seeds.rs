//! Seeds that read names and mappings strictly: each key is validated inside the
//! deserializer's visitor, so an error carries the key's own line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

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

/// A list of validated names without repeats (found with a set: a list of a million
/// names must not cost a million squared comparisons).
pub(crate) struct NameListSeed<'a, K> {
    pub check: Check<'a, K>,
}

impl<'de, K> DeserializeSeed<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display + Clone,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<K>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, K> Visitor<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display + Clone,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of names")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<K>, A::Error> {
        let mut out: Vec<K> = Vec::new();
        let mut seen: BTreeSet<K> = BTreeSet::new();
        loop {
            let unique = |k: &K| {
                if seen.contains(k) {
                    Err(format!("{k} is listed twice"))
                } else {
                    (self.check)(k)
                }
            };
            match seq.next_element_seed(NameSeed { check: &unique })? {
                Some(k) => {
                    seen.insert(k.clone());
                    out.push(k);
                }
                None => return Ok(out),
            }
        }
    }
}

/// A plain `Deserialize` value, as a seed (for map values that need no context).
pub(crate) fn plain<T>(_: &impl Sized) -> PhantomData<T> {
    PhantomData
}

/// One field name of a fixed set, read as a map key so that an unknown or repeated field is
/// reported at the key's own line.
pub(crate) struct FieldSeed<'a> {
    pub fields: &'static [&'static str],
    pub seen: &'a [&'static str],
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = &'static str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        let field = self
            .fields
            .iter()
            .find(|f| **f == v)
            .ok_or_else(|| E::unknown_field(v, self.fields))?;
        if self.seen.contains(field) {
            return Err(E::duplicate_field(field));
        }
        Ok(field)
    }
}
