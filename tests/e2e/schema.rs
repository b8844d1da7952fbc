//! Object types of the Python tool's schema file (`--schema`), end to end: conftool-sync
//! creates, keeps and deletes them like pool objects, and confctl gets, sets and deletes
//! them, against a real etcd. Fixtures: tests/fixtures/schema/.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::*;

pub(crate) fn fixture() -> PathBuf {
    fixtures().join("schema")
}

/// A test's copy of the fixture: `<tmp>/s/schema.yaml`, `<tmp>/s/js/`, `<tmp>/s/data/`.
pub(crate) fn setup(ctx: &Ctx) -> (PathBuf, PathBuf) {
    let dst = ctx.path("s");
    copy_dir(&fixture(), &dst);
    (dst.join("schema.yaml"), dst.join("data"))
}

pub(crate) fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub(crate) fn sync(
    ctx: &Ctx,
    schema: &std::path::Path,
    data: &std::path::Path,
    more: &[&str],
) -> Run {
    let mut args = vec!["--schema", s(schema)];
    args.extend_from_slice(more);
    ctx.sync(data, &args)
}

fn confctl(ctx: &Ctx, schema: &std::path::Path, ty: &str, sel: &str, action: &str) -> Run {
    confctl_as(ctx, &[], schema, ty, sel, action)
}

/// [`confctl`] with output flags (`--json`, `--yaml`) before the command.
fn confctl_as(
    ctx: &Ctx,
    flags: &[&str],
    schema: &std::path::Path,
    ty: &str,
    sel: &str,
    action: &str,
) -> Run {
    let mut args = flags.to_vec();
    args.extend([
        "--schema",
        s(schema),
        "--object-type",
        ty,
        "select",
        sel,
        action,
        "--yes",
    ]);
    ctx.run("confctl", &args)
}

pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

pub(crate) const API: &str = "/v1/discovery/api-rw/eqiad";

#[test]
fn first_sync_writes_the_reviewed_keyspace_and_a_resync_writes_nothing() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    let run = sync(&ctx, &schema, &data, &[]).expect_code(0);
    let expected = read_keyspace(&fixture().join("expected-keyspace.txt"));
    assert_eq!(
        expected.len(),
        14,
        "fixture: 12 typed objects, 1 node, the record"
    );
    assert_keyspace(&ctx.dump(), &expected);
    assert!(run.stderr.contains("created 13 objects"), "{}", run.stderr);
    let before = ctx.state();
    let run = sync(&ctx, &schema, &data, &[]).expect_code(0);
    assert!(run.stderr.contains("Nothing to do"), "{}", run.stderr);
    assert_eq!(
        ctx.state(),
        before,
        "a no-op sync must not bump the revision"
    );
}

#[test]
fn kept_objects_keep_their_values_and_removed_ones_are_deleted() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    // Dynamic state, as confctl (or the Python tool) would write it.
    let edited = r#"{"pooled":true,"references":["x"],"ttl":5,"mode":"passive","nets":[],"meta":{"a":1},"owner":"me","extra":[1]}"#;
    ctx.put(API, edited);
    let db = "/v1/dbconfig-section/eqiad/s1/db1001";
    let db_value = r#"{"master":"db1001","readonly":true,"free":"kept"}"#;
    ctx.put(db, db_value);
    // Remove one discovery object, a whole flat one and a depth-2 section.
    std::fs::write(
        data.join("discovery/records.yaml"),
        "appservers-rw: [eqiad]\napi-rw: [eqiad]\n",
    )
    .unwrap();
    std::fs::write(data.join("flat/things.yaml"), "[alpha, gamma]\n").unwrap();
    std::fs::write(
        data.join("dbsection/sections.yaml"),
        "eqiad:\n  s1: [db1001]\n",
    )
    .unwrap();
    // One of three discovery objects goes: more than the default share of 25%.
    let before = ctx.state();
    let refused = sync(&ctx, &schema, &data, &[]).expect_code(2);
    assert!(
        refused.stderr.contains("objects of type discovery"),
        "{}",
        refused.stderr
    );
    assert_eq!(ctx.state(), before);
    let all = ["--max-delete-share", "1"];
    let dry = sync(&ctx, &schema, &data, &[&all[..], &["--dry-run"]].concat()).expect_code(0);
    assert!(
        dry.stdout.contains("-/v1/discovery/appservers-rw/codfw "),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("+/v1/flat-things/gamma {\"on\":false}"),
        "{}",
        dry.stdout
    );
    let check = sync(&ctx, &schema, &data, &[&all[..], &["--check"]].concat());
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert_eq!(ctx.state(), before, "dry run and check write nothing");
    sync(&ctx, &schema, &data, &["--max-delete-share", "1"]).expect_code(0);
    let now = ctx.dump();
    assert_eq!(
        now[API], edited,
        "a kept object's values are never overwritten"
    );
    assert_eq!(now[db], db_value);
    for gone in [
        "/v1/discovery/appservers-rw/codfw",
        "/v1/flat-things/beta",
        "/v1/dbconfig-section/codfw/s1/db2001",
        "/v1/dbconfig-section/eqiad/s2/db1002",
    ] {
        assert!(!now.contains_key(gone), "{gone} should be deleted");
    }
    assert_eq!(now["/v1/flat-things/gamma"], r#"{"on":false}"#);
    assert!(now.contains_key("/v1/pools/eqiad/appservers/apache/mw1001"));
}

