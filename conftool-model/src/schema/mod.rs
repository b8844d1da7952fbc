//! Object types declared by the Python conftool's schema file (`--schema schema.yaml`).
//!
//! ```yaml
//! mwconfig:
//!   path: mediawiki-config          # keys under <namespace>/v1/mediawiki-config/
//!   tags: [scope]                   # then <scope>/<name>
//!   depends: []                     # types synced before this one
//!   schema:                         # fields, in the order they are stored
//!     val: {type: any, default: null}
//!   json_schema:                    # or `free_form: true`, or neither
//!     base_path: schemas
//!     rules:
//!       catchall: {selector: "name=.*", schema: val.schema}
//! ```
//!
//! - [`raw`]: the file as written ([`RawSchema`]), read by the caller's YAML parser (which
//!   knows lines); [`rule_files`] lists the JSON Schema files it needs.
//! - `Schema::build`: cross-checks (names, paths, tags, defaults, `depends` and its cycles)
//!   and compiles the rules ([`Rule`]), given the parsed JSON Schema files.
//! - [`field`]: [`FieldType`] and the check of one value.
//! - [`select`]: [`TypeSelector`], `tag=regex,...,name=regex`.
//! - [`object`]: an object's key, stored JSON, validation and the Python tool's output.
//! - [`edit`]: `confctl` on a type: what a selector selected ([`TypedSelection`]), the
//!   changes a `set` or `delete` makes ([`TypedChange`]), `set/` parsing ([`parse_set`]).
//! - [`upgrade`]: `upgrade-schema`, the missing fields of every object ([`UpgradePlan`]).

pub mod edit;
pub mod field;
pub mod object;
pub mod raw;
pub mod rules;
pub mod select;
pub mod upgrade;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::names::validate_name;
pub use edit::{check_set, parse_set, TypedChange, TypedEdit, TypedObject, TypedSelection};
pub use field::FieldType;
pub use object::{ObjectError, ObjectId};
pub use raw::{rule_files, RawSchema};
pub use rules::Rule;
pub use select::TypeSelector;
pub use upgrade::{Upgrade, UpgradePlan};

/// The name of the built-in type (pool objects), which a schema may not redefine.
pub const NODE_TYPE: &str = "node";

/// First path segments of the keyspace conftool-rs owns (DESIGN.md), which no schema type may
/// map onto: pool objects (`pools`: the built-in `node` type's, the Python tool's
/// `pools_path`), service definitions (`services`: written by the sync only, from the data
/// directory's `services.yaml`, so that a schema, which a caller may bring with `--schema`,
/// can never rewrite a depool threshold or a port), the sync record (`meta`) and the
/// fleet-wide tools' keys (`labels`, `operations`, `locks`, `stop`, `rebootmgr`, `maint`).
/// (The Python tool's built-in `service` type, at `services`, is not a schema type either:
/// its definitions come from `services.yaml`.)
pub const RESERVED_PATHS: &[&str] = &[
    "pools",
    "services",
    "meta",
    "labels",
    "operations",
    "locks",
    "stop",
    "rebootmgr",
    "maint",
];

/// A refused schema: which type (and field or rule) and why. The caller knows the file and
/// finds the type's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object type {ty}{}: {reason}", at.as_ref().map(|a| format!(", {a}")).unwrap_or_default())]
pub struct SchemaError {
    /// The object type.
    pub ty: String,
    /// The field or rule (`field weight`, `rule catchall`), if the error is about one.
    pub at: Option<String>,
    /// What is wrong.
    pub reason: String,
}

fn err(ty: &str, at: Option<String>, reason: impl Into<String>) -> SchemaError {
    SchemaError {
        ty: ty.to_string(),
        at,
        reason: reason.into(),
    }
}

/// One field of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: FieldType,
    /// What a new object gets.
    pub default: Value,
}

/// How a type's objects are validated beyond their fields' types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Only the declared fields, each of its type.
    Fields,
    /// The declared fields of their types, and any other fields.
    FreeForm,
    /// JSON Schema rules (the declared types are not checked, as in the Python tool, whose
    /// json_schema types treat every field as `any`).
    JsonSchema(Vec<Rule>),
}

/// One declared object type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectType {
    /// Its name (also its data directory's name).
    pub name: String,
    /// Its keyspace path, relative to `<namespace>/v1/`, without slashes at either end.
    pub path: String,
    /// Tag names, outermost first.
    pub tags: Vec<String>,
    /// Fields in stored order.
    pub fields: Vec<Field>,
    /// Extra validation.
    pub validation: Validation,
    /// Types synced before this one.
    pub depends: Vec<String>,
}

/// Every declared type, in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// The types.
    pub types: Vec<ObjectType>,
}

