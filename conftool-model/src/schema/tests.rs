use super::*;
use crate::Keyspace;
use serde_json::json;

fn raw(v: Value) -> RawSchema {
    serde_json::from_value(v).unwrap()
}

/// JSON text, not `json!`: a `Value`'s map is sorted, the text keeps the file's order.
const EXAMPLE: &str = r#"{
    "mwconfig": {
        "path": "mediawiki-config",
        "tags": ["scope"],
        "schema": {"val": {"type": "any", "default": null}},
        "json_schema": {"base_path": "js", "rules": {
            "small": {"selector": "name=small.*", "schema": "small.schema"}
        }}
    },
    "lb": {
        "path": "lbs/pools",
        "tags": ["dc", "cluster"],
        "depends": ["mwconfig"],
        "schema": {
            "port": {"type": "int", "default": 80},
            "mode": {"type": "enum:a|b", "default": "a"},
            "nets": {"type": "cidr_list", "default": ["10.0.0.0/8"]}
        }
    },
    "flat": {"path": "flat", "tags": [], "free_form": true,
             "schema": {"on": {"type": "bool", "default": false}}}
}"#;

fn example() -> RawSchema {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn files() -> BTreeMap<String, Value> {
    [(
        "js/small.schema".to_string(),
        json!({"type": "object", "properties": {"val": {"type": "integer", "maximum": 10}}}),
    )]
    .into_iter()
    .collect()
}

#[test]
fn builds_in_order_with_rules() {
    let r = example();
    assert_eq!(rule_files(&r), vec!["js/small.schema"]);
    let s = Schema::build(r, &files()).unwrap();
    let order: Vec<&str> = s.order().unwrap().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(order, vec!["mwconfig", "lb", "flat"]);
    let lb = s.get("lb").unwrap();
    let names: Vec<&str> = lb.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["port", "mode", "nets"], "schema order kept");
    let ks = Keyspace::new("/conftool");
    let id = ObjectId {
        tags: vec!["eqiad".into(), "text".into()],
        name: "lb1".into(),
    };
    let key = lb.key(&ks, &id);
    assert_eq!(key, "/conftool/v1/lbs/pools/eqiad/text/lb1");
    assert_eq!(lb.parse_key(&ks, &key), Some(id.clone()));
    assert_eq!(lb.parse_key(&ks, "/conftool/v1/lbs/pools/eqiad/lb1"), None);
    assert_eq!(
        object::compact_json(&lb.defaults()),
        r#"{"port":80,"mode":"a","nets":["10.0.0.0/8"]}"#
    );
    assert_eq!(
        lb.py_line(&id, &lb.defaults()),
        r#"{"lb1": {"port": 80, "mode": "a", "nets": ["10.0.0.0/8"]}, "tags": "dc=eqiad,cluster=text"}"#
    );
    let flat = s.get("flat").unwrap();
    let fid = ObjectId {
        tags: vec![],
        name: "x".into(),
    };
    assert_eq!(flat.key(&ks, &fid), "/conftool/v1/flat/x");
}

#[test]
fn validation_by_type_free_form_and_rules() {
    let s = Schema::build(example(), &files()).unwrap();
    let lb = s.get("lb").unwrap();
    let id = ObjectId {
        tags: vec!["eqiad".into(), "text".into()],
        name: "lb1".into(),
    };
    assert!(lb.validate(&id, &lb.defaults()).is_ok());
    let e = lb
        .validate(&id, &[("port".into(), json!("80"))])
        .unwrap_err();
    assert_eq!(e.what, "field port");
    assert!(lb.validate(&id, &[("extra".into(), json!(1))]).is_err());
    let flat = s.get("flat").unwrap();
    let fid = ObjectId {
        tags: vec![],
        name: "x".into(),
    };
    assert!(flat.validate(&fid, &[("extra".into(), json!(1))]).is_ok());
    let mw = s.get("mwconfig").unwrap();
    let small = ObjectId {
        tags: vec!["common".into()],
        name: "small1".into(),
    };
    let big = ObjectId {
        tags: vec!["common".into()],
        name: "big".into(),
    };
    let v = vec![("val".to_string(), json!(11))];
    let e = mw.validate(&small, &v).unwrap_err();
    assert!(e.what.contains("rule small"), "{e}");
    assert!(mw.validate(&big, &v).is_ok(), "the rule does not match big");
    // json_schema types do not check declared types: only the rules.
    assert!(mw.validate(&small, &[("val".into(), json!(3))]).is_ok());
}

