//! JSON Schema rules of a `json_schema` object type: objects whose tags and name match a
//! rule's selector must satisfy its JSON Schema.
//!
//! The schema files are read by the caller (this crate does no I/O) and handed over as JSON;
//! they are compiled once, when the schema is built, so a broken rule is an error at load
//! time, not when an object first matches it (the Python tool loads them lazily). How a file
//! is read (its draft, ids, `$ref`s, formats) is [`super::draft`]'s: as python-jsonschema.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::draft::{draft_of, Draft, RuleFileError};
use super::rule_file::compile;
use super::select::TypeSelector;

/// One compiled rule.
#[derive(Clone)]
pub struct Rule {
    /// Its name in `schema.yaml`.
    pub name: String,
    /// Which objects it applies to.
    pub selector: TypeSelector,
    /// The schema file (`base_path/schema`), as written.
    pub file: String,
    /// The draft the file is validated as (python-jsonschema's choice).
    pub draft: Draft,
    /// What was read differently from how the file may seem to ask (an unknown `$schema`,
    /// an id that is no URI reference): for the caller to say.
    pub notes: Vec<String>,
    compiled: Arc<(boon::Schemas, boon::SchemaIndex)>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("selector", &self.selector)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Eq for Rule {}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.selector == other.selector && self.file == other.file
    }
}

impl Rule {
    /// Compile `schema` (the parsed content of `file`) for the rule `name`.
    pub fn new(
        name: &str,
        selector: TypeSelector,
        file: &str,
        schema: Value,
    ) -> Result<Rule, RuleFileError> {
        let (draft, note) = draft_of(&schema)?;
        let compiled = compile(file, &schema, draft)?;
        let mut notes: Vec<String> = note.into_iter().collect();
        for ptr in &compiled.ignored_ids {
            notes.push(format!(
                "the id at {} is not a URI reference: left out (the Python tool never reads \
                 it unless a $ref needs it)",
                if ptr.is_empty() { "the top" } else { ptr }
            ));
        }
        Ok(Rule {
            name: name.to_string(),
            selector,
            file: file.to_string(),
            draft,
            notes,
            compiled: Arc::new((compiled.schemas, compiled.index)),
        })
    }

    /// Whether `value` (a whole object's fields) satisfies the rule; the error says every
    /// way it does not, on one line.
    pub fn validate(&self, value: &Value) -> Result<(), RuleViolation> {
        let (schemas, idx) = &*self.compiled;
        schemas.validate(value, *idx).map_err(|e| {
            let text = e.to_string();
            // The first line names the schema's URL (ours, not the user's): left out.
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("jsonschema validation failed"))
                .map(|l| l.trim_start_matches("- ").to_string())
                .collect();
            RuleViolation { reasons: lines }
        })
    }
}

/// The ways an object breaks a rule's JSON Schema, as the validator words them (the
/// schema's own URL left out), said on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", reasons.join("; "))]
pub struct RuleViolation {
    /// One line each.
    pub reasons: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rule_validates_and_explains() {
        let sel = TypeSelector::any();
        let r = Rule::new(
            "r 1",
            sel,
            "schemas/x.schema",
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        )
        .unwrap();
        assert_eq!(r.validate(&json!({"n": 3})), Ok(()));
        // One line per error, joined, without the schema's own URL.
        assert_eq!(
            r.validate(&json!({"n": "3"})).map_err(|e| e.to_string()),
            Err("at '/n': want integer, but got string".to_string())
        );
        assert_eq!(
            r.validate(&json!({})).map_err(|e| e.to_string()),
            Err("at '': missing properties 'n'".to_string())
        );
        let two = Rule::new(
            "r 2",
            TypeSelector::any(),
            "schemas/y.schema",
            json!({"properties": {"n": {"type": "integer"}, "m": {"type": "string"}}, "required": ["n"]}),
        )
        .unwrap();
        assert_eq!(
            two.validate(&json!({"m": 1})).map_err(|e| e.to_string()),
            Err("at '': missing properties 'n'; at '/m': want string, but got number".to_string())
        );
    }

    #[test]
    fn rules_are_equal_by_name_selector_and_file_and_debug_without_the_compiled_schema() {
        let rule = |name: &str, sel: &str, file: &str| {
            let sel = TypeSelector::parse(sel, &[]).unwrap();
            Rule::new(name, sel, file, json!({"type": "object"})).unwrap()
        };
        let r = rule("r", "name=a", "f");
        assert_eq!(r, rule("r", "name=a", "f"));
        assert_ne!(r, rule("s", "name=a", "f"));
        assert_ne!(r, rule("r", "name=b", "f"));
        assert_ne!(r, rule("r", "name=a", "g"));
        let any = Rule::new("r 1", TypeSelector::any(), "x.schema", json!({})).unwrap();
        assert_eq!(
            format!("{any:?}"),
            r#"Rule { name: "r 1", selector: TypeSelector { parts: [] }, file: "x.schema", .. }"#
        );
    }

    #[test]
    fn a_broken_schema_or_a_reference_is_refused() {
        assert!(Rule::new("a", TypeSelector::any(), "f", json!({"type": 12})).is_err());
        assert!(Rule::new("b", TypeSelector::any(), "f", json!({"$ref": "other.json"})).is_err());
    }
}
