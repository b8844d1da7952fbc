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

/// The type `t` with `key: value` added, as read; the error's words if it is refused.
fn read_with(key: &str, value: Value) -> Result<raw::RawType, String> {
    let mut t = json!({"path": "t", "tags": [], "schema": {}});
    t[key] = value;
    serde_json::from_value(t).map_err(|e| e.to_string())
}

#[test]
fn free_form_takes_yaml_1_1_booleans_as_pyyaml_does() {
    let on = [
        "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
    ];
    let off = [
        "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
    ];
    for s in on {
        assert_eq!(raw::yaml11_bool_str(s), Some(true), "{s}");
        assert!(read_with("free_form", json!(s)).unwrap().free_form, "{s}");
    }
    for s in off {
        assert_eq!(raw::yaml11_bool_str(s), Some(false), "{s}");
        assert!(!read_with("free_form", json!(s)).unwrap().free_form, "{s}");
    }
    assert_eq!(raw::yaml11_bool_str("y"), None);
    assert!(read_with("free_form", json!(true)).unwrap().free_form);
    assert!(!read_with("free_form", json!(false)).unwrap().free_form);
    assert!(!read_with("free_form", Value::Null).unwrap().free_form);
    assert_eq!(
        read_with("free_form", json!("y")).unwrap_err(),
        r#"invalid value: string "y", expected true or false"#
    );
    assert_eq!(
        read_with("free_form", json!(1)).unwrap_err(),
        "invalid type: integer `1`, expected true or false"
    );
}

#[test]
fn json_schema_false_or_null_is_none_and_true_or_a_number_refused() {
    for none in [json!(false), Value::Null] {
        assert_eq!(read_with("json_schema", none).unwrap().json_schema, None);
    }
    assert_eq!(
        read_with("json_schema", json!(true)).unwrap_err(),
        "invalid value: boolean `true`, expected a mapping with base_path and rules"
    );
    assert_eq!(
        read_with("json_schema", json!(3)).unwrap_err(),
        "invalid type: integer `3`, expected a mapping with base_path and rules"
    );
    assert_eq!(
        read_with("schema", json!(3)).unwrap_err(),
        "invalid type: integer `3`, expected a mapping"
    );
}

#[test]
fn rule_files_are_joined_as_os_path_join() {
    assert_eq!(raw::join("js", "r.json"), "js/r.json");
    assert_eq!(raw::join("js/", "r.json"), "js/r.json");
    assert_eq!(raw::join("js", "/abs/r.json"), "/abs/r.json");
    assert_eq!(raw::join("", "r.json"), "r.json");
}

#[test]
fn a_null_value_skips_the_type_check_only_where_the_default_is_null() {
    let s = build(
        json!({"t": {"path": "t", "tags": [], "schema": {
            "n": {"type": "int", "default": 1},
            "m": {"type": "int", "default": null}}}}),
        &[],
    )
    .unwrap();
    let t = &s.types[0];
    let id = ObjectId {
        tags: vec![],
        name: "x".into(),
    };
    assert_eq!(t.validate(&id, &[("m".into(), Value::Null)]), Ok(()));
    let e = t.validate(&id, &[("n".into(), Value::Null)]).unwrap_err();
    assert_eq!(
        (e.what.as_str(), e.reason.as_str()),
        ("field n", "null is not of type int")
    );
    let e = t.validate(&id, &[("m".into(), json!("x"))]).unwrap_err();
    assert_eq!(
        (e.what.as_str(), e.reason.as_str()),
        ("field m", r#""x" is not of type int"#)
    );
}

#[test]
fn python_str_quotes_as_python_does() {
    assert_eq!(
        object::py_str(&json!("it's")),
        "it's",
        "a string alone is bare"
    );
    assert_eq!(object::py_str(&json!(["it's"])), r#"["it's"]"#);
    assert_eq!(object::py_str(&json!(["a\"b'c"])), r#"['a"b\'c']"#);
    assert_eq!(object::py_str(&json!(["a"])), "['a']");
}
