//! What `get` prints, in each of the Python confctl's shapes, as text, `--json` or `--yaml`,
//! for node objects and schema objects alike (each [`Kind`] gives its lines and values).
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

use conftool_core::escape_controls;
use serde_json::Value;

use super::pipeline::Kind;
use super::Opts;
use crate::output::py_json;
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

/// Print a selection of any kind of object as `get` does.
pub(super) fn print<K: Kind>(
    kind: &K,
    opts: &Opts,
    sel: &K::Sel,
    selection: &K::Selection,
    style: GetStyle<'_>,
) {
    if opts.json {
        opts.out.line(kind.get_json(sel, selection).to_string());
        return;
    }
    let objects = K::selected(selection);
    match style {
        GetStyle::Named(name) if objects.is_empty() => {
            opts.out
                .line(format!("{} not found", escape_controls(name)));
        }
        GetStyle::Lines | GetStyle::Named(_) if !opts.yaml => {
            opts.out.chunked(|out| {
                for o in objects {
                    kind.write_line(out, o)?;
                    out.write_char('\n')?;
                }
                Ok(())
            });
        }
        GetStyle::Lines | GetStyle::Named(_) => {
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    opts.out.line("---");
                }
                opts.out.text(&pyyaml::dump(&kind.as_dict(o)));
            }
        }
        GetStyle::PoolDict => {
            let dict: serde_json::Map<String, Value> = objects
                .iter()
                .map(|o| (K::name(o).to_string(), kind.stored(o)))
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
