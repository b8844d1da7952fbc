//! Reading schema files: places of errors, the production-shaped schema, YAML 1.1 defaults.
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

/// The production-shaped schema of `tests/fixtures/production`, installed under `dir` (its
/// `/etc/conftool/` made `dir/etc/conftool/`, as the tests install it).
fn install_production(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/production/etc");
    let etc = dir.join("etc");
    copy_tree(&src, &etc);
    let schema = etc.join("conftool/schema.yaml");
    let text = std::fs::read_to_string(&schema).unwrap();
    let root = format!("{}/", etc.join("conftool").display());
    std::fs::write(&schema, text.replace("/etc/conftool/", &root)).unwrap();
    schema
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_production_shaped_schema_is_read_as_the_python_tool_reads_it() {
    use conftool_core::schema::{Draft, FieldType, Validation};
    let dir = tempfile::tempdir().unwrap();
    let (s, notes) = read_schema_noted(&install_production(dir.path())).unwrap();
    let names: Vec<&str> = s.types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "discovery",
            "geodns",
            "mwconfig",
            "dbconfig-instance",
            "dbconfig-section",
            "requestctl-action",
            "requestctl-pattern"
        ]
    );
    let inst = s.get("dbconfig-instance").unwrap();
    let kinds: Vec<(&str, &FieldType)> = inst
        .fields
        .iter()
        .map(|f| (f.name.as_str(), &f.ty))
        .collect();
    assert_eq!(
        kinds,
        [
            ("host_ip", &FieldType::String),
            ("port", &FieldType::Int),
            ("sections", &FieldType::Dict),
            ("note", &FieldType::String)
        ],
        "untyped fields are read from the command line as their defaults' kinds"
    );
    let Validation::JsonSchema(rules) = &s.get("mwconfig").unwrap().validation else {
        panic!("mwconfig has rules");
    };
    let drafts: Vec<(&str, Draft)> = rules.iter().map(|r| (r.name.as_str(), r.draft)).collect();
    assert_eq!(
        drafts,
        [
            ("catchall", Draft::Draft7),
            ("db-read-only", Draft::Draft4),
            ("db-sections", Draft::Draft6),
            ("master-dc", Draft::Draft2019),
            ("maintenance", Draft::Draft2020)
        ]
    );
    let disc = s.get("discovery").unwrap();
    assert_eq!(
        disc.defaults().last(),
        Some(&("active_active".to_string(), serde_json::json!(false))),
        "an unquoted `no` is YAML 1.1's false"
    );
    assert_eq!(notes, Vec::<String>::new(), "nothing to say about it");
}

/// A schema file `schema.yaml` in a temp dir, with rule files under `js/`.
fn schema_with(yaml: &str, rules: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("schema.yaml");
    std::fs::write(&p, yaml).unwrap();
    std::fs::create_dir(dir.path().join("js")).unwrap();
    for (name, text) in rules {
        std::fs::write(dir.path().join("js").join(name), text).unwrap();
    }
    (dir, p)
}

const ONE_RULE: &str = "t:\n  path: t\n  tags: []\n  json_schema:\n    base_path: js\n    rules:\n      r: {selector: 'name=.*', schema: r.json}\n  schema:\n    n:\n      default: 1\n";

#[test]
fn errors_in_rule_files_name_their_line_and_what_to_change() {
    let cases = [
        (
            "{\n  \"properties\": {\n    \"n\": {\"type\": 12}\n  }\n}\n",
            "js/r.json:3:19: object type t, rule r: not a valid draft 2020-12 JSON Schema at /properties/n/type",
        ),
        (
            "{\n  \"$schema\": \"http://json-schema.org/draft-03/schema#\",\n  \"type\": \"object\"\n}\n",
            "js/r.json:2:14: object type t, rule r: draft-03 JSON Schemas are not supported: make it a draft-04 one",
        ),
        (
            "{\"properties\": {\"n\": {\"$ref\": \"common.json#/definitions/n\"}}}",
            "schema.yaml:7:7: object type t, rule r: js/r.json: a $ref leads to js/common.json, another document: references are followed within the file only",
        ),
        (
            "{\"properties\": {\"n\": {\"$ref\": \"#/definitions/nope\"}}}",
            "which is not in the file",
        ),
        (
            "{\n  \"type\": \"object\",\n  \"type\": \n}",
            "js/r.json:4:1: not a JSON Schema: expected value",
        ),
    ];
    for (json, want) in cases {
        let (dir, p) = schema_with(ONE_RULE, &[("r.json", json)]);
        let e = read_schema(&p).unwrap_err().to_string();
        let e = e.replace(&format!("{}/", dir.path().display()), "");
        assert!(
            e.starts_with(want) || e.contains(want),
            "{json}:\n{e}\nshould say\n{want}"
        );
    }
}

