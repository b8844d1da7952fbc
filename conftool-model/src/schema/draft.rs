//! Which JSON Schema draft a rule file is, as the Python tool decides it.
//!
//! The Python tool hands each file to python-jsonschema's `validate()`, which picks the
//! draft from `$schema`: known metaschema URLs only, a trailing empty `#` ignored; no
//! `$schema`, or an unknown one (even `https://` for draft-07), is draft 2020-12. How the
//! file is then compiled is the schema's rule-file loader's.

use std::fmt;

use serde_json::Value;

/// A JSON Schema draft that python-jsonschema knows and this crate validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Draft {
    /// draft-04 (`id`, boolean `exclusiveMaximum`).
    Draft4,
    /// draft-06.
    Draft6,
    /// draft-07.
    Draft7,
    /// 2019-09.
    Draft2019,
    /// 2020-12 (also what a file without `$schema`, or with an unknown one, is read as).
    Draft2020,
}

impl Draft {
    /// The metaschema URL python-jsonschema registers for the draft (without `#`).
    pub fn url(self) -> &'static str {
        match self {
            Draft::Draft4 => "http://json-schema.org/draft-04/schema",
            Draft::Draft6 => "http://json-schema.org/draft-06/schema",
            Draft::Draft7 => "http://json-schema.org/draft-07/schema",
            Draft::Draft2019 => "https://json-schema.org/draft/2019-09/schema",
            Draft::Draft2020 => "https://json-schema.org/draft/2020-12/schema",
        }
    }

    pub(crate) fn boon(self) -> boon::Draft {
        match self {
            Draft::Draft4 => boon::Draft::V4,
            Draft::Draft6 => boon::Draft::V6,
            Draft::Draft7 => boon::Draft::V7,
            Draft::Draft2019 => boon::Draft::V2019_09,
            Draft::Draft2020 => boon::Draft::V2020_12,
        }
    }

    pub(crate) fn id_keyword(self) -> &'static str {
        if self == Draft::Draft4 {
            "id"
        } else {
            "$id"
        }
    }
}

impl fmt::Display for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Draft::Draft4 => "draft-04",
            Draft::Draft6 => "draft-06",
            Draft::Draft7 => "draft-07",
            Draft::Draft2019 => "draft 2019-09",
            Draft::Draft2020 => "draft 2020-12",
        })
    }
}

/// A rule file that cannot be used, with the JSON pointer of the part at fault (`""` is the
/// whole document) when there is one, so the caller can name its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// What is wrong, and what to change.
    pub reason: String,
    /// Where in the file.
    pub pointer: Option<String>,
}

impl RuleFileError {
    pub(crate) fn at(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        RuleFileError {
            reason: reason.into(),
            pointer: Some(pointer.into()),
        }
    }
}

/// The draft python-jsonschema validates `schema` with, and a note when it is not the one
/// the file seems to ask for (an unknown `$schema`).
pub fn draft_of(schema: &Value) -> Result<(Draft, Option<String>), RuleFileError> {
    let Some(declared) = schema.get("$schema") else {
        return Ok((Draft::Draft2020, None));
    };
    let Some(url) = declared.as_str() else {
        return Err(RuleFileError::at(
            "/$schema",
            format!("$schema is {declared}, not a URL: write the draft's URL, e.g. \"{}#\", or leave $schema out", Draft::Draft7.url()),
        ));
    };
    // urlsplit(url).geturl(), as python-jsonschema normalizes: an empty fragment goes.
    let normal = url.strip_suffix('#').unwrap_or(url);
    let draft = match normal {
        "http://json-schema.org/draft-04/schema" => Draft::Draft4,
        "http://json-schema.org/draft-06/schema" => Draft::Draft6,
        "http://json-schema.org/draft-07/schema" => Draft::Draft7,
        "https://json-schema.org/draft/2019-09/schema" => Draft::Draft2019,
        "https://json-schema.org/draft/2020-12/schema" => Draft::Draft2020,
        "http://json-schema.org/draft-03/schema" => {
            return Err(RuleFileError::at(
                "/$schema",
                "draft-03 JSON Schemas are not supported: make it a draft-04 one ($schema \
                 \"http://json-schema.org/draft-04/schema#\", and each property's \
                 `\"required\": true` becomes a `\"required\": [...]` list of names in the \
                 object that holds it)",
            ))
        }
        _ => {
            let note = format!(
                "$schema {url:?} is not a metaschema python-jsonschema knows: validated as \
                 {}, as the Python tool does (write {:?} or another draft's URL to choose)",
                Draft::Draft2020,
                format!("{}#", Draft::Draft7.url())
            );
            return Ok((Draft::Draft2020, Some(note)));
        }
    };
    Ok((draft, None))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_draft_is_chosen_as_python_jsonschema_chooses_it() {
        let d = |v: Value| draft_of(&v).map(|(d, note)| (d, note.is_some()));
        assert_eq!(d(json!({})), Ok((Draft::Draft2020, false)));
        let cases = [
            ("http://json-schema.org/draft-04/schema#", Draft::Draft4),
            ("http://json-schema.org/draft-04/schema", Draft::Draft4),
            ("http://json-schema.org/draft-06/schema#", Draft::Draft6),
            ("http://json-schema.org/draft-07/schema#", Draft::Draft7),
            (
                "https://json-schema.org/draft/2019-09/schema",
                Draft::Draft2019,
            ),
            (
                "https://json-schema.org/draft/2020-12/schema#",
                Draft::Draft2020,
            ),
        ];
        for (url, want) in cases {
            assert_eq!(d(json!({ "$schema": url })), Ok((want, false)), "{url}");
        }
        // Not registered under these spellings: python-jsonschema falls back to 2020-12.
        for url in [
            "https://json-schema.org/draft-07/schema#",
            "http://json-schema.org/schema#",
            "http://example.org/mine",
        ] {
            assert_eq!(
                d(json!({ "$schema": url })),
                Ok((Draft::Draft2020, true)),
                "{url}"
            );
        }
        let e =
            draft_of(&json!({"$schema": "http://json-schema.org/draft-03/schema#"})).unwrap_err();
        assert_eq!(e.pointer.as_deref(), Some("/$schema"));
        assert!(e.reason.contains("draft-04"), "{}", e.reason);
        assert!(draft_of(&json!({"$schema": 4})).is_err());
    }
}
