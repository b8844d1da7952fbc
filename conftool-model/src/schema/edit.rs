//! Editing objects of a schema-defined type, as data: what `confctl --object-type T select
//! SEL set/f=v|delete` reads ([`TypedSelection`]) and the guarded writes it makes
//! ([`TypedChange`]). Pure: the store reads and writes.
//!
//! A `set` is checked on the whole object it produces before anything is written: each field
//! value by its type, and, for json_schema types, every rule that matches the object. An
//! object already in the requested state is not rewritten (no revision bump). Stored fields
//! the schema does not declare are kept as they are.

use serde_json::{Map, Value};

use super::object::{compact_json, py_str};
use super::{ObjectError, ObjectId, ObjectType, TypeSelector};
use crate::keys::Keyspace;
use crate::write::{Guard, Snapshot, Write};

/// One object as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedObject {
    /// Which object.
    pub id: ObjectId,
    /// Its key.
    pub key: String,
    /// Its stored fields.
    pub stored: Map<String, Value>,
    /// Its stored fields in the order they are stored (`stored` is sorted by name).
    pub stored_order: Vec<String>,
    /// Its mod revision (the write's guard).
    pub mod_revision: i64,
}

/// What a selector selected from one read of a type's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedSelection {
    /// The revision read at.
    pub revision: i64,
    /// Matching objects, by key.
    pub objects: Vec<TypedObject>,
    /// Matching keys whose value is not a JSON object, with why.
    pub malformed: Vec<(String, String)>,
}

/// What to do to each selected object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedEdit {
    /// Set these fields (already parsed for their types).
    Set(Vec<(String, Value)>),
    /// Delete the object.
    Delete,
}

/// One change to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedChange {
    /// Which object.
    pub id: ObjectId,
    /// Its key.
    pub key: String,
    /// The stored value it replaces (the audit's "before").
    pub before: String,
    /// The fields as they were (effective values, for the change lines).
    pub old: Vec<(String, Value)>,
    /// The new fields in stored order (`None`: delete).
    pub new: Option<Vec<(String, Value)>>,
    /// The fields the edit sets, in the order given (the order of the change lines).
    pub set: Vec<String>,
    /// The mod revision read (the guard).
    pub mod_revision: i64,
}

impl TypedSelection {
    /// The objects of `ty` in `snap` (a read of [`ObjectType::prefix`]) that `sel` matches.
    pub fn from_snapshot(
        ks: &Keyspace,
        ty: &ObjectType,
        sel: &TypeSelector,
        snap: &Snapshot,
    ) -> Self {
        let mut out = TypedSelection {
            revision: snap.revision,
            ..TypedSelection::default()
        };
        for kv in &snap.kvs {
            let Some(id) = ty.parse_key(ks, &kv.key) else {
                continue;
            };
            if !sel.matches(&ty.tags, &id.tags, &id.name) {
                continue;
            }
            match serde_json::from_slice::<Value>(&kv.value) {
                Ok(Value::Object(stored)) => out.objects.push(TypedObject {
                    id,
                    key: kv.key.clone(),
                    stored_order: stored_order(&kv.value, &stored),
                    stored,
                    mod_revision: kv.mod_revision,
                }),
                Ok(_) => out
                    .malformed
                    .push((kv.key.clone(), "not a JSON object".into())),
                Err(e) => out.malformed.push((kv.key.clone(), e.to_string())),
            }
        }
        out
    }

    /// The changes `edit` makes, each object checked by its type first: the first object
    /// the type refuses is the error, and then nothing is to be written.
    pub fn changes(
        &self,
        ty: &ObjectType,
        edit: &TypedEdit,
    ) -> Result<Vec<TypedChange>, ObjectError> {
        let mut out = Vec::new();
        for o in &self.objects {
            if let Some(c) = change(ty, o, edit)? {
                out.push(c);
            }
        }
        Ok(out)
    }
}

/// The keys of a stored JSON object in the order they are written (a JSON map type sorts
/// them); the sorted keys if the order cannot be read.
fn stored_order(raw: &[u8], stored: &Map<String, Value>) -> Vec<String> {
    match serde_json::from_slice::<super::raw::Ordered<serde::de::IgnoredAny>>(raw) {
        Ok(o) if o.0.len() == stored.len() => o.0.into_iter().map(|(k, _)| k).collect(),
        _ => stored.keys().cloned().collect(),
    }
}