#[test]
fn effective_values_fill_defaults_and_keep_free_fields() {
    let s = Schema::build(example(), &files()).unwrap();
    let flat = s.get("flat").unwrap();
    let stored = json!({"zz": 1, "on": null});
    let eff = flat.effective(stored.as_object().unwrap());
    assert_eq!(
        eff,
        vec![
            ("on".to_string(), json!(false)),
            ("zz".to_string(), json!(1))
        ]
    );
}

#[test]
fn cross_checks_name_the_type() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"a": {"path": "a", "tags": [], "schema": {}, "depends": ["b"]},
                "b": {"path": "b", "tags": [], "schema": {}, "depends": ["a"]}}),
            "a",
            "dependency loop: a => b => a",
        ),
        (
            json!({"a": {"path": "a", "tags": [], "schema": {}, "depends": ["zz"]}}),
            "a",
            "not declared",
        ),
        (
            json!({"a": {"path": "x", "tags": [], "schema": {}},
                "b": {"path": "x/y", "tags": [], "schema": {}}}),
            "b",
            "overlaps",
        ),
        (
            json!({"a": {"path": "pools", "tags": [], "schema": {}}}),
            "a",
            "owns",
        ),
        (
            json!({"a": {"path": "/abs", "tags": [], "schema": {}}}),
            "a",
            "absolute",
        ),
        (
            json!({"node": {"path": "n", "tags": [], "schema": {}}}),
            "node",
            "built in",
        ),
        (
            json!({"a": {"path": "a", "tags": ["name"], "schema": {}}}),
            "a",
            "reserved",
        ),
        (
            json!({"a": {"path": "a", "tags": [], "schema": {"p": {"type": "int", "default": "x"}}}}),
            "a",
            "field p",
        ),
        (
            json!({"a": {"path": "a", "tags": [], "schema": {"p": {"default": 1}}}}),
            "a",
            "field p: has no type: give it one",
        ),
        (
            json!({"a": {"path": "a", "tags": [], "schema": {"p": {"type": "float", "default": 1}}}}),
            "a",
            "field p: unknown field type \"float\"",
        ),
        (
            json!({"a": {"path": "a", "tags": ["t"], "schema": {},
                      "json_schema": {"rules": {"r": {"selector": "x=1", "schema": "s"}}}}}),
            "a",
            "unknown tag",
        ),
        (
            json!({"a": {"path": "a", "tags": [], "schema": {},
                      "json_schema": {"rules": {"r": {"selector": "name=1", "schema": "missing"}}}}}),
            "a",
            "schemas/missing was not read",
        ),
    ];
    for (v, ty, want) in cases {
        let e = Schema::build(raw(v.clone()), &files()).unwrap_err();
        assert_eq!(e.ty, ty, "{v}");
        assert!(e.to_string().contains(want), "{e} should say {want}");
    }
}

