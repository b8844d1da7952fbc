//! The audit trail on a bad day: a log that cannot be written refuses the change before
//! anything is written; intents are recorded before the commit, so a commit that never
//! reports back leaves a trace; the user is named without USER/LOGNAME.

use crate::util::*;

fn audit_config(ctx: &Ctx, log: &std::path::Path) -> String {
    let cfg = ctx.write("config.yaml", &format!("audit_log: {}\n", log.display()));
    cfg.to_str().expect("utf-8").to_string()
}

fn lines(log: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn an_unwritable_audit_log_refuses_every_write_before_it_is_made() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    // A log whose directory is a regular file: it cannot be created (root can write
    // anywhere, so permissions would prove nothing here).
    ctx.write("not-a-dir", "");
    let log = ctx.path("not-a-dir/audit.jsonl");
    let cfg = audit_config(&ctx, &log);
    // Give the sync something to do.
    ctx.delete("/v1/pools/eqiad/appservers/apache/mw1022");
    let before = ctx.state();
    let dir = conf.to_str().expect("utf-8");
    let writes: [(&str, Vec<&str>); 5] = [
        ("conftool-sync", vec!["--directory", dir]),
        (
            "confctl",
            vec![
                "select",
                "dc=eqiad,service=apache,name=mw1018",
                "set/pooled=no",
            ],
        ),
        ("confctl", vec!["depool", "--hostname", "mw1019"]),
        (
            "conftool",
            vec![
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1020 pool=no",
            ],
        ),
        ("confctl", vec!["drain", "--hostname", "mw1021"]),
    ];
    for (bin, args) in writes {
        let mut all = vec!["--config", cfg.as_str()];
        all.extend(args.iter());
        let run = ctx.run(bin, &all);
        assert_eq!(run.code, 1, "{bin} {args:?}: {run:?}");
        let shown = log.display().to_string();
        assert!(
            run.stderr.contains(&format!("audit log {shown}"))
                && run.stderr.contains("nothing written")
                && run.stderr.contains("not-a-dir is not a directory"),
            "{bin} {args:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("configuration file"),
            "{bin}: the audit log is not a configuration file: {}",
            run.stderr
        );
        assert_eq!(ctx.state(), before, "{bin} {args:?} wrote");
    }
    // Reads and dry runs never open the log.
    ctx.run("confctl", &["--config", &cfg, "select", "name=.*", "get"])
        .expect_code(0);
    ctx.run(
        "conftool-sync",
        &["--config", &cfg, "--directory", dir, "--check"],
    )
    .expect_code(3);
}

#[test]
fn intents_are_recorded_before_a_commit_that_fails() {
    // etcd refuses transactions of more than 4 operations; the sync sends up to 128.
    let ctx = Ctx {
        etcd: Etcd::start_with(1, &["--max-txn-ops", "4"]),
        dir: conftool_testkit::temp_dir("test-"),
    };
    let conf = ctx.copy_example("conf");
    let log = ctx.path("audit.jsonl");
    let cfg = audit_config(&ctx, &log);
    let before = ctx.state();
    let run = ctx.sync(&conf, &["--config", &cfg]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("too many operations"), "{run:?}");
    assert_eq!(ctx.state(), before);
    let recs = lines(&log);
    let count = |event: &str| recs.iter().filter(|r| r["event"] == event).count();
    // 53 objects, 9 service definitions, 27 nodes' labels and the sync record were about to
    // be written.
    assert_eq!(count("intent"), 90, "{recs:?}");
    assert_eq!(count("applied"), 0, "{recs:?}");
    assert_eq!(count("end"), 1, "{recs:?}");
    let end = recs.last().expect("end line");
    assert_eq!(end["event"], "end");
    assert_eq!(end["applied"], 0);
    assert!(
        end["error"]
            .as_str()
            .is_some_and(|e| e.contains("too many operations")),
        "{end}"
    );
    // The transaction failed without an answer saying what landed: its keys are listed
    // as unknown, to be checked against etcd.
    assert_eq!(end["unknown"].as_array().map(Vec::len), Some(90), "{end}");
    assert!(recs.iter().all(|r| r["op"] == end["op"]));
    let intent = recs
        .iter()
        .find(|r| r["key"] == "/v1/pools/eqiad/appservers/apache/mw1018")
        .expect("intent for mw1018");
    assert_eq!(intent["event"], "intent");
    assert!(intent["before"].is_null() && intent["revision"].is_null());
    assert_eq!(
        intent["after"],
        serde_json::json!({"pooled": "yes", "weight": 1})
    );
}

/// The name of this process's user, as `id -un` says.
fn account() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_user_is_named_from_the_uid_without_user_or_logname() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let log = ctx.path("audit.jsonl");
    let cfg = audit_config(&ctx, &log);
    // As cron, a systemd unit or `env -i` would run it: no USER, LOGNAME or SUDO_USER.
    let out = std::process::Command::new(bin("confctl"))
        .env_clear()
        .env("CONFTOOL_ENDPOINTS", ctx.etcd.endpoints_arg())
        .args([
            "--config",
            &cfg,
            "select",
            "dc=eqiad,service=apache,name=mw1018",
            "set/weight=2",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run confctl");
    Run::from(out).expect_code(0);
    let recs = lines(&log);
    let want = account();
    assert!(!want.is_empty());
    assert!(!recs.is_empty());
    for r in &recs {
        assert_eq!(r["user"], want.as_str(), "{r}");
    }
    // USER is not believed over the uid.
    let run = ctx
        .cmd("confctl")
        .env("USER", "mallory")
        .args([
            "--config",
            &cfg,
            "select",
            "dc=eqiad,service=apache,name=mw1018",
            "set/weight=3",
        ])
        .output()
        .expect("run");
    Run::from(run).expect_code(0);
    let last = lines(&log).pop().expect("a line");
    assert_eq!(last["user"], want.as_str(), "{last}");
}

#[test]
fn the_reason_given_is_on_every_line_of_the_operation() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    let log = ctx.path("audit.jsonl");
    let cfg = audit_config(&ctx, &log);
    ctx.sync(&conf, &["--config", &cfg, "--reason", "T1 initial sync"])
        .expect_code(0);
    ctx.run(
        "confctl",
        &[
            "--config",
            &cfg,
            "-r",
            "T2: kernel upgrade",
            "depool",
            "--hostname",
            "mw1018",
        ],
    )
    .expect_code(0);
    ctx.run(
        "conftool",
        &[
            "--config",
            &cfg,
            "-d",
            "eqiad",
            "-c",
            "appservers",
            "-s",
            "apache",
            "mw1018 pool=yes",
        ],
    )
    .expect_code(0);
    let recs = lines(&log);
    let by_tool = |tool: &str| -> Vec<&serde_json::Value> {
        recs.iter().filter(|r| r["tool"] == tool).collect()
    };
    assert!(by_tool("conftool-sync")
        .iter()
        .all(|r| r["reason"] == "T1 initial sync"));
    let confctl = by_tool("confctl");
    assert_eq!(confctl.len(), 2 + 2 + 1, "{confctl:?}");
    assert!(confctl.iter().all(|r| r["reason"] == "T2: kernel upgrade"));
    // No reason given, none recorded.
    assert!(by_tool("conftool")
        .iter()
        .all(|r| r.get("reason").is_none()));
}