#[test]
fn a_new_object_whose_defaults_break_a_rule_is_created_with_a_warning() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    std::fs::write(
        data.join("mwconfig/config.yaml"),
        "common: [WMFMasterDatacenter, ReadOnly, StrictMode]\neqiad: [ReadOnly, StrictOther]\n",
    )
    .unwrap();
    // The dry run says so too, and writes nothing.
    let before = ctx.state();
    let run = sync(&ctx, &schema, &data, &["--dry-run"]).expect_code(0);
    let warning = "mwconfig common/StrictMode: rule strict (js/strict.schema)";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
    // Created with its defaults, as the Python tool creates it, and said even with --quiet;
    // the rule's selector is scope=common, so eqiad/StrictOther is not warned about.
    let run = sync(&ctx, &schema, &data, &["--quiet"]).expect_code(0);
    assert!(
        run.stderr.contains(warning) && run.stderr.contains("set its values with confctl"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("StrictOther"), "{}", run.stderr);
    let dump = ctx.dump();
    assert_eq!(
        dump["/v1/mediawiki-config/common/StrictMode"],
        r#"{"val":null}"#
    );
    assert_eq!(
        dump["/v1/mediawiki-config/eqiad/StrictOther"],
        r#"{"val":null}"#
    );
    // Once it exists it is not new: no warning, nothing written.
    let rev = ctx.revision();
    let run = sync(&ctx, &schema, &data, &[]).expect_code(0);
    assert!(!run.stderr.contains("StrictMode"), "{}", run.stderr);
    assert_eq!(ctx.revision(), rev);
}

#[test]
fn bad_schemas_and_data_exit_2_with_file_and_line_and_nothing_written() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let good = std::fs::read_to_string(&schema).unwrap();
    let before = ctx.state();
    let cases: &[(&str, &str, &str)] = &[
        // A dependency loop, reported at the first type of the loop.
        (
            "schema.yaml",
            "depends: [mwconfig]\ndbsection:",
            "dependency loop",
        ),
        (
            "schema.yaml",
            "type: int, default: 300",
            "schema.yaml:24:5: object type discovery, field ttl",
        ),
        ("schema.yaml", "enum:active|passive", "schema.yaml:25:"),
        ("schema.yaml", "selector: \"name=ReadOnly\"", "unknown tag"),
        (
            "data/discovery/records.yaml",
            "api-rw: [eqiad]",
            "records.yaml:2:",
        ),
        (
            "data/dbsection/sections.yaml",
            "s1: [db1001]",
            "sections.yaml:2:",
        ),
    ];
    let breakage = |file: &str, text: &str| -> String {
        match file {
            "schema.yaml" if text.starts_with("depends") => {
                good.replacen("  depends: [mwconfig]\n", "  depends: [dbsection]\n", 1)
            }
            "schema.yaml" if text.starts_with("type: int") => {
                good.replace("type: int, default: 300", "type: int, default: \"300\"")
            }
            "schema.yaml" if text.starts_with("enum") => {
                good.replace("\"enum:active|passive\"", "float")
            }
            "schema.yaml" => good.replace("name=ReadOnly", "dc=eqiad"),
            "data/discovery/records.yaml" => {
                "appservers-rw: [eqiad, codfw]\napi-rw: [eqiad, \"bad name\"]\n".into()
            }
            _ => "eqiad:\n  s1: {db1001: 1, db1001: 2}\n".into(),
        }
    };
    for (file, text, want) in cases {
        let path = ctx.path(&format!("s/{file}"));
        let original = std::fs::read_to_string(&path).unwrap();
        let broken = breakage(file, text);
        assert_ne!(broken, original, "{file}: the case must break something");
        std::fs::write(&path, &broken).unwrap();
        let run = sync(&ctx, &schema, &data, &[]).expect_code(2);
        assert!(run.stderr.contains(want), "{file} {text}: {}", run.stderr);
        assert_eq!(ctx.state(), before, "{file} {text}: nothing written");
        std::fs::write(&path, original).unwrap();
    }
    // A schema file that does not exist is an error too, not "no types".
    let run = ctx
        .sync(&data, &["--schema", s(&ctx.path("nope.yaml"))])
        .expect_code(2);
    assert!(run.stderr.contains("nope.yaml"), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
}

