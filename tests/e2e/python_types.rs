//! The schema-type steps of the Python tool's recorded session (`tests/fixtures/python/
//! reference`, steps 042 to the end: every field type from the command line and from
//! `set/@FILE`, json_schema rules, free_form, a type without tags, values the Python tool did
//! not write, tags mode, upgrade-schema), each replayed with our confctl from the keyspace the Python tool had just
//! before it (its bytes, as `conftool-migrate` copies them). Every step of the session has an
//! expectation here: the Python tool's stdout and resulting keyspace, or, where MIGRATING.md
//! says we differ on purpose, ours, with the reason.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Stdio;

use serde_json::Value;

use crate::util::*;

/// What stdout must be.
#[derive(Debug, Clone, Copy)]
enum Out {
    /// The Python tool's, byte for byte.
    Same,
    /// The Python tool's lines, in any order (v2 lists directories unsorted), each compared
    /// as JSON.
    SameJson,
    /// The Python tool's change lines, in any order (its question is on stdout, ours on
    /// stderr).
    ChangeLines,
    /// Ours, where we differ on purpose.
    Ours(&'static str),
    /// `tags ... get all`: one JSON document, name -> stored value, of the objects under
    /// this prefix (Python 6.1.0 crashes there; older versions printed this).
    All(&'static str),
}

/// What the keyspace must be after the step.
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// The Python tool's after the step.
    Python,
    /// As before the step: we refuse what the Python tool wrote (strict values).
    Unchanged,
    /// As before, with this key set to this value: we accept what the Python tool refused.
    Ours(&'static str, &'static str),
}

/// `(step, exit code, stdout, keyspace)`: every confctl step from 042 on.
#[rustfmt::skip]
const EXPECT: &[(u32, i32, Out, Keys)] = &[
    // Each field type from the command line: the Python tool's lines and values.
    (42, 0, Out::Same, Keys::Python),
    (43, 0, Out::Same, Keys::Python),
    (44, 0, Out::Same, Keys::Python),
    (45, 0, Out::Same, Keys::Python),
    (46, 0, Out::Same, Keys::Python),
    (47, 0, Out::Same, Keys::Python),
    (48, 0, Out::Same, Keys::Python),
    (49, 0, Out::Same, Keys::Python),
    (50, 0, Out::Same, Keys::Python),
    // Bad values, unparsable set instructions, unknown fields and actions: exit 2 here,
    // 1 there; nothing written either way.
    (51, 2, Out::Same, Keys::Python),
    (52, 2, Out::Same, Keys::Python),
    (53, 2, Out::Same, Keys::Python),
    (54, 2, Out::Same, Keys::Python),
    // A cidr_list from the command line is comma-separated here (always refused there).
    (55, 0, Out::Ours("eqiad/cache_text/w1: networks changed ['10.0.0.0/8'] => ['10.1.0.0/16']\n"),
        Keys::Ours("/conftool/v1/widgets/eqiad/cache_text/w1",
            r#"{"label":"with space","count":5,"enabled":false,"items":[""],"meta":{},"mode":"b","networks":["10.1.0.0/16"],"extra":"hello"}"#)),
    (56, 2, Out::Same, Keys::Python),
    (57, 2, Out::Same, Keys::Python),
    (58, 2, Out::Same, Keys::Python),
    (59, 2, Out::Same, Keys::Python),
    // A file with an invalid cidr_list entry is refused (Python drops the entry, warns).
    (60, 2, Out::Ours(""), Keys::Unchanged),
    (61, 0, Out::Same, Keys::Python),
    (62, 2, Out::Same, Keys::Python),
    (63, 2, Out::Same, Keys::Python),
    (64, 2, Out::Ours(""), Keys::Unchanged),
    // A YAML date is a string here (PyYAML makes it a date, which JSON cannot hold).
    (65, 0, Out::Ours("eqiad/cache_text/w2: extra changed {'nested': [1, 2, {'deep': True}], 'n': None} => 2024-01-01\n"),
        Keys::Ours("/conftool/v1/widgets/eqiad/cache_text/w2",
            r#"{"label":"from a file","count":7,"enabled":true,"items":["one","two"],"meta":{"owner":"alice","level":3},"mode":"c","networks":[],"extra":"2024-01-01"}"#)),
    (66, 2, Out::Same, Keys::Python),
    (67, 2, Out::Same, Keys::Python),
    (68, 2, Out::Same, Keys::Python),
    // No coercion: a string for a list, 42 for a string, 3.7 for an int are refused
    // (Python stores [], "42", 3).
    (69, 2, Out::Ours(""), Keys::Unchanged),
    (70, 2, Out::Same, Keys::Python),
    (71, 2, Out::Ours(""), Keys::Unchanged),
    (72, 2, Out::Ours(""), Keys::Unchanged),
    (73, 2, Out::Same, Keys::Python),
    (74, 0, Out::Same, Keys::Python),
    (75, 0, Out::SameJson, Keys::Python),
    (76, 0, Out::ChangeLines, Keys::Python),
    // Our delete line names the object's path (Python: `Deleted ('Widget',) w4.`).
    (77, 0, Out::Ours("codfw/appservers/w4: deleted\n"), Keys::Python),
    (78, 0, Out::Same, Keys::Python),
    // Tags mode: `get all` prints the pool's objects (Python 6.1.0 crashes).
    (79, 0, Out::All("/conftool/v1/widgets/eqiad/cache_text/"), Keys::Python),
    (80, 0, Out::Same, Keys::Python),
    // A type without tags can be set here (Python 6.1.0 crashes).
    (81, 0, Out::Same, Keys::Python),
    (82, 0, Out::Ours("eqiad: priority changed 10 => 1\neqiad: description changed  => primary\n"),
        Keys::Ours("/conftool/v1/sites/eqiad", r#"{"description":"primary","priority":1}"#)),
    (83, 0, Out::SameJson, Keys::Python),
    // TAGS '' addresses a type without tags (Python: `Invalid tag list`).
    (84, 0, Out::All("/conftool/v1/sites/"), Keys::Python),
    // The `svc` type maps onto `services`, the service definitions, which only the sync
    // writes here (issue 16): our copy of the schema leaves it out (schema.rs,
    // python_schema_ours), so these name an unknown type; nothing written.
    (85, 2, Out::Ours(""), Keys::Unchanged),
    (86, 2, Out::Ours(""), Keys::Unchanged),
    (87, 2, Out::Ours(""), Keys::Unchanged),
    // json_schema rules, checked on the whole resulting object.
    (88, 0, Out::Same, Keys::Python),
    (89, 0, Out::Same, Keys::Python),
    (90, 2, Out::Same, Keys::Python),
    (91, 2, Out::Same, Keys::Python),
    // `replicas=3` is the declared int here, already stored: nothing to do (Python: the
    // string "3", refused by its rule).
    (92, 0, Out::Ours(""), Keys::Python),
    (93, 0, Out::Same, Keys::Python),
    (94, 2, Out::Same, Keys::Python),
    (95, 2, Out::Same, Keys::Python),
    (96, 0, Out::SameJson, Keys::Python),
    // upgrade-schema: the dry run lists the invalid object; without --force nothing is
    // written (exit 2 here, 1 there).
    (97, 0, Out::Same, Keys::Python),
    (98, 2, Out::Same, Keys::Python),
    // free_form: stored extra fields are kept and shown; setting them is refused (Python
    // crashes).
    (99, 0, Out::Same, Keys::Python),
    (100, 0, Out::Same, Keys::Python),
    (102, 0, Out::Same, Keys::Python),
    (103, 0, Out::Same, Keys::Python),
    (104, 2, Out::Same, Keys::Python),
    (105, 2, Out::Same, Keys::Python),
    (106, 2, Out::Same, Keys::Python),
    (107, 0, Out::Same, Keys::Python),
    // Values the Python tool did not write: shown as stored, never reset to defaults; a
    // set on such an object names the invalid field and writes nothing.
    (109, 0, Out::Ours("{\"w3\": {\"label\": 5, \"count\": \"7\", \"enabled\": \"yes\", \"items\": [], \"meta\": {}, \"mode\": \"z\", \"networks\": [\"10.0.0.0/8\", \"bogus\"], \"extra\": null}, \"tags\": \"dc=eqiad,cluster=appservers\"}\n"), Keys::Python),
    (110, 2, Out::Ours(""), Keys::Unchanged),
    // A node value without a weight, or not JSON: a warning naming the key, no line (Python
    // crashes on get); a set is refused (Python fills the weight in).
    (112, 0, Out::Ours(""), Keys::Python),
    (113, 1, Out::Ours(""), Keys::Unchanged),
    (115, 0, Out::Ours(""), Keys::Python),
    (116, 1, Out::Same, Keys::Python),
    (117, 1, Out::Same, Keys::Python),
    (119, 2, Out::Same, Keys::Python),
    // `edit` (an editor) is not provided.
    (120, 2, Out::Same, Keys::Python),
];

fn reference() -> std::path::PathBuf {
    fixtures().join("python/reference")
}

/// The Python tool's keyspace just before step `n`: the dump of the latest step before it.
fn python_before(n: u32) -> Keyspace {
    for m in (1..n).rev() {
        for kind in ["after-confctl", "after-put"] {
            let p = reference().join(format!("{kind}-{m:03}.txt"));
            if p.exists() {
                return read_keyspace(&p);
            }
        }
    }
    read_keyspace(&reference().join("after-sync.txt"))
}

/// A keyspace with values parsed (ours is compact JSON, Python's is not); our sync record
/// left out.
fn parsed(ks: &Keyspace) -> BTreeMap<String, Value> {
    ks.iter()
        .filter(|(k, _)| !k.ends_with("/meta/sync"))
        .map(|(k, v)| {
            let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
            (k.clone(), v)
        })
        .collect()
}

/// Make the keyspace `to`, writing only what differs.
fn reset(ctx: &Ctx, to: &Keyspace) {
    let now = ctx.dump();
    for k in now.keys().filter(|k| !to.contains_key(*k)) {
        ctx.delete(k);
    }
    for (k, v) in to.iter().filter(|(k, v)| now.get(*k) != Some(*v)) {
        ctx.put(k, v);
    }
}

/// The words of a recorded command line (single and double quotes, as the script wrote it).
fn words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, ' ') if any => {
                out.push(std::mem::take(&mut cur));
                any = false;
            }
            (None, ' ') => {}
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (_, c) => (cur.push(c), any = true).0,
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// One recorded step: the command line, stdin, and the Python tool's stdout.
fn recorded(n: u32) -> (Vec<String>, &'static str, String) {
    let text = std::fs::read_to_string(reference().join(format!("confctl-{n:03}.txt")))
        .expect("reference step");
    let first = text.lines().next().expect("command line");
    let cmd = first
        .strip_prefix("# confctl --config CONFIG --schema schema.yaml ")
        .expect("a confctl step");
    let stdin = if text.contains("\n# stdin: y") {
        "y\n"
    } else {
        ""
    };
    let start = text.find("# stdout:\n").expect("stdout") + "# stdout:\n".len();
    let end = text.find("# stderr:\n").expect("stderr");
    let stdout = text[start..end].replace("# (no newline at end of stdout)\n", "");
    (words(cmd), stdin, stdout)
}

fn json_lines(s: &str) -> Vec<Value> {
    let mut v: Vec<Value> = s
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    v.sort_by_key(|v| v.to_string());
    v
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

#[test]
fn the_python_tools_schema_session_step_by_step() {
    let ctx = Ctx::new();
    let dir = ctx.path("py");
    copy_dir(&fixtures().join("python"), &dir);
    std::fs::write(dir.join("schema.yaml"), crate::schema::python_schema_ours()).expect("schema");
    let index = std::fs::read_to_string(reference().join("INDEX.txt")).expect("INDEX.txt");
    let steps: Vec<u32> = index
        .lines()
        .filter(|l| l[4..].starts_with("confctl "))
        .map(|l| l[..3].parse().expect("step number"))
        .filter(|n| *n >= 42)
        .collect();
    let expected: Vec<u32> = EXPECT.iter().map(|e| e.0).collect();
    let missing: Vec<&u32> = steps.iter().filter(|n| !expected.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "steps without an expectation: {missing:?}"
    );
    for &(n, code, out, keys) in EXPECT {
        let before = python_before(n);
        reset(&ctx, &before);
        let (args, stdin, python) = recorded(n);
        let mut cmd = ctx.cmd("confctl");
        cmd.current_dir(&dir)
            .args(["--namespace", "/conftool", "--schema", "schema.yaml"])
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("confctl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let run = Run::from(child.wait_with_output().expect("confctl"));
        assert_eq!(run.code, code, "step {n} {args:?}: {run:?}");
        match out {
            Out::Same => assert_eq!(run.stdout, python, "step {n}"),
            Out::SameJson => {
                assert_eq!(json_lines(&run.stdout), json_lines(&python), "step {n}")
            }
            Out::ChangeLines => {
                let changes: String = python
                    .lines()
                    .filter(|l| l.contains(" changed "))
                    .map(|l| format!("{}\n", l.trim_start_matches("confctl>")))
                    .collect();
                assert!(!changes.is_empty(), "step {n}: the reference changes");
                assert_eq!(
                    sorted_lines(&run.stdout),
                    sorted_lines(&changes),
                    "step {n}"
                );
                assert!(run.stderr.contains("Ok to continue? [y/N]"), "step {n}");
            }
            Out::Ours(text) => assert_eq!(run.stdout, text, "step {n}"),
            Out::All(prefix) => {
                let want: serde_json::Map<String, Value> = parsed(&before)
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v)))
                    .collect();
                assert!(!want.is_empty(), "step {n}: objects under {prefix}");
                let got: Value = serde_json::from_str(&run.stdout).expect("one JSON document");
                assert_eq!(got, Value::Object(want), "step {n}");
            }
        }
        if code == 2 {
            assert!(run.stderr.contains("nothing written"), "step {n}: {run:?}");
        }
        let want = match keys {
            Keys::Python => {
                let after = reference().join(format!("after-confctl-{n:03}.txt"));
                if after.exists() {
                    read_keyspace(&after)
                } else {
                    before
                }
            }
            Keys::Unchanged => before,
            Keys::Ours(key, value) => {
                let mut ks = before;
                ks.insert(key.to_string(), value.to_string());
                ks
            }
        };
        assert_eq!(
            parsed(&ctx.dump()),
            parsed(&want),
            "keyspace after step {n}"
        );
    }
}