fn change(
    ty: &ObjectType,
    o: &TypedObject,
    edit: &TypedEdit,
) -> Result<Option<TypedChange>, ObjectError> {
    let old = ty.effective(&o.stored);
    let before = Value::Object(o.stored.clone()).to_string();
    let new = match edit {
        TypedEdit::Delete => None,
        TypedEdit::Set(values) => {
            let mut fields: Vec<(String, Value)> = ty
                .fields
                .iter()
                .map(|f| {
                    let set = values.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v);
                    let cur = old.iter().find(|(k, _)| *k == f.name).map(|(_, v)| v);
                    let v = set.or(cur).cloned().unwrap_or(Value::Null);
                    (f.name.clone(), v)
                })
                .collect();
            for (k, v) in values {
                if !ty.fields.iter().any(|f| f.name == *k) {
                    fields.push((k.clone(), v.clone()));
                }
            }
            ty.validate(&o.id, &fields)?;
            // Fields the schema does not know, stored by someone else: kept.
            for (k, v) in &o.stored {
                if !fields.iter().any(|(f, _)| f == k) {
                    fields.push((k.clone(), v.clone()));
                }
            }
            let same = fields.len() == o.stored.len()
                && fields.iter().all(|(k, v)| o.stored.get(k) == Some(v));
            if same {
                return Ok(None);
            }
            Some(fields)
        }
    };
    let set = match edit {
        TypedEdit::Set(values) => values.iter().map(|(k, _)| k.clone()).collect(),
        TypedEdit::Delete => Vec::new(),
    };
    Ok(Some(TypedChange {
        id: o.id.clone(),
        key: o.key.clone(),
        before,
        old,
        new,
        set,
        mod_revision: o.mod_revision,
    }))
}

impl TypedChange {
    /// The guarded write.
    pub fn write(&self) -> Write {
        let guard = Guard::Unchanged(self.mod_revision);
        match &self.new {
            Some(fields) => Write::Put {
                key: self.key.clone(),
                value: compact_json(fields),
                guard,
            },
            None => Write::Delete {
                key: self.key.clone(),
                guard,
            },
        }
    }

    /// `scope/name: field changed old => new`, one line per changed field in the order the
    /// fields were given (the Python tool's `set` lines, values as Python prints them);
    /// `scope/name: deleted`.
    pub fn lines(&self) -> Vec<String> {
        let Some(new) = &self.new else {
            return vec![format!("{}: deleted", self.id)];
        };
        self.set
            .iter()
            .filter_map(|k| new.iter().find(|(n, _)| n == k))
            .filter_map(|(k, v)| {
                let old = self.old.iter().find(|(o, _)| o == k).map(|(_, v)| v);
                (old != Some(v)).then(|| {
                    let old = old.map_or("None".to_string(), py_str);
                    format!("{}: {k} changed {old} => {}", self.id, py_str(v))
                })
            })
            .collect()
    }
}

/// Why the fields of a `set/` or `set/@FILE` cannot be written to a type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetError {
    /// A part of `set/...` that is not `field=value`.
    #[error("could not parse set instructions {spec:?}: {part:?} is not field=value")]
    NotFieldValue {
        /// Everything after `set/`.
        spec: String,
        /// The part.
        part: String,
    },
    /// A field of `set/...` the type does not have.
    #[error("field {field:?} is not in the schema of {ty} (fields: {})", known.join(", "))]
    UnknownField {
        /// The field given.
        field: String,
        /// The type.
        ty: String,
        /// The type's fields.
        known: Vec<String>,
    },
    /// A field of `set/@FILE` the type does not have.
    #[error("field {field:?} is not in the schema of {ty}")]
    NotInSchema {
        /// The field given.
        field: String,
        /// The type.
        ty: String,
    },
    /// A field given twice.
    #[error("field {field:?} given twice")]
    Twice {
        /// The field.
        field: String,
    },
    /// A value its field's type refuses.
    #[error("field {field}: {source}")]
    Value {
        /// The field.
        field: String,
        /// Why.
        source: super::FieldError,
    },
}

/// Parse `field=value[:field=value]` (after `set/`) for `ty`, each value as its field's type
/// reads it from the command line ([`super::FieldType::from_cli`]). An unknown field, a part
/// that is not `field=value`, or a value its type refuses is an error.
pub fn parse_set(ty: &ObjectType, spec: &str) -> Result<Vec<(String, Value)>, SetError> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for part in spec.split(':') {
        let mut kv = part.trim().split('=');
        let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err(SetError::NotFieldValue {
                spec: spec.into(),
                part: part.into(),
            });
        };
        let Some(f) = ty.fields.iter().find(|f| f.name == k) else {
            return Err(SetError::UnknownField {
                field: k.into(),
                ty: ty.name.clone(),
                known: ty.fields.iter().map(|f| f.name.clone()).collect(),
            });
        };
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(SetError::Twice { field: k.into() });
        }
        let value = f.ty.from_cli(v).map_err(|source| SetError::Value {
            field: k.into(),
            source,
        })?;
        out.push((k.to_string(), value));
    }
    Ok(out)
}

/// The fields of `set/@FILE` (a mapping read from YAML by the caller) for `ty`: every field
/// must be in the schema and, except for json_schema types (whose rules judge the whole
/// object), of its type. Nothing is coerced: `"12"` is not an `int`.
pub fn check_set(
    ty: &ObjectType,
    values: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>, SetError> {
    for (k, v) in &values {
        let Some(f) = ty.fields.iter().find(|f| f.name == *k) else {
            return Err(SetError::NotInSchema {
                field: k.clone(),
                ty: ty.name.clone(),
            });
        };
        if !matches!(ty.validation, super::Validation::JsonSchema(_)) {
            f.ty.check(v).map_err(|source| SetError::Value {
                field: k.clone(),
                source,
            })?;
        }
    }
    Ok(values)
}
