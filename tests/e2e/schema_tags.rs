//! `confctl --object-type TYPE tags TAGS --action ACTION NAMEDEF` on schema-defined types,
//! against a real etcd: TAGS gives every tag of the type literally, NAMEDEF is a name,
//! `re:REGEX` (matched at the start) or `all`; writes ask as node tags mode does. Fixtures:
//! tests/fixtures/schema/ and the Python reference (tests/fixtures/python/).

use crate::schema::{
    assert_same_objects, fixture, json, parsed, python_setup, python_stdout, s, setup, sync, API,
};
use crate::util::*;

/// `confctl --schema SCHEMA --object-type TY tags TAGS --action ACTION NAMEDEF [more...]`.
fn tags(ctx: &Ctx, schema: &std::path::Path, ty: &str, taglist: &str, more: &[&str]) -> Run {
    let mut args = vec!["--schema", s(schema), "--object-type", ty, "tags", taglist];
    args.extend_from_slice(more);
    ctx.run("confctl", &args)
}

#[test]
fn tags_mode_gets_schema_objects_by_name_regex_and_all() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    // A name: the same line as `select`.
    let by_tags = tags(
        &ctx,
        &schema,
        "discovery",
        "dnsdisc=api-rw",
        &["--action", "get", "eqiad"],
    )
    .expect_code(0);
    let by_select = ctx
        .run(
            "confctl",
            &[
                "--schema",
                s(&schema),
                "--object-type",
                "discovery",
                "select",
                "dnsdisc=api-rw,name=eqiad",
                "get",
            ],
        )
        .expect_code(0);
    assert!(
        by_tags
            .stdout
            .starts_with("{\"eqiad\": {\"pooled\": false,"),
        "{}",
        by_tags.stdout
    );
    assert_eq!(by_tags.stdout, by_select.stdout);
    // A name that is not there, as the Python tool says it.
    let missing = tags(
        &ctx,
        &schema,
        "discovery",
        "dnsdisc=api-rw",
        &["--action", "get", "codfw"],
    )
    .expect_code(0);
    assert_eq!(missing.stdout, "codfw not found\n");
    // `all`: one dict of the stored values by name, tags in any order.
    let all = tags(
        &ctx,
        &schema,
        "dbsection",
        "section=s2,datacenter=eqiad",
        &["--action", "get", "all"],
    )
    .expect_code(0);
    assert_eq!(
        all.stdout,
        "{\"db1002\": {\"master\": \"PLACEHOLDER\", \"readonly\": false}, \"db1003\": {\"master\": \"PLACEHOLDER\", \"readonly\": false}}\n"
    );
    // A type without tags takes TAGS ''.
    let flat = tags(&ctx, &schema, "flat", "", &["--action", "get", "all"]).expect_code(0);
    assert_eq!(
        flat.stdout,
        "{\"alpha\": {\"on\": false}, \"beta\": {\"on\": false}}\n"
    );
    let yaml = ctx
        .run(
            "confctl",
            &[
                "--yaml",
                "--schema",
                s(&schema),
                "--object-type",
                "flat",
                "tags",
                "",
                "--action",
                "get",
                "all",
            ],
        )
        .expect_code(0);
    // PyYAML quotes 'on' (a YAML 1.1 boolean), as the Python tool's yaml.dump.
    assert_eq!(
        yaml.stdout,
        "alpha:\n  'on': false\nbeta:\n  'on': false\n\n"
    );
    // `re:` matches at the start of names only.
    let re = tags(
        &ctx,
        &schema,
        "dbsection",
        "datacenter=eqiad,section=s2",
        &["--action", "get", "re:db100"],
    )
    .expect_code(0);
    assert_eq!(re.stdout.lines().count(), 2, "{}", re.stdout);
    let none = tags(
        &ctx,
        &schema,
        "dbsection",
        "datacenter=eqiad,section=s2",
        &["--action", "get", "re:100"],
    )
    .expect_code(0);
    assert_eq!(none.stdout, "");
}