#[test]
fn without_a_schema_type_directories_are_warned_about_and_only_nodes_sync() {
    let ctx = Ctx::new();
    let (_, data) = setup(&ctx);
    let run = ctx.sync(&data, &[]).expect_code(0);
    assert!(run.stderr.contains("mwconfig: not read"), "{}", run.stderr);
    let keys: Vec<String> = ctx.dump().into_keys().collect();
    assert_eq!(
        keys,
        vec!["/v1/meta/sync", "/v1/pools/eqiad/appservers/apache/mw1001"]
    );
    // A directory of schema types only leaves the pool objects and the record alone.
    let before = ctx.dump();
    let only = ctx.path("only");
    copy_dir(&fixture().join("data/flat"), &only.join("flat"));
    let schema = fixture().join("schema.yaml");
    sync(&ctx, &schema, &only, &[]).expect_code(0);
    let after = ctx.dump();
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k} untouched");
    }
    assert_eq!(after.len(), before.len() + 2);
}

#[test]
fn confctl_gets_sets_and_deletes_schema_objects() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let get = confctl(&ctx, &schema, "discovery", "dnsdisc=appservers-rw", "get").expect_code(0);
    assert_eq!(
        get.stdout,
        "{\"codfw\": {\"pooled\": false, \"references\": [], \"ttl\": 300, \"mode\": \"active\", \"nets\": [\"10.0.0.0/8\"], \"meta\": {}, \"owner\": \"\", \"extra\": null}, \"tags\": \"dnsdisc=appservers-rw\"}\n\
         {\"eqiad\": {\"pooled\": false, \"references\": [], \"ttl\": 300, \"mode\": \"active\", \"nets\": [\"10.0.0.0/8\"], \"meta\": {}, \"owner\": \"\", \"extra\": null}, \"tags\": \"dnsdisc=appservers-rw\"}\n"
    );
    let set = confctl(
        &ctx,
        &schema,
        "discovery",
        "dnsdisc=api-rw,name=eqiad",
        "set/pooled=true:ttl=10:references=a,b:mode=passive:nets=192.168.0.0/16,10.1.0.0/24",
    )
    .expect_code(0);
    assert_eq!(
        set.stdout,
        "api-rw/eqiad: pooled changed False => True\n\
         api-rw/eqiad: ttl changed 300 => 10\n\
         api-rw/eqiad: references changed [] => ['a', 'b']\n\
         api-rw/eqiad: mode changed active => passive\n\
         api-rw/eqiad: nets changed ['10.0.0.0/8'] => ['192.168.0.0/16', '10.1.0.0/24']\n"
    );
    assert_eq!(
        json(&ctx.dump()[API]),
        json(
            r#"{"pooled":true,"references":["a","b"],"ttl":10,"mode":"passive","nets":["192.168.0.0/16","10.1.0.0/24"],"meta":{},"owner":"","extra":null}"#
        )
    );
    // A dict only from a file (`set/@FILE`), its fields checked and shown in its order.
    let file = ctx.write("set.yaml", "meta: {owner: alice}\nowner: bob\n");
    let set = confctl(
        &ctx,
        &schema,
        "discovery",
        "dnsdisc=api-rw",
        &format!("set/@{}", file.display()),
    )
    .expect_code(0);
    assert_eq!(
        set.stdout,
        "api-rw/eqiad: meta changed {} => {'owner': 'alice'}\napi-rw/eqiad: owner changed  => bob\n"
    );
    assert_eq!(json(&ctx.dump()[API])["meta"], json(r#"{"owner":"alice"}"#));
    // The same set again changes nothing and writes nothing.
    let rev = ctx.revision();
    confctl(&ctx, &schema, "discovery", "dnsdisc=api-rw", "set/ttl=10").expect_code(0);
    assert_eq!(ctx.revision(), rev);
    // Free-form: fields the schema does not declare are kept and shown.
    let db = "/v1/dbconfig-section/eqiad/s1/db1001";
    ctx.put(
        db,
        r#"{"master":"PLACEHOLDER","readonly":false,"note":"x"}"#,
    );
    confctl(
        &ctx,
        &schema,
        "dbsection",
        "datacenter=eqiad,section=s1",
        "set/master=db1001",
    )
    .expect_code(0);
    assert_eq!(
        json(&ctx.dump()[db]),
        json(r#"{"master":"db1001","readonly":false,"note":"x"}"#)
    );
    let get = confctl(&ctx, &schema, "dbsection", "name=db1001", "get").expect_code(0);
    assert_eq!(
        get.stdout,
        "{\"db1001\": {\"master\": \"db1001\", \"readonly\": false, \"note\": \"x\"}, \"tags\": \"datacenter=eqiad,section=s1\"}\n"
    );
    // A write to several objects without --yes asks; no answer means no.
    let before = ctx.state();
    let asked = ctx.run(
        "confctl",
        &[
            "--schema",
            s(&schema),
            "--object-type",
            "flat",
            "select",
            "name=.*",
            "set/on=true",
        ],
    );
    assert_eq!(asked.code, 1, "{}", asked.stderr);
    assert_eq!(ctx.state(), before);
    // `--host` writes one name's objects without asking, and refuses several names.
    let host = |sel: &str| {
        ctx.run(
            "confctl",
            &[
                "--host",
                "--schema",
                s(&schema),
                "--object-type",
                "flat",
                "select",
                sel,
                "set/on=true",
            ],
        )
    };
    let refused = host("name=.*").expect_code(2);
    assert!(refused.stderr.contains("--host"), "{}", refused.stderr);
    assert_eq!(ctx.state(), before);
    host("name=beta").expect_code(0);
    assert_eq!(ctx.dump()["/v1/flat-things/beta"], r#"{"on":true}"#);
    let del = confctl(
        &ctx,
        &schema,
        "dbsection",
        "datacenter=eqiad,section=s2",
        "delete",
    )
    .expect_code(0);
    assert_eq!(
        del.stdout,
        "eqiad/s2/db1002: deleted\neqiad/s2/db1003: deleted\n"
    );
    let now = ctx.dump();
    assert!(!now.contains_key("/v1/dbconfig-section/eqiad/s2/db1002"));
    assert!(now.contains_key("/v1/dbconfig-section/eqiad/s1/db1001"));
}

/// Schema objects go through the flow node objects go through (`pipeline.rs`): `--yaml`
/// prints the Python tool's asdict form, one document per object, holding what the JSON
/// line holds; `--json` of a write that changes nothing still prints its document; a write
/// that matches nothing is bad input and writes nothing.
#[test]
fn schema_objects_take_the_node_objects_flow() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let sel = "dnsdisc=appservers-rw";
    let lines = confctl(&ctx, &schema, "discovery", sel, "get")
        .expect_code(0)
        .stdout;
    let yaml = confctl_as(&ctx, &["--yaml"], &schema, "discovery", sel, "get")
        .expect_code(0)
        .stdout;
    let docs = crate::confctl_compat::yaml_docs(&yaml);
    let lines: Vec<Value> = lines.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "fixture: two objects");
    assert_eq!(docs, lines, "{yaml}");

    let before = ctx.state();
    let json_run = |sel, action| confctl_as(&ctx, &["--json"], &schema, "discovery", sel, action);
    let same = json_run("dnsdisc=api-rw", "set/ttl=300").expect_code(0);
    let doc = json(same.stdout.trim());
    assert_eq!(doc["object_type"], "discovery", "{doc}");
    assert_eq!(doc["changed"], serde_json::json!([]), "{doc}");
    assert_eq!(doc["unchanged"], 1, "{doc}");
    assert!(
        same.stderr.contains("already in the requested state"),
        "{}",
        same.stderr
    );
    assert_eq!(ctx.state(), before, "nothing rewritten");

    let none = json_run("dnsdisc=no-such-thing", "set/ttl=10").expect_code(2);
    assert!(
        none.stderr
            .contains("matches no discovery objects; nothing written"),
        "{}",
        none.stderr
    );
    assert_eq!(ctx.state(), before);

    // A write that lands: its document lists the change with its revision.
    let set = json_run("dnsdisc=api-rw", "set/ttl=20").expect_code(0);
    let doc = json(set.stdout.trim());
    assert_eq!(doc["unchanged"], 0, "{doc}");
    let changed = doc["changed"].as_array().expect("changed");
    assert_eq!(changed.len(), 1, "{doc}");
    assert_eq!(changed[0]["key"], API, "{doc}");
    assert_eq!(changed[0]["after"]["ttl"], 20, "{doc}");
    assert_eq!(changed[0]["revision"], ctx.revision(), "{doc}");
}

#[test]
fn confctl_refuses_bad_values_before_writing_anything() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let before = ctx.state();
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/ttl=abc",
            "\"abc\" is not an integer",
        ),
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/nets=10.0.0.0/8,10.0.0.300",
            "\"10.0.0.300\" is not an IP network",
        ),
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/mode=bogus",
            "not one of active, passive",
        ),
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/pooled=yes",
            "booleans can only be",
        ),
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/meta=x",
            "dictionaries are not supported",
        ),
        (
            "discovery",
            "dnsdisc=api-rw",
            "set/nope=1",
            "field \"nope\" is not in the schema of discovery",
        ),
        ("discovery", "cluster=x", "get", "unknown tag \"cluster\""),
        // Values of `any` fields are strings from the command line (as in the Python tool):
        // the readonly rule wants a boolean.
        (
            "mwconfig",
            "scope=common,name=ReadOnly",
            "set/val=true",
            "mwconfig common/ReadOnly: rule readonly",
        ),
        (
            "undeclared",
            "name=x",
            "get",
            "object type \"undeclared\" is not defined",
        ),
    ];
    let file = ctx.write("bad-set.yaml", "ttl: \"12\"\nmeta: {a: 1}\n");
    let from_file = format!("set/@{}", file.display());
    let cases = [
        cases,
        &[(
            "discovery",
            "dnsdisc=api-rw",
            from_file.as_str(),
            "field ttl: \"12\" is not of type int",
        )][..],
    ]
    .concat();
    for (ty, sel, action, want) in &cases {
        let run = confctl(&ctx, &schema, ty, sel, action).expect_code(2);
        assert!(
            run.stderr.contains(want),
            "{ty} {sel} {action}: {}",
            run.stderr
        );
        assert_eq!(ctx.state(), before, "{ty} {sel} {action}: nothing written");
    }
}

