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

use conftool_core::schema::{rule_files, RawSchema, Schema, SchemaError};
use conftool_core::trust::{read_file, Origin, Privilege, Quote};

use crate::error::Error;
use crate::source::MAX_FILE_SIZE;
use crate::yaml::parse;

/// Where the Python tool looks for its schema when none is given.
pub const DEFAULT_SCHEMA: &str = "/etc/conftool/schema.yaml";

/// Read and check the schema file at `path`, and the JSON Schema files its rules name, as
/// the caller's files ([`read_schema_as`] with this process's privilege).
pub fn read_schema(path: &Path) -> Result<Schema, Error> {
    read_schema_as(path, &Privilege::current(), Origin::Caller)
}

/// [`read_schema`], for a process running under `privilege`, the schema's path chosen by
/// `origin`. A schema changes what is written, so for another user every file is read
/// through [`conftool_core::trust::read_file`]: one the caller names ([`Origin::Caller`])
/// must be a file they could read, and so must the JSON Schema files it names; the
/// system's ([`Origin::System`], the default file) and its rule files must be root's alone,
/// and errors show only the place of what is wrong in a file the caller could not read.
/// Always: regular files only, opened without blocking, at most [`MAX_FILE_SIZE`].
pub fn read_schema_as(path: &Path, privilege: &Privilege, origin: Origin) -> Result<Schema, Error> {
    let mut quote = Quote::Content;
    let mut read = |p: &Path| {
        let (text, q) = read_text(p, privilege, origin)?;
        if q == Quote::PlaceOnly {
            quote = Quote::PlaceOnly;
        }
        Ok::<_, Error>(text)
    };
    let checked = (|| {
        let text = read(path)?;
        let raw: RawSchema = parse(path, &text, PhantomData::<RawSchema>)?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut files = BTreeMap::new();
        for name in rule_files(&raw) {
            let file: PathBuf = base.join(&name);
            let json = read(&file)?;
            let value: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| Error::Yaml {
                    file: file.clone(),
                    line: Some((e.line(), e.column())),
                    message: format!("not a JSON Schema: {e}"),
                })?;
            files.insert(name, value);
        }
        Schema::build(raw, &files).map_err(|e| placed(path, &text, e))
    })();
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

/// A schema or JSON Schema file's text, and whether errors may quote it.
fn read_text(path: &Path, privilege: &Privilege, origin: Origin) -> Result<(String, Quote), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let contents =
        read_file(path, privilege, origin, MAX_FILE_SIZE, "schema file").map_err(|e| match e {
            conftool_core::trust::ReadError::Io(source) => io(source),
            e => io(std::io::Error::other(e)),
        })?;
    let text = String::from_utf8(contents.bytes).map_err(|_| Error::Yaml {
        file: path.to_path_buf(),
        line: None,
        message: "not valid UTF-8".into(),
    })?;
    Ok((text, contents.quote))
}

/// A cross-check error at the line of its type (and field, when it names one).
fn placed(file: &Path, text: &str, e: SchemaError) -> Error {
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
mod tests {
    use super::*;

    #[test]
    fn places_type_and_field_lines() {
        let text =
            "a:\n  path: a\n  schema:\n    x: {type: int, default: 1}\nb:\n  schema:\n    y: {}\n";
        assert_eq!(locate(text, "a", None), Some((1, 1)));
        assert_eq!(locate(text, "b", Some("y")), Some((7, 5)));
        assert_eq!(
            locate(text, "a", Some("y")),
            Some((1, 1)),
            "not past the next type"
        );
        assert_eq!(locate(text, "zz", None), None);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("schema.yaml");
        std::fs::write(
            &p,
            "a:\n  path: a\n  tags: []\n  schema: {}\n  depends: [b]\nb:\n  path: b\n  tags: []\n  schema: {}\n  depends: [a]\n",
        )
        .unwrap();
        let e = read_schema(&p).unwrap_err().to_string();
        assert!(
            e.contains("schema.yaml:1:1: object type a: dependency loop: a => b => a"),
            "{e}"
        );
        std::fs::write(
            &p,
            "a:\n  path: a\n  tags: []\n  schema:\n    f: {type: nope, default: 1}\n",
        )
        .unwrap();
        let e = read_schema(&p).unwrap_err().to_string();
        assert!(e.contains("schema.yaml:5:"), "{e}");
        assert!(e.contains("unknown field type"), "{e}");
        std::fs::write(
            &p,
            "a:\n  path: a\n  tags: []\n  schema: {}\n  json_schema:\n    base_path: js\n    rules:\n      r: {selector: name=x, schema: r.json}\n",
        )
        .unwrap();
        let e = read_schema(&p).unwrap_err().to_string();
        assert!(e.contains("r.json"), "{e}");
        std::fs::create_dir(dir.path().join("js")).unwrap();
        std::fs::write(dir.path().join("js/r.json"), "{\"type\": \"object\"}").unwrap();
        let s = read_schema(&p).unwrap();
        assert_eq!(s.types.len(), 1);
    }
}
