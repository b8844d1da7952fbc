//! conftool-sync end to end: the sync semantics of DESIGN.md against a real etcd.

use crate::util::*;

#[test]
fn syncing_example_conf_twice_writes_once() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let after_first = (ctx.dump(), ctx.revision());
    assert!(after_first
        .0
        .contains_key("/v1/pools/eqiad/appservers/apache/mw1018"));
    ctx.sync(&conf, &[]).expect_code(0);
    assert_eq!((ctx.dump(), ctx.revision()), after_first);
}

/// The keyspace written for the example conf/, reviewed by hand (tests/fixtures).
fn example_keyspace() -> Keyspace {
    read_keyspace(&fixtures().join("example-keyspace.txt"))
}

const MW1018: &str = "/v1/pools/eqiad/appservers/apache/mw1018";

#[test]
fn example_conf_gives_exactly_the_reviewed_keyspace() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    let run = ctx.sync(&conf, &[]).expect_code(0);
    let expected = example_keyspace();
    assert_eq!(
        expected.len(),
        53 + 9 + 27 + 1,
        "fixture: 53 objects, 9 services, 27 nodes' labels, the record"
    );
    assert_keyspace(&ctx.dump(), &expected);
    // A sync from a working tree records its datacenters and no git revision.
    assert_eq!(
        ctx.dump()["/v1/meta/sync"],
        r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#
    );
    assert!(
        run.stderr
            .contains("created 53 objects, deleted 0 objects, wrote 9 service definitions, the labels of 27 nodes and the sync record"),
        "{}",
        run.stderr
    );
}

#[test]
fn dynamic_state_survives_resync_and_edits() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    // What confctl would write: new pooled/weight, and a field this version does not know.
    let depooled = r#"{"pooled":"no","weight":5}"#;
    let commented = r#"{"pooled":"inactive","weight":0,"comment":"disk swap"}"#;
    let cp1052 = "/v1/pools/eqiad/cache_text/varnish-fe/cp1052";
    ctx.put(MW1018, depooled);
    ctx.put(cp1052, commented);
    let mut expected = example_keyspace();
    expected.insert(MW1018.into(), depooled.into());
    expected.insert(cp1052.into(), commented.into());
    let rev = ctx.revision();

    // Re-sync of the same directory: nothing written at all.
    let run = ctx.sync(&conf, &[]).expect_code(0);
    assert!(run.stderr.contains("Nothing to do"), "{}", run.stderr);
    assert_eq!(ctx.state(), (expected.clone(), rev));

    // A sync that does change things (a new node) still leaves those values alone.
    let pools = std::fs::read_to_string(example_conf().join("eqiad/pools.yaml"))
        .unwrap()
        .replace(
            "  cp1062: {services: [nginx, varnish-fe], labels: {rack: C5, row: C}}\n",
            "  cp1062: {services: [nginx, varnish-fe], labels: {rack: C5, row: C}}\n  cp1063: {services: [nginx]}\n",
        );
    ctx.write("conf/eqiad/pools.yaml", &pools);
    ctx.sync(&conf, &[]).expect_code(0);
    expected.insert(
        "/v1/pools/eqiad/cache_upload/nginx/cp1063".into(),
        r#"{"pooled":"no","weight":10}"#.into(),
    );
    assert_keyspace(&ctx.dump(), &expected);
    assert_eq!(
        ctx.revision(),
        rev + 1,
        "one transaction for one new object"
    );
}