#[test]
fn a_rule_file_that_cannot_be_read_is_placed_at_its_rule() {
    let (_dir, p) = schema_with(ONE_RULE, &[]);
    let e = read_schema(&p).unwrap_err().to_string();
    assert!(
        e.contains("schema.yaml:7:7: object type t, rule r: its JSON Schema file ")
            && e.contains("js/r.json cannot be read: No such file or directory"),
        "{e}"
    );
}

#[test]
fn errors_in_the_schema_file_name_their_line_and_what_to_change() {
    let cases = [
        (
            "t:\n  path: t\n  tags: []\n  schema:\n    n:\n      type: int\n",
            "schema.yaml:6:7: t.schema.n: missing field `default`: every field needs a default",
        ),
        (
            "t:\n  path: t\n  tags: []\n  schema:\n    n: {default: 1}\n",
            "schema.yaml:5:5: object type t, field n: has no type: give it one (string, int",
        ),
        (
            "t:\n  tags: []\n  schema: {}\n",
            "missing field `path`: an object type needs path, tags",
        ),
        (
            "t:\n  path: t\n  tags: []\n  schema:\n    n: {type: bool, default: maybe}\n",
            "schema.yaml:5:5: object type t, field n: default \"maybe\" is not of type bool",
        ),
        (
            "t:\n  path: t\n  tags: [dc]\n  json_schema:\n    base_path: js\n    rules:\n      r: {selector: 'site=x', schema: r.json}\n  schema: {}\n",
            "schema.yaml:7:7: object type t, rule r: selector: unknown tag \"site\" (tags: dc, name)",
        ),
    ];
    for (yaml, want) in cases {
        let (_dir, p) = schema_with(yaml, &[("r.json", "{}")]);
        let e = read_schema(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}:\n{e}\nshould say\n{want}");
    }
}

#[test]
fn what_the_python_tool_ignores_is_accepted_and_said() {
    let yaml = "t:\n  path: t\n  tags: []\n  description: things\n  free_form: yes\n  json_schema:\n    base_path: js\n    rules:\n      r: {selector: 'name=.*', schema: r.json}\n  schema:\n    n:\n      type: number\n      default: 1\n      units: ms\n";
    let (dir, p) = schema_with(
        yaml,
        &[(
            "r.json",
            "{\"$schema\": \"https://json-schema.org/draft-07/schema#\"}",
        )],
    );
    let (s, notes) = read_schema_noted(&p).unwrap();
    assert_eq!(
        s.types[0].fields[0].ty,
        conftool_core::schema::FieldType::Int
    );
    let shown: Vec<String> = notes
        .iter()
        .map(|n| n.replace(&format!("{}/", dir.path().display()), ""))
        .collect();
    let want = [
        "schema.yaml:4:3: object type t, key description: not a key of an object type",
        "schema.yaml:11:5: object type t, field n: \"units\" is not a key of a field",
        "schema.yaml:11:5: object type t, field n: unknown field type \"number\"",
        "schema.yaml:1:1: object type t: free_form is ignored in a json_schema type",
        "schema.yaml:9:7: object type t, rule r: js/r.json: $schema \"https://json-schema.org/draft-07/schema#\" is not a metaschema python-jsonschema knows: validated as draft 2020-12",
    ];
    assert_eq!(shown.len(), want.len(), "{shown:#?}");
    for (got, want) in shown.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\nshould start with\n{want}");
    }
}

#[test]
fn yaml_1_1_booleans_in_defaults_only_when_unquoted() {
    let yaml = "t:\n  path: t\n  tags: []\n  free_form: on\n  schema:\n    a: {type: bool, default: yes}\n    b: {type: string, default: \"no\"}\n    c:\n      type: bool\n      default: Off   # YAML 1.1\n    d:\n      type: string\n      default: 'on'\n    e: {type: list, default: [yes]}\n";
    let (_dir, p) = schema_with(yaml, &[]);
    let s = read_schema(&p).unwrap();
    let t = &s.types[0];
    assert_eq!(t.validation, conftool_core::schema::Validation::FreeForm);
    let defaults: Vec<String> = t.defaults().iter().map(|(_, v)| v.to_string()).collect();
    assert_eq!(defaults, ["true", "\"no\"", "false", "\"on\"", "[\"yes\"]"]);
}

#[test]
fn a_schema_file_over_the_size_cap_is_refused_before_it_is_read() {
    let (dir, p) = schema_with("", &[]);
    // Sparse: one byte over the cap costs no disk.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(MAX_FILE_SIZE + 1).unwrap();
    let e = read_schema(&p).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if *path == p), "{e:?}");
    // The path is the message; why, the error's source (shown once in the chain).
    assert_eq!(
        e.to_string()
            .replace(&format!("{}/", dir.path().display()), ""),
        "schema.yaml"
    );
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("bigger than the 64 MiB a schema file may be")
    );
}
