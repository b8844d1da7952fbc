//! The data files of schema-defined types: `DIR/<type>/*.yaml`, nested mappings by the
//! type's tags (outermost first) and, at the leaf, a list of object names (or a mapping,
//! whose keys are the names). A type without tags is a list of names. Every tag value and
//! name is a path-safe name, checked where it is read, so an error has its line.
//!
//! ```yaml
//! # mwconfig/config.yaml, tags [scope]
//! common: [WMFMasterDatacenter, ReadOnly]
//! eqiad: [ReadOnly]
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use conftool_core::schema::object::check_name;
use conftool_core::schema::{ObjectId, ObjectType};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::caps::Budget;
use crate::error::Error;
use crate::source::Files;
use crate::yaml::parse;

/// What the directory declares for one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedDesired {
    /// The type.
    pub ty: ObjectType,
    /// Its objects.
    pub objects: BTreeSet<ObjectId>,
}

/// The declared objects of every type of `types` (in that order) whose directory holds files.
/// A type without a directory is not the directory's to manage: its objects are left alone,
/// as the Python tool leaves them.
pub fn load_typed(files: &Files, types: &[&ObjectType]) -> Result<Vec<TypedDesired>, Error> {
    load_typed_counted(files, types, &Budget::new(usize::MAX))
}

/// [`load_typed`], each object read counted against `budget` (shared with the pool
/// objects), the read stopping at the first one past it.
pub(crate) fn load_typed_counted(
    files: &Files,
    types: &[&ObjectType],
    budget: &Budget,
) -> Result<Vec<TypedDesired>, Error> {
    let mut out = Vec::new();
    for ty in types {
        let mut objects = BTreeSet::new();
        let mut seen = false;
        for (rel, text) in &files.files {
            let mut parts = rel.iter();
            if parts.next().and_then(|p| p.to_str()) != Some(ty.name.as_str()) {
                continue;
            }
            seen = true;
            let file = files.display_path(rel);
            objects.extend(parse_file(&file, text, ty, budget)?);
        }
        if seen {
            out.push(TypedDesired {
                ty: (*ty).clone(),
                objects,
            });
        }
    }
    Ok(out)
}

fn parse_file(
    file: &Path,
    text: &str,
    ty: &ObjectType,
    budget: &Budget,
) -> Result<Vec<ObjectId>, Error> {
    parse(
        file,
        text,
        TreeSeed {
            tags: &ty.tags,
            above: Vec::new(),
            budget,
        },
    )
}

/// One level of the tree: a mapping by the next tag, or the leaf of names.
struct TreeSeed<'a> {
    /// The tags still to read.
    tags: &'a [String],
    /// The tag values read above.
    above: Vec<String>,
    /// Objects read so far, against the cap.
    budget: &'a Budget,
}

impl<'de> DeserializeSeed<'de> for TreeSeed<'_> {
    type Value = Vec<ObjectId>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.tags.is_empty() {
            d.deserialize_any(self)
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for TreeSeed<'_> {
    type Value = Vec<ObjectId>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tags.first() {
            Some(tag) => write!(f, "a mapping by {tag}"),
            None => f.write_str("a list of object names"),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        let mut keys = BTreeSet::new();
        let kind = self.tags.first().map_or("object", |t| t.as_str());
        // Duplicates are refused inside the key's visitor, so the error has the key's line.
        while let Some(key) = map.next_key_seed(Name(kind, Some(&keys)))? {
            keys.insert(key.clone());
            match self.tags.split_first() {
                Some((_, rest)) => {
                    let mut above = self.above.clone();
                    above.push(key);
                    out.extend(map.next_value_seed(TreeSeed {
                        tags: rest,
                        above,
                        budget: self.budget,
                    })?);
                }
                None => {
                    self.budget.take_one().map_err(de::Error::custom)?;
                    map.next_value::<IgnoredAny>()?;
                    out.push(ObjectId {
                        tags: self.above.clone(),
                        name: key,
                    });
                }
            }
        }
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(name) = seq.next_element_seed(Name("object", None))? {
            self.budget.take_one().map_err(de::Error::custom)?;
            out.push(ObjectId {
                tags: self.above.clone(),
                name,
            });
        }
        Ok(out)
    }
}

