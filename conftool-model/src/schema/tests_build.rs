//! What a schema accepts when it is built: tag names, and which defaults skip the type check.
use super::*;
use serde_json::json;

fn build(v: Value, files: &[(&str, Value)]) -> Result<Schema, SchemaError> {
    let files: BTreeMap<String, Value> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Schema::build(serde_json::from_value(v).unwrap(), &files)
}

fn with_tag(tag: &str) -> Result<Schema, SchemaError> {
    build(
        json!({"t": {"path": "t", "tags": [tag], "schema": {"a": {"type": "int", "default": 1}}}}),
        &[],
    )
}

#[test]
fn tags_are_letters_digits_underscores_and_dashes() {
    for good in ["dc", "A", "9", "scope_1", "a-b", "_-"] {
        let s = with_tag(good).unwrap();
        assert_eq!(s.types[0].tags, [good], "{good}");
    }
    for bad in ["", "a.b", "a b", "a/b", "a=b", "é", "a,b"] {
        let e = with_tag(bad).unwrap_err();
        assert_eq!(
            (e.ty.as_str(), e.at.as_deref(), e.reason),
            (
                "t",
                None,
                format!("tag {bad:?}: tags are letters, digits, '_' and '-'")
            ),
            "{bad}"
        );
    }
}

#[test]
fn defaults_are_type_checked_unless_rules_validate_or_they_are_null() {
    let fields = json!({"n": {"type": "int", "default": "x"}});
    // Plain fields: a default must be of its type.
    let e = build(
        json!({"t": {"path": "t", "tags": [], "schema": fields}}),
        &[],
    )
    .unwrap_err();
    assert_eq!(
        (e.at.as_deref(), e.reason.as_str()),
        (Some("field n"), r#"default "x" is not of type int"#)
    );
    // A null default is no value to check.
    let null_default = json!({"n": {"type": "int", "default": null}});
    let s = build(
        json!({"t": {"path": "t", "tags": [], "schema": null_default}}),
        &[],
    )
    .unwrap();
    assert_eq!(s.types[0].fields[0].default, Value::Null);
    // With JSON Schema rules the rules validate, as in the Python tool: the field's type is
    // not checked.
    let rules = json!({"base_path": "js", "rules": {"r": {"selector": "name=.*", "schema": "r"}}});
    let s = build(
        json!({"t": {"path": "t", "tags": [], "json_schema": rules, "schema": fields}}),
        &[("js/r", json!({"type": "object"}))],
    )
    .unwrap();
    assert_eq!(s.types[0].fields[0].default, json!("x"));
}
