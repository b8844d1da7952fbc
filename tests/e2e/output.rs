//! Output that goes nowhere never changes what is written nor the exit code that says so:
//! every binary and mode with its stdout (and stderr) closed before it starts, closed after
//! the first line, or full.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::util::*;

const MW1018: &str = "/v1/pools/eqiad/appservers/apache/mw1018";

/// A context with the example conf/ copied (not synced).
fn example() -> (Ctx, std::path::PathBuf) {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    (ctx, conf)
}

fn expected_example() -> Keyspace {
    read_keyspace(&fixtures().join("example-keyspace.txt"))
}

#[test]
fn sync_modes_keep_their_exit_codes_and_writes_with_stdout_gone() {
    for sink in [Sink::ClosedStdout, Sink::ClosedBoth, Sink::FullStdout] {
        let (ctx, conf) = example();
        let dir = conf.to_str().expect("utf-8");
        let before = ctx.state();
        // Pending changes stay "pending" (3), whatever happens to the diff.
        let run = ctx.run_to(sink, "conftool-sync", &["--directory", dir, "--check"]);
        assert_eq!(run.code, 3, "{sink:?}: {run:?}");
        let run = ctx.run_to(sink, "conftool-sync", &["--directory", dir, "--dry-run"]);
        let dry_code = if sink == Sink::FullStdout { 1 } else { 0 };
        assert_eq!(run.code, dry_code, "{sink:?}: {run:?}");
        assert_eq!(ctx.state(), before, "{sink:?}: --check/--dry-run wrote");
        // The real run writes everything.
        let run = ctx.run_to(sink, "conftool-sync", &["--directory", dir]);
        assert_keyspace(&ctx.dump(), &expected_example());
        match sink {
            Sink::FullStdout => {
                // The sync is done, but the diff the user asked for was lost: a failure,
                // and the message says what failed.
                assert_eq!(run.code, 1, "{run:?}");
                assert!(
                    run.stderr.contains("cannot write output")
                        && run.stderr.contains("No space left on device"),
                    "{run:?}"
                );
                assert!(run.stderr.contains("Synced"), "{run:?}");
            }
            _ => assert_eq!(run.code, 0, "{sink:?}: {run:?}"),
        }
        ctx.sync(&conf, &["--check"]).expect_code(0);
    }
}

#[test]
fn a_reader_that_stops_after_one_line_changes_nothing() {
    // The issue's case: `conftool-sync | head -1` on a 40,000-object plan.
    let ctx = Ctx::new();
    let conf = ctx.path("conf");
    let fleet = Fleet {
        dcs: vec!["eqiad".into(), "codfw".into()],
        nodes: 4000,
    };
    fleet.write(&conf);
    let first_line = |args: &[&str]| {
        let mut child = ctx
            .cmd("conftool-sync")
            .arg("--directory")
            .arg(&conf)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        // The reader is gone now, like `| head -1`.
        let out = child.wait_with_output().expect("wait");
        (line, Run::from(out))
    };
    let (line, run) = first_line(&["--check"]);
    assert!(line.starts_with("--- etcd "), "{line}");
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(ctx.count("/v1/"), 0, "--check wrote");
    let (line, run) = first_line(&[]);
    assert!(line.starts_with("--- etcd "), "{line}");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("Synced"), "{run:?}");
    assert_keyspace(&ctx.dump_prefix("/v1/"), &fleet.expected());
}

/// A small synced fleet: mw1018 and mw1019 in apache (pooled yes).
fn synced() -> Ctx {
    let (ctx, conf) = example();
    ctx.sync(&conf, &[]).expect_code(0);
    ctx
}

#[test]
fn confctl_and_conftool_write_the_same_with_stdout_gone() {
    for sink in [Sink::ClosedStdout, Sink::ClosedBoth, Sink::FullStdout] {
        let ctx = synced();
        let lost = |run: &Run| {
            let want = if sink == Sink::FullStdout { 1 } else { 0 };
            assert_eq!(run.code, want, "{sink:?}: {run:?}");
            if sink == Sink::FullStdout {
                assert!(run.stderr.contains("cannot write output"), "{run:?}");
            }
        };
        let run = ctx.run_to(sink, "confctl", &["select", "name=.*", "get"]);
        lost(&run);
        let before = ctx.state();
        let run = ctx.run_to(
            sink,
            "confctl",
            &[
                "select",
                "dc=eqiad,service=apache,name=mw1018",
                "set/pooled=no",
            ],
        );
        lost(&run);
        assert_eq!(ctx.dump()[MW1018], r#"{"pooled":"no","weight":1}"#);
        assert_ne!(ctx.state(), before);
        let run = ctx.run_to(
            sink,
            "confctl",
            &[
                "--json",
                "select",
                "dc=eqiad,service=apache,name=mw1018",
                "set/weight=3",
            ],
        );
        lost(&run);
        assert_eq!(ctx.dump()[MW1018], r#"{"pooled":"no","weight":3}"#);
        let run = ctx.run_to(sink, "confctl", &["pool", "--hostname", "mw1018"]);
        lost(&run);
        assert_eq!(ctx.dump()[MW1018], r#"{"pooled":"yes","weight":3}"#);
        let run = ctx.run_to(
            sink,
            "conftool",
            &[
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1018 pool=no:weight=4",
            ],
        );
        lost(&run);
        assert_eq!(ctx.dump()[MW1018], r#"{"pooled":"no","weight":4}"#);
    }
}

#[test]
fn failures_keep_their_codes_with_stdout_gone() {
    let ctx = synced();
    let conf = ctx.path("conf");
    let before = ctx.state();
    for sink in [Sink::ClosedStdout, Sink::ClosedBoth, Sink::FullStdout] {
        let run = ctx.run_to(
            sink,
            "confctl",
            &["select", "name=nosuchhost", "set/pooled=no"],
        );
        assert_eq!(run.code, 2, "{sink:?}: {run:?}");
        let run = ctx.run_to(sink, "confctl", &["select", "bogus=1", "get"]);
        assert_eq!(run.code, 2, "{sink:?}: {run:?}");
        std::fs::write(conf.join("eqiad/pools.yaml"), "appservers: [\n").expect("write");
        let run = ctx.run_to(
            sink,
            "conftool-sync",
            &["--directory", conf.to_str().expect("utf-8")],
        );
        assert_eq!(run.code, 2, "{sink:?}: {run:?}");
    }
    assert_eq!(ctx.state(), before);
}

#[test]
fn help_and_docs_report_a_full_stdout() {
    let ctx = Ctx::new();
    for bin in ["confctl", "conftool", "conftool-sync", "conftool-migrate"] {
        for args in [
            &["--help"][..],
            &["--version"],
            &["--man"],
            &["--completions", "bash"],
        ] {
            let run = ctx.run_to(Sink::ClosedBoth, bin, args);
            assert_eq!(run.code, 0, "{bin} {args:?} into a closed pipe: {run:?}");
            let run = ctx.run_to(Sink::FullStdout, bin, args);
            assert_eq!(run.code, 1, "{bin} {args:?} into /dev/full: {run:?}");
            assert!(
                run.stderr.contains("No space left"),
                "{bin} {args:?}: {run:?}"
            );
        }
    }
}
