//! `confctl --object-type TYPE select SELECTOR ACTION` for a type of the Python tool's schema
//! file: the same grammar and output as for nodes (`get` prints the Python tool's lines),
//! with the type's tags (plus `name`) as selector tags and its fields as `set/` fields: a
//! [`Kind`] of the one flow (`pipeline.rs`) that node objects go through too, for `select`
//! and for each `--action` of `confctl --object-type TYPE tags ...`.

use std::path::{Path, PathBuf};

use conftool_core::schema::raw::Ordered;
use conftool_core::schema::{
    check_set, parse_set, ObjectType, Schema, TypeSelector, TypedChange, TypedEdit, TypedObject,
    TypedSelection,
};
use conftool_core::{escape_controls, Overrides, Store, Writer};
use conftool_sync::{read_schema_as, DEFAULT_SCHEMA};
use conftool_trust::{Origin, Privilege};
use serde_json::{json, Map, Value};

use super::pipeline::{Act, Kind};
use crate::commands::changes::{stopped, Landed};
use crate::exit::BadInput;

/// The schema: `--schema FILE` (the caller's: for another user, one they could read),
/// else the Python tool's default file if it exists (the system's).
pub(super) fn load_schema(path: Option<&Path>) -> anyhow::Result<Option<(PathBuf, Schema)>> {
    let (path, origin) = match path {
        Some(p) => (p.to_path_buf(), Origin::Caller),
        None if Path::new(DEFAULT_SCHEMA).is_file() => {
            (PathBuf::from(DEFAULT_SCHEMA), Origin::System)
        }
        None => return Ok(None),
    };
    let schema = read_schema_as(&path, &Privilege::current(), origin)?;
    Ok(Some((path, schema)))
}

/// The type called `name` in the schema, or a bad-input error that says why not.
pub(super) fn object_type(
    schema: Option<&(PathBuf, Schema)>,
    name: &str,
) -> anyhow::Result<ObjectType> {
    let Some((path, schema)) = schema else {
        return Err(BadInput::msg(format!(
            "object type {name:?} needs a schema file (--schema FILE; {DEFAULT_SCHEMA} does not \
             exist); nothing written"
        )));
    };
    schema.get(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = schema.types.iter().map(|t| t.name.as_str()).collect();
        BadInput::msg(format!(
            "object type {name:?} is not defined in {} (types: node, {}); nothing written",
            path.display(),
            known.join(", ")
        ))
    })
}

/// Parse ACTION (get, delete, set/field=value[:...], set/@FILE) for `ty`.
pub(super) fn parse_action(ty: &ObjectType, action: &str) -> anyhow::Result<Act<TypedEdit>> {
    let bad = |m: String| BadInput::msg(format!("invalid action {action:?}: {m}; nothing written"));
    match action.split_once('/') {
        None if action == "get" => Ok(Act::Get),
        None if action == "delete" => Ok(Act::Edit(TypedEdit::Delete)),
        Some(("set", spec)) => match spec.strip_prefix('@') {
            Some(file) => Ok(Act::Edit(TypedEdit::Set(from_file(ty, file)?))),
            None => Ok(Act::Edit(TypedEdit::Set(
                parse_set(ty, spec).map_err(|e| bad(e.to_string()))?,
            ))),
        },
        _ => Err(bad(
            "expected get, delete or set/field=value[:field=value]".into()
        )),
    }
}

/// `set/@FILE`: the fields to set from a YAML mapping (the only way to give a `dict` or a
/// non-string `any` value), each checked by [`check_set`].
fn from_file(ty: &ObjectType, file: &str) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let shown = crate::output::for_terminal(file);
    let bad = |why: String| BadInput::msg(format!("set/@{shown}: {why}; nothing written"));
    let text = super::action_file::read_action_file(Path::new(file), bad)?;
    let values: Ordered<serde_json::Value> =
        serde::Deserialize::deserialize(yaml_serde::Deserializer::from_str(&text))
            .map_err(|e| bad(e.to_string()))?;
    if values.0.is_empty() {
        return Err(bad("no fields to set".into()));
    }
    check_set(ty, values.0).map_err(|e| bad(e.to_string()))
}

/// `--include-inactive` and `--allow-below-threshold` are rules of pool objects: given for
/// a schema type, they would be silently ignored, so they are refused.
pub(super) fn node_only_flags(
    ty: &ObjectType,
    include_inactive: bool,
    allow_below_threshold: bool,
) -> anyhow::Result<()> {
    if include_inactive || allow_below_threshold {
        return Err(BadInput::msg(format!(
            "--include-inactive and --allow-below-threshold apply to node objects only, not to \
             {} objects; nothing written",
            ty.name
        )));
    }
    Ok(())
}

/// The objects of one schema type.
pub(super) struct Typed<'a>(pub &'a ObjectType);

