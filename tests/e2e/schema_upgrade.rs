//! `confctl upgrade-schema`: after a field is added to a type in the schema file, every
//! object of the type gets it with its default; invalid objects stop the run (exit 2,
//! nothing written) unless `--force`, which leaves them untouched. Against a real etcd,
//! fixtures tests/fixtures/schema/ and the Python reference (steps 097, 098).

use crate::schema::{python_reference, python_setup, s, setup, sync};
use crate::util::*;

/// Add `weight: {type: int, default: 7}` to the `discovery` type of the test's schema.
fn add_weight(schema: &std::path::Path) {
    let text = std::fs::read_to_string(schema).expect("read schema");
    let anchor = "    extra: {type: any, default: null}\n";
    assert!(
        text.contains(anchor),
        "the fixture's discovery type ends with extra"
    );
    let new = text.replacen(
        anchor,
        &format!("{anchor}    weight: {{type: int, default: 7}}\n"),
        1,
    );
    std::fs::write(schema, new).expect("write schema");
}

fn upgrade(ctx: &Ctx, schema: &std::path::Path, args: &[&str]) -> Run {
    let mut a = vec!["--schema", s(schema)];
    a.extend_from_slice(args);
    ctx.run("confctl", &a)
}

const DISC: &str = "/v1/discovery/";

#[test]
fn upgrade_schema_adds_a_new_field_with_its_default_once() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    // Changed by confctl, with a key the schema does not know, in an order of its own.
    let api = "/v1/discovery/api-rw/eqiad";
    ctx.put(
        api,
        r#"{"ttl":10,"pooled":true,"references":[],"mode":"active","nets":[],"meta":{},"owner":"x","extra":null,"legacy":1}"#,
    );
    add_weight(&schema);
    let before = ctx.state();
    let dry = upgrade(&ctx, &schema, &["upgrade-schema", "--dry-run", "discovery"]).expect_code(0);
    assert_eq!(
        dry.stdout,
        "discovery api-rw/eqiad: + weight: 7\n\
         discovery appservers-rw/codfw: + weight: 7\n\
         discovery appservers-rw/eqiad: + weight: 7\n"
    );
    assert!(dry.stderr.contains("Dry run: 3 objects"), "{}", dry.stderr);
    assert_eq!(ctx.state(), before, "a dry run writes nothing");
    let log = ctx.path("audit.jsonl");
    let cfg = ctx.write("config.yaml", &format!("audit_log: {}\n", log.display()));
    let run = upgrade(
        &ctx,
        &schema,
        &[
            "--config",
            s(&cfg),
            "--object-type",
            "discovery",
            "upgrade-schema",
        ],
    )
    .expect_code(0);
    assert_eq!(
        run.stdout, dry.stdout,
        "the run does what the dry run showed"
    );
    // Audited: an applied line per object, with what it was and what it is.
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let applied: Vec<&serde_json::Value> =
        recs.iter().filter(|r| r["event"] == "applied").collect();
    assert_eq!(applied.len(), 3, "{recs:?}");
    let api_rec = applied
        .iter()
        .find(|r| r["key"] == api)
        .expect("api-rw audited");
    assert_eq!(api_rec["after"]["weight"], 7);
    assert_eq!(api_rec["before"]["ttl"], 10);
    let now = ctx.dump();
    assert_eq!(
        now[api],
        r#"{"ttl":10,"pooled":true,"references":[],"mode":"active","nets":[],"meta":{},"owner":"x","extra":null,"legacy":1,"weight":7}"#,
        "stored keys kept in their order, the new field after them"
    );
    assert_eq!(
        now["/v1/discovery/appservers-rw/codfw"],
        r#"{"pooled":false,"references":[],"ttl":300,"mode":"active","nets":["10.0.0.0/8"],"meta":{},"owner":"","extra":null,"weight":7}"#
    );
    for (k, v) in &before.0 {
        if !k.starts_with(DISC) {
            assert_eq!(now.get(k), Some(v), "{k}: other types untouched");
        }
    }
    // Every object has the field now: a second run writes nothing (no revision bump).
    let after = ctx.state();
    let again = upgrade(&ctx, &schema, &["upgrade-schema", "discovery"]).expect_code(0);
    assert_eq!(again.stdout, "");
    assert_eq!(ctx.state(), after);
}