#[test]
fn tags_mode_writes_ask_for_all_and_half_but_never_for_a_name() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    for extra in ["gamma", "delta"] {
        ctx.put(&format!("/v1/flat-things/{extra}"), r#"{"on":false}"#);
    }
    // A name: written without a question (stdin is empty, so a question would say no).
    let named = tags(
        &ctx,
        &schema,
        "flat",
        "",
        &["--action", "set/on=true", "alpha"],
    )
    .expect_code(0);
    assert_eq!(named.stdout, "alpha: on changed False => True\n");
    assert_eq!(ctx.dump()["/v1/flat-things/alpha"], r#"{"on":true}"#);
    // `all` asks: no answer, nothing written.
    let before = ctx.state();
    let asked = tags(
        &ctx,
        &schema,
        "flat",
        "",
        &["--action", "set/on=true", "all"],
    );
    assert_eq!(asked.code, 1, "{}", asked.stderr);
    assert!(asked.stderr.contains("Ok to continue?"), "{}", asked.stderr);
    assert_eq!(ctx.state(), before);
    // A regex picking half of the four asks too; one picking a quarter does not.
    let half = tags(
        &ctx,
        &schema,
        "flat",
        "",
        &["--action", "delete", "re:(beta|gamma)"],
    );
    assert_eq!(half.code, 1, "{}", half.stderr);
    assert_eq!(ctx.state(), before);
    let quarter = tags(
        &ctx,
        &schema,
        "flat",
        "",
        &["--action", "set/on=true", "re:gam"],
    )
    .expect_code(0);
    assert_eq!(quarter.stdout, "gamma: on changed False => True\n");
    // Answered yes, `all` goes ahead; --yes skips the question; several actions run in order.
    let yes = ctx.run_with_stdin(
        "confctl",
        &[
            "--schema",
            s(&schema),
            "--object-type",
            "flat",
            "tags",
            "",
            "--action",
            "set/on=true",
            "all",
        ],
        "y\n",
    );
    assert_eq!(yes.code, 0, "{}", yes.stderr);
    assert_eq!(
        yes.stdout,
        "beta: on changed False => True\ndelta: on changed False => True\n"
    );
    tags(
        &ctx,
        &schema,
        "discovery",
        "dnsdisc=appservers-rw",
        &[
            "--action",
            "set/ttl=10",
            "all",
            "--action",
            "delete",
            "codfw",
            "--yes",
        ],
    )
    .expect_code(0);
    let now = ctx.dump();
    assert!(!now.contains_key("/v1/discovery/appservers-rw/codfw"));
    assert_eq!(json(&now["/v1/discovery/appservers-rw/eqiad"])["ttl"], 10);
    assert_eq!(
        json(&now[API])["ttl"],
        300,
        "another dnsdisc is not touched"
    );
}

#[test]
fn tags_mode_bad_input_exits_2_and_writes_nothing() {
    let ctx = Ctx::new();
    let (schema, data) = setup(&ctx);
    sync(&ctx, &schema, &data, &[]).expect_code(0);
    let before = ctx.state();
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            "dbsection",
            "datacenter=eqiad",
            &["--action", "delete", "all"],
            "missing tag section",
        ),
        (
            "dbsection",
            "datacenter=eqiad,section=s1,dc=x",
            &["--action", "delete", "all"],
            "unknown tag \"dc\"",
        ),
        (
            "dbsection",
            "datacenter=eqiad,section=s1,section=s2",
            &["--action", "delete", "all"],
            "given twice",
        ),
        (
            "dbsection",
            "datacenter=eqiad,section=s.*",
            &["--action", "delete", "all"],
            "invalid name",
        ),
        (
            "discovery",
            "",
            &["--action", "delete", "all"],
            "is not tag=value",
        ),
        (
            "flat",
            "dc=eqiad",
            &["--action", "delete", "all"],
            "has no tags",
        ),
        (
            "flat",
            "",
            &["--action", "set/on=maybe", "all"],
            "booleans can only be",
        ),
        (
            "flat",
            "",
            &["--action", "set/off=true", "alpha"],
            "field \"off\" is not in the schema",
        ),
        (
            "flat",
            "",
            &["--action", "frobnicate", "alpha"],
            "invalid action",
        ),
        (
            "flat",
            "",
            &["--action", "delete", "a/b"],
            "is not an object name",
        ),
        ("flat", "", &["--action", "delete", "re:("], "bad regex"),
        (
            "flat",
            "",
            &["--action", "delete", "alpha", "--include-inactive"],
            "node objects only",
        ),
        // The second action's bad input stops the first one too: all is parsed first.
        (
            "flat",
            "",
            &[
                "--action", "delete", "alpha", "--action", "set/on=2", "beta",
            ],
            "booleans",
        ),
        (
            "flat",
            "",
            &["--action", "set/on=true", "nosuch"],
            "matches no flat objects",
        ),
    ];
    for (ty, taglist, more, want) in cases {
        let run = tags(
            &ctx,
            &schema,
            ty,
            taglist,
            &[&more[..], &["--yes"]].concat(),
        )
        .expect_code(2);
        assert!(
            run.stderr.contains(want),
            "{ty} {taglist:?} {more:?}: {}",
            run.stderr
        );
        assert_eq!(
            ctx.state(),
            before,
            "{ty} {taglist:?} {more:?}: nothing written"
        );
    }
    // `select` on a schema type refuses the node-only flags too, rather than ignore them.
    let run = ctx
        .run(
            "confctl",
            &[
                "--schema",
                s(&schema),
                "--object-type",
                "flat",
                "select",
                "name=alpha",
                "set/on=true",
                "--allow-below-threshold",
            ],
        )
        .expect_code(2);
    assert!(run.stderr.contains("node objects only"), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
    // Node objects still have their own tags.
    let run = ctx
        .run(
            "confctl",
            &[
                "tags",
                "dc=eqiad,cluster=appservers",
                "--action",
                "get",
                "all",
            ],
        )
        .expect_code(2);
    assert!(run.stderr.contains("missing tag service"), "{}", run.stderr);
    assert!(fixture().exists());
}