impl Kind for Typed<'_> {
    type Sel = TypeSelector;
    type Selection = TypedSelection;
    type Object = TypedObject;
    type Edit = TypedEdit;
    type Change = TypedChange;
    type Landed = (TypedChange, i64);
    type Checked = ();

    fn objects(&self) -> String {
        format!("{} objects", self.0.name)
    }

    fn selector(&self, input: &str) -> anyhow::Result<TypeSelector> {
        TypeSelector::parse(input, &self.0.tags).map_err(|e| {
            BadInput::msg(format!(
                "invalid selector {:?} for object type {}: {e}",
                escape_controls(input),
                self.0.name
            ))
        })
    }

    fn action(&self, input: &str) -> anyhow::Result<(Act<TypedEdit>, String)> {
        Ok((parse_action(self.0, input)?, input.to_string()))
    }

    fn check_overrides(&self, overrides: Overrides) -> anyhow::Result<()> {
        node_only_flags(
            self.0,
            overrides.include_inactive,
            overrides.allow_below_threshold,
        )
    }

    async fn select(
        &self,
        store: &Store,
        sel: &TypeSelector,
    ) -> Result<TypedSelection, conftool_core::Error> {
        store.select_typed(self.0, sel).await
    }

    fn prefix(&self, store: &Store, _: &TypeSelector) -> String {
        self.0.prefix(store.keyspace())
    }

    fn revision(selection: &TypedSelection) -> i64 {
        selection.revision
    }

    fn selected(selection: &TypedSelection) -> &[TypedObject] {
        &selection.objects
    }

    fn malformed(selection: &TypedSelection) -> &[(String, String)] {
        &selection.malformed
    }

    fn malformed_warning(&self, key: &str, why: &str) -> String {
        format!("{}: malformed value: {why}", escape_controls(key))
    }

    fn name(o: &TypedObject) -> &str {
        &o.id.name
    }

    fn write_line(&self, out: &mut dyn std::fmt::Write, o: &TypedObject) -> std::fmt::Result {
        out.write_str(&self.0.py_line(&o.id, &self.0.effective(&o.stored)))
    }

    /// The Python tool's `Entity.asdict()`: `{NAME: FIELDS, "tags": "tag=..,tag=.."}`.
    fn as_dict(&self, o: &TypedObject) -> Value {
        let fields: Map<String, Value> = self.0.effective(&o.stored).into_iter().collect();
        json!({
            o.id.name.as_str(): fields,
            "tags": self.tags(o).iter().map(|(t, v)| format!("{t}={v}")).collect::<Vec<_>>().join(","),
        })
    }

    fn stored(&self, o: &TypedObject) -> Value {
        Value::Object(o.stored.clone())
    }

    fn get_json(&self, sel: &TypeSelector, selection: &TypedSelection) -> Value {
        let ty = self.0;
        let objects: Vec<_> = selection
            .objects
            .iter()
            .map(|o| {
                let tags: Map<_, _> = self
                    .tags(o)
                    .into_iter()
                    .map(|(t, v)| (t.to_string(), json!(v)))
                    .collect();
                json!({
                    "key": o.key,
                    "name": o.id.name,
                    "tags": tags,
                    "fields": ty.effective(&o.stored).into_iter().collect::<Map<_, _>>(),
                })
            })
            .collect();
        json!({"object_type": ty.name, "selector": sel.to_string(),
               "revision": selection.revision, "objects": objects})
    }

    /// A selection holding a value that is not a JSON object is refused whole; each object
    /// is checked by the type (its fields' types, its rules) before anything is written.
    fn plan(
        &self,
        _: &Writer<'_>,
        _: &TypeSelector,
        selection: &TypedSelection,
        edit: &TypedEdit,
    ) -> anyhow::Result<(Vec<TypedChange>, Vec<String>)> {
        if !selection.malformed.is_empty() {
            anyhow::bail!(
                "{} selected keys hold malformed values (see warnings); nothing written",
                selection.malformed.len()
            );
        }
        let changes = selection
            .changes(self.0, edit)
            .map_err(|e| BadInput::msg(format!("{e}; nothing written")))?;
        Ok((changes, Vec::new()))
    }

    /// A schema type has no rules judged by other objects (thresholds are pool objects').
    async fn check(
        &self,
        _: &Writer<'_>,
        _: &Self::Sel,
        _: &Self::Selection,
        _: &[TypedChange],
    ) -> anyhow::Result<()> {
        Ok(())
    }

    fn change_lines(c: &TypedChange) -> Vec<String> {
        c.lines()
    }

    async fn apply(
        &self,
        writer: &mut Writer<'_>,
        sel: &TypeSelector,
        changes: Vec<TypedChange>,
        edit: &TypedEdit,
        (): (),
    ) -> Landed<(TypedChange, i64)> {
        match writer.apply_typed(self.0, sel, changes, edit).await {
            Ok(applied) => Landed {
                applied,
                error: None,
            },
            Err(e) => stopped(e.applied, e.error),
        }
    }

    fn landed_lines((c, _): &(TypedChange, i64)) -> Vec<String> {
        c.lines()
    }

    fn landed_json((c, rev): &(TypedChange, i64)) -> Value {
        let after = c
            .new
            .as_ref()
            .map(|f| f.iter().cloned().collect::<Map<_, _>>());
        json!({"key": c.key, "before": c.before, "after": after, "revision": rev})
    }

    fn write_json(&self, sel: &TypeSelector, action: &str, unchanged: usize) -> Value {
        json!({"object_type": self.0.name, "selector": sel.to_string(),
               "action": action, "unchanged": unchanged})
    }
}

impl Typed<'_> {
    /// An object's tags, each with its value, outermost first.
    fn tags<'o>(&self, o: &'o TypedObject) -> Vec<(&str, &'o str)> {
        self.0
            .tags
            .iter()
            .map(String::as_str)
            .zip(o.id.tags.iter().map(String::as_str))
            .collect()
    }
}
