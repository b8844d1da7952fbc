//! Strict YAML reading: duplicate keys and unknown names are errors that point at the line.
//!
//! Deserializing straight into a map silently keeps the last of two duplicate keys, and a
//! check made after deserializing has lost its position. So the maps here are read through
//! seeds that validate each key *inside* the deserializer's visitor: the YAML library then
//! attaches the key's own line and column to the error.
//!
//! Two checks the typed read cannot do well are made around it:
//! - flow nesting depth: libyaml's scanner is quadratic in the depth of `[`/`{` nesting, so a
//!   file of a few hundred kilobytes of `[` would hang the sync for minutes;
//! - a duplicate field (e.g. a second `port:`) at its own line: `serde(derive)` reports it at
//!   the start of the enclosing mapping, so when it does, a second pass finds the repeat.

pub(crate) mod checks;
mod seeds;
mod syntax;

use std::path::Path;

use serde::de::{DeserializeSeed, IgnoredAny};
use serde::Deserialize;

use crate::error::Error;
use checks::{too_deep, NoDuplicates, MAX_FLOW_DEPTH};
pub(crate) use seeds::*;

/// Parse `text` (the contents of `file`) with `seed`, mapping errors to `file:line:column`.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    file: &Path,
    text: &'de str,
    seed: S,
) -> Result<S::Value, Error> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Error::Yaml {
            file: file.to_path_buf(),
            line: None,
            message: "file is empty".into(),
        });
    }
    if let Some(at) = too_deep(text) {
        return Err(Error::Yaml {
            file: file.to_path_buf(),
            line: Some(at),
            message: format!("nested deeper than {MAX_FLOW_DEPTH} levels"),
        });
    }
    let de = yaml_serde::Deserializer::from_str(text);
    seed.deserialize(de).map_err(|e| {
        // A syntax error anywhere is the real problem, whatever the typed read met first (an
        // unclosed `[` makes the next line part of a name). Then: serde(derive) reports a
        // repeated field at the start of its mapping; look for the repeat itself. (Only on
        // failure: a second parse of a big file is not free.)
        if let Err(syntax) = IgnoredAny::deserialize(yaml_serde::Deserializer::from_str(text)) {
            return yaml_error(file, text, &syntax);
        }
        if e.to_string().contains("duplicate field") {
            if let Err(dup) = NoDuplicates.deserialize(yaml_serde::Deserializer::from_str(text)) {
                return yaml_error(file, text, &dup);
            }
        }
        yaml_error(file, text, &e)
    })
}

fn yaml_error(file: &Path, text: &str, e: &yaml_serde::Error) -> Error {
    let mut message = e.to_string();
    // Reader errors (e.g. a control character) carry a byte offset instead of a mark, and
    // the library then reports line 1 column 1: turn the offset into the real place.
    if let Some((rest, offset)) = message.rsplit_once(" at position ") {
        if let Ok(offset) = offset.parse::<usize>() {
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            return Error::Yaml {
                file: file.to_path_buf(),
                line: Some((line, column)),
                message: clip(rest.to_string()),
            };
        }
    }
    let line = e.location().map(|loc| {
        // The library repeats the position in the message, at its end or before a
        // "while parsing ..." context; the position is shown once, in front.
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        let found = message
            .match_indices(&at)
            .map(|(i, _)| i)
            .find(|&i| !message[i + at.len()..].starts_with(|c: char| c.is_ascii_digit()));
        if let Some(i) = found {
            message.replace_range(i..i + at.len(), "");
        }
        (loc.line(), loc.column())
    });
    if let Some((at, plain)) = line.and_then(|at| syntax::explain(text, &message, at)) {
        return Error::Yaml {
            file: file.to_path_buf(),
            line: Some(at),
            message: plain,
        };
    }
    Error::Yaml {
        file: file.to_path_buf(),
        line,
        message: clip(message),
    }
}

/// Keep messages readable when they quote huge input (a 2 MiB scalar, say).
fn clip(message: String) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message;
    }
    let cut = (0..=200)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    format!(
        "{}… ({} characters in all)",
        &message[..cut],
        message.chars().count()
    )
}