#[test]
fn git_rev_mode_syncs_the_types_as_committed() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    let repo = ctx.path("s");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "Test"]);
    git(&repo, &["config", "user.email", "test@example.invalid"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "data"]);
    // Not committed: must not be synced.
    std::fs::write(
        data.join("flat/things.yaml"),
        "[alpha, beta, uncommitted]\n",
    )
    .expect("write");
    sync(&ctx, &schema, &data, &["--git-rev", "HEAD"]).expect_code(0);
    let mut expected = read_keyspace(&fixture().join("expected-keyspace.txt"));
    let head = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    expected.insert(
        "/v1/meta/sync".into(),
        format!(r#"{{"datacenters":["eqiad"],"git_rev":"{head}"}}"#),
    );
    assert_keyspace(&ctx.dump(), &expected);
}

// ---- Against the real Python conftool's reference (tests/fixtures/python, its README) ----

/// The Python reference's inputs copied into the test's dir: `<tmp>/py/{schema.yaml,
/// schemas/, data/, data-resync/}`.
pub(crate) fn python_setup(ctx: &Ctx) -> PathBuf {
    let src = fixtures().join("python");
    let dst = ctx.path("py");
    for d in ["schemas", "data", "data-resync"] {
        copy_dir(&src.join(d), &dst.join(d));
    }
    std::fs::write(dst.join("schema.yaml"), python_schema_ours()).expect("write schema");
    dst
}

