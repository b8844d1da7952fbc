//! The switch-over runbook (`docs/switch-over.md`, "The switch-over, step by step"), run as
//! written against the production-shaped installation (`production.rs`): every `sh` block
//! of the section in order, with the site settings replaced by the installation's; each must
//! exit as its last line says (`# exit N`, else 0) and print every line of the `text` block
//! after it. The step run with the Python tool (its first line says so) is replaced by what
//! that tool printed when its recording was made (`reference/get-TYPE.txt`), which is what
//! it saves. Then the end state is checked independently of the runbook's words.

use std::path::Path;
use std::process::Command;

use regex::Regex;

use crate::production::{site_settings, Install, TYPES};
use crate::util::*;

const RUNBOOK: &str = "docs/switch-over.md";
const SECTION: &str = "### The switch-over, step by step";

/// One fenced block of the section: its info string and its lines.
#[derive(Debug)]
struct Block {
    info: String,
    body: String,
}

/// The fenced blocks of the runbook's switch-over section, in order.
fn blocks(text: &str) -> Vec<Block> {
    let start = text.find(SECTION).expect("the runbook has its section");
    let section = &text[start + SECTION.len()..];
    let section = section
        .find("\n### ")
        .map_or(section, |end| &section[..end]);
    let mut out = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l.get(indent..).unwrap_or(l.trim_start()));
            body.push('\n');
        }
        out.push(Block {
            info: info.trim().to_string(),
            body,
        });
    }
    out
}

/// The site settings block: `NAME=value  # comment` lines. Its (name, value) pairs.
fn settings(block: &Block) -> Option<Vec<(String, String)>> {
    let re = Regex::new(r#"^([A-Z0-9_]+)=("[^"]*"|\S+)\s*(#.*)?$"#).expect("regex");
    let mut out = Vec::new();
    for l in block.body.lines().filter(|l| !l.trim().is_empty()) {
        let c = re.captures(l)?;
        out.push((c[1].to_string(), c[2].trim_matches('"').to_string()));
    }
    (!out.is_empty()).then_some(out)
}

/// The exit code a block's last line announces (`# exit N`), else 0.
fn expected_exit(body: &str) -> i32 {
    let last = body
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.rsplit_once("# exit ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A line of a `text` block as a regex over one output line: `<n>` a number, `<...>` any
/// text, the runbook's site values replaced by the installation's.
fn line_pattern(line: &str, values: &[(String, String)]) -> Regex {
    let mut line = line.trim().to_string();
    for (theirs, ours) in values {
        line = line.replace(theirs.as_str(), ours);
    }
    let escaped = regex::escape(&line)
        .replace("<n>", r"\d+")
        .replace(r"<\.\.\.>", ".*");
    Regex::new(&format!("^{escaped}$")).expect("pattern")
}

#[test]
fn the_runbook_as_written_switches_a_production_shaped_installation() {
    let install = Install::new();
    let live = install.write_v2_state();
    let saved = install.ctx.path("switch-over");
    let ours = site_settings(&install, &saved);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(RUNBOOK),
    )
    .expect("runbook");
    let blocks = blocks(&text);
    let theirs = blocks
        .iter()
        .find_map(settings)
        .expect("a site settings block");
    let names: Vec<&str> = theirs.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = ours.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, want,
        "the runbook's site settings are the ones this test sets"
    );
    // The runbook's example values, longest first, become ours in the lines it shows.
    let mut values: Vec<(String, String)> = theirs
        .iter()
        .zip(&ours)
        .filter(|((_, v), _)| !v.is_empty())
        .map(|((_, v), (_, o))| (v.clone(), o.clone()))
        .collect();
    values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    let prelude: String = ours.iter().map(|(n, v)| format!("{n}='{v}'\n")).collect();
    let bin_dir = bin("confctl").parent().expect("bin dir").to_path_buf();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());

    let mut ran = Vec::new();
    let mut last: Option<(String, Run)> = None;
    for block in &blocks {
        match block.info.as_str() {
            "sh" if settings(block).is_some() => {}
            "sh" if block.body.starts_with("# with the Python tool") => {
                // What the Python tool printed for each type, as the block saves it.
                std::fs::create_dir_all(&saved).expect("mkdir");
                for t in TYPES {
                    let recorded = Install::reference(&format!("get-{t}.txt"));
                    std::fs::write(saved.join(format!("{t}.python")), recorded).expect("save");
                }
                ran.push("(the Python tool's step: its recorded output)".to_string());
            }
            "sh" => {
                let mut c = Command::new("bash");
                install.env(&mut c);
                c.env("PATH", &path)
                    .current_dir(install.ctx.dir.path())
                    .arg("-c")
                    .arg(format!("set -eo pipefail\n{prelude}{}", block.body));
                let run = Run::from(c.output().expect("bash"));
                let code = expected_exit(&block.body);
                assert_eq!(
                    run.code, code,
                    "runbook block exits {} (the runbook says {code}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
                    run.code, block.body, run.stdout, run.stderr
                );
                ran.push(block.body.clone());
                last = Some((block.body.clone(), run));
            }
            "text" => {
                let (body, run) = last.as_ref().expect("a text block follows a command");
                let out: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).collect();
                for want in block.body.lines().filter(|l| !l.trim().is_empty()) {
                    let re = line_pattern(want, &values);
                    assert!(
                        out.iter().any(|l| re.is_match(l.trim())),
                        "the runbook says\n  {want}\nafter\n{body}\nbut it printed\n--- stdout\n{}\n--- stderr\n{}",
                        run.stdout,
                        run.stderr
                    );
                }
            }
            other => panic!("a block of kind {other:?} in the runbook's steps"),
        }
    }
    assert!(ran.len() >= 6, "the runbook's commands ran: {ran:#?}");

    // The end state, independently: v3 holds v2's bytes, the sync record, and nothing else;
    // every type reads as the Python tool showed it.
    let mut v3 = install.ctx.dump_prefix("/conftool/");
    let record = v3
        .remove("/conftool/v1/meta/sync")
        .expect("the sync record");
    assert_eq!(
        record,
        r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#
    );
    assert_keyspace(&v3, &live);
    for t in TYPES {
        let (ours, python) = (
            install.get_all(t),
            Install::reference(&format!("get-{t}.txt")),
        );
        assert_eq!(
            same_lines(&ours, &python),
            Ok(()),
            "confctl --object-type {t} select 'name=.*' get"
        );
    }
}

