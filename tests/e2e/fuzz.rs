//! Fuzz-style tests: the YAML loader and the selector/action parsers never panic, whatever
//! they are given, and answer either Ok or an error that says something (for a data file,
//! naming the file); garbage given to the real binaries exits 2, says why, and writes nothing.
//!
//! Bounded: a few thousand generated cases in-process, a few dozen process runs.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conftool_core::{Action, Selector};
use conftool_sync::{load, Desired, Files};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use crate::util::*;

const SERVICES: &str = r#"# cluster -> service -> {port, default_values}
cache_text:
  varnish-fe:
    port: 80
    default_values: {pooled: "no", weight: 10}
  nginx:
    port: 443
    default_values: {pooled: yes, weight: 65535}
appservers:
  apache:
    port: 80
    default_values:
      pooled: inactive
      weight: 0
"#;

const POOLS: &str = r#"# cluster -> node -> {services: [...]}
cache_text:
  cp1052: {services: [nginx, varnish-fe]}
  cp1053:
    services:
      - nginx
appservers:
  mw1018: {services: [apache]}
  mw-1019.eqiad.wmnet: {services: [apache]}
"#;

const SERVICES_FILE: &str = "conf/services.yaml";
const POOLS_FILE: &str = "conf/eqiad/pools.yaml";

fn load_pair(services: &str, pools: &str) -> Result<Desired, conftool_sync::Error> {
    load(&Files::in_memory(
        "conf",
        vec![
            ("services.yaml".to_string(), services.to_string()),
            ("eqiad/pools.yaml".to_string(), pools.to_string()),
        ],
    ))
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of YAML (and of trouble) that mutations splice into valid files.
const YAML_TOKENS: &[&str] = &[
    "",
    ":",
    ": ",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\n",
    "  ",
    "    ",
    "\t",
    "#",
    "&a ",
    "*a",
    "*b",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!custom ",
    "<<: *a\n",
    "? ",
    "|",
    ">",
    "'",
    "\"",
    "yes",
    "no",
    "true",
    "false",
    "null",
    "~",
    "inactive",
    "Yes",
    "NO",
    "65535",
    "65536",
    "-1",
    "1e3",
    "0x10",
    "0o7",
    "1_0",
    ".inf",
    ".nan",
    "1.5",
    "port",
    "port: 80",
    "default_values",
    "pooled",
    "weight",
    "services",
    "services: []",
    "{services: [x]}",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "\u{0}",
    "\u{85}",
    "é",
    "☃",
    "..",
    ".",
    "/",
    "a/b",
    "cache_text",
    "appservers",
    "nginx",
    "apache",
    "mw1018",
    "\r\n",
    "\r",
    "\\",
    "[[[[[[[[",
    "{a: {b: {c: ",
    "]]]]",
    "}}}}",
];

/// One edit to a text.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, usize),
    Delete(usize, usize),
    DupLine(usize),
    SwapLines(usize, usize),
    DeleteLine(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..YAML_TOKENS.len()).prop_map(|(p, t)| Mutation::Insert(p, t)),
        2 => (any::<usize>(), 1usize..20).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => any::<usize>().prop_map(Mutation::DupLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary at or before `p % (len + 1)`.
fn boundary(s: &str, p: usize) -> usize {
    let mut i = p % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_string();
    for m in muts {
        match *m {
            Mutation::Insert(p, t) => {
                let i = boundary(&s, p);
                s.insert_str(i, YAML_TOKENS[t]);
            }
            Mutation::Delete(p, n) => {
                let i = boundary(&s, p);
                let j = boundary(&s, (i + n).min(s.len()));
                s.replace_range(i..j.max(i), "");
            }
            Mutation::DupLine(l) | Mutation::DeleteLine(l) => {
                let mut lines: Vec<&str> = s.split('\n').collect();
                let k = l % lines.len();
                if matches!(m, Mutation::DupLine(_)) {
                    lines.insert(k, lines[k]);
                } else {
                    lines.remove(k);
                }
                s = lines.join("\n");
            }
            Mutation::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.split('\n').collect();
                let n = lines.len();
                lines.swap(a % n, b % n);
                s = lines.join("\n");
            }
            Mutation::Truncate(p) => {
                let i = boundary(&s, p);
                s.truncate(i);
            }
        }
    }
    s
}

/// A load error must say something and name one of the files (`must_name`, if given).
fn check_load(
    result: Result<Desired, conftool_sync::Error>,
    must_name: Option<&str>,
) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    let msg = e.to_string();
    prop_assert!(!msg.trim().is_empty(), "empty error message: {e:?}");
    match must_name {
        Some(file) => prop_assert!(msg.contains(file), "error does not name {file}: {msg}"),
        None => prop_assert!(
            msg.contains(SERVICES_FILE) || msg.contains(POOLS_FILE),
            "error names no file: {msg}"
        ),
    }
    Ok(())
}

#[test]
fn the_valid_files_load() {
    let d = load_pair(SERVICES, POOLS).expect("valid files");
    assert_eq!(d.objects.len(), 5);
    assert_eq!(d.services.len(), 3);
}

