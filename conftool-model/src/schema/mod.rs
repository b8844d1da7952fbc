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
//!   and compiles the rules ([`Rule`]), given the parsed JSON Schema files; what it accepts
//!   is what the Python tool's `loader.factory` accepts, and what that tool ignores is kept
//!   as a [`SchemaNote`] for the caller to say.
//! - [`draft`] and `rule_file`: a rule file read as python-jsonschema reads it (its draft;
//!   ids, `$ref`, formats).
//! - [`field`]: [`FieldType`] and the check of one value.
//! - [`select`]: [`TypeSelector`], `tag=regex,...,name=regex`.
//! - [`object`]: an object's key, stored JSON, validation and the Python tool's output.
//! - [`edit`]: `confctl` on a type: what a selector selected ([`TypedSelection`]), the
//!   changes a `set` or `delete` makes ([`TypedChange`]), `set/` parsing ([`parse_set`]).
//! - [`upgrade`]: `upgrade-schema`, the missing fields of every object ([`UpgradePlan`]).

mod build;
pub mod draft;
pub mod edit;
pub mod field;
pub mod object;
pub mod raw;
mod rule_file;
pub mod rules;
pub mod select;
pub mod upgrade;

use std::collections::BTreeMap;

use serde_json::Value;

pub use draft::{Draft, RuleFileError};
pub use edit::{
    check_set, parse_set, SetError, TypedChange, TypedEdit, TypedObject, TypedSelection,
};
pub use field::{FieldError, FieldType, UnknownFieldType};
pub use object::{BadName, ObjectError, ObjectId};
pub use raw::{rule_files, RawSchema};
pub use rules::{Rule, RuleViolation};
pub use select::{SelectorError, TypeSelector};
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
/// finds the type's line; for an error inside a rule's JSON Schema file, [`SchemaError::rule_file`]
/// says which file and where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object type {ty}{}: {reason}", at.as_ref().map(|a| format!(", {a}")).unwrap_or_default())]
pub struct SchemaError {
    /// The object type.
    pub ty: String,
    /// The field or rule (`field weight`, `rule catchall`), if the error is about one.
    pub at: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The rule's file (`base_path/schema`) and the JSON pointer of the part at fault, when
    /// the error is in that file.
    pub rule_file: Option<(String, Option<String>)>,
}

fn err(ty: &str, at: Option<String>, reason: impl Into<String>) -> SchemaError {
    SchemaError {
        ty: ty.to_string(),
        at,
        reason: reason.into(),
        rule_file: None,
    }
}

/// Something the schema says that is read as the Python tool reads it, though it may not
/// be what its author meant (a key the tool ignores, an unknown `$schema`): accepted, and
/// for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaNote {
    /// The object type.
    pub ty: String,
    /// The key, field or rule it is about (`key descripton`, `field port`, `rule catchall`).
    pub at: Option<String>,
    /// What was read, and how.
    pub message: String,
}

impl std::fmt::Display for SchemaNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object type {}", self.ty)?;
        if let Some(at) = &self.at {
            write!(f, ", {at}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One field of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type. In a `json_schema` type, whose rules judge the values, it only says how a
    /// command-line value is read: as declared, or, for a field declared without one (the
    /// Python tool ignores it there), as its default's kind ([`FieldType::of_default`]).
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
    /// What was accepted as the Python tool reads it but may surprise (see [`SchemaNote`]).
    pub notes: Vec<SchemaNote>,
}

impl Schema {
    /// Check `raw` and compile its rules; `files` holds the parsed JSON Schema files by the
    /// names [`rule_files`] gave.
    pub fn build(raw: RawSchema, files: &BTreeMap<String, Value>) -> Result<Schema, SchemaError> {
        let mut types: Vec<ObjectType> = Vec::new();
        let mut notes = Vec::new();
        for (name, t) in raw.0 {
            let ty = build::build_type(&name, t, files, &mut notes)?;
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
        let schema = Schema { types, notes };
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_build;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_python;