#[test]
fn upgrade_schema_refuses_invalid_objects_unless_forced_and_never_resets_them() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let bad_key = "/v1/discovery/appservers-rw/codfw";
    let bad = r#"{"pooled":"yes","ttl":300}"#;
    ctx.put(bad_key, bad);
    add_weight(&schema);
    let before = ctx.state();
    let refused = upgrade(&ctx, &schema, &["upgrade-schema", "discovery"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("discovery appservers-rw/codfw: field pooled: \"yes\" is not of type bool"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("nothing written"),
        "{}",
        refused.stderr
    );
    assert_eq!(ctx.state(), before);
    let dry = upgrade(&ctx, &schema, &["upgrade-schema", "--dry-run", "discovery"]).expect_code(0);
    assert!(
        dry.stderr.contains("appservers-rw/codfw: field pooled"),
        "{}",
        dry.stderr
    );
    assert_eq!(dry.stdout.lines().count(), 2, "{}", dry.stdout);
    assert_eq!(ctx.state(), before);
    // Bad arguments: a type that is not in the schema, two different types, node.
    for (args, want) in [
        (&["upgrade-schema", "nosuch"][..], "not defined"),
        (
            &["--object-type", "flat", "upgrade-schema", "discovery"][..],
            "different types",
        ),
        (&["upgrade-schema"][..], "node objects have no schema"),
        (&["upgrade-schema", "--yes", "discovery"][..], "--yes"),
    ] {
        let run = upgrade(&ctx, &schema, args).expect_code(2);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert_eq!(ctx.state(), before, "{args:?}");
    }
    // --force: the valid ones are upgraded, the invalid one is left as it is.
    let forced = upgrade(&ctx, &schema, &["upgrade-schema", "--force", "discovery"]).expect_code(0);
    assert!(
        forced.stderr.contains("left untouched"),
        "{}",
        forced.stderr
    );
    let now = ctx.dump();
    assert_eq!(now[bad_key], bad);
    for k in [
        "/v1/discovery/api-rw/eqiad",
        "/v1/discovery/appservers-rw/eqiad",
    ] {
        assert!(now[k].ends_with(r#","weight":7}"#), "{k}: {}", now[k]);
    }
}

#[test]
fn upgrade_schema_finds_the_invalid_object_the_python_tool_finds() {
    // The keyspace before the Python reference's step 097, written byte for byte.
    let ctx = Ctx::new();
    for (k, v) in python_reference("after-confctl-094.txt") {
        ctx.put(&k, &v);
    }
    let py = python_setup(&ctx);
    let schema = py.join("schema.yaml");
    let ns = ["--namespace", "/conftool"];
    let before = ctx.state();
    // Step 097: the dry run lists db/replicas-db2 (val null breaks the replicas rule), exit 0.
    let dry = upgrade(
        &ctx,
        &schema,
        &[&ns[..], &["upgrade-schema", "--dry-run", "mwconfig"]].concat(),
    )
    .expect_code(0);
    let listed: Vec<&str> = dry.stderr.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(listed.len(), 1, "{}", dry.stderr);
    assert!(
        listed[0].contains("mwconfig db/replicas-db2: rule replicas"),
        "{}",
        dry.stderr
    );
    assert_eq!(ctx.state(), before);
    // Step 098: without --dry-run it aborts and writes nothing (Python: exit 1; ours: 2).
    let run = upgrade(
        &ctx,
        &schema,
        &[&ns[..], &["upgrade-schema", "mwconfig"]].concat(),
    )
    .expect_code(2);
    assert!(run.stderr.contains("db/replicas-db2"), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
    // Every object already has every field: with --force nothing is written either.
    upgrade(
        &ctx,
        &schema,
        &[&ns[..], &["upgrade-schema", "--force", "mwconfig"]].concat(),
    )
    .expect_code(0);
    assert_eq!(ctx.state(), before);
}