proptest! {
    #![proptest_config(config(1500))]

    /// Mutated services.yaml, valid pools: Ok, or an error naming a file.
    #[test]
    fn load_survives_mutated_services(muts in prop::collection::vec(mutation(), 1..8)) {
        let text = mutate(SERVICES, &muts);
        let first = load_pair(&text, POOLS);
        // Deterministic: the same input gives the same answer.
        let again = load_pair(&text, POOLS);
        prop_assert_eq!(
            first.as_ref().map_err(ToString::to_string),
            again.as_ref().map_err(ToString::to_string)
        );
        check_load(first, None)?;
    }

    /// Valid services.yaml, mutated pools: Ok, or an error naming the pools file.
    #[test]
    fn load_survives_mutated_pools(muts in prop::collection::vec(mutation(), 1..8)) {
        let text = mutate(POOLS, &muts);
        check_load(load_pair(SERVICES, &text), Some(POOLS_FILE))?;
    }

    /// Both files mutated at once.
    #[test]
    fn load_survives_both_mutated(
        a in prop::collection::vec(mutation(), 0..6),
        b in prop::collection::vec(mutation(), 0..6),
    ) {
        check_load(load_pair(&mutate(SERVICES, &a), &mutate(POOLS, &b)), None)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary text (any Unicode, and YAML-ish ASCII) in either file.
    #[test]
    fn load_survives_arbitrary_text(
        services in prop_oneof![any::<String>(), "[ -~\n\t]{0,300}"],
        pools in prop_oneof![any::<String>(), "[ -~\n\t]{0,300}"],
        keep_services in any::<bool>(),
    ) {
        if keep_services {
            check_load(load_pair(SERVICES, &pools), Some(POOLS_FILE))?;
        } else {
            check_load(load_pair(&services, &pools), None)?;
        }
    }
}

/// Pieces of selectors.
const SELECTOR_TOKENS: &[&str] = &[
    "dc",
    "cluster",
    "service",
    "name",
    "host",
    "=",
    "==",
    ",",
    ",,",
    ".*",
    ".",
    "*",
    "+",
    "?",
    "(",
    ")",
    "(?:",
    "(?P<x>",
    "[",
    "]",
    "[^",
    "{",
    "}",
    "{1,2}",
    "{99999}",
    "\\",
    "\\d",
    "\\p{L}",
    "|",
    "^",
    "$",
    "mw1018",
    "eqiad",
    "cache_text",
    "varnish-fe",
    " ",
    "\t",
    "é",
    "☃",
    "\u{0}",
    "\n",
    "a{1000}{1000}",
    "(a*)*",
    "\\x",
    "\\u{110000}",
    "[z-a]",
];

/// Pieces of actions.
const ACTION_TOKENS: &[&str] = &[
    "set/", "set", "/", "get", "delete", "pooled", "pool", "weight", "=", ":", "::", "yes", "no",
    "inactive", "true", "false", "0", "65535", "65536", "-1", "+5", "1.0", "0x10", " ", "\t", "é",
    "\u{0}", "\n", "SET/", "Get",
];

fn joined(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..12).prop_map(|v| v.concat())
}

fn selector_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        joined(SELECTOR_TOKENS),
        (
            prop::sample::select(&["dc", "cluster", "service", "name"][..]),
            joined(SELECTOR_TOKENS)
        )
            .prop_map(|(t, v)| format!("{t}={v}")),
    ]
}

fn action_input() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        joined(ACTION_TOKENS),
        joined(ACTION_TOKENS).prop_map(|v| format!("set/{v}")),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    /// A selector parses (and then prints as something that parses to the same) or is
    /// refused with a message.
    #[test]
    fn selectors_parse_or_explain(s in selector_input()) {
        match s.parse::<Selector>() {
            Ok(sel) => {
                let shown = sel.to_string();
                let back = shown.parse::<Selector>();
                prop_assert!(back.is_ok(), "{s:?} shows as {shown:?}, which does not parse");
                prop_assert_eq!(back.map(|b| b.to_string()).ok(), Some(shown));
            }
            Err(e) => {
                prop_assert!(!e.to_string().trim().is_empty());
                prop_assert!(e.is_bad_input(), "{e}");
            }
        }
    }

    /// An action parses (and round-trips through its display) or is refused with a message.
    #[test]
    fn actions_parse_or_explain(s in action_input()) {
        match s.parse::<Action>() {
            Ok(a) => {
                let shown = a.to_string();
                prop_assert_eq!(shown.parse::<Action>().ok(), Some(a));
            }
            Err(e) => {
                prop_assert!(!e.to_string().trim().is_empty());
                prop_assert!(e.is_bad_input(), "{e}");
            }
        }
    }
}

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
    let pairs = (selector_input(), action_input())
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

/// An error quotes the offending input only in part: a message stays something a person (or
/// a CI log) can read, however large the input.
#[test]
fn load_errors_quote_bounded_input() {
    let mut long = Vec::new();
    for (i, pools) in [
        format!(
            "appservers:\n  {}: {{services: [apache]}}\n",
            "m".repeat(2 << 20)
        ),
        format!(
            "appservers:\n  mw1018: {{services: [{}]}}\n",
            "a".repeat(2 << 20)
        ),
        format!("{}: {{}}\n", "c".repeat(2 << 20)),
    ]
    .iter()
    .enumerate()
    {
        let e = load_pair(SERVICES, pools).expect_err("too long a name");
        let msg = e.to_string();
        let head: String = msg.chars().take(160).collect();
        assert!(msg.contains(POOLS_FILE), "{head}");
        if msg.len() >= 4096 {
            long.push(format!("case {i}: a {} byte message: {head}...", msg.len()));
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
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
