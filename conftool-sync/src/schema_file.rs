//! Reading the Python tool's schema file (`--schema schema.yaml`) and the JSON Schema files
//! its rules name (I/O); the checks are the model's ([`Schema::build`]).
//!
//! Every error names the file and, where it can, the line: YAML errors carry their own
//! place; an error of the cross-checks (a dependency loop, a default of the wrong type) is
//! placed at the line of the type (or the field) it is about.
//!
//! A rule's file is `base_path/schema`, as in the Python tool; a relative `base_path` is
//! taken from the schema file's directory (the Python tool takes it from the current
//! directory, which depends on where it is run).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use conftool_core::schema::raw::yaml11_bool_str;
use conftool_core::schema::{raw, rule_files, RawSchema, Schema, SchemaError};
use conftool_trust::{read_file, Origin, Privilege, Quote};
use serde_json::Value;

use crate::error::Error;
use crate::json_pos::locate_pointer;
use crate::source::MAX_FILE_SIZE;
use crate::yaml::parse;

/// Where the Python tool looks for its schema when none is given.
pub const DEFAULT_SCHEMA: &str = "/etc/conftool/schema.yaml";

/// Read and check the schema file at `path`, and the JSON Schema files its rules name.
pub fn read_schema(path: &Path) -> Result<Schema, Error> {
    read_schema_as(path, &Privilege::current(), Origin::Caller)
}

/// [`read_schema`], for a process running under `privilege`, the schema's path chosen by
/// `origin` (see [`read_schema_noted_as`]).
pub fn read_schema_as(path: &Path, privilege: &Privilege, origin: Origin) -> Result<Schema, Error> {
    read_schema_noted_as(path, privilege, origin).map(|(schema, _)| schema)
}

/// [`read_schema`], and what it accepted as the Python tool reads it but its author may not
/// have meant (keys that tool ignores, an unknown `$schema`, ...), each placed
/// (`schema.yaml:57:7: object type ...: ...`), for the caller to show.
pub fn read_schema_noted(path: &Path) -> Result<(Schema, Vec<String>), Error> {
    read_schema_noted_as(path, &Privilege::current(), Origin::Caller)
}

/// [`read_schema_noted`], for a process running under `privilege`, the schema's path
/// chosen by `origin`. A schema changes what is written, so for another user every file is
/// read through [`conftool_trust::read_file`]: one the caller names
/// ([`Origin::Caller`]) must be a file they could read, and so must the JSON Schema files it
/// names; the system's ([`Origin::System`], the default file) and its rule files must be
/// root's alone, and errors show only the place of what is wrong in a file the caller could
/// not read. Always: regular files only, opened without blocking, at most [`MAX_FILE_SIZE`].
pub fn read_schema_noted_as(
    path: &Path,
    privilege: &Privilege,
    origin: Origin,
) -> Result<(Schema, Vec<String>), Error> {
    let mut quote = Quote::Content;
    let checked = read_checked(path, &mut |p: &Path| {
        let (text, q) = read_text(p, privilege, origin)?;
        if q == Quote::PlaceOnly {
            quote = Quote::PlaceOnly;
        }
        Ok(text)
    });
    match checked {
        Err(Error::Yaml { file, line, .. }) if quote == Quote::PlaceOnly => Err(Error::Yaml {
            file,
            line,
            message: "not a valid schema (its content is not shown: the user who ran this \
                      could not read the file)"
                .into(),
        }),
        other => other,
    }
}

