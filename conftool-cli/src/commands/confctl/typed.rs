//! `confctl --object-type TYPE select SELECTOR ACTION` for a type of the Python tool's schema
//! file: the same grammar and output as for nodes (`get` prints the Python tool's lines),
//! with the type's tags (plus `name`) as selector tags and its fields as `set/` fields.
//! [`execute`] is also what `confctl --object-type TYPE tags ...` runs for each `--action`.

use std::path::{Path, PathBuf};

use conftool_core::schema::raw::Ordered;
use conftool_core::schema::{check_set, parse_set, ObjectType, Schema, TypeSelector, TypedEdit};
use conftool_core::{escape_controls, Overrides};
use conftool_sync::{read_schema_as, DEFAULT_SCHEMA};
use conftool_trust::{Origin, Privilege};
use serde_json::json;

use super::get::GetStyle;
use super::select::{Confirm, SelectArgs};
use super::Opts;
use crate::commands::changes::{confirm, writer};
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::{stderr_line, warn};

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

/// What the action asks.
pub(super) enum Act {
    Get,
    Edit(TypedEdit),
}

/// Parse ACTION (get, delete, set/field=value[:...], set/@FILE) for `ty`.
pub(super) fn parse_action(ty: &ObjectType, action: &str) -> anyhow::Result<Act> {
    let bad = |m: String| BadInput::msg(format!("invalid action {action:?}: {m}; nothing written"));
    match action.split_once('/') {
        None if action == "get" => Ok(Act::Get),
        None if action == "delete" => Ok(Act::Edit(TypedEdit::Delete)),
        Some(("set", spec)) => match spec.strip_prefix('@') {
            Some(file) => Ok(Act::Edit(TypedEdit::Set(from_file(ty, file)?))),
            None => Ok(Act::Edit(TypedEdit::Set(parse_set(ty, spec).map_err(bad)?))),
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
    check_set(ty, values.0).map_err(bad)
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

/// Run `select` on a schema-defined type.
pub(super) async fn run(
    conn: &ConnArgs,
    opts: &Opts,
    ty: &ObjectType,
    args: &SelectArgs,
) -> anyhow::Result<u8> {
    // Parse everything before touching etcd: bad input never reaches the store.
    node_only_flags(ty, args.include_inactive, args.allow_below_threshold)?;
    let sel = TypeSelector::parse(&args.selector, &ty.tags).map_err(|e| {
        BadInput::msg(format!(
            "invalid selector {:?} for object type {}: {e}",
            escape_controls(&args.selector),
            ty.name
        ))
    })?;
    let act = parse_action(ty, &args.action)?;
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let req = TypedRequest {
        sel: &sel,
        act: &act,
        action: &args.action,
        get_style: GetStyle::Lines,
        confirm: Confirm::WhenSeveral,
    };
    execute(&cfg, &store, opts, ty, req).await
}

/// One selection of a schema type and what to do with it: `select`, or one `--action` of
/// `tags`.
pub(super) struct TypedRequest<'a> {
    /// Which objects.
    pub sel: &'a TypeSelector,
    /// What to do with them.
    pub act: &'a Act,
    /// The action as given (for messages).
    pub action: &'a str,
    /// How `get` prints them.
    pub get_style: GetStyle<'a>,
    /// When a write asks before going ahead (unless `--yes`).
    pub confirm: Confirm,
}

/// Select objects of `ty`, then print (`get`) or write them through the one audited path,
/// asking first as `req.confirm` says (unless `--yes`, or `--host` and they are one name's).
pub(super) async fn execute(
    cfg: &conftool_core::Config,
    store: &conftool_core::Store,
    opts: &Opts,
    ty: &ObjectType,
    req: TypedRequest<'_>,
) -> anyhow::Result<u8> {
    let TypedRequest {
        sel,
        act,
        action,
        get_style,
        confirm: asking,
    } = req;
    let selection = store.select_typed(ty, sel).await?;
    opts.debug(|| {
        format!(
            "{} selector {sel}: read {} at revision {}: {} objects matched, {} malformed",
            ty.name,
            ty.prefix(store.keyspace()),
            selection.revision,
            selection.objects.len(),
            selection.malformed.len()
        )
    });
    for (key, why) in &selection.malformed {
        warn(
            "confctl",
            format!("{}: malformed value: {why}", escape_controls(key)),
        );
    }
    let edit = match act {
        Act::Get => {
            print_get(opts, ty, sel, &selection, get_style);
            return Ok(OK);
        }
        Act::Edit(e) => e.clone(),
    };
    if selection.objects.is_empty() && selection.malformed.is_empty() {
        return Err(BadInput::msg(format!(
            "selector {} matches no {} objects; nothing written",
            escape_controls(&sel.to_string()),
            ty.name
        )));
    }
    if !selection.malformed.is_empty() {
        anyhow::bail!(
            "{} selected keys hold malformed values (see warnings); nothing written",
            selection.malformed.len()
        );
    }
    if opts.host {
        super::select::one_host(sel, selection.objects.iter().map(|o| o.id.name.as_str()))?;
    }
    let changes = selection
        .changes(ty, &edit)
        .map_err(|e| BadInput::msg(format!("{e}; nothing written")))?;
    if changes.is_empty() {
        opts.out.info(format!(
            "All {} selected objects are already in the requested state; nothing written.",
            selection.objects.len()
        ));
        return Ok(OK);
    }
    let mut writer = writer("confctl", cfg, store, Overrides::default(), &opts.reason)?;
    if asking.asks(selection.objects.len()) && !opts.yes && !opts.host {
        stderr_line(&format!(
            "{} {} objects selected by {}; {} changes:",
            selection.objects.len(),
            ty.name,
            escape_controls(&sel.to_string()),
            escape_controls(action)
        ));
        for c in &changes {
            for l in c.lines() {
                stderr_line(&format!("  {}", escape_controls(&l)));
            }
        }
        if !confirm("Ok to continue?") {
            stderr_line("confctl: aborted; nothing written.");
            return Ok(FAILURE);
        }
    }
    let result = writer.apply_typed(ty, sel, changes, &edit).await;
    let (applied, error) = match result {
        Ok(a) => (a, None),
        Err(e) => (e.applied, Some(e.error)),
    };
    if opts.json {
        let changed: Vec<_> = applied
            .iter()
            .map(|(c, rev)| json!({"key": c.key, "before": c.before, "after": c.new.as_ref().map(|f| f.iter().cloned().collect::<serde_json::Map<_, _>>()), "revision": rev}))
            .collect();
        let mut doc = json!({"object_type": ty.name, "selector": sel.to_string(),
                             "action": action, "changed": changed});
        if let Some(e) = &error {
            doc["error"] = json!(format!("{e:#}"));
        }
        opts.out.line(doc.to_string());
    } else {
        for (c, _) in &applied {
            for l in c.lines() {
                opts.out.line(l);
            }
        }
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(OK),
    }
}

/// Print what `get` selected: the Python tool's line per object (`select`, `tags ...
/// re:REGEX`), `NAME not found` (`tags ... NAME`), or for `tags ... all` one dict of the
/// objects' stored values by name (what node objects print; see `get.rs`), or `--json`.
fn print_get(
    opts: &Opts,
    ty: &ObjectType,
    sel: &TypeSelector,
    selection: &conftool_core::schema::TypedSelection,
    style: GetStyle<'_>,
) {
    if opts.json {
        let objects: Vec<_> = selection
            .objects
            .iter()
            .map(|o| {
                let tags: serde_json::Map<_, _> = ty
                    .tags
                    .iter()
                    .zip(&o.id.tags)
                    .map(|(t, v)| (t.clone(), json!(v)))
                    .collect();
                json!({
                    "key": o.key,
                    "name": o.id.name,
                    "tags": tags,
                    "fields": ty.effective(&o.stored).into_iter().collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        opts.out.line(
            json!({"object_type": ty.name, "selector": sel.to_string(),
                   "revision": selection.revision, "objects": objects})
            .to_string(),
        );
        return;
    }
    match style {
        GetStyle::Named(name) if selection.objects.is_empty() => {
            opts.out
                .line(format!("{} not found", escape_controls(name)));
        }
        GetStyle::Lines | GetStyle::Named(_) => {
            for o in &selection.objects {
                opts.out.line(ty.py_line(&o.id, &ty.effective(&o.stored)));
            }
        }
        GetStyle::PoolDict => {
            let dict: serde_json::Map<String, serde_json::Value> = selection
                .objects
                .iter()
                .map(|o| {
                    (
                        o.id.name.clone(),
                        serde_json::Value::Object(o.stored.clone()),
                    )
                })
                .collect();
            let dict = serde_json::Value::Object(dict);
            opts.out.line(if opts.yaml {
                crate::pyyaml::dump(&dict)
            } else {
                conftool_core::schema::object::py_json(&dict)
            });
        }
    }
}