impl Schema {
    /// Check `raw` and compile its rules; `files` holds the parsed JSON Schema files by the
    /// names [`rule_files`] gave.
    pub fn build(raw: RawSchema, files: &BTreeMap<String, Value>) -> Result<Schema, SchemaError> {
        let mut types: Vec<ObjectType> = Vec::new();
        for (name, t) in raw.0 {
            let ty = build_type(&name, t, files)?;
            if let Some(other) = types.iter().find(|o| overlaps(&o.path, &ty.path)) {
                return Err(err(
                    &name,
                    None,
                    format!(
                        "path {:?} overlaps type {}'s path {:?}",
                        ty.path, other.name, other.path
                    ),
                ));
            }
            types.push(ty);
        }
        let schema = Schema { types };
        for t in &schema.types {
            for d in &t.depends {
                if schema.get(d).is_none() {
                    return Err(err(
                        &t.name,
                        None,
                        format!("depends on {d:?}, which is not declared"),
                    ));
                }
            }
        }
        schema.order()?;
        Ok(schema)
    }

    /// The type called `name`.
    pub fn get(&self, name: &str) -> Option<&ObjectType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Every type, each after the types it depends on (otherwise in the file's order); a
    /// dependency loop is an error naming it.
    pub fn order(&self) -> Result<Vec<&ObjectType>, SchemaError> {
        let mut done: Vec<&ObjectType> = Vec::new();
        for t in &self.types {
            self.visit(t, &mut Vec::new(), &mut done)?;
        }
        Ok(done)
    }

    fn visit<'a>(
        &'a self,
        t: &'a ObjectType,
        chain: &mut Vec<&'a str>,
        done: &mut Vec<&'a ObjectType>,
    ) -> Result<(), SchemaError> {
        if done.iter().any(|d| d.name == t.name) {
            return Ok(());
        }
        if chain.contains(&t.name.as_str()) {
            let mut loop_: Vec<&str> = chain.clone();
            loop_.push(&t.name);
            let first = loop_.first().copied().unwrap_or(&t.name);
            return Err(err(
                first,
                None,
                format!("dependency loop: {}", loop_.join(" => ")),
            ));
        }
        chain.push(&t.name);
        for d in &t.depends {
            if let Some(dt) = self.get(d) {
                self.visit(dt, chain, done)?;
            }
        }
        chain.pop();
        done.push(t);
        Ok(())
    }
}

/// Whether one path is the other or lies under it.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
    under(a, b) || under(b, a)
}

fn build_type(
    name: &str,
    t: raw::RawType,
    files: &BTreeMap<String, Value>,
) -> Result<ObjectType, SchemaError> {
    validate_name("object type", name).map_err(|e| err(name, None, e.to_string()))?;
    if name == NODE_TYPE {
        return Err(err(name, None, "node is built in and cannot be redefined"));
    }
    let path = t.path.trim_end_matches('/');
    if path.starts_with('/') {
        return Err(err(
            name,
            None,
            format!("path {path:?} is absolute: keys outside <namespace>/v1/ are not supported"),
        ));
    }
    for seg in path.split('/') {
        validate_name("path segment", seg)
            .map_err(|e| err(name, None, format!("path {path:?}: {e}")))?;
    }
    if let Some(first) = path
        .split('/')
        .next()
        .filter(|f| RESERVED_PATHS.contains(f))
    {
        return Err(err(
            name,
            None,
            format!("path {path:?} is inside {first}/, which conftool-rs owns"),
        ));
    }
    for (i, tag) in t.tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(err(
                name,
                None,
                format!("tag {tag:?}: tags are letters, digits, '_' and '-'"),
            ));
        }
        if tag == "name" || t.tags[..i].contains(tag) {
            return Err(err(
                name,
                None,
                format!("tag {tag:?} is reserved or repeated"),
            ));
        }
    }
    let mut fields = Vec::new();
    for (fname, f) in t.schema.0 {
        if fname.is_empty() {
            return Err(err(name, None, "a field has an empty name"));
        }
        let checked = t.json_schema.is_none();
        if checked && !f.default.is_null() {
            f.ty.check(&f.default)
                .map_err(|e| err(name, Some(format!("field {fname}")), format!("default {e}")))?;
        }
        fields.push(Field {
            name: fname,
            ty: f.ty,
            default: f.default,
        });
    }
    let validation = match (t.json_schema, t.free_form) {
        (Some(_), true) => {
            return Err(err(
                name,
                None,
                "json_schema and free_form exclude each other",
            ))
        }
        (None, true) => Validation::FreeForm,
        (None, false) => Validation::Fields,
        (Some(js), false) => {
            let mut rules = Vec::new();
            for (rname, r) in js.rules.0 {
                let at = Some(format!("rule {rname}"));
                let selector = TypeSelector::parse(&r.selector, &t.tags)
                    .map_err(|e| err(name, at.clone(), format!("selector: {e}")))?;
                let file = raw::join(&js.base_path, &r.schema);
                let schema = files.get(&file).cloned().ok_or_else(|| {
                    err(name, at.clone(), format!("schema file {file} was not read"))
                })?;
                let rule = Rule::new(&rname, selector, &file, schema)
                    .map_err(|e| err(name, at.clone(), format!("{file}: {e}")))?;
                rules.push(rule);
            }
            Validation::JsonSchema(rules)
        }
    };
    Ok(ObjectType {
        name: name.to_string(),
        path: path.to_string(),
        tags: t.tags,
        fields,
        validation,
        depends: t.depends,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