/// Read (with `read`) and check the schema and its rule files; see [`read_schema_noted`].
fn read_checked(
    path: &Path,
    read: &mut dyn FnMut(&Path) -> Result<String, Error>,
) -> Result<(Schema, Vec<String>), Error> {
    let text = read(path)?;
    let mut raw: RawSchema = parse(path, &text, PhantomData::<RawSchema>).map_err(with_hint)?;
    yaml11_defaults(&text, &mut raw);
    let base = path.parent().unwrap_or(Path::new(""));
    let mut files = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for name in rule_files(&raw) {
        let file: PathBuf = base.join(&name);
        let json = read(&file).map_err(|e| unreadable_rule_file(path, &text, &raw, &name, e))?;
        let value: Value = serde_json::from_str(&json).map_err(|e| Error::Yaml {
            file: file.clone(),
            line: Some((e.line(), e.column())),
            message: format!("not a JSON Schema: {e}"),
        })?;
        files.insert(name.clone(), value);
        texts.insert(name, json);
    }
    let schema = Schema::build(raw, &files).map_err(|e| placed(path, base, &text, &texts, e))?;
    let notes = schema
        .notes
        .iter()
        .map(|n| {
            let inner =
                n.at.as_deref()
                    .and_then(|a| a.split_once(' '))
                    .map(|(_, x)| x);
            let place = Error::Yaml {
                file: path.to_path_buf(),
                line: locate(&text, &n.ty, inner),
                message: n.to_string(),
            };
            place.to_string()
        })
        .collect();
    Ok((schema, notes))
}

/// A rule's JSON Schema file that cannot be read, placed at (the first) rule naming it.
fn unreadable_rule_file(path: &Path, text: &str, raw: &RawSchema, name: &str, e: Error) -> Error {
    let rule = raw.0.iter().find_map(|(ty, t)| {
        let js = t.json_schema.as_ref()?;
        js.rules
            .0
            .iter()
            .find(|(_, r)| raw::join(&js.base_path, &r.schema) == name)
            .map(|(rule, _)| (ty, rule))
    });
    let Some((ty, rule)) = rule else {
        return e;
    };
    let why = match &e {
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    Error::Yaml {
        file: path.to_path_buf(),
        line: locate(text, ty, Some(rule)),
        message: format!(
            "object type {ty}, rule {rule}: its JSON Schema file {} cannot be read: {why} \
             (it is base_path/schema; a relative base_path is taken from this file's directory)",
            path.parent().unwrap_or(Path::new("")).join(name).display()
        ),
    }
}

/// What a YAML error about the schema's shape means for its author.
fn with_hint(e: Error) -> Error {
    let Error::Yaml {
        file,
        line,
        mut message,
    } = e
    else {
        return e;
    };
    let hint = if message.ends_with("missing field `default`") {
        "every field needs a default, the value new objects get (e.g. {default: null})"
    } else if ["`path`", "`tags`", "`schema`"]
        .iter()
        .any(|f| message.ends_with(&format!("missing field {f}")))
    {
        "an object type needs path, tags (a list, possibly []) and schema (its fields, possibly {})"
    } else {
        ""
    };
    if !hint.is_empty() {
        message = format!("{message}: {hint}");
    }
    Error::Yaml {
        file,
        line,
        message,
    }
}

/// PyYAML reads YAML 1.1, where an unquoted `yes`, `no`, `on` or `off` (in any of its
/// spellings) is a boolean; the YAML 1.2 reader here keeps it a string. A default written
/// so is made the boolean the Python tool creates objects with. Whether it was quoted is
/// read from the text at the field's `default:` (a light scan, not a YAML parser, as
/// `yaml::checks` is; defaults nested in lists or mappings keep YAML 1.2's reading).
fn yaml11_defaults(text: &str, raw: &mut RawSchema) {
    for (ty, t) in &mut raw.0 {
        for (fname, f) in &mut t.schema.0 {
            let Some(b) = f.default.as_str().and_then(yaml11_bool_str) else {
                continue;
            };
            let Some((line, _)) = locate(text, ty, Some(fname)) else {
                continue;
            };
            if plain_default(text, line).is_some_and(|tok| tok == f.default.as_str().unwrap_or(""))
            {
                f.default = Value::Bool(b);
            }
        }
    }
}

/// The unquoted scalar after the first `default:` at or below the field at `line` (1-based),
/// within the field's block; `None` if it is quoted or not found.
fn plain_default(text: &str, line: usize) -> Option<&str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut lines = text.lines().skip(line.saturating_sub(1));
    let first = lines.next()?;
    let block = std::iter::once(first).chain(lines.take_while(|l| {
        l.trim().is_empty() || l.trim_start().starts_with('#') || indent(l) > indent(first)
    }));
    for l in block {
        let Some(at) = l.match_indices("default").map(|(i, _)| i).find(|&i| {
            let before = l[..i].chars().next_back();
            before.is_none_or(|c| c.is_whitespace() || c == '{' || c == ',')
                && l[i + 7..].trim_start().starts_with(':')
        }) else {
            continue;
        };
        let rest = l[at + 7..].trim_start().strip_prefix(':')?.trim_start();
        if rest.starts_with(['"', '\'']) {
            return None;
        }
        let end = rest
            .find(|c: char| c == ',' || c == '}' || c == '#' || c.is_whitespace())
            .unwrap_or(rest.len());
        return Some(&rest[..end]);
    }
    None
}

