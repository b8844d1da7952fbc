//! What `get` prints, in each of the Python confctl's shapes, as text, `--json` or `--yaml`.
//!
//! The Python tool prints one JSON line per object (`Entity.__str__`, its `asdict` form) for
//! `select ... get` and for `tags ... --action get NAME|re:REGEX`, `NAME not found` for a
//! named object that does not exist, and for `--action get all` one dict of the pool's
//! objects, `name -> value` (`json.dumps`, or `yaml.dump` with `--yaml`). Its `--yaml` changes
//! only that last shape; ours also prints the per-object shapes as YAML (the `asdict` form,
//! one document per object), which reads back as the same data as the Python tool's JSON
//! line.
//!
//! (conftool 6.1's driver returns wrapper objects from `ls`, so there `get all` fails with
//! "Object of type ObjectWireRepresentation is not JSON serializable", and with `--yaml`
//! prints `!!python/object` tags that `yaml.safe_load` refuses. We print the dict of plain
//! values that earlier versions printed, which is what scripts were written against.)

use conftool_core::{escape_controls, ObjectKey, PoolState, Selection, Selector};
use serde_json::{json, Value};

use super::Opts;
use crate::output::{object_json, py_json, write_get_line};
use crate::pyyaml;

/// How `get` shows what it selected.
#[derive(Debug, Clone, Copy)]
pub(super) enum GetStyle<'a> {
    /// One line (or YAML document) per object: `select`, `tags ... re:REGEX`.
    Lines,
    /// `tags ... NAME`: the object's line, or `NAME not found`.
    Named(&'a str),
    /// `tags ... all`: one dict of the pool's objects, name -> value.
    PoolDict,
}

/// Print a selection as `get` does.
pub(super) fn print(opts: &Opts, sel: &Selector, selection: &Selection, style: GetStyle<'_>) {
    if opts.json {
        let objects: Vec<_> = selection
            .objects
            .iter()
            .map(|o| object_json(&o.key, &o.state))
            .collect();
        opts.out.line(
            json!({
                "selector": sel.to_string(),
                "revision": selection.revision,
                "objects": objects,
            })
            .to_string(),
        );
        return;
    }
    match style {
        GetStyle::Named(name) if selection.objects.is_empty() => {
            opts.out
                .line(format!("{} not found", escape_controls(name)));
        }
        GetStyle::Lines | GetStyle::Named(_) if !opts.yaml => {
            opts.out.chunked(|out| {
                for o in &selection.objects {
                    write_get_line(out, &o.key, &o.state)?;
                    out.write_char('\n')?;
                }
                Ok(())
            });
        }
        GetStyle::Lines | GetStyle::Named(_) => {
            for (i, o) in selection.objects.iter().enumerate() {
                if i > 0 {
                    opts.out.line("---");
                }
                opts.out.text(&pyyaml::dump(&as_dict(&o.key, &o.state)));
            }
        }
        GetStyle::PoolDict => {
            let dict: serde_json::Map<String, Value> = selection
                .objects
                .iter()
                .map(|o| (o.key.node.as_str().to_string(), value(&o.state)))
                .collect();
            let dict = Value::Object(dict);
            // Python's `print(yaml.dump(...))`: the document, then print's own newline.
            opts.out.line(if opts.yaml {
                pyyaml::dump(&dict)
            } else {
                py_json(&dict)
            });
        }
    }
}

/// An object's stored value (`pooled`, `weight` and any fields we do not know).
fn value(state: &PoolState) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// The Python tool's `Entity.asdict()`: `{NAME: VALUE, "tags": "dc=..,cluster=..,service=.."}`.
fn as_dict(key: &ObjectKey, state: &PoolState) -> Value {
    json!({
        key.node.as_str(): value(state),
        "tags": key.tags().to_string(),
    })
}