/// Whether our `get` lines are the Python tool's, byte for byte, except that an object
/// stored as `{}` is `NAME not found` there (it takes an empty value for a missing key) and
/// `{"NAME": {}, "tags": "..."}` here.
fn same_lines(ours: &str, python: &str) -> Result<(), String> {
    let empty = Regex::new(r#"^\{"([^"]+)": \{\}, "tags": "[^"]*"\}$"#).expect("regex");
    let mut ours_empty: Vec<&str> = Vec::new();
    let mut ours_rest: Vec<&str> = Vec::new();
    for l in ours.lines() {
        match empty.captures(l) {
            Some(c) => ours_empty.push(c.get(1).map_or("", |m| m.as_str())),
            None => ours_rest.push(l),
        }
    }
    let mut py_missing: Vec<&str> = Vec::new();
    let mut py_rest: Vec<&str> = Vec::new();
    for l in python.lines() {
        match l.strip_suffix(" not found") {
            Some(name) => py_missing.push(name),
            None => py_rest.push(l),
        }
    }
    ours_empty.sort_unstable();
    py_missing.sort_unstable();
    if ours_rest != py_rest {
        let first = ours_rest
            .iter()
            .zip(&py_rest)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("ours   {a}\npython {b}"))
            .unwrap_or_else(|| format!("{} lines here, {} there", ours_rest.len(), py_rest.len()));
        return Err(first);
    }
    if ours_empty != py_missing {
        return Err(format!(
            "empty objects {ours_empty:?}, Python's not found {py_missing:?}"
        ));
    }
    Ok(())
}