/// A schema or JSON Schema file's text, and whether errors may quote it.
fn read_text(path: &Path, privilege: &Privilege, origin: Origin) -> Result<(String, Quote), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let contents =
        read_file(path, privilege, origin, MAX_FILE_SIZE, "schema file").map_err(|e| match e {
            conftool_trust::ReadError::Io(source) => io(source),
            e => io(std::io::Error::other(e)),
        })?;
    let text = String::from_utf8(contents.bytes).map_err(|_| Error::Yaml {
        file: path.to_path_buf(),
        line: None,
        message: "not valid UTF-8".into(),
    })?;
    Ok((text, contents.quote))
}

/// A cross-check error at the line of its type (and field, when it names one); an error in
/// a rule's JSON Schema file at its line in that file.
fn placed(
    file: &Path,
    base: &Path,
    text: &str,
    rule_texts: &BTreeMap<String, String>,
    e: SchemaError,
) -> Error {
    if let Some((rule_file, pointer)) = &e.rule_file {
        let line = pointer
            .as_deref()
            .zip(rule_texts.get(rule_file))
            .and_then(|(ptr, json)| locate_pointer(json, ptr));
        if line.is_some() {
            // The file is named in front; the message need not repeat it.
            let reason = e
                .reason
                .strip_prefix(&format!("{rule_file}: "))
                .unwrap_or(&e.reason)
                .to_string();
            return Error::Yaml {
                file: base.join(rule_file),
                line,
                message: SchemaError { reason, ..e }.to_string(),
            };
        }
    }
    let field =
        e.at.as_deref()
            .and_then(|a| a.strip_prefix("field ").or(a.strip_prefix("rule ")));
    Error::Yaml {
        file: file.to_path_buf(),
        line: locate(text, &e.ty, field),
        message: e.to_string(),
    }
}

/// The line of the top-level key `ty:` and, after it, of the first deeper key `inner:`.
pub(crate) fn locate(text: &str, ty: &str, inner: Option<&str>) -> Option<(usize, usize)> {
    let key_at = |line: &str, key: &str| {
        let t = line.trim_start();
        let rest = t.strip_prefix(key).or_else(|| {
            t.strip_prefix(&format!("\"{key}\""))
                .or(t.strip_prefix(&format!("'{key}'")))
        })?;
        rest.trim_start()
            .starts_with(':')
            .then(|| line.len() - t.len() + 1)
    };
    let mut lines = text.lines().enumerate();
    let (top, _) = lines.find(|(_, l)| !l.starts_with([' ', '\t']) && key_at(l, ty) == Some(1))?;
    let Some(inner) = inner else {
        return Some((top + 1, 1));
    };
    for (i, l) in text.lines().enumerate().skip(top + 1) {
        if !l.trim().is_empty() && !l.starts_with([' ', '\t', '#']) {
            break;
        }
        if let Some(col) = key_at(l, inner) {
            return Some((i + 1, col));
        }
    }
    Some((top + 1, 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
