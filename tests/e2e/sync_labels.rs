//! Node labels through conftool-sync against a real etcd: `/v1/labels/<dc>/<node>` made to
//! match the directory (created, rewritten, deleted; never rewritten unchanged), in the one
//! plan (diff, `--check`, audit), with the pool objects byte-identical with and without
//! labels, in both layouts; bad labels refused with their place, nothing written.

use crate::util::*;

const LABELS: &str = "/v1/labels/";

/// The example's labels (from the reviewed fixture).
fn example_labels() -> Keyspace {
    let mut ks = read_keyspace(&fixtures().join("example-keyspace.txt"));
    ks.retain(|k, _| k.starts_with(LABELS));
    ks
}

/// Every key under `prefix` with its value and mod revision.
fn with_revisions(ctx: &Ctx, prefix: &str) -> Vec<(String, String, i64)> {
    block_on(async {
        let snap = ctx.store().await.read_prefix(prefix).await.expect("read");
        snap.kvs
            .into_iter()
            .map(|kv| {
                let value = String::from_utf8_lossy(&kv.value).into_owned();
                (kv.key, value, kv.mod_revision)
            })
            .collect()
    })
}

/// `text` with every `, labels: {...}` of a node entry removed.
fn without_labels(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(", labels: {") {
            Some(i) => format!("{}}}\n", &l[..i]),
            None => format!("{l}\n"),
        })
        .collect()
}

/// Replace `old` (which must be there) in a file of the data directory.
fn edit(dir: &std::path::Path, rel: &str, old: &str, new: &str) {
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(old), "{rel} lacks {old:?}");
    std::fs::write(&path, text.replace(old, new)).expect("write");
}

#[test]
fn labels_are_created_rewritten_and_deleted_as_declared() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    assert_eq!(ctx.dump_prefix(LABELS), example_labels());
    assert_eq!(example_labels().len(), 27);

    // mw1018 moves rack; cp1052 loses its labels (its objects stay); cp1054 leaves the
    // fleet (its objects and labels go); a new node comes with labels.
    let pools = "eqiad/pools.yaml";
    edit(
        &conf,
        pools,
        "mw1018: {services: [apache, nginx], labels: {rack: B4, row: B}}",
        "mw1018: {services: [apache, nginx], labels: {rack: B5, row: B}}",
    );
    edit(
        &conf,
        pools,
        "cp1052: {services: [nginx, varnish-fe, varnish-be], labels: {rack: A2, row: A}}",
        "cp1052: {services: [nginx, varnish-fe, varnish-be]}",
    );
    edit(
        &conf,
        pools,
        "  cp1054: {services: [nginx, varnish-fe, varnish-be], labels: {rack: C5, row: C}}\n",
        "",
    );
    edit(&conf, pools, "  cp1062:", "  cp1063: {services: [nginx], labels: {rack: D3, row: D, hypervisor: ganeti1021}}\n  cp1062:");
    let before = ctx.state();

    // --check and --dry-run show exactly these changes and write nothing.
    let check = ctx.sync(&conf, &["--check"]).expect_code(3);
    let dry = ctx.sync(&conf, &["--dry-run"]).expect_code(0);
    assert_eq!(ctx.state(), before);
    assert_eq!(check.stdout, dry.stdout);
    for line in [
        "-/v1/labels/eqiad/cp1052 {\"rack\":\"A2\",\"row\":\"A\"}",
        "-/v1/labels/eqiad/cp1054 {\"rack\":\"C5\",\"row\":\"C\"}",
        "-/v1/labels/eqiad/mw1018 {\"rack\":\"B4\",\"row\":\"B\"}",
        "+/v1/labels/eqiad/mw1018 {\"rack\":\"B5\",\"row\":\"B\"}",
        "+/v1/labels/eqiad/cp1063 {\"hypervisor\":\"ganeti1021\",\"rack\":\"D3\",\"row\":\"D\"}",
        "+/v1/pools/eqiad/cache_upload/nginx/cp1063 {\"pooled\":\"no\",\"weight\":10}",
    ] {
        assert!(
            dry.stdout.lines().any(|l| l == line),
            "{line} missing from the diff:\n{}",
            dry.stdout
        );
    }
    assert!(
        dry.stderr
            .contains("the labels of 4 nodes to write or delete"),
        "{}",
        dry.stderr
    );
    assert!(
        !dry.stdout.contains("/v1/labels/eqiad/cp1053"),
        "{}",
        dry.stdout
    );

    let log = ctx.path("audit.jsonl");
    let cfg = ctx.write("config.yaml", &format!("audit_log: {}\n", log.display()));
    let run = ctx
        .sync(&conf, &["--config", cfg.to_str().expect("utf-8")])
        .expect_code(0);
    assert!(
        run.stderr
            .contains("created 1 object, deleted 3 objects, wrote 0 service definitions, the labels of 4 nodes (the sync record unchanged)"),
        "{}",
        run.stderr
    );
    let mut expected = example_labels();
    expected.remove("/v1/labels/eqiad/cp1052");
    expected.remove("/v1/labels/eqiad/cp1054");
    expected.insert(
        "/v1/labels/eqiad/mw1018".into(),
        r#"{"rack":"B5","row":"B"}"#.into(),
    );
    expected.insert(
        "/v1/labels/eqiad/cp1063".into(),
        r#"{"hypervisor":"ganeti1021","rack":"D3","row":"D"}"#.into(),
    );
    assert_keyspace(&ctx.dump_prefix(LABELS), &expected);
    // One transaction for all of it.
    assert_eq!(ctx.revision(), before.1 + 1);
    // Audited like every other write: what was there, what is now.
    let applied: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|r| {
            r["event"] == "applied" && r["key"].as_str().is_some_and(|k| k.starts_with(LABELS))
        })
        .collect();
    assert_eq!(applied.len(), 4, "{applied:?}");
    let mw1018 = applied
        .iter()
        .find(|r| r["key"] == "/v1/labels/eqiad/mw1018")
        .expect("mw1018's labels audited");
    assert_eq!(
        mw1018["before"],
        serde_json::json!({"rack": "B4", "row": "B"})
    );
    assert_eq!(
        mw1018["after"],
        serde_json::json!({"rack": "B5", "row": "B"})
    );
    assert_eq!(mw1018["tool"], "conftool-sync");

    // Again: nothing to do, nothing written.
    let synced = ctx.state();
    let run = ctx.sync(&conf, &[]).expect_code(0);
    assert!(run.stderr.contains("Nothing to do"), "{}", run.stderr);
    assert_eq!(ctx.state(), synced);
}

