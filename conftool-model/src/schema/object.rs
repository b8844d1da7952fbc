//! One object of a schema-defined type: its key, the JSON a new object is stored as, the
//! check of a whole object, and the lines the Python tool prints for it.
//!
//! Keys are `<namespace>/v1/<path>/<tag values...>/<name>`, as the Python tool's
//! `os.path.join(namespace, "v1", path, *tags, name)`; every tag value and the name is a
//! path-safe name ([`check_name`]).

use serde_json::{Map, Value};

use super::field::short;
use super::{ObjectType, Validation};
use crate::keys::Keyspace;
use crate::names::MAX_NAME_LEN;

/// Whether `s` may be a tag value or an object name: 1 to 253 ASCII letters, digits, `.`,
/// `_`, `-` and `:` (the names of pool objects, plus the `host:port` of database instances),
/// not `.` or `..`: one key segment, never a path.
///
/// ```
/// use conftool_model::schema::object::check_name;
/// assert!(check_name("db1001:3306").is_ok());
/// assert!(check_name("a/b").is_err());
/// assert!(check_name("..").is_err());
/// ```
pub fn check_name(s: &str) -> Result<(), BadName> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(BadName {
            name: short(&Value::from(s)),
        })
    }
}

/// A tag value or object name that is not one key segment ([`check_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid name {name}: 1 to {MAX_NAME_LEN} letters, digits, '.', '_', '-' or ':', not . or .."
)]
pub struct BadName {
    /// The name, as JSON, cut short.
    pub name: String,
}

/// An object of some type: its tag values (in the type's tag order) and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// Tag values, outermost first.
    pub tags: Vec<String>,
    /// The object's name.
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    /// `tag/values/name`, as the Python tool's `pprint`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for t in &self.tags {
            write!(f, "{t}/")?;
        }
        f.write_str(&self.name)
    }
}

/// An object refused by its type: which object, which field or rule, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ty} {id}: {what}: {reason}")]
pub struct ObjectError {
    /// The type's name.
    pub ty: String,
    /// The object (`tags/name`).
    pub id: String,
    /// `field F` or `rule R`.
    pub what: String,
    /// Why.
    pub reason: String,
}

impl ObjectType {
    /// `<namespace>/v1/<path>/`: every key of this type.
    pub fn prefix(&self, ks: &Keyspace) -> String {
        format!("{}{}/", ks.root_prefix(), self.path)
    }

    /// The key of one object.
    pub fn key(&self, ks: &Keyspace, id: &ObjectId) -> String {
        format!("{}{id}", self.prefix(ks))
    }

    /// Decode a key of this type; `None` unless it has exactly one segment per tag plus the
    /// name, each a valid name.
    pub fn parse_key(&self, ks: &Keyspace, key: &str) -> Option<ObjectId> {
        self.parse_relative(key.strip_prefix(&ks.root_prefix())?)
    }

    /// [`ObjectType::parse_key`] of a key relative to `<namespace>/v1/`.
    pub fn parse_relative(&self, rel: &str) -> Option<ObjectId> {
        let rest = rel.strip_prefix(&self.path)?.strip_prefix('/')?;
        let mut parts: Vec<String> = rest.split('/').map(str::to_string).collect();
        if parts.len() != self.tags.len() + 1 || parts.iter().any(|p| check_name(p).is_err()) {
            return None;
        }
        let name = parts.pop()?;
        Some(ObjectId { tags: parts, name })
    }

    /// A new object's fields: every field's default, in schema order.
    pub fn defaults(&self) -> Vec<(String, Value)> {
        self.fields
            .iter()
            .map(|f| (f.name.clone(), f.default.clone()))
            .collect()
    }

    /// The fields the Python tool shows for a stored value: each schema field's stored value,
    /// or its default where it is missing or null; then, for free-form types, the other
    /// stored fields, in stored order (JSON objects keep their order: serde_json's
    /// `preserve_order`, as Python's dicts do).
    pub fn effective(&self, stored: &Map<String, Value>) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = self
            .fields
            .iter()
            .map(|f| {
                let v = stored.get(&f.name).filter(|v| !v.is_null());
                (
                    f.name.clone(),
                    v.cloned().unwrap_or_else(|| f.default.clone()),
                )
            })
            .collect();
        if self.validation == Validation::FreeForm {
            for (k, v) in stored {
                if !self.fields.iter().any(|f| &f.name == k) {
                    out.push((k.clone(), v.clone()));
                }
            }
        }
        out
    }

    /// Check a whole object: each declared field of its type (except for json_schema types),
    /// no undeclared field (except for free-form types), and every JSON Schema rule whose
    /// selector matches the object.
    pub fn validate(&self, id: &ObjectId, fields: &[(String, Value)]) -> Result<(), ObjectError> {
        let fail = |what: String, reason: String| ObjectError {
            ty: self.name.clone(),
            id: id.to_string(),
            what,
            reason,
        };
        for (k, v) in fields {
            match self.fields.iter().find(|f| &f.name == k) {
                Some(f) => {
                    let unchecked = matches!(self.validation, Validation::JsonSchema(_))
                        || (v.is_null() && f.default.is_null());
                    if !unchecked {
                        f.ty.check(v)
                            .map_err(|e| fail(format!("field {k}"), e.to_string()))?;
                    }
                }
                None if self.validation == Validation::FreeForm => {}
                None => {
                    return Err(fail(
                        format!("field {k}"),
                        format!("not in the schema of {} (value {})", self.name, short(v)),
                    ))
                }
            }
        }
        if let Validation::JsonSchema(rules) = &self.validation {
            let doc = Value::Object(fields.iter().cloned().collect());
            for r in rules {
                if r.selector.matches(&self.tags, &id.tags, &id.name) {
                    r.validate(&doc).map_err(|e| {
                        fail(format!("rule {} ({})", r.name, r.file), e.to_string())
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The Python tool's `get` line: `{"<name>": {fields...}, "tags": "t=v,..."}`, with its
    /// `json.dumps` spacing and ASCII escapes.
    pub fn py_line(&self, id: &ObjectId, fields: &[(String, Value)]) -> String {
        let tags: Vec<String> = self
            .tags
            .iter()
            .zip(&id.tags)
            .map(|(t, v)| format!("{t}={v}"))
            .collect();
        format!(
            "{{{}: {}, \"tags\": {}}}",
            py_json(&Value::from(id.name.as_str())),
            py_object(fields),
            py_json(&Value::from(tags.join(",")))
        )
    }
}

/// Fields as a compact JSON object, in the order given (what is stored in etcd).
pub fn compact_json(fields: &[(String, Value)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Python's `json.dumps` of fields in order.
fn py_object(fields: &[(String, Value)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {}", py_json(&Value::from(k.as_str())), py_json(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Python's `json.dumps(v)`: `", "` and `": "` separators, non-ASCII as `\uXXXX`.
pub fn py_json(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            for c in Value::from(s.as_str()).to_string().chars() {
                if c.is_ascii() {
                    out.push(c);
                } else {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
            out
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_json).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let fields: Vec<(String, Value)> =
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            py_object(&fields)
        }
        other => other.to_string(),
    }
}

/// Python's `str(v)` of a value read from JSON (`True`, `None`, `['a', 'b']`, `{'k': 1}`),
/// as the Python tool's `set` prints old and new values.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::from(k.as_str())), py_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}