#[test]
fn raw_shapes_require_what_the_python_tool_requires() {
    for bad in [
        json!({"a": {"tags": [], "schema": {}}}),
        json!({"a": {"path": "a", "schema": {}}}),
        json!({"a": {"path": "a", "tags": []}}),
        json!({"a": {"path": "a", "tags": [], "schema": {"f": {"type": "int"}}}}),
        json!({"a": {"path": "a", "tags": [], "schema": {}, "json_schema": {"rulez": {}}}}),
    ] {
        assert!(
            serde_json::from_value::<RawSchema>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn python_text_forms() {
    assert_eq!(
        object::py_json(&json!({"a": ["é", 1]})),
        r#"{"a": ["\u00e9", 1]}"#
    );
    assert_eq!(object::py_str(&json!(true)), "True");
    assert_eq!(object::py_str(&json!(["a", null])), "['a', None]");
    assert_eq!(object::py_str(&json!("x")), "x");
}

fn snapshot(kvs: &[(&str, &str)]) -> crate::write::Snapshot {
    crate::write::Snapshot {
        revision: 5,
        kvs: kvs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| crate::write::Kv {
                key: k.to_string(),
                value: v.as_bytes().to_vec(),
                mod_revision: i as i64 + 1,
            })
            .collect(),
    }
}

#[test]
fn a_set_keeps_unknown_stored_fields_and_a_no_op_is_no_change() {
    let s = Schema::build(example(), &files()).unwrap();
    let lb = s.get("lb").unwrap();
    let ks = Keyspace::default();
    let snap = snapshot(&[
        ("/v1/lbs/pools/eqiad/text/lb1", r#"{"port":80,"legacy":1}"#),
        (
            "/v1/lbs/pools/eqiad/text/lb2",
            r#"{"port":81,"mode":"a","nets":[]}"#,
        ),
        ("/v1/lbs/pools/eqiad/text/bad", "not json"),
        ("/v1/lbs/pools/eqiad/lb3", "{}"),
    ]);
    let all = TypeSelector::any();
    let sel = TypedSelection::from_snapshot(&ks, lb, &all, &snap);
    assert_eq!(sel.objects.len(), 2, "the key of another depth is not lb's");
    assert_eq!(sel.malformed.len(), 1);
    let edit = TypedEdit::Set(parse_set(lb, "mode=b:port=81").unwrap());
    let changes = sel.changes(lb, &edit).unwrap();
    assert_eq!(changes.len(), 2);
    let w = changes[0].write();
    assert_eq!(w.guard(), crate::write::Guard::Unchanged(1));
    match &w {
        crate::write::Write::Put { value, .. } => assert_eq!(
            value, r#"{"port":81,"mode":"b","nets":["10.0.0.0/8"],"legacy":1}"#,
            "missing fields get defaults, unknown ones are kept, schema order first"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        changes[0].lines(),
        vec![
            "eqiad/text/lb1: mode changed a => b",
            "eqiad/text/lb1: port changed 80 => 81"
        ]
    );
    // lb2 has every field, port 81 among them: setting port=81 does not rewrite it.
    let same = TypedEdit::Set(parse_set(lb, "port=81").unwrap());
    let c = sel.changes(lb, &same).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].id.name, "lb1");
    let sel2 = TypedSelection::from_snapshot(
        &ks,
        lb,
        &TypeSelector::parse("name=lb2", &lb.tags).unwrap(),
        &snap,
    );
    assert_eq!(sel2.objects.len(), 1);
    let del = sel2.changes(lb, &TypedEdit::Delete).unwrap();
    assert_eq!(del[0].lines(), vec!["eqiad/text/lb2: deleted"]);
}

#[test]
fn set_values_are_parsed_and_checked() {
    let s = Schema::build(example(), &files()).unwrap();
    let lb = s.get("lb").unwrap();
    for bad in [
        "port",
        "port=1=2",
        "nope=1",
        "port=x",
        "mode=z",
        "port=1:port=2",
    ] {
        assert!(parse_set(lb, bad).is_err(), "{bad}");
    }
    assert!(check_set(lb, vec![("port".into(), json!("80"))]).is_err());
    assert!(check_set(lb, vec![("port".into(), json!(80))]).is_ok());
    // json_schema types: the rules judge, on the whole object.
    let mw = s.get("mwconfig").unwrap();
    let snap = snapshot(&[("/v1/mediawiki-config/common/small1", r#"{"val":null}"#)]);
    let sel = TypedSelection::from_snapshot(&Keyspace::default(), mw, &TypeSelector::any(), &snap);
    let e = sel
        .changes(
            mw,
            &TypedEdit::Set(check_set(mw, vec![("val".into(), json!(12))]).unwrap()),
        )
        .unwrap_err();
    assert!(e.to_string().contains("rule small"), "{e}");
    assert!(sel
        .changes(mw, &TypedEdit::Set(vec![("val".into(), json!(2))]))
        .is_ok());
}

/// Issue 16, finding 5: a caller's schema declared a type over `services` and rewrote a
/// service's depool threshold. No type may map onto any prefix conftool-rs owns, however
/// spelled (nested, trailing slash); the built-in node type is not a schema type and keeps
/// working at `pools`.
#[test]
fn no_type_maps_onto_a_reserved_prefix() {
    for first in RESERVED_PATHS {
        for path in [
            first.to_string(),
            format!("{first}/"),
            format!("{first}/x/y"),
        ] {
            let v = json!({"t": {"path": path, "tags": ["cluster"], "schema": {}}});
            let e = Schema::build(raw(v), &files()).unwrap_err();
            assert_eq!(e.ty, "t");
            assert!(
                e.to_string()
                    .contains(&format!("is inside {first}/, which conftool-rs owns")),
                "{path}: {e}"
            );
        }
    }
    assert_eq!(RESERVED_PATHS.len(), 9);
    // Near misses are fine.
    for path in [
        "service",
        "services-extra",
        "poolsx",
        "x/services",
        "maintenance",
    ] {
        let v = json!({"t": {"path": path, "tags": [], "schema": {}}});
        assert!(Schema::build(raw(v), &files()).is_ok(), "{path}");
    }
    let v = json!({"node": {"path": "x", "tags": [], "schema": {}}});
    assert!(Schema::build(raw(v), &files()).is_err(), "node is built in");
}