/// The Python reference's schema as we take it: without its `svc` type, which maps onto
/// `services` (the service definitions, which only the sync writes here, from
/// `services.yaml`: issue 16, finding 5; the Python tool lets any schema type write them),
/// and with `widget` depending on `site` instead (the types' order is unchanged). That the
/// original is refused is [`the_python_references_services_type_is_refused`].
pub(crate) fn python_schema_ours() -> String {
    let text =
        std::fs::read_to_string(fixtures().join("python/schema.yaml")).expect("python schema");
    let start = text
        .find("# Depth 1, depends on site")
        .expect("the svc type");
    let end = text
        .find("# Depth 2, every field type")
        .expect("the widget type");
    let ours = format!("{}{}", &text[..start], &text[end..]);
    let depends = "  depends:\n    - svc\n";
    assert_eq!(ours.matches(depends).count(), 1, "widget depends on svc");
    ours.replace(depends, "  depends:\n    - site\n")
}

/// The reference's keys of the service definitions its `svc` type wrote (we do not take
/// that type: [`python_schema_ours`]).
pub(crate) const PYTHON_SVC_KEYS: &str = "/conftool/v1/services/";

#[test]
fn the_python_references_services_type_is_refused() {
    let ctx = Ctx::new();
    let py = python_setup(&ctx);
    let original = fixtures().join("python/schema.yaml");
    let before = ctx.state();
    let why = "object type svc: path \"services\" is inside services/, which conftool-rs owns";
    let run = sync(
        &ctx,
        &original,
        &py.join("data"),
        &["--namespace", "/conftool"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(why), "{}", run.stderr);
    assert!(
        run.stderr.contains("schema.yaml:18:"),
        "placed at svc: {}",
        run.stderr
    );
    let run = ctx.run(
        "confctl",
        &[
            "--namespace",
            "/conftool",
            "--schema",
            s(&original),
            "--object-type",
            "svc",
            "select",
            "cluster=cache_text,name=nginx",
            "set/datacenters=eqiad",
        ],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(why), "{}", run.stderr);
    assert_eq!(ctx.state(), before, "nothing written");
    // Our version of it works (the positive control): the other types sync.
    sync(
        &ctx,
        &py.join("schema.yaml"),
        &py.join("data"),
        &["--namespace", "/conftool"],
    )
    .expect_code(0);
    assert!(ctx.count("/conftool/v1/widgets/") > 0);
    assert_eq!(ctx.count(PYTHON_SVC_KEYS), 0);
}

pub(crate) fn python_reference(name: &str) -> Keyspace {
    read_keyspace(&fixtures().join("python/reference").join(name))
}

/// Keys under `prefix` (all but our sync record when empty), values parsed as JSON.
/// Keys the reference's `svc` type wrote are left out (see [`python_schema_ours`]).
pub(crate) fn parsed(ks: &Keyspace, prefix: &str, skip: &[&str]) -> BTreeMap<String, Value> {
    ks.iter()
        .filter(|(k, _)| k.starts_with(prefix) && *k != "/conftool/v1/meta/sync")
        .filter(|(k, _)| !k.starts_with(PYTHON_SVC_KEYS))
        .filter(|(k, _)| !skip.iter().any(|s| k.ends_with(s)))
        .map(|(k, v)| (k.clone(), json(v)))
        .collect()
}

#[track_caller]
pub(crate) fn assert_same_objects(
    ours: &BTreeMap<String, Value>,
    python: &BTreeMap<String, Value>,
) {
    assert!(
        !python.is_empty(),
        "the reference must hold something to compare"
    );
    let ours_keys: Vec<&String> = ours.keys().collect();
    let python_keys: Vec<&String> = python.keys().collect();
    assert_eq!(ours_keys, python_keys, "keys");
    for (k, v) in python {
        assert_eq!(&ours[k], v, "{k}");
    }
}

#[test]
fn python_reference_first_sync_and_resync_give_its_keyspace() {
    let ctx = Ctx::new();
    let py = python_setup(&ctx);
    let schema = py.join("schema.yaml");
    let ns = ["--namespace", "/conftool"];
    // The data has objects whose defaults break a JSON Schema rule: created all the same,
    // as the Python tool creates them, with a warning.
    let run = sync(&ctx, &schema, &py.join("data"), &ns).expect_code(0);
    assert!(
        run.stderr
            .contains("mwconfig db/replicas-db1: rule replicas"),
        "{}",
        run.stderr
    );
    assert_same_objects(
        &parsed(&ctx.dump(), "/", &[]),
        &parsed(&python_reference("after-sync.txt"), "/", &[]),
    );

    // The resync starts from the keyspace the Python tool had then (its confctl steps'
    // changes included), written byte for byte.
    let ctx = Ctx::new();
    for (k, v) in python_reference("before-resync.txt") {
        ctx.put(&k, &v);
    }
    // The Python tool has no delete guard; site esams is a third of the sites.
    let args = ["--namespace", "/conftool", "--max-delete-share", "1"];
    sync(&ctx, &schema, &py.join("data-resync"), &args).expect_code(0);
    let after = python_reference("after-resync.txt");
    assert_same_objects(&parsed(&ctx.dump(), "/", &[]), &parsed(&after, "/", &[]));
    // Values of objects that stayed are byte-identical: a sync never rewrites them.
    let dump = ctx.dump();
    assert_eq!(
        dump["/conftool/v1/widgets/eqiad/cache_text/w1"],
        after["/conftool/v1/widgets/eqiad/cache_text/w1"]
    );
    let rev = ctx.revision();
    sync(&ctx, &schema, &py.join("data-resync"), &args).expect_code(0);
    assert_eq!(
        ctx.revision(),
        rev,
        "the second resync is a no-op, as the Python tool's"
    );
}

/// Stdout of a Python reference step (`confctl-NNN.txt`).
pub(crate) fn python_stdout(step: &str) -> String {
    let text =
        std::fs::read_to_string(fixtures().join(format!("python/reference/confctl-{step}.txt")))
            .expect("reference step");
    let start = text.find("# stdout:\n").expect("stdout section") + "# stdout:\n".len();
    let end = text.find("# stderr:\n").expect("stderr section");
    text[start..end].to_string()
}

#[test]
fn python_reference_confctl_steps_print_and_store_what_it_does() {
    let ctx = Ctx::new();
    let py = python_setup(&ctx);
    let schema = py.join("schema.yaml");
    sync(
        &ctx,
        &schema,
        &py.join("data"),
        &["--namespace", "/conftool"],
    )
    .expect_code(0);
    // Steps that read or write one object of a type with fields of every type. (Steps 085
    // to 087, of the reference's type at path `services`, are refused here: see
    // python_schema_ours and python_types.rs.)
    let steps: &[(&str, &str, &str, &str, &str)] = &[
        (
            "042",
            "widget",
            "dc=eqiad,cluster=cache_text,name=w1",
            "get",
            "/conftool/v1/widgets/",
        ),
        (
            "043",
            "widget",
            "dc=eqiad,cluster=cache_text,name=w1",
            "set/label=hello",
            "/conftool/v1/widgets/",
        ),
        (
            "044",
            "widget",
            "dc=eqiad,cluster=cache_text,name=w1",
            "set/count=5:enabled=true:items=x,y,z:mode=b",
            "/conftool/v1/widgets/",
        ),
        (
            "045",
            "widget",
            "dc=eqiad,cluster=cache_text,name=w1",
            "set/label=with space :enabled=FALSE",
            "/conftool/v1/widgets/",
        ),
        (
            "046",
            "widget",
            "dc=eqiad,cluster=cache_text,name=w1",
            "set/extra=hello",
            "/conftool/v1/widgets/",
        ),
        (
            "047",
            "widget",
            "dc=eqiad,cluster=appservers,name=w3",
            "set/label=café \"quoted\" \\\\ ☃",
            "/conftool/v1/widgets/",
        ),
        (
            "048",
            "widget",
            "dc=eqiad,cluster=appservers,name=w3",
            "get",
            "/conftool/v1/widgets/",
        ),
    ];
    let files = fixtures().join("python/set");
    for (step, ty, sel, action, prefix) in steps {
        // `set/@FILE`: the reference's files, by absolute path.
        let action = match action.strip_prefix("set/@") {
            Some(f) => format!("set/@{}", files.join(f).display()),
            None => action.to_string(),
        };
        let action = action.as_str();
        let run = ctx
            .run(
                "confctl",
                &[
                    "--namespace",
                    "/conftool",
                    "--schema",
                    s(&schema),
                    "--object-type",
                    ty,
                    "select",
                    sel,
                    action,
                ],
            )
            .expect_code(0);
        assert_eq!(run.stdout, python_stdout(step), "step {step}");
        let after = fixtures().join(format!("python/reference/after-confctl-{step}.txt"));
        if after.exists() {
            assert_same_objects(
                &parsed(&ctx.dump(), prefix, &[]),
                &parsed(&read_keyspace(&after), prefix, &[]),
            );
        }
    }
}