#[test]
fn service_added_to_a_node_appears_with_its_defaults() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx.put(MW1018, r#"{"pooled":"no","weight":3}"#);
    let (mut expected, _) = ctx.state();
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml"))
        .unwrap()
        .replace(
            "mw1022: {services: [apache],",
            "mw1022: {services: [apache, nginx],",
        );
    ctx.write("conf/eqiad/pools.yaml", &pools);
    ctx.sync(&conf, &[]).expect_code(0);
    // appservers/nginx defaults: pooled yes, weight 1 (conf/services.yaml).
    expected.insert(
        "/v1/pools/eqiad/appservers/nginx/mw1022".into(),
        r#"{"pooled":"yes","weight":1}"#.into(),
    );
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn removed_nodes_disappear_within_the_guards() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let original = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).unwrap();

    // cp1055: three depooled objects (defaults pooled=no), 3 of 53 is within 25%.
    ctx.write(
        "conf/eqiad/pools.yaml",
        &original.replace(
            "  cp1055: {services: [nginx, varnish-fe, varnish-be], labels: {rack: D3, row: D}}\n",
            "",
        ),
    );
    let mut expected = example_keyspace();
    // Its labels go with it.
    expected.retain(|k, _| !k.ends_with("/cp1055"));
    assert_eq!(expected.len(), 90 - 3 - 1);
    ctx.sync(&conf, &[]).expect_code(0);
    assert_keyspace(&ctx.dump(), &expected);

    // mw1022: pooled=yes (the appservers default): refused, nothing written...
    ctx.write(
        "conf/eqiad/pools.yaml",
        &original
            .replace(
                "  cp1055: {services: [nginx, varnish-fe, varnish-be], labels: {rack: D3, row: D}}\n",
                "",
            )
            .replace("  mw1022: {services: [apache], labels: {rack: A2, row: A}}\n", ""),
    );
    let before = ctx.state();
    let run = ctx.sync(&conf, &[]).expect_code(2);
    assert!(
        run.stderr.contains("pooled=yes") && run.stderr.contains("eqiad/appservers/apache/mw1022"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    // ... also in a dry run and a check ...
    ctx.sync(&conf, &["--dry-run"]).expect_code(2);
    ctx.sync(&conf, &["--check"]).expect_code(2);
    assert_eq!(ctx.state(), before);
    // ... unless it was depooled first ...
    let mw1022 = "/v1/pools/eqiad/appservers/apache/mw1022";
    ctx.put(mw1022, r#"{"pooled":"no","weight":1}"#);
    ctx.sync(&conf, &["--dry-run"]).expect_code(0);
    ctx.put(mw1022, r#"{"pooled":"yes","weight":1}"#);
    // ... or explicitly allowed.
    ctx.sync(&conf, &["--allow-delete-pooled"]).expect_code(0);
    expected.remove(mw1022);
    expected.remove("/v1/labels/eqiad/mw1022");
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn mass_deletion_is_refused_unless_the_share_is_raised() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let before = ctx.state();

    // Empty pools (what makes the Python tool delete everything).
    ctx.write("conf/eqiad/pools.yaml", "{}\n");
    ctx.write("conf/codfw/pools.yaml", "{}\n");
    let run = ctx.sync(&conf, &[]).expect_code(2);
    assert!(
        run.stderr.contains(
            "refusing to sync: it would delete 53 of 53 objects (100%), more than the allowed 25%"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    // The pooled objects are refused too, even with the share raised.
    ctx.sync(&conf, &["--max-delete-share", "1"]).expect_code(2);
    assert_eq!(ctx.state(), before);

    // No pools files at all: the same.
    std::fs::remove_dir_all(conf.join("eqiad")).unwrap();
    std::fs::remove_dir_all(conf.join("codfw")).unwrap();
    ctx.sync(&conf, &[]).expect_code(2);
    assert_eq!(ctx.state(), before);

    // Both limits lifted: only the service definitions (and a record of no datacenters)
    // remain.
    ctx.sync(&conf, &["--max-delete-share", "1", "--allow-delete-pooled"])
        .expect_code(0);
    let mut expected = example_keyspace();
    expected.retain(|k, _| k.starts_with("/v1/services/"));
    expected.insert(
        "/v1/meta/sync".into(),
        r#"{"datacenters":[],"git_rev":null}"#.into(),
    );
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn delete_share_limit_is_exact() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    // eqiad cache_text + cache_upload: 12 + 6 = 18 depooled objects of 53 (34.0%); the
    // labels of their 7 nodes go too, and are not counted (they carry no traffic).
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).unwrap();
    let start = pools.find("cache_text:").unwrap();
    let end = pools.find("appservers:").unwrap();
    ctx.write(
        "conf/eqiad/pools.yaml",
        &format!("{}{}", &pools[..start], &pools[end..]),
    );
    let before = ctx.state();
    let run = ctx
        .sync(&conf, &["--max-delete-share", "0.33"])
        .expect_code(2);
    assert!(
        run.stderr.contains("delete 18 of 53 objects (34%)"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    ctx.sync(&conf, &["--max-delete-share", "0.34"])
        .expect_code(0);
    let mut expected = example_keyspace();
    expected.retain(|k, _| {
        !k.starts_with("/v1/pools/eqiad/cache_text/")
            && !k.starts_with("/v1/pools/eqiad/cache_upload/")
            && !k.starts_with("/v1/labels/eqiad/cp")
    });
    assert_eq!(expected.len(), 90 - 18 - 7);
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn dry_run_and_check_write_nothing() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    let empty = ctx.state();

    let run = ctx.sync(&conf, &["--check"]).expect_code(3);
    assert!(
        run.stderr.contains("53 objects to create"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), empty);

    let run = ctx.sync(&conf, &["--dry-run"]).expect_code(0);
    assert_eq!(ctx.state(), empty);
    // The diff shows every key to be written, as it will be written.
    for (k, v) in example_keyspace() {
        assert!(
            run.stdout.contains(&format!("\n+{k} {v}\n")),
            "{k} missing from the diff:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("\n-"), "{}", run.stdout);

    ctx.sync(&conf, &[]).expect_code(0);
    let synced = ctx.state();
    let run = ctx.sync(&conf, &["--check"]).expect_code(0);
    assert_eq!(run.stdout, "", "no diff when in sync");
    assert_eq!(ctx.state(), synced);

    // A pending removal: --check reports it (exit 3) and the diff shows the old value.
    ctx.put(MW1018, r#"{"pooled":"no","weight":7}"#);
    let synced = ctx.state();
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml"))
        .unwrap()
        .replace(
            "mw1018: {services: [apache, nginx],",
            "mw1018: {services: [nginx],",
        );
    ctx.write("conf/eqiad/pools.yaml", &pools);
    let run = ctx.sync(&conf, &["--check"]).expect_code(3);
    assert!(
        run.stdout
            .contains(&format!("\n-{MW1018} {{\"pooled\":\"no\",\"weight\":7}}\n")),
        "{}",
        run.stdout
    );
    ctx.sync(&conf, &["--dry-run", "--quiet"]).expect_code(0);
    assert_eq!(ctx.state(), synced);
    ctx.sync(&conf, &["--quiet"]).expect_code(0);
    ctx.sync(&conf, &["--check"]).expect_code(0);
    assert!(!ctx.dump().contains_key(MW1018));
}

#[test]
fn python_layout_gives_the_same_keyspace() {
    // The example fleet, rewritten by hand as node/<dc>.yaml: dc -> cluster -> node -> [services].
    let ctx = Ctx::new();
    std::fs::create_dir_all(ctx.path("py")).unwrap();
    std::fs::copy(
        example_conf().join("services.yaml"),
        ctx.path("py/services.yaml"),
    )
    .unwrap();
    ctx.write(
        "py/node/eqiad.yaml",
        "eqiad:
  cache_text:
    cp1052: [nginx, varnish-fe, varnish-be]
    cp1053: [nginx, varnish-fe, varnish-be]
    cp1054: [nginx, varnish-fe, varnish-be]
    cp1055: [nginx, varnish-fe, varnish-be]
  cache_upload:
    cp1060: [nginx, varnish-fe]
    cp1061: [nginx, varnish-fe]
    cp1062: [nginx, varnish-fe]
  appservers:
    mw1018: [apache, nginx]
    mw1019: [apache, nginx]
    mw1020: [apache, nginx]
    mw1021: [apache, nginx]
    mw1022: [apache]
  api_appserver:
    mw1221: [apache]
    mw1222: [apache]
    mw1223: [apache]
  jobrunner:
    mw1161: [jobrunner]
    mw1162: [jobrunner]
",
    );
    ctx.write(
        "py/node/codfw.yaml",
        "codfw:
  cache_text:
    cp2001: [nginx, varnish-fe, varnish-be]
    cp2002: [nginx, varnish-fe, varnish-be]
    cp2003: [nginx, varnish-fe, varnish-be]
  cache_upload:
    cp2010: [nginx, varnish-fe]
    cp2011: [nginx, varnish-fe]
  appservers:
    mw2001: [apache, nginx]
    mw2002: [apache, nginx]
    mw2003: [apache, nginx]
  api_appserver:
    mw2201: [apache]
    mw2202: [apache]
",
    );
    // The labels, as the Python layout keeps them: labels/<dc>.yaml, node -> labels.
    ctx.write(
        "py/labels/eqiad.yaml",
        "cp1052: {rack: A2, row: A}
cp1053: {rack: B4, row: B}
cp1054: {rack: C5, row: C}
cp1055: {rack: D3, row: D}
cp1060: {rack: A2, row: A}
cp1061: {rack: B4, row: B}
cp1062: {rack: C5, row: C}
mw1018: {rack: B4, row: B}
mw1019: {rack: B4, row: B}
mw1020: {rack: C5, row: C}
mw1021: {rack: D3, row: D}
mw1022: {rack: A2, row: A}
mw1221: {rack: B4, row: B}
mw1222: {rack: C5, row: C}
mw1223: {rack: D3, row: D}
mw1161: {rack: A2, row: A}
mw1162: {rack: C5, row: C}
",
    );
    ctx.write(
        "py/labels/codfw.yaml",
        "cp2001: {rack: A1, row: A}
cp2002: {rack: B3, row: B}
cp2003: {rack: C6, row: C}
cp2010: {rack: A1, row: A}
cp2011: {rack: B3, row: B}
mw2001: {rack: A1, row: A}
mw2002: {rack: B3, row: B}
mw2003: {rack: C6, row: C}
mw2201: {rack: A1, row: A}
mw2202: {rack: B3, row: B}
",
    );
    ctx.sync(&ctx.path("py"), &[]).expect_code(0);
    let python_layout = ctx.dump();
    assert_keyspace(&python_layout, &example_keyspace());

    // The conftool-rs layout into a second, fresh etcd: byte-identical.
    let other = Ctx::new();
    let conf = other.copy_example("conf");
    other.sync(&conf, &[]).expect_code(0);
    assert_eq!(other.dump(), python_layout);
}

#[test]
fn python_layout_without_services_uses_the_python_defaults() {
    let ctx = Ctx::new();
    let dir = ctx.path("py");
    ctx.write(
        "py/node/eqiad.yaml",
        "eqiad:\n  cache_text:\n    cp1052: [nginx, varnish-fe]\n  any_cluster:\n    x1: [anything]\n",
    );
    ctx.write(
        "py/node/codfw.yaml",
        "codfw:\n  cache_text:\n    cp2001: [nginx]\n",
    );
    ctx.sync(&dir, &[]).expect_code(0);
    let legacy = r#"{"pooled":"inactive","weight":0}"#;
    let expected: Keyspace = [
        "/v1/pools/eqiad/cache_text/nginx/cp1052",
        "/v1/pools/eqiad/cache_text/varnish-fe/cp1052",
        "/v1/pools/eqiad/any_cluster/anything/x1",
        "/v1/pools/codfw/cache_text/nginx/cp2001",
    ]
    .into_iter()
    .map(|k| (k.to_string(), legacy.to_string()))
    .chain([(
        "/v1/meta/sync".to_string(),
        r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#.to_string(),
    )])
    .collect();
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn keys_outside_the_managed_shape_are_left_alone() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    // Keys another tool owns, or that are not well-formed object keys.
    let foreign = [
        ("/other/app", "x"),
        ("/v1/pools/eqiad/appservers/apache", "not an object"),
        ("/v1/pools/eqiad/appservers/apache/mw1018/extra", "deeper"),
        ("/v1/something-else", "y"),
    ];
    for (k, v) in foreign {
        ctx.put(k, v);
    }
    ctx.sync(&conf, &[]).expect_code(0);
    let mut expected = example_keyspace();
    expected.extend(foreign.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    assert_keyspace(&ctx.dump(), &expected);
}

#[test]
fn sync_writes_are_audited() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    let log = ctx.path("audit.jsonl");
    let cfg = ctx.write("config.yaml", &format!("audit_log: {}\n", log.display()));
    let sync = |extra: &[&str]| {
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        ctx.sync(&conf, &args)
    };
    // The writes that landed (intent and end lines are checked by the confctl tests).
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["event"] == "applied")
            .collect()
    };
    sync(&[]).expect_code(0);
    let first = lines();
    // 53 objects, 9 services, 27 nodes' labels, the sync record; all created, at one
    // revision.
    assert_eq!(first.len(), 53 + 9 + 27 + 1);
    let mw1018 = first
        .iter()
        .find(|r| r["key"] == MW1018)
        .expect("mw1018 audited");
    assert_eq!(mw1018["tool"], "conftool-sync");
    assert_eq!(mw1018["before"], serde_json::Value::Null);
    assert_eq!(
        mw1018["after"],
        serde_json::json!({"pooled": "yes", "weight": 1})
    );
    assert_eq!(mw1018["revision"], ctx.revision());
    // A no-op writes nothing, so audits nothing.
    sync(&[]).expect_code(0);
    assert_eq!(lines().len(), first.len());
    // A deletion records the value it removed.
    ctx.put(MW1018, r#"{"pooled":"no","weight":7}"#);
    let pools = std::fs::read_to_string(conf.join("eqiad/pools.yaml")).unwrap();
    std::fs::write(
        conf.join("eqiad/pools.yaml"),
        pools.replace(
            "  mw1018: {services: [apache, nginx], labels: {rack: B4, row: B}}\n",
            "",
        ),
    )
    .unwrap();
    sync(&["--allow-delete-pooled"]).expect_code(0);
    let all = lines();
    let deleted: Vec<&serde_json::Value> = all[first.len()..]
        .iter()
        .filter(|r| r["after"].is_null())
        .collect();
    // Its two objects and its labels.
    assert_eq!(deleted.len(), 3, "{all:?}");
    let rec = deleted
        .iter()
        .find(|r| r["key"] == MW1018)
        .expect("mw1018 deletion");
    assert_eq!(
        rec["before"],
        serde_json::json!({"pooled": "no", "weight": 7})
    );
}