#[test]
fn tags_mode_prints_and_stores_what_the_python_tool_does() {
    let ctx = Ctx::new();
    let py = python_setup(&ctx);
    let schema = py.join("schema.yaml");
    let ns = ["--namespace", "/conftool"];
    sync(&ctx, &schema, &py.join("data"), &ns).expect_code(0);
    // Python's steps 043 and 044 were `select`s of one widget; its tags mode runs the same
    // action on the same object, so prints and stores the same.
    let prefix = "/conftool/v1/widgets/";
    for (step, action) in [
        ("043", "set/label=hello"),
        ("044", "set/count=5:enabled=true:items=x,y,z:mode=b"),
    ] {
        let run = ctx
            .run(
                "confctl",
                &[
                    &ns[..],
                    &[
                        "--schema",
                        s(&schema),
                        "--object-type",
                        "widget",
                        "tags",
                        "dc=eqiad,cluster=cache_text",
                        "--action",
                        action,
                        "w1",
                    ],
                ]
                .concat(),
            )
            .expect_code(0);
        assert_eq!(run.stdout, python_stdout(step), "step {step}");
        let after =
            read_keyspace(&fixtures().join(format!("python/reference/after-confctl-{step}.txt")));
        assert_same_objects(
            &parsed(&ctx.dump(), prefix, &[]),
            &parsed(&after, prefix, &[]),
        );
    }
    // Step 080 (`tags ... --action get w1`) is replayed with the whole session in
    // python_types.rs.
}