/// A tag value or an object name, validated; as a mapping key, not one of those seen.
struct Name<'a>(&'a str, Option<&'a BTreeSet<String>>);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Name<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name", self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        // The kind is 'static in NameError; the tag is named in the message instead.
        check_name(v).map_err(|e| E::custom(format!("{} ({})", e, self.0)))?;
        if self.1.is_some_and(|seen| seen.contains(v)) {
            return Err(E::custom(format!("duplicate key {v:?}")));
        }
        Ok(v.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use conftool_core::schema::raw::RawSchema;
    use conftool_core::schema::Schema;

    fn schema() -> Schema {
        let raw: RawSchema = serde_json::from_str(
            r#"{"flat": {"path": "flat", "tags": [], "schema": {}},
                "two": {"path": "two", "tags": ["dc", "section"], "schema": {}}}"#,
        )
        .unwrap();
        Schema::build(raw, &Default::default()).unwrap()
    }

    #[test]
    fn trees_of_every_depth() {
        let s = schema();
        let files = Files::in_memory(
            "d",
            vec![
                ("flat/a.yaml".into(), "[x, y]\n".into()),
                ("flat/b.yaml".into(), "z: whatever\n".into()),
                (
                    "two/eqiad.yaml".into(),
                    "eqiad:\n  s1: [db1, \"db2:3306\"]\n  s2: {db3: 1}\n".into(),
                ),
            ],
        );
        let types: Vec<&ObjectType> = s.types.iter().collect();
        let got = load_typed(&files, &types).unwrap();
        let names: Vec<Vec<String>> = got
            .iter()
            .map(|t| t.objects.iter().map(ToString::to_string).collect())
            .collect();
        assert_eq!(names[0], vec!["x", "y", "z"]);
        assert_eq!(
            names[1],
            vec!["eqiad/s1/db1", "eqiad/s1/db2:3306", "eqiad/s2/db3"]
        );
    }

    #[test]
    fn objects_are_counted_against_the_cap_as_they_are_read() {
        let s = schema();
        let types: Vec<&ObjectType> = s.types.iter().collect();
        let files = Files::in_memory(
            "d",
            vec![
                ("flat/a.yaml".into(), "[x, y]\n".into()),
                (
                    "two/eqiad.yaml".into(),
                    "eqiad:\n  s1: {db1: 1, db2: 2}\n".into(),
                ),
            ],
        );
        assert!(load_typed_counted(&files, &types, &Budget::new(4)).is_ok());
        let budget = Budget::new(3);
        let e = load_typed_counted(&files, &types, &budget).unwrap_err();
        assert!(budget.is_over());
        assert!(e.to_string().starts_with("d/two/eqiad.yaml:2:"), "{e}");
        let budget = Budget::new(1);
        let e = load_typed_counted(&files, &types, &budget).unwrap_err();
        assert!(budget.is_over());
        assert!(e.to_string().starts_with("d/flat/a.yaml:1:"), "{e}");
    }

    #[test]
    fn errors_have_lines() {
        let s = schema();
        let types: Vec<&ObjectType> = s.types.iter().collect();
        for (text, want) in [
            ("eqiad:\n  s1: [db1, \"bad/name\"]\n", "d/two/x.yaml:2:"),
            ("eqiad: [db1]\n", "d/two/x.yaml:1:"),
            ("eqiad:\n  s1: [a]\n  s1: [b]\n", "d/two/x.yaml:3:"),
        ] {
            let files = Files::in_memory("d", vec![("two/x.yaml".into(), text.into())]);
            let e = load_typed(&files, &types).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text}: {e}");
        }
    }
}