#[test]
fn only_labels_differing_is_pending_and_a_no_op_writes_nothing() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx.sync(&conf, &["--check"]).expect_code(0);

    // The same labels stored with other spacing and order: the same labels, not rewritten.
    ctx.put("/v1/labels/codfw/mw2001", r#"{ "row": "A", "rack": "A1" }"#);
    let synced = ctx.state();
    let run = ctx.sync(&conf, &["--check"]).expect_code(0);
    assert_eq!(run.stdout, "");
    ctx.sync(&conf, &[]).expect_code(0);
    assert_eq!(
        ctx.state(),
        synced,
        "a no-op sync must not move the revision"
    );

    // Only a label changed: pending (exit 3), the diff is its two lines, nothing written.
    edit(
        &conf,
        "codfw/pools.yaml",
        "mw2003: {services: [apache, nginx], labels: {rack: C6, row: C}}",
        "mw2003: {services: [apache, nginx], labels: {rack: C7, row: C}}",
    );
    let run = ctx.sync(&conf, &["--check"]).expect_code(3);
    let diff: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        diff,
        [
            "-/v1/labels/codfw/mw2003 {\"rack\":\"C6\",\"row\":\"C\"}",
            "+/v1/labels/codfw/mw2003 {\"rack\":\"C7\",\"row\":\"C\"}",
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "0 objects to create, 0 objects to delete, 0 service definitions to write or \
             delete, the labels of 1 node to write or delete, the sync record unchanged (1 write)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), synced);
    // A malformed stored value is rewritten as any other difference.
    ctx.put("/v1/labels/codfw/mw2002", r#"{"rack":3}"#);
    ctx.sync(&conf, &[]).expect_code(0);
    ctx.sync(&conf, &["--check"]).expect_code(0);
    let labels = ctx.dump_prefix(LABELS);
    assert_eq!(
        labels["/v1/labels/codfw/mw2003"],
        r#"{"rack":"C7","row":"C"}"#
    );
    assert_eq!(
        labels["/v1/labels/codfw/mw2002"],
        r#"{"rack":"B3","row":"B"}"#
    );
}

#[test]
fn pool_objects_are_byte_identical_with_and_without_labels() {
    // conftool-rs layout: the example, and the example with every labels field removed.
    let labelled = Ctx::new();
    let conf = labelled.copy_example("conf");
    labelled.sync(&conf, &[]).expect_code(0);
    let bare = Ctx::new();
    let plain = bare.copy_example("conf");
    for dc in ["eqiad", "codfw"] {
        let rel = format!("{dc}/pools.yaml");
        let text = std::fs::read_to_string(plain.join(&rel)).expect("read");
        std::fs::write(plain.join(&rel), without_labels(&text)).expect("write");
    }
    assert!(!std::fs::read_to_string(plain.join("eqiad/pools.yaml"))
        .expect("read")
        .contains("labels: {rack"));
    bare.sync(&plain, &[]).expect_code(0);
    let (with, without) = (labelled.dump(), bare.dump());
    assert_eq!(bare.count(LABELS), 0);
    assert_eq!(labelled.count(LABELS), 27);
    let not_labels = |ks: &Keyspace| -> Keyspace {
        ks.iter()
            .filter(|(k, _)| !k.starts_with(LABELS))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(not_labels(&with), without, "pools, services and the record");

    // Labels added to a directory already synced: only label keys are written, no pool
    // object is rewritten (same values, same mod revisions).
    let pools_before = with_revisions(&bare, "/v1/pools/");
    let services_before = with_revisions(&bare, "/v1/services/");
    bare.sync(&conf, &[]).expect_code(0);
    assert_eq!(with_revisions(&bare, "/v1/pools/"), pools_before);
    assert_eq!(with_revisions(&bare, "/v1/services/"), services_before);
    assert_eq!(bare.dump(), with);
    // And removed again: only the label keys go.
    bare.sync(&plain, &[]).expect_code(0);
    assert_eq!(with_revisions(&bare, "/v1/pools/"), pools_before);
    assert_eq!(bare.dump(), without);

    // Python layout: node/<dc>.yaml, with and without labels/<dc>.yaml.
    let py = Ctx::new();
    py.write(
        "py/node/eqiad.yaml",
        "eqiad:\n  appservers:\n    mw1018: [apache, nginx]\n    mw1019: [apache]\n  cache_text:\n    cp1052: [nginx]\n    mw1018: [nginx]\n",
    );
    py.write(
        "py/node/codfw.yaml",
        "codfw:\n  appservers:\n    mw2001: [apache]\n",
    );
    let dir = py.path("py");
    py.sync(&dir, &[]).expect_code(0);
    let py_without = py.dump();
    let py_pools = with_revisions(&py, "/v1/pools/");
    py.write(
        "py/labels/eqiad.yaml",
        "mw1018: {rack: B4, row: B}\ncp1052: {rack: A2}\n",
    );
    py.write("py/labels/codfw.yaml", "mw2001: {rack: A1}\n");
    py.sync(&dir, &[]).expect_code(0);
    assert_eq!(with_revisions(&py, "/v1/pools/"), py_pools);
    let mut want = py_without.clone();
    for (k, v) in [
        ("/v1/labels/eqiad/mw1018", r#"{"rack":"B4","row":"B"}"#),
        ("/v1/labels/eqiad/cp1052", r#"{"rack":"A2"}"#),
        ("/v1/labels/codfw/mw2001", r#"{"rack":"A1"}"#),
    ] {
        want.insert(k.into(), v.into());
    }
    assert_keyspace(&py.dump(), &want);
    // The Python layout's pool objects carry its defaults, labels or not.
    assert_eq!(
        py.dump()["/v1/pools/eqiad/appservers/apache/mw1018"],
        r#"{"pooled":"inactive","weight":0}"#
    );
}

/// One bad directory: a file to write (relative to a copy of the example, or of a Python
/// layout directory), where the error must point, and what it must say.
struct Bad {
    python: bool,
    file: &'static str,
    text: String,
    at: &'static str,
    says: &'static str,
}

#[test]
fn bad_labels_exit_2_with_their_place_and_write_nothing() {
    let ctx = Ctx::new();
    let good = ctx.copy_example("good");
    ctx.sync(&good, &[]).expect_code(0);
    let before = ctx.state();
    let pools = std::fs::read_to_string(good.join("eqiad/pools.yaml")).expect("read");
    let in_pools = |old: &str, new: &str| {
        assert!(pools.contains(old), "{old}");
        pools.replace(old, new)
    };
    let mw1018 = "mw1018: {services: [apache, nginx], labels: {rack: B4, row: B}}";
    let bad = |file, text: String, at, says| Bad {
        python: false,
        file,
        text,
        at,
        says,
    };
    let py = |file, text: &str, at, says| Bad {
        python: true,
        file,
        text: text.to_string(),
        at,
        says,
    };
    let cases = [
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: {rack: B4}, rack: B4}"), "eqiad/pools.yaml:12:", "unknown field `rack`, expected `services` or `labels`"),
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: {Rack: B4}}"), "eqiad/pools.yaml:12:", "invalid label name \"Rack\""),
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: {rack: B/4}}"), "eqiad/pools.yaml:12:", "invalid label value \"B/4\""),
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: {rack: }}"), "eqiad/pools.yaml:12:", "a label needs a value"),
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: {rack: B4, rack: B5}}"), "eqiad/pools.yaml:12:", "duplicate key rack"),
        bad("eqiad/pools.yaml", in_pools(mw1018, "mw1018: {services: [apache, nginx], labels: [rack, B4]}"), "eqiad/pools.yaml:12:", "expected a mapping of label names to values"),
        // mw1018 also in cache_text, with other labels: both places named.
        bad("eqiad/pools.yaml", in_pools("cache_upload:\n", "  mw1018: {services: [nginx], labels: {rack: B5, row: B}}\ncache_upload:\n"), "eqiad/pools.yaml:13:", "labels {rack=B4,row=B} differ from {rack=B5,row=B} given in cluster cache_text at line 7"),
        bad("labels/eqiad.yaml", "mw1018: {rack: B4}\n".into(), "labels/eqiad.yaml: ", "labels/<dc>.yaml is the Python conftool layout's"),
        py("labels/eqiad.yaml", "mw1018: {rack: B4}\nmw1099: {rack: B4}\n", "labels/eqiad.yaml:2:", "node mw1099 is not in node/eqiad.yaml"),
        py("labels/eqiad.yaml", "mw1018:\n  rack: B4\n  rack.unit: \"B4 u12\"\n", "labels/eqiad.yaml:3:", "invalid label value \"B4 u12\""),
        py("labels/eqiad.yaml", "mw1018: {Row: B}\n", "labels/eqiad.yaml:1:", "invalid label name \"Row\""),
        py("labels/codfw.yaml", "mw2001: {rack: A1}\n", "labels/codfw.yaml:1:", "there is no node/codfw.yaml"),
        py("labels/eqiad.yml", "mw1018: {rack: B4}\n", "labels/eqiad.yml: ", "did you mean eqiad.yaml?"),
    ];
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let dir = ctx.path(&format!("bad{n:02}"));
        if c.python {
            ctx.write(
                &format!("bad{n:02}/node/eqiad.yaml"),
                "eqiad:\n  appservers:\n    mw1018: [apache]\n",
            );
        } else {
            copy_dir(&good, &dir);
        }
        ctx.write(&format!("bad{n:02}/{}", c.file), &c.text);
        let run = ctx.sync(&dir, &[]);
        let place = format!("{}/{}", dir.display(), c.at);
        if run.code != 2 || !run.stderr.contains(&place) || !run.stderr.contains(c.says) {
            failures.push(format!(
                "[{n}] want exit 2, {place} and {:?}; got {}: {}",
                c.says, run.code, run.stderr
            ));
        }
        if ctx.state() != before {
            failures.push(format!("[{n}] etcd changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
