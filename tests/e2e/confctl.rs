//! confctl end to end: selector/action grammar, Python-compatible output, prompts, host
//! shortcuts, the audit trail, and bad input leaving etcd untouched.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::util::*;

const SERVICES: &str = "\
appservers:
  apache: {port: 80, default_values: {pooled: yes, weight: 1}}
  nginx: {port: 443, default_values: {pooled: yes, weight: 1}}
cache_text:
  varnish-fe: {port: 80, default_values: {pooled: \"no\", weight: 10}}
";
const EQIAD: &str = "\
appservers:
  mw1018: {services: [apache, nginx]}
  mw1019: {services: [apache]}
  mw101: {services: [apache]}
cache_text:
  cp1052: {services: [varnish-fe]}
  cp1053: {services: [varnish-fe]}
";
const CODFW: &str = "appservers:\n  mw2001: {services: [apache]}\n";

/// A context with the small fleet above synced.
fn fleet() -> Ctx {
    let ctx = Ctx::new();
    ctx.write("conf/services.yaml", SERVICES);
    ctx.write("conf/eqiad/pools.yaml", EQIAD);
    ctx.write("conf/codfw/pools.yaml", CODFW);
    ctx.sync(&ctx.path("conf"), &["--quiet"]).expect_code(0);
    ctx
}

fn value(ctx: &Ctx, obj: &str) -> String {
    ctx.dump()
        .get(&format!("/v1/pools/{obj}"))
        .cloned()
        .unwrap_or_else(|| panic!("{obj} missing"))
}

#[test]
fn get_prints_the_python_tools_lines_with_anchored_regexes() {
    let ctx = fleet();
    let run = ctx
        .run(
            "confctl",
            &["select", "dc=eqiad,cluster=appservers,name=mw10..", "get"],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "{\"mw1018\": {\"weight\": 1, \"pooled\": \"yes\"}, \"tags\": \"dc=eqiad,cluster=appservers,service=apache\"}\n\
         {\"mw1019\": {\"weight\": 1, \"pooled\": \"yes\"}, \"tags\": \"dc=eqiad,cluster=appservers,service=apache\"}\n\
         {\"mw1018\": {\"weight\": 1, \"pooled\": \"yes\"}, \"tags\": \"dc=eqiad,cluster=appservers,service=nginx\"}\n"
    );
    // `name=mw101` is anchored: it selects mw101 only, not mw1018 or mw1019.
    let run = ctx
        .run("confctl", &["select", "name=mw101", "get"])
        .expect_code(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    assert!(run.stdout.starts_with("{\"mw101\": "), "{}", run.stdout);
    // No match is not an error for get.
    let run = ctx
        .run("confctl", &["select", "dc=ulsfo", "get"])
        .expect_code(0);
    assert_eq!(run.stdout, "");
}

#[test]
fn get_json_is_one_document() {
    let ctx = fleet();
    let run = ctx
        .run(
            "confctl",
            &["--json", "select", "cluster=cache_text", "get"],
        )
        .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON document");
    let names: Vec<&str> = doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cp1052", "cp1053"]);
    assert_eq!(doc["objects"][0]["pooled"], "no");
    assert_eq!(doc["objects"][0]["weight"], 10);
    assert_eq!(doc["revision"], ctx.revision());
}

#[test]
fn set_prints_one_line_per_changed_field_and_skips_no_ops() {
    let ctx = fleet();
    let run = ctx
        .run(
            "confctl",
            &[
                "select",
                "dc=eqiad,service=apache,name=mw1019",
                "set/pooled=no:weight=5",
            ],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1019: pooled changed yes => no\n\
         eqiad/appservers/apache/mw1019: weight changed 1 => 5\n"
    );
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1019"),
        r#"{"pooled":"no","weight":5}"#
    );
    // The same change again writes nothing: the revision stays.
    let rev = ctx.revision();
    let run = ctx
        .run(
            "confctl",
            &[
                "select",
                "dc=eqiad,service=apache,name=mw1019",
                "set/pooled=no:weight=5",
            ],
        )
        .expect_code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(ctx.revision(), rev);
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let ctx = fleet();
    let before = (ctx.dump(), ctx.revision());
    let cases: &[(&[&str], &str)] = &[
        (&["select", "color=red", "get"], "unknown tag \"color\""),
        (
            &["select", "name=(", "set/pooled=no"],
            "invalid regex for name",
        ),
        (&["select", "", "set/pooled=no"], "empty selector"),
        (&["select", "name", "get"], "is not tag=regex"),
        (&["select", "name=a,name=b", "get"], "given twice"),
        (
            &["select", "name=mw1018", "put"],
            "expected get, delete or set",
        ),
        (&["select", "name=mw1018", "set/"], "nothing to set"),
        (
            &["select", "name=mw1018", "set/colour=red"],
            "unknown field \"colour\"; fields are pooled and weight; nothing written",
        ),
        (
            &["select", "name=mw1018", "set/pooled=maybe"],
            "pooled must be yes, no or inactive, not \"maybe\"; nothing written",
        ),
        (
            &["select", "name=mw1018", "set/weight=70000"],
            "weight must be an integer from 0 to 65535, not \"70000\"; nothing written",
        ),
        (
            &["select", "name=mw1018", "set/weight=-1"],
            "weight must be",
        ),
        (
            &["select", "name=mw1018", "set/weight=ten"],
            "weight must be an integer from 0 to 65535, not \"ten\"; nothing written",
        ),
        (
            &["select", "name=mw1018", "set/pooled=no:pooled=yes"],
            "given twice",
        ),
        (
            &["select", "name=nosuch", "set/pooled=no"],
            "matches no objects",
        ),
        (&["select", "name=mw1018"], "required"),
        (&["frobnicate"], "unrecognized subcommand"),
        (
            &["select", "name=mw1018", "get", "--bogus"],
            "unexpected argument",
        ),
        (&["depool", "--hostname", "nosuch"], "is not in any pool"),
        (&["depool", "--hostname", "bad/name"], "invalid node name"),
        (
            &["--timeout", "5h", "select", "name=x", "get"],
            "invalid duration",
        ),
    ];
    ctx.expect_bad_input("confctl", cases);
    assert_eq!((ctx.dump(), ctx.revision()), before);
}

#[test]
fn writes_to_several_objects_ask_first() {
    let ctx = fleet();
    let args = ["select", "dc=eqiad,cluster=appservers", "set/weight=7"];
    let before = ctx.dump();
    for answer in ["n\n", "", "whatever\n"] {
        let run = ctx.run_with_stdin("confctl", &args, answer);
        assert_eq!(run.code, 1, "{answer:?}: {run:?}");
        assert!(
            run.stderr.contains("Ok to continue? [y/N]"),
            "{}",
            run.stderr
        );
        assert!(run
            .stderr
            .contains("eqiad/appservers/apache/mw1018: weight changed 1 => 7"));
        assert!(
            run.stderr.contains(
                "4 objects selected by dc=eqiad,cluster=appservers; set/weight=7 changes:\n"
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.ends_with("confctl: aborted; nothing written.\n"),
            "{}",
            run.stderr
        );
        assert_eq!(ctx.dump(), before, "{answer:?} must not write");
    }
    let run = ctx.run_with_stdin("confctl", &args, "y\n").expect_code(0);
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    assert_eq!(
        value(&ctx, "eqiad/appservers/nginx/mw1018"),
        r#"{"pooled":"yes","weight":7}"#
    );
    // --yes skips the question.
    let run = ctx
        .run(
            "confctl",
            &[
                "--yes",
                "select",
                "dc=eqiad,cluster=appservers",
                "set/weight=8",
            ],
        )
        .expect_code(0);
    assert!(!run.stderr.contains("Ok to continue"));
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw101"),
        r#"{"pooled":"yes","weight":8}"#
    );
}

#[test]
fn delete_removes_only_the_selection() {
    let ctx = fleet();
    let before = ctx.dump();
    let run = ctx
        .run(
            "confctl",
            &["select", "dc=eqiad,name=cp105.", "delete", "--yes"],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/cache_text/varnish-fe/cp1052: deleted\neqiad/cache_text/varnish-fe/cp1053: deleted\n"
    );
    let mut expected = before;
    expected.remove("/v1/pools/eqiad/cache_text/varnish-fe/cp1052");
    expected.remove("/v1/pools/eqiad/cache_text/varnish-fe/cp1053");
    assert_eq!(ctx.dump(), expected);
}

#[test]
fn host_shortcuts_respect_inactive() {
    let ctx = fleet();
    let obj = |s: &str| value(&ctx, &format!("eqiad/appservers/{s}/mw1018"));
    // mw1018 is nginx's only node: depooling it needs the threshold lifted.
    ctx.run(
        "confctl",
        &["depool", "--hostname", "mw1018", "--allow-below-threshold"],
    )
    .expect_code(0);
    assert_eq!(obj("apache"), r#"{"pooled":"no","weight":1}"#);
    assert_eq!(obj("nginx"), r#"{"pooled":"no","weight":1}"#);
    ctx.run(
        "confctl",
        &["decommission", "--hostname", "mw1018", "--service", "nginx"],
    )
    .expect_code(0);
    assert_eq!(obj("nginx"), r#"{"pooled":"inactive","weight":1}"#);
    // pool never re-pools an inactive object unless asked.
    let run = ctx
        .run("confctl", &["pool", "--hostname", "mw1018"])
        .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/appservers/apache/mw1018: pooled changed no => yes\n"
    );
    assert!(run
        .stderr
        .contains("eqiad/appservers/nginx/mw1018: left alone (pooled=inactive)"));
    assert_eq!(obj("nginx"), r#"{"pooled":"inactive","weight":1}"#);
    // depool leaves inactive objects alone too.
    ctx.run("confctl", &["depool", "--hostname", "mw1018"])
        .expect_code(0);
    assert_eq!(obj("nginx"), r#"{"pooled":"inactive","weight":1}"#);
    ctx.run(
        "confctl",
        &["pool", "--hostname", "mw1018", "--include-inactive"],
    )
    .expect_code(0);
    assert_eq!(obj("nginx"), r#"{"pooled":"yes","weight":1}"#);
    // A drain takes the node out of traffic: nginx's only serving node may not go.
    let before = ctx.state();
    let run = ctx
        .run("confctl", &["drain", "--hostname", "mw1018"])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("eqiad/appservers/nginx: 0 of 1 nodes would stay serving (now 1)"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    ctx.run(
        "confctl",
        &["drain", "--hostname", "mw1018", "--allow-below-threshold"],
    )
    .expect_code(0);
    assert_eq!(obj("apache"), r#"{"pooled":"yes","weight":0}"#);
    assert_eq!(obj("nginx"), r#"{"pooled":"yes","weight":0}"#);
    // Other hosts untouched.
    assert_eq!(
        value(&ctx, "eqiad/appservers/apache/mw1019"),
        r#"{"pooled":"yes","weight":1}"#
    );
}

#[test]
fn writes_are_audited_and_reads_are_not() {
    let ctx = fleet();
    let log = ctx.path("audit.jsonl");
    let cfg = ctx.write(
        "config.yaml",
        &format!("audit_log: {}\ntimeout: 5s\n", log.display()),
    );
    let cfg = cfg.to_str().expect("path");
    ctx.cmd("confctl")
        .args(["--config", cfg, "select", "name=mw.*", "get"])
        .output()
        .expect("run");
    assert!(!log.exists(), "a read must not be audited");
    let out = ctx
        .cmd("confctl")
        .env("SUDO_USER", "alice")
        .args([
            "--config",
            cfg,
            "select",
            "dc=eqiad,service=apache,name=mw1019",
            "set/pooled=no",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&log).expect("audit log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    // The intent before the commit, the write after it, and the end of the operation.
    let events: Vec<&str> = lines
        .iter()
        .map(|l| l["event"].as_str().expect("event"))
        .collect();
    assert_eq!(events, ["intent", "applied", "end"], "{text}");
    assert!(lines.iter().all(|l| l["op"] == lines[0]["op"]), "{text}");
    assert_eq!(lines[0]["key"], lines[1]["key"]);
    assert_eq!(lines[0]["after"], lines[1]["after"]);
    assert!(lines[0]["revision"].is_null(), "{text}");
    assert_eq!(lines[2]["applied"], 1);
    assert!(lines[2]["error"].is_null(), "{text}");
    let rec = &lines[1];
    assert_eq!(rec["user"], "alice");
    assert_eq!(rec["tool"], "confctl");
    assert_eq!(rec["key"], "/v1/pools/eqiad/appservers/apache/mw1019");
    assert_eq!(
        rec["before"],
        serde_json::json!({"pooled": "yes", "weight": 1})
    );
    assert_eq!(
        rec["after"],
        serde_json::json!({"pooled": "no", "weight": 1})
    );
    assert_eq!(rec["revision"], ctx.revision());
    assert!(!rec["host"].as_str().expect("host").is_empty());
    assert!(rec["time"].as_str().expect("time").ends_with('Z'));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let ctx = Ctx::new();
    let mut pools = String::from("appservers:\n");
    for i in 0..3000 {
        pools.push_str(&format!("  mw{i:05}: {{services: [apache, nginx]}}\n"));
    }
    ctx.write("conf/services.yaml", SERVICES);
    ctx.write("conf/eqiad/pools.yaml", &pools);
    ctx.sync(&ctx.path("conf"), &["--quiet"]).expect_code(0);
    let mut child = ctx
        .cmd("confctl")
        .args(["select", "name=.*", "get"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    // The reader is gone now, like `confctl ... | head -1`.
    let out = child.wait_with_output().expect("wait");
    assert!(first.starts_with("{\"mw00000\": "), "{first}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn help_has_examples_and_docs_generate() {
    let ctx = Ctx::new();
    for (bin, args) in [
        ("confctl", vec!["--help"]),
        ("confctl", vec!["select", "--help"]),
        ("confctl", vec!["depool", "--help"]),
        ("conftool", vec!["--help"]),
        ("conftool-sync", vec!["--help"]),
    ] {
        let run = ctx.run(bin, &args).expect_code(0);
        assert!(
            run.stdout.contains("Examples:"),
            "{bin} {args:?}: {}",
            run.stdout
        );
    }
    let man = ctx.run("confctl", &["--man"]).expect_code(0);
    assert!(man.stdout.contains(".TH confctl 1"));
    // Every page the main page refers to can be generated, in either spelling.
    let referred: Vec<String> = man
        .stdout
        .replace("\\-", "-")
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("confctl-"))
        .filter_map(|w| w.split_once("(1)").map(|(sub, _)| sub.to_string()))
        .collect();
    assert!(referred.contains(&"select".to_string()), "{}", man.stdout);
    assert!(referred.len() >= 5, "{referred:?}");
    for sub in &referred {
        let page = ctx.run("confctl", &["--man", sub]).expect_code(0);
        assert!(
            page.stdout.contains(&format!(".TH confctl-{sub} 1")),
            "{sub}: {}",
            page.stdout
        );
        let other = ctx.run("confctl", &[sub.as_str(), "--man"]).expect_code(0);
        assert_eq!(other.stdout, page.stdout);
    }
    let run = ctx.run("confctl", &["--man", "nosuch"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("select"), "{}", run.stderr);
    let dir = ctx.path("man");
    ctx.run("confctl", &["--man-dir", dir.to_str().expect("utf-8")])
        .expect_code(0);
    assert!(dir.join("confctl.1").exists() && dir.join("confctl-select.1").exists());
    // Every binary's help says how to get completions and man pages.
    for bin in ["confctl", "conftool", "conftool-sync", "conftool-migrate"] {
        let help = ctx.run(bin, &["--help"]).expect_code(0);
        assert!(
            help.stdout.contains("--completions") && help.stdout.contains("--man"),
            "{bin}: {}",
            help.stdout
        );
    }
    // conftool's example keeps its quoted commands whole on one line.
    let help = ctx.run("conftool", &["--help"]).expect_code(0);
    let line = help
        .stdout
        .lines()
        .find(|l| l.contains("\"cp1052"))
        .expect("the example");
    assert_eq!(line.matches('"').count(), 2, "{line}");
    // A usage error does not show --endpoints as given when only its variable is set.
    let run = ctx.run("confctl", &["select"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("Usage: confctl select <SELECTOR> <ACTION>"),
        "{}",
        run.stderr
    );
    let comp = ctx
        .run("conftool-sync", &["--completions", "bash"])
        .expect_code(0);
    assert!(comp.stdout.contains("--git-rev"));
}
