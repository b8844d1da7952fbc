//! What the Python tool's `loader.factory` accepts is accepted here, with its meaning.

use super::*;
use serde_json::json;

fn build(v: Value, files: &[(&str, Value)]) -> Schema {
    let files: BTreeMap<String, Value> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Schema::build(serde_json::from_value(v).unwrap(), &files).unwrap()
}

#[test]
fn json_schema_fields_need_only_a_default() {
    let s = build(
        json!({"dbconfig-instance": {
            "path": "dbconfig-instance", "tags": ["datacenter"],
            "json_schema": {"base_path": "/etc/conftool/json-schema/", "rules": {
                "catchall": {"selector": "name=.*", "schema": "instance.schema"}}},
            "schema": {
                "host_ip": {"default": "0.0.0.0"},
                "port": {"default": 3306},
                "sections": {"default": {}},
                "note": {"default": ""},
                "val": {"default": null},
                "ratio": {"default": 0.5},
                "typed": {"type": "int", "default": null}}}}),
        &[(
            "/etc/conftool/json-schema/instance.schema",
            json!({"type": "object", "properties": {"port": {"type": "integer"}}}),
        )],
    );
    let t = &s.types[0];
    let id = ObjectId {
        tags: vec!["eqiad".into()],
        name: "db1001".into(),
    };
    assert!(t.validate(&id, &t.defaults()).is_ok());
    let set = parse_set(
        t,
        "port=3307:host_ip=10.0.0.1:note=x:val=true:ratio=1:typed=4",
    )
    .unwrap();
    assert_eq!(
        Value::Object(set.into_iter().collect()),
        json!({"port": 3307, "host_ip": "10.0.0.1", "note": "x", "val": "true", "ratio": "1", "typed": 4})
    );
    let e = parse_set(t, "sections=x").unwrap_err().to_string();
    assert!(e.contains("dictionaries are not supported"), "{e}");
    let e = t
        .validate(&id, &[("port".into(), json!("3306"))])
        .unwrap_err();
    assert_eq!(
        e.what,
        "rule catchall (/etc/conftool/json-schema/instance.schema)"
    );
    assert!(s.notes.is_empty(), "{:?}", s.notes);
}

#[test]
fn keys_the_python_tool_ignores_are_noted_not_refused() {
    let s = build(
        json!({"t": {"path": "t", "tags": [], "owner": "sre", "free_form": true,
                     "json_schema": {"rules": {}},
                     "schema": {"a": {"type": "float", "default": 1.5, "unit": "s"}}}}),
        &[],
    );
    let t = &s.types[0];
    assert_eq!(
        t.validation,
        Validation::JsonSchema(vec![]),
        "json_schema wins, as in Python"
    );
    assert_eq!(t.fields[0].ty, FieldType::Any);
    let notes: Vec<String> = s.notes.iter().map(ToString::to_string).collect();
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert!(notes[0].starts_with("object type t, key owner: not a key of an object type"));
    assert!(notes[1].starts_with("object type t, field a: \"unit\" is not a key of a field"));
    assert!(notes[2].starts_with("object type t, field a: unknown field type \"float\""));
    assert!(notes[3].starts_with("object type t: free_form is ignored in a json_schema type"));
}

#[test]
fn an_empty_or_false_json_schema_is_none_as_in_python() {
    for js in [json!({}), json!(null), json!(false)] {
        let raw: RawSchema = serde_json::from_value(
            json!({"t": {"path": "t", "tags": [], "json_schema": js, "schema": {"a": {"type": "int", "default": 1}}}}),
        )
        .unwrap();
        let s = Schema::build(raw, &BTreeMap::new()).unwrap();
        assert_eq!(s.types[0].validation, Validation::Fields, "{js}");
    }
    let raw: RawSchema = serde_json::from_value(
        json!({"t": {"path": "t", "tags": [], "json_schema": {}, "schema": {"a": {"default": 1}}}}),
    )
    .unwrap();
    let e = Schema::build(raw, &BTreeMap::new()).unwrap_err();
    assert!(e.reason.starts_with("has no type"), "{e}");
}

#[test]
fn rule_selectors_are_anchored_as_python_anchors_them() {
    let s = build(
        json!({"mwconfig": {"path": "mediawiki-config", "tags": ["scope"],
            "json_schema": {"base_path": "js", "rules": {
                "sections": {"selector": "scope=common|eqiad,name=dbctlSections|dbctlGroups", "schema": "s"}}},
            "schema": {"val": {"default": null}}}}),
        &[("js/s", json!({"properties": {"val": {"type": "object"}}}))],
    );
    let t = &s.types[0];
    let invalid = |scope: &str, name: &str| {
        let id = ObjectId {
            tags: vec![scope.into()],
            name: name.into(),
        };
        t.validate(&id, &t.defaults()).is_err()
    };
    // `^dbctlSections|dbctlGroups$`: starts with the one, or ends with the other.
    assert!(invalid("common", "dbctlSections"));
    assert!(invalid("common", "dbctlSectionsOld"));
    assert!(invalid("eqiad", "olddbctlGroups"));
    assert!(invalid("commonwealth", "dbctlGroups"));
    assert!(!invalid("codfw", "dbctlGroups"));
    assert!(!invalid("common", "xdbctlSections"));
}

#[test]
fn rule_file_errors_carry_the_file_and_the_place_in_it() {
    let raw: RawSchema = serde_json::from_value(json!({"t": {"path": "t", "tags": [],
        "json_schema": {"base_path": "js", "rules": {"r": {"selector": "name=.*", "schema": "r.schema"}}},
        "schema": {}}}))
    .unwrap();
    let files: BTreeMap<String, Value> = [(
        "js/r.schema".to_string(),
        json!({"properties": {"n": {"minimum": "0"}}}),
    )]
    .into_iter()
    .collect();
    let e = Schema::build(raw, &files).unwrap_err();
    assert_eq!(
        e.rule_file,
        Some(("js/r.schema".into(), Some("/properties/n/minimum".into())))
    );
    assert!(
        e.reason
            .starts_with("js/r.schema: not a valid draft 2020-12 JSON Schema"),
        "{e}"
    );
}
