//! confctl's compatibility with the Python tool's other ways of being called: the `tags`
//! mode (`confctl [--]tags TAGS --action ACTION NAMEDEF`), `--yaml` and `--host`.

use std::collections::BTreeMap;

use crate::util::*;

const SERVICES: &str = "\
appservers:
  apache: {port: 80, default_values: {pooled: yes, weight: 1}}
  nginx: {port: 443, default_values: {pooled: yes, weight: 1}}
";
const EQIAD: &str = "\
appservers:
  mw101: {services: [apache]}
  mw1018: {services: [apache, nginx]}
  mw1019: {services: [apache]}
  mw1020: {services: [apache]}
  mw2101: {services: [apache]}
  xmw101: {services: [apache]}
";
const CODFW: &str = "appservers:\n  mw2001: {services: [apache]}\n";

/// The pool most tests act on.
const TAGS: &str = "dc=eqiad,cluster=appservers,service=apache";

/// A context with the small fleet above synced.
fn fleet() -> Ctx {
    let ctx = Ctx::new();
    ctx.write("conf/services.yaml", SERVICES);
    ctx.write("conf/eqiad/pools.yaml", EQIAD);
    ctx.write("conf/codfw/pools.yaml", CODFW);
    ctx.sync(&ctx.path("conf"), &["--quiet"]).expect_code(0);
    ctx
}

fn value(ctx: &Ctx, obj: &str) -> Option<String> {
    ctx.dump().get(&format!("/v1/pools/{obj}")).cloned()
}

/// The Python tool's line for one object of the apache pool.
fn line(name: &str, weight: u32, pooled: &str) -> String {
    format!(
        "{{\"{name}\": {{\"weight\": {weight}, \"pooled\": \"{pooled}\"}}, \"tags\": \"{TAGS}\"}}\n"
    )
}

#[test]
fn tags_get_by_name_regex_and_all_prints_what_python_prints() {
    let ctx = fleet();
    let get = |namedef: &str| {
        ctx.run("confctl", &["tags", TAGS, "--action", "get", namedef])
            .expect_code(0)
            .stdout
    };
    assert_eq!(get("mw1018"), line("mw1018", 1, "yes"));
    // A name that is not there is not an error for get, as in the Python tool.
    assert_eq!(get("mw9999"), "mw9999 not found\n");
    // `re:` matches at the start only (Python's re.match): mw101 and mw1018, mw1019, but
    // not xmw101 nor mw2101.
    assert_eq!(
        get("re:mw10"),
        [
            line("mw101", 1, "yes"),
            line("mw1018", 1, "yes"),
            line("mw1019", 1, "yes"),
            line("mw1020", 1, "yes")
        ]
        .concat()
    );
    assert_eq!(
        get("re:mw101"),
        [
            line("mw101", 1, "yes"),
            line("mw1018", 1, "yes"),
            line("mw1019", 1, "yes")
        ]
        .concat()
    );
    assert_eq!(get("re:mw1.1$"), line("mw101", 1, "yes"));
    // `all`: the Python tool's json.dumps of the pool's dict.
    assert_eq!(
        get("all"),
        "{\"mw101\": {\"pooled\": \"yes\", \"weight\": 1}, \
         \"mw1018\": {\"pooled\": \"yes\", \"weight\": 1}, \
         \"mw1019\": {\"pooled\": \"yes\", \"weight\": 1}, \
         \"mw1020\": {\"pooled\": \"yes\", \"weight\": 1}, \
         \"mw2101\": {\"pooled\": \"yes\", \"weight\": 1}, \
         \"xmw101\": {\"pooled\": \"yes\", \"weight\": 1}}\n"
    );
    // The older spelling, several actions in order, and a pool of another service.
    let run = ctx
        .run(
            "confctl",
            &[
                "--tags",
                "dc=eqiad,cluster=appservers,service=nginx",
                "--action",
                "get",
                "all",
                "--action",
                "get",
                "mw1018",
            ],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "{\"mw1018\": {\"pooled\": \"yes\", \"weight\": 1}}\n\
         {\"mw1018\": {\"weight\": 1, \"pooled\": \"yes\"}, \"tags\": \"dc=eqiad,cluster=appservers,service=nginx\"}\n"
    );
    // Tags in another order name the same pool.
    let run = ctx
        .run(
            "confctl",
            &[
                "tags",
                "service=apache,dc=codfw,cluster=appservers",
                "--action",
                "get",
                "all",
            ],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "{\"mw2001\": {\"pooled\": \"yes\", \"weight\": 1}}\n"
    );
}

