//! ACTION as the CLI reads it: the grammar of [`Action`], plus the Python confctl's
//! `set/@FILE`, which takes the fields to set from a YAML file (`pooled: "no"`,
//! `weight: 5`).
//!
//! The file is read by the CLI, not the model, because reading a file is I/O; what it holds
//! becomes the same typed [`SetFields`] that `set/pooled=no:weight=5` gives. An unreadable
//! file, YAML that does not parse, a field twice, an unknown field or a bad value is bad input
//! (exit 2, nothing written). `pooled: yes` (a YAML 1.1 boolean to the Python tool, which
//! then refused it) means what its writer meant, as in the data directory.
//!
//! The file is read with [`read_action_file`]: a regular file of at most
//! [`MAX_ACTION_FILE_BYTES`], opened without blocking (a FIFO cannot hang confctl, nor
//! `/dev/zero` fill its memory), and, running for another user (sudo), one that user could
//! read themselves, opened once on descriptors ([`conftool_trust`]): what it holds is
//! quoted in errors, so it must never be a file only root may read.

use std::path::Path;

use conftool_core::{Action, Pooled, SetFields, Weight};
use conftool_trust::{read_file, Origin, Privilege};
use serde::Deserialize;
use serde_json::Value;

use crate::exit::BadInput;

/// The largest `set/@FILE` file read: a few fields, so 1 MiB is plenty.
pub(super) const MAX_ACTION_FILE_BYTES: u64 = 1 << 20;

/// The text of a `set/@FILE` file (see the module's documentation); `bad` makes the error.
pub(super) fn read_action_file(
    path: &Path,
    bad: impl Fn(String) -> anyhow::Error,
) -> anyhow::Result<String> {
    let contents = read_file(
        path,
        &Privilege::current(),
        Origin::Caller,
        MAX_ACTION_FILE_BYTES,
        "set/@ file",
    )
    .map_err(|e| bad(format!("cannot read it: {e}")))?;
    String::from_utf8(contents.bytes).map_err(|_| bad("not valid UTF-8".into()))
}

/// Parse ACTION, reading `set/@FILE` from its file.
pub(super) fn parse(input: &str) -> anyhow::Result<Action> {
    match input.strip_prefix("set/@") {
        Some(path) => Ok(Action::Set(from_file(Path::new(path))?)),
        // Worded as a schema type's field errors are: bad input, and nothing written.
        None => input
            .parse()
            .map_err(|e: conftool_core::ModelError| BadInput::msg(format!("{e}; nothing written"))),
    }
}

/// The fields a `set/@FILE` file may hold: the node object's schema.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFields {
    pooled: Option<Value>,
    weight: Option<Value>,
}

fn from_file(path: &Path) -> anyhow::Result<SetFields> {
    let shown = crate::output::for_terminal(&path.display().to_string());
    let bad = |why: String| BadInput::msg(format!("set/@{shown}: {why}; nothing written"));
    let text = read_action_file(path, bad)?;
    if text.trim().is_empty() {
        return Err(bad(
            "the file is empty; expected e.g. `pooled: \"no\"` and/or `weight: 5`".into(),
        ));
    }
    let fields = FileFields::deserialize(yaml_serde::Deserializer::from_str(&text))
        .map_err(|e| bad(format!("{e} (fields are pooled and weight)")))?;
    let pooled = fields
        .pooled
        .map(|v| match &v {
            Value::Bool(true) => Ok(Pooled::Yes),
            Value::Bool(false) => Ok(Pooled::No),
            Value::String(s) => s.parse().map_err(|_| v.clone()),
            _ => Err(v.clone()),
        })
        .transpose()
        .map_err(|v| bad(format!("pooled must be yes, no or inactive, not {v}")))?;
    let weight = fields
        .weight
        .map(|v| {
            v.as_u64()
                .and_then(|w| u16::try_from(w).ok())
                .map(Weight)
                .ok_or(v)
        })
        .transpose()
        .map_err(|v| {
            bad(format!(
                "weight must be an integer from 0 to 65535, not {v}"
            ))
        })?;
    if pooled.is_none() && weight.is_none() {
        return Err(bad(
            "nothing to set; expected e.g. `pooled: \"no\"` and/or `weight: 5`".into(),
        ));
    }
    Ok(SetFields { pooled, weight })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("values.yaml");
        std::fs::write(&p, text).expect("write");
        let action = format!("set/@{}", p.display());
        (dir, action)
    }

    #[test]
    fn a_file_gives_the_same_fields_as_the_command_line() {
        for (text, same_as) in [
            ("pooled: \"no\"\nweight: 5\n", "set/pooled=no:weight=5"),
            ("pooled: yes\n", "set/pooled=yes"),
            ("pooled: false\n", "set/pooled=no"),
            ("{weight: 0}", "set/weight=0"),
            ("pooled: inactive", "set/pooled=inactive"),
        ] {
            let (_dir, action) = file(text);
            assert_eq!(
                parse(&action).expect(text),
                same_as.parse::<Action>().expect(same_as),
                "{text}"
            );
        }
        assert_eq!(parse("get").expect("get"), Action::Get);
    }

    #[test]
    fn bad_files_are_bad_input() {
        for (text, want) in [
            ("", "the file is empty"),
            ("colour: red\n", "unknown field"),
            ("pooled: maybe\n", "pooled must be"),
            ("pooled: 1\n", "pooled must be"),
            ("weight: 70000\n", "weight must be"),
            ("weight: -1\n", "weight must be"),
            ("weight: '5'\n", "weight must be"),
            ("weight: 1\nweight: 2\n", "duplicate field"),
            ("pooled: [\n", "set/@"),
            ("- 1\n", "set/@"),
            ("{}", "nothing to set"),
        ] {
            let (_dir, action) = file(text);
            let e = parse(&action).expect_err(text);
            assert!(e.downcast_ref::<BadInput>().is_some(), "{text}: {e:#}");
            assert!(format!("{e:#}").contains(want), "{text}: {e:#}");
        }
        let e = parse("set/@/nonexistent/values.yaml").expect_err("missing file");
        assert!(format!("{e:#}").contains("cannot read it"), "{e:#}");
    }
}
