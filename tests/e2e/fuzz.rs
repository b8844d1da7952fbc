//! Fuzz-style tests of the real binaries: garbage arguments exit 2, say why, and write
//! nothing; hostile YAML is refused quickly. (The parsers' and the loader's property tests
//! live with their crates: conftool-model's `props`, conftool-sync's `it::props`.)
//!
//! Bounded: a few dozen process runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conftool_core::{Action, Selector};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use crate::util::*;

/// Garbage selectors and actions through the real `confctl`: exit 2, a message saying which
/// argument is wrong, no panic, nothing written.
#[test]
fn confctl_refuses_garbage_and_writes_nothing() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let before = (ctx.dump(), ctx.revision());
    let t0 = Instant::now();

    // Pairs in which at least one of the two does not parse; never a NUL (not an argument).
    // (The parsers' own property tests, with inputs built from their grammar, are in
    // conftool-model; here, anything at all through the real binary.)
    let garbage = || {
        prop_oneof![
            any::<String>(),
            "[a-z=,.*|()\\\\ -]{0,20}",
            "set/[a-z=:0-9 -]{0,20}",
        ]
    };
    let pairs = (garbage(), garbage())
        .prop_map(|(s, a)| (s.replace('\0', ""), a.replace('\0', "")))
        .prop_filter("one of them must be invalid", |(s, a)| {
            s.parse::<Selector>().is_err() || a.parse::<Action>().is_err()
        });
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 40,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&pairs, |(sel, action)| {
            // `--` so that a string starting with `-` reaches the parsers, not clap.
            let r = ctx.run("confctl", &["--yes", "select", "--", &sel, &action]);
            prop_assert_eq!(r.code, 2, "{:?} {:?}: {:?}", sel, action, r);
            let want = if sel.parse::<Selector>().is_err() {
                "invalid selector"
            } else {
                "invalid action"
            };
            prop_assert!(r.stderr.contains(want), "{sel:?} {action:?}: {}", r.stderr);
            prop_assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
            prop_assert!(r.stdout.is_empty(), "{}", r.stdout);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));

    // Hand-picked ones: flags where arguments belong, empty strings, bad numbers, a selector
    // that matches nothing with a write, and conftool's seed syntax.
    let fixed: &[(&str, &[&str], &str)] = &[
        ("confctl", &["select", "-x", "get"], "-x"),
        ("confctl", &["select", "", "get"], "empty selector"),
        ("confctl", &["select", "name=.*", ""], "invalid action"),
        ("confctl", &["select", "name=.*", "set/"], "nothing to set"),
        (
            "confctl",
            &["select", "name=.*", "set/weight=65536"],
            "weight",
        ),
        (
            "confctl",
            &["select", "name=.*", "set/pooled=maybe"],
            "pooled",
        ),
        (
            "confctl",
            &["--yes", "select", "name=nosuchhost", "set/pooled=no"],
            "matches no objects",
        ),
        ("confctl", &["select", "name=(", "delete"], "invalid regex"),
        (
            "conftool",
            &[
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1018 pool=maybe",
            ],
            "maybe",
        ),
        (
            "conftool",
            &["-d", "eqiad", "-c", "appservers", "-s", "apache", ";;;"],
            "",
        ),
    ];
    for (bin, args, says) in fixed {
        let r = ctx.run(bin, args);
        assert_eq!(r.code, 2, "{bin} {args:?}: {r:?}");
        assert!(
            !r.stderr.trim().is_empty() && r.stderr.contains(says),
            "{bin} {args:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    assert_eq!(
        (ctx.dump(), ctx.revision()),
        before,
        "garbage wrote something"
    );
    eprintln!("confctl garbage: {:?}", t0.elapsed());
}

/// YAML built to hurt a parser, through the real `conftool-sync`: deep block nesting, deep
/// flow nesting, an alias bomb, a huge scalar. Each is refused quickly with exit 2 (or
/// loaded), never a crash, and nothing is written.
#[test]
fn sync_survives_hostile_yaml() {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    let before = (ctx.dump(), ctx.revision());
    let services = std::fs::read_to_string(conf.join("services.yaml")).expect("read");

    // Each level an anchored list of ten aliases to the level below: 10^10 names if
    // expanded. Under a real cluster and node, so that it is not refused for its keys.
    let bomb = {
        let mut s = String::from("appservers:\n");
        s.push_str("  mw0: {services: &l0 [apache]}\n");
        for level in 1..=10 {
            let refs = vec![format!("*l{}", level - 1); 10].join(", ");
            s.push_str(&format!("  mw{level}: {{services: &l{level} [{refs}]}}\n"));
        }
        s.push_str("  mw1018: {services: *l10}\n");
        s
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "deep block sequence",
            format!("{}x\n", "- ".repeat(20_000)).into(),
        ),
        (
            "deep block mapping",
            (0..2_000)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>()
                .into(),
        ),
        (
            "deep flow nesting",
            format!("a: {}\n", "[".repeat(100_000)).into(),
        ),
        ("alias bomb", bomb.into()),
        (
            "huge scalar",
            format!(
                "appservers:\n  {}: {{services: [apache]}}\n",
                "m".repeat(2 << 20)
            )
            .into(),
        ),
        (
            "control characters",
            b"appservers:\n  mw1018: {services: [\x01\x02]}\n".to_vec(),
        ),
        (
            "invalid UTF-8",
            b"appservers:\n  mw\xff\xfe: {services: [apache]}\n".to_vec(),
        ),
    ];
    for (what, text) in cases {
        let dir = ctx.path(&format!("hostile-{}", what.replace(' ', "-")));
        copy_dir(&conf, &dir);
        std::fs::write(dir.join("services.yaml"), &services).expect("write");
        std::fs::write(dir.join("eqiad").join("pools.yaml"), &text).expect("write");
        let t = Instant::now();
        let r = run_bounded(
            {
                let mut c = ctx.cmd("conftool-sync");
                c.arg("--directory").arg(&dir).arg("--dry-run");
                c
            },
            Duration::from_secs(60),
        );
        let took = t.elapsed();
        let first_line = r.stderr.lines().next().unwrap_or_default();
        eprintln!(
            "hostile yaml, {what}: exit {} after {took:?}, {} bytes on stderr: {}",
            r.code,
            r.stderr.len(),
            first_line.chars().take(300).collect::<String>()
        );
        assert_eq!(r.code, 2, "{what}: {r:?}");
        assert!(
            r.stderr
                .contains(&dir.join("eqiad/pools.yaml").display().to_string()),
            "{what}: the error does not name the file: {}",
            r.stderr
        );
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
    }
    assert_eq!((ctx.dump(), ctx.revision()), before);
}

/// Run a command, killing it (by PID) if it is still running after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Run {
    let out = conftool_testkit::temp_dir("test-");
    let (o, e) = (out.path().join("out"), out.path().join("err"));
    let mut child = cmd
        .stdout(std::fs::File::create(&o).expect("out file"))
        .stderr(std::fs::File::create(&e).expect("err file"))
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: read(&o),
        stderr: read(&e),
    }
}