#[test]
fn tags_set_and_delete_write_through_selects_path() {
    let ctx = fleet();
    // By name: one object, no question, the Python tool's change lines.
    let run = ctx
        .run(
            "confctl",
            &["tags", TAGS, "--action", "set/pooled=no:weight=5", "mw1019"],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1019: pooled changed yes => no\n\
         eqiad/appservers/apache/mw1019: weight changed 1 => 5\n"
    );
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1019").as_deref(),
        Some(r#"{"pooled":"no","weight":5}"#)
    );
    // The nginx object of the same host is another pool: untouched.
    assert_eq!(
        value(&ctx, "eqiad/appservers/nginx/mw1018").as_deref(),
        Some(r#"{"pooled":"yes","weight":1}"#)
    );

    // By regex, fewer than half of the pool (2 of 6): no question, as in the Python tool's
    // tags mode (scripts call it without a terminal).
    let run = ctx
        .run(
            "confctl",
            &["tags", TAGS, "--action", "set/weight=2", "re:mw10(19|20)"],
        )
        .expect_code(0);
    assert!(!run.stderr.contains("Ok to continue?"), "{run:?}");
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    for n in ["mw1019", "mw1020"] {
        let v = value(&ctx, &format!("eqiad/appservers/apache/{n}")).expect(n);
        assert!(v.contains(r#""weight":2"#), "{n}: {v}");
    }

    // By regex, at least half of the pool (4 of 6): asked; no answer writes nothing.
    let before = (ctx.dump(), ctx.revision());
    let args = ["tags", TAGS, "--action", "set/weight=7", "re:mw10"];
    let run = ctx.run("confctl", &args).expect_code(1);
    assert!(run.stderr.contains("Ok to continue? [y/N]"), "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);
    let run = ctx.run_with_stdin("confctl", &args, "y\n").expect_code(0);
    assert_eq!(run.stdout.lines().count(), 4, "{run:?}");
    for n in ["mw101", "mw1018", "mw1019", "mw1020"] {
        let v = value(&ctx, &format!("eqiad/appservers/apache/{n}")).expect(n);
        assert!(v.contains(r#""weight":7"#), "{n}: {v}");
    }
    for n in ["mw2101", "xmw101"] {
        let v = value(&ctx, &format!("eqiad/appservers/apache/{n}")).expect(n);
        assert!(v.contains(r#""weight":1"#), "{n}: {v}");
    }

    // all: always asked, even for a pool of one object.
    let before = (ctx.dump(), ctx.revision());
    let one = "dc=codfw,cluster=appservers,service=apache";
    let run = ctx
        .run("confctl", &["tags", one, "--action", "set/weight=3", "all"])
        .expect_code(1);
    assert!(run.stderr.contains("Ok to continue? [y/N]"), "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);

    // all, with --yes after the subcommand.
    ctx.run(
        "confctl",
        &["tags", TAGS, "--action", "set/weight=3", "all", "--yes"],
    )
    .expect_code(0);
    let weights: Vec<String> = ctx
        .dump()
        .iter()
        .filter(|(k, _)| k.starts_with("/v1/pools/eqiad/appservers/apache/"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(weights.len(), 6);
    assert!(
        weights.iter().all(|v| v.contains(r#""weight":3"#)),
        "{weights:?}"
    );

    // The same guards as select: depooling most of the pool is refused.
    let before = (ctx.dump(), ctx.revision());
    let run = ctx
        .run(
            "confctl",
            &["tags", TAGS, "--action", "set/pooled=no", "all", "--yes"],
        )
        .expect_code(2);
    assert!(run.stderr.contains("depool threshold"), "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);

    // Delete by name.
    ctx.run("confctl", &["tags", TAGS, "--action", "delete", "xmw101"])
        .expect_code(0);
    assert_eq!(value(&ctx, "eqiad/appservers/apache/xmw101"), None);
    assert!(value(&ctx, "eqiad/appservers/apache/mw101").is_some());
}

#[test]
fn tags_bad_input_exits_2_and_writes_nothing() {
    let ctx = fleet();
    let before = (ctx.dump(), ctx.revision());
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "tags",
                "dc=eqiad,cluster=appservers",
                "--action",
                "get",
                "all",
            ],
            "missing tag service",
        ),
        (
            &[
                "tags",
                "dc=eqiad,cluster=appservers,service=apache,colour=red",
                "--action",
                "set/pooled=no",
                "mw1018",
            ],
            "unknown tag \"colour\"",
        ),
        (
            &[
                "tags",
                "dc=eqiad,dc=codfw,cluster=appservers,service=apache",
                "--action",
                "set/pooled=no",
                "mw1018",
            ],
            "tag dc given twice",
        ),
        (
            &[
                "tags",
                "dc=eq.*,cluster=appservers,service=apache",
                "--action",
                "set/pooled=no",
                "mw1018",
            ],
            "invalid TAGS",
        ),
        (
            &["tags", "dc=eqiad", "--action", "set/pooled=no", "mw1018"],
            "missing tag cluster, service",
        ),
        (
            &["tags", TAGS, "--action", "set/pooled=no", "re:("],
            "invalid regex for name",
        ),
        (
            &["tags", TAGS, "--action", "set/pooled=no", "re:"],
            "empty regex",
        ),
        (
            &["tags", TAGS, "--action", "set/pooled=no", "find:mw1018"],
            "is not a node name, re:REGEX or all",
        ),
        (
            &["tags", TAGS, "--action", "set/pooled=maybe", "mw1018"],
            "pooled must be",
        ),
        (
            &["tags", TAGS, "--action", "put", "mw1018"],
            "expected get, delete or set",
        ),
        (
            &["tags", TAGS, "--action", "set/weight=1", "nosuch"],
            "matches no objects",
        ),
        (&["tags", TAGS, "--action", "get"], "2 values required"),
        // A flag is never taken for a NAMEDEF.
        (
            &["tags", TAGS, "--action", "set/pooled=no", "--yes"],
            "2 values required",
        ),
        (&["tags", TAGS], "--action"),
        // A bad second action stops the first from being written too.
        (
            &[
                "tags",
                TAGS,
                "--action",
                "set/pooled=no",
                "mw1018",
                "--action",
                "set/weight=70000",
                "mw1018",
            ],
            "weight must be",
        ),
        (
            &["--json", "--yaml", "select", "name=mw1018", "get"],
            "cannot be used with",
        ),
        (
            &["--host", "select", "name=mw10.*", "set/weight=2"],
            "--host: selector name=mw10.*: the objects selected belong to 4 hosts",
        ),
    ];
    ctx.expect_bad_input("confctl", cases);
    assert_eq!((ctx.dump(), ctx.revision()), before, "bad input wrote");
}

#[test]
fn a_later_action_that_fails_after_a_write_exits_1_and_says_so() {
    let ctx = fleet();
    let run = ctx
        .run(
            "confctl",
            &[
                "tags",
                TAGS,
                "--action",
                "set/weight=9",
                "mw1018",
                "--action",
                "set/weight=9",
                "nosuch",
            ],
        )
        .expect_code(1);
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1018: weight changed 1 => 9\n"
    );
    assert!(
        run.stderr.contains(
            "(--action set/weight=9 nosuch of 2; the actions before it were carried out)"
        ),
        "{run:?}"
    );
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1018").as_deref(),
        Some(r#"{"pooled":"yes","weight":9}"#)
    );
}

/// The YAML documents of a `--yaml` output.
pub(crate) fn yaml_docs(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .map(|doc| serde_json::Value::deserialize(doc).expect("valid YAML"))
        .collect()
}

#[test]
fn yaml_output_parses_and_holds_what_json_holds() {
    let ctx = fleet();
    ctx.run(
        "confctl",
        &["select", "name=mw1019", "set/pooled=no:weight=4"],
    )
    .expect_code(0);
    let sel = "dc=eqiad,cluster=appservers,name=mw10.*";
    let yaml = ctx
        .run("confctl", &["--yaml", "select", sel, "get"])
        .expect_code(0)
        .stdout;
    let json = ctx
        .run("confctl", &["--json", "select", sel, "get"])
        .expect_code(0)
        .stdout;
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let objects = json["objects"].as_array().expect("objects");
    let docs = yaml_docs(&yaml);
    assert_eq!(docs.len(), objects.len(), "{yaml}");
    assert_eq!(docs.len(), 5, "{yaml}");
    // Each document is the Python tool's asdict form of one object, in the same order.
    for (doc, o) in docs.iter().zip(objects) {
        let name = o["name"].as_str().expect("name");
        let tags = format!(
            "dc={},cluster={},service={}",
            o["dc"].as_str().expect("dc"),
            o["cluster"].as_str().expect("cluster"),
            o["service"].as_str().expect("service")
        );
        let want = serde_json::json!({
            name: {"pooled": o["pooled"], "weight": o["weight"]},
            "tags": tags,
        });
        assert_eq!(doc, &want, "{yaml}");
    }
    // One object is one document: what yaml.safe_load reads from the Python tool's line.
    let one = ctx
        .run(
            "confctl",
            &["--yaml", "select", "name=mw1019,service=apache", "get"],
        )
        .expect_code(0)
        .stdout;
    assert_eq!(
        one,
        format!("mw1019:\n  pooled: 'no'\n  weight: 4\ntags: {TAGS}\n")
    );

    // tags ... get all: PyYAML's yaml.dump of the pool's dict, then print's newline.
    let run = ctx
        .run(
            "confctl",
            &[
                "--yaml",
                "tags",
                "dc=eqiad,cluster=appservers,service=apache",
                "--action",
                "get",
                "all",
            ],
        )
        .expect_code(0);
    let mut want = String::new();
    for n in ["mw101", "mw1018", "mw1019", "mw1020", "mw2101", "xmw101"] {
        let (pooled, weight) = if n == "mw1019" {
            ("'no'", 4)
        } else {
            ("'yes'", 1)
        };
        want.push_str(&format!("{n}:\n  pooled: {pooled}\n  weight: {weight}\n"));
    }
    want.push('\n');
    assert_eq!(run.stdout, want);
    let dict = &yaml_docs(&run.stdout)[0];
    let json = ctx
        .run(
            "confctl",
            &["--json", "tags", TAGS, "--action", "get", "all"],
        )
        .expect_code(0)
        .stdout;
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let from_json: BTreeMap<String, serde_json::Value> = json["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            (
                o["name"].as_str().expect("name").to_string(),
                serde_json::json!({"pooled": o["pooled"], "weight": o["weight"]}),
            )
        })
        .collect();
    assert_eq!(dict, &serde_json::to_value(from_json).expect("map"));
}

#[test]
fn host_writes_one_hosts_objects_without_asking_and_refuses_several() {
    let ctx = fleet();
    // Without --host, a write on mw1018's two objects asks (and stdin is empty: no).
    let before = (ctx.dump(), ctx.revision());
    let run = ctx
        .run("confctl", &["select", "name=mw1018", "set/weight=6"])
        .expect_code(1);
    assert!(run.stderr.contains("Ok to continue? [y/N]"), "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);
    // With --host (before or after the subcommand) it goes ahead without a question.
    let run = ctx
        .run(
            "confctl",
            &["--host", "select", "name=mw1018", "set/weight=6"],
        )
        .expect_code(0);
    assert!(!run.stderr.contains("Ok to continue"), "{run:?}");
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1018: weight changed 1 => 6\n\
         eqiad/appservers/nginx/mw1018: weight changed 1 => 6\n"
    );
    ctx.run(
        "confctl",
        &["select", "name=mw1018", "set/weight=8", "--host"],
    )
    .expect_code(0);
    assert_eq!(
        value(&ctx, "eqiad/appservers/nginx/mw1018").as_deref(),
        Some(r#"{"pooled":"yes","weight":8}"#)
    );
    // Several hosts: refused even with --yes, nothing written, the hosts named.
    let before = (ctx.dump(), ctx.revision());
    let run = ctx
        .run(
            "confctl",
            &["--host", "--yes", "select", "name=mw101.*", "set/weight=2"],
        )
        .expect_code(2);
    assert!(
        run.stderr
            .contains("belong to 3 hosts (mw101, mw1018, mw1019), not one; nothing written"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("Ok to continue"), "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before);
    // In tags mode too (one pool: two objects are two hosts).
    ctx.run(
        "confctl",
        &[
            "--host",
            "tags",
            TAGS,
            "--action",
            "set/weight=2",
            "re:mw101",
        ],
    )
    .expect_code(2);
    assert_eq!((ctx.dump(), ctx.revision()), before);
    // get is never refused.
    ctx.run("confctl", &["--host", "select", "name=mw10.*", "get"])
        .expect_code(0);
}

#[test]
fn debug_says_what_it_reads_and_changes_no_output() {
    let ctx = fleet();
    let args = ["tags", TAGS, "--action", "get", "re:mw10"];
    let plain = ctx.run("confctl", &args).expect_code(0);
    let mut with_debug = vec!["--debug", "--quiet"];
    with_debug.extend_from_slice(&args);
    let debug = ctx.run("confctl", &with_debug).expect_code(0);
    assert_eq!(debug.stdout, plain.stdout);
    assert!(!plain.stderr.contains("debug"), "{plain:?}");
    assert!(
        debug.stderr.contains(&format!(
            "confctl: debug: etcd {}",
            ctx.etcd.endpoints_arg()
        )),
        "{debug:?}"
    );
    assert!(
        debug
            .stderr
            .contains("read /v1/pools/eqiad/appservers/apache/ at revision ",)
            && debug.stderr.contains(": 4 objects matched, 0 malformed"),
        "{debug:?}"
    );
}

#[test]
fn set_from_a_yaml_file_as_python_does() {
    let ctx = fleet();
    let good = ctx.write("values.yaml", "pooled: \"no\"\nweight: 12\n");
    let action = format!("set/@{}", good.display());
    let run = ctx
        .run("confctl", &["select", "name=mw1019", &action])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1019: pooled changed yes => no\n\
         eqiad/appservers/apache/mw1019: weight changed 1 => 12\n"
    );
    let run = ctx
        .run("confctl", &["tags", TAGS, "--action", &action, "mw1020"])
        .expect_code(0);
    assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1020").as_deref(),
        Some(r#"{"pooled":"no","weight":12}"#)
    );
    let before = (ctx.dump(), ctx.revision());
    for (text, want) in [
        ("pooled: maybe\n", "pooled must be"),
        ("weight: 1\ncolour: red\n", "unknown field"),
        ("weight: 1\nweight: 2\n", "duplicate field"),
    ] {
        let bad = ctx.write("bad.yaml", text);
        let action = format!("set/@{}", bad.display());
        let run = ctx.run("confctl", &["select", "name=mw101", &action]);
        assert_eq!(run.code, 2, "{text}: {run:?}");
        assert!(run.stderr.contains(want), "{text}: {run:?}");
    }
    let run = ctx.run(
        "confctl",
        &["select", "name=mw101", "set/@/nonexistent.yaml"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!((ctx.dump(), ctx.revision()), before, "a bad file wrote");
}

#[test]
fn a_named_host_goes_back_into_service_and_a_pattern_leaves_it_alone() {
    let ctx = fleet();
    ctx.run(
        "confctl",
        &[
            "select",
            "service=apache,name=mw102.",
            "set/pooled=inactive",
        ],
    )
    .expect_code(0);
    // re: is a pattern: it leaves inactive objects alone, as select by pattern does.
    let before = (ctx.dump(), ctx.revision());
    let run = ctx
        .run(
            "confctl",
            &[
                "--yes",
                "tags",
                TAGS,
                "--action",
                "set/pooled=yes",
                "re:mw102",
            ],
        )
        .expect_code(0);
    assert!(
        run.stderr
            .contains("eqiad/appservers/apache/mw1020: left alone (pooled=inactive")
            && run.stderr.contains("--include-inactive"),
        "{run:?}"
    );
    assert_eq!((ctx.dump(), ctx.revision()), before);
    // Naming the host is enough, as people pool a new host with the Python tool.
    ctx.run(
        "confctl",
        &["tags", TAGS, "--action", "set/pooled=yes", "mw1020"],
    )
    .expect_code(0);
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1020").as_deref(),
        Some(r#"{"pooled":"yes","weight":1}"#)
    );
}
