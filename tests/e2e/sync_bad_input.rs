//! Bad input to conftool-sync: every case exits 2, names the file (and the line, where the
//! mistake has one), and leaves etcd exactly as it was, revision included.
//!
//! One etcd for the whole corpus: it is first synced from the good example so that a
//! mistake which would delete or rewrite objects has something to destroy.

use std::path::{Path, PathBuf};

use crate::util::*;

/// One change to a copy of the example conf/.
enum Edit {
    /// Write these bytes to a file (relative to the data directory).
    Write(&'static str, Vec<u8>),
    /// Remove a file or directory.
    Remove(&'static str),
}

use Edit::*;

fn w(rel: &'static str, text: &str) -> Edit {
    Write(rel, text.as_bytes().to_vec())
}

/// Where the error must point.
enum At {
    /// `<dir>/<file>:<line>:`
    Line(&'static str, usize),
    /// `<dir>/<file>: ` (no line: the whole file is wrong).
    File(&'static str),
    /// `<dir>: ` (the directory itself).
    Dir,
}

struct Case {
    name: &'static str,
    edits: Vec<Edit>,
    at: At,
    /// A part of the message.
    says: &'static str,
}

const POOLS: &str = "eqiad/pools.yaml";
const SVC: &str = "services.yaml";

/// services.yaml with one service (cache_text/varnish-fe) whose body is `body`.
fn svc(body: &str) -> String {
    format!("cache_text:\n  varnish-fe:\n{body}")
}

fn billion_laughs() -> String {
    let mut s = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        s.push_str(&format!("{}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    s
}

fn cases() -> Vec<Case> {
    let case = |name, edits, at, says| Case {
        name,
        edits,
        at,
        says,
    };
    let deep = format!(
        "cache_text:\n  cp1052: {{services: {}{}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    vec![
        // YAML syntax.
        case("syntax: unclosed flow mapping", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]\n  cp1053: {services: [nginx]}\n")], At::Line(POOLS, 2), "the mapping opened with '{' here is not closed: ',' or '}' expected before line 3, column 3"),
        case("syntax: tab indentation", vec![w(POOLS, "cache_text:\n\tcp1052: {services: [nginx]}\n")], At::Line(POOLS, 2), "a tab character: YAML indents with spaces only"),
        case("syntax: bad indentation", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\n cp1053: {services: [nginx]}\n")], At::Line(POOLS, 3), "the indentation of this line matches no key above it"),
        case("syntax: missing colon", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\n  cp1053 {services: [nginx]}\n")], At::Line(POOLS, 3), "is a ': ' missing before the '{'?"),
        case("syntax: unterminated quote", vec![w(POOLS, "cache_text:\n  cp1052: {services: [\"nginx]}\n")], At::Line(POOLS, 2), "the quoted string opened here is not closed"),
        case("syntax: two documents", vec![w(POOLS, "cache_text: {}\n---\nappservers: {}\n")], At::File(POOLS), "more than one document"),
        case("syntax: control character", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\n\u{1}\n")], At::Line(POOLS, 3), "control characters are not allowed"),
        // Duplicate keys, at every level.
        case("duplicate cluster in pools", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\ncache_text:\n  cp1053: {services: [nginx]}\n")], At::Line(POOLS, 3), "duplicate key cache_text"),
        case("duplicate node", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\n  cp1053: {services: [nginx]}\n  cp1052: {services: [varnish-fe]}\n")], At::Line(POOLS, 4), "duplicate key cp1052"),
        case("duplicate services field", vec![w(POOLS, "cache_text:\n  cp1052:\n    services: [nginx]\n    services: [varnish-fe]\n")], At::Line(POOLS, 4), "duplicate key services"),
        case("service listed twice", vec![w(POOLS, "cache_text:\n  cp1052:\n    services:\n      - nginx\n      - varnish-fe\n      - nginx\n")], At::Line(POOLS, 6), "nginx is listed twice"),
        case("duplicate cluster in services", vec![w(SVC, "cache_text: {}\nappservers: {}\ncache_text: {}\n")], At::Line(SVC, 3), "duplicate key cache_text"),
        case("duplicate service definition", vec![w(SVC, &svc("    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n  varnish-fe:\n    port: 81\n    default_values: {pooled: \"no\", weight: 10}\n"))], At::Line(SVC, 5), "duplicate key varnish-fe"),
        case("duplicate port", vec![w(SVC, &svc("    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n    port: 81\n"))], At::Line(SVC, 5), "duplicate key port"),
        case("duplicate default weight", vec![w(SVC, &svc("    port: 80\n    default_values:\n      pooled: \"no\"\n      weight: 10\n      weight: 11\n"))], At::Line(SVC, 7), "duplicate key weight"),
        // Unknown fields.
        case("unknown node field", vec![w(POOLS, "cache_text:\n  cp1052:\n    services: [nginx]\n    rack: b4\n")], At::Line(POOLS, 4), "unknown field `rack`, expected `services`"),
        case("unknown service field", vec![w(SVC, &svc("    port: 80\n    user: x\n    default_values: {pooled: \"no\", weight: 10}\n"))], At::Line(SVC, 4), "unknown field `user`"),
        case("unknown default_values field", vec![w(SVC, &svc("    port: 80\n    default_values:\n      pooled: \"no\"\n      weight: 10\n      comment: x\n"))], At::Line(SVC, 7), "unknown field `comment`"),
        case("missing services field", vec![w(POOLS, "cache_text:\n  cp1052:\n")], At::Line(POOLS, 2), "missing field `services`"),
        case("missing default_values", vec![w(SVC, &svc("    port: 80\n"))], At::Line(SVC, 3), "missing field `default_values`"),
        // Wrong types.
        case("services is a string", vec![w(POOLS, "cache_text:\n  cp1052: {services: nginx}\n")], At::Line(POOLS, 2), "expected a list of names"),
        case("node is a bare list (Python shape)", vec![w(POOLS, "cache_text:\n  cp1052: [nginx]\n")], At::Line(POOLS, 2), "expected a node entry"),
        case("pools file is a list", vec![w(POOLS, "# a list\n- cache_text\n")], At::Line(POOLS, 2), "expected a mapping"),
        case("port is a string", vec![w(SVC, &svc("    port: http\n    default_values: {pooled: \"no\", weight: 10}\n"))], At::Line(SVC, 3), "invalid type: string \"http\""),
        // Unknown names.
        case("unknown service", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx, varnish-xx]}\n")], At::Line(POOLS, 2), "service varnish-xx is not defined for cluster cache_text"),
        case("service of another cluster", vec![w(POOLS, "appservers:\n  mw1018: {services: [apache]}\n  mw1019: {services: [apache, varnish-fe]}\n")], At::Line(POOLS, 3), "service varnish-fe is not defined for cluster appservers"),
        case("unknown cluster", vec![w(POOLS, "# typo below\ncache_txt:\n  cp1052: {services: [nginx]}\n")], At::Line(POOLS, 2), "cluster cache_txt is not defined"),
        // Names that are not path-safe.
        case("node name with /", vec![w(POOLS, "cache_text:\n  cp1052: {services: [nginx]}\n  cp/1053: {services: [nginx]}\n")], At::Line(POOLS, 3), "invalid node name \"cp/1053\""),
        case("node name ..", vec![w(POOLS, "cache_text:\n  ..: {services: [nginx]}\n")], At::Line(POOLS, 2), "invalid node name \"..\": is a relative path component"),
        case("node name with a space", vec![w(POOLS, "cache_text:\n  \"cp 1052\": {services: [nginx]}\n")], At::Line(POOLS, 2), "invalid node name \"cp 1052\""),
        case("node name too long", vec![w(POOLS, &format!("cache_text:\n  {}: {{services: [nginx]}}\n", "n".repeat(254)))], At::Line(POOLS, 2), "longer than 253"),
        case("empty node name", vec![w(POOLS, "cache_text:\n  \"\": {services: [nginx]}\n")], At::Line(POOLS, 2), "invalid node name \"\": is empty"),
        case("service name with /", vec![w(SVC, "cache_text:\n  varnish/fe:\n    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n")], At::Line(SVC, 2), "invalid service name \"varnish/fe\""),
        case("cluster name with a space", vec![w(SVC, "\"cache text\":\n  varnish-fe:\n    port: 80\n    default_values: {pooled: \"no\", weight: 10}\n")], At::Line(SVC, 1), "invalid cluster name \"cache text\""),
        case("datacenter directory name with a space", vec![w("bad dc/pools.yaml", "cache_text: {}\n")], At::File("bad dc/pools.yaml"), "invalid datacenter name \"bad dc\""),
        // Out-of-range values.
        case("weight -1", vec![w(SVC, &svc("    port: 80\n    default_values: {pooled: \"no\", weight: -1}\n"))], At::Line(SVC, 4), "weight -1 is out of range"),
        case("weight 70000", vec![w(SVC, &svc("    port: 80\n    default_values:\n      pooled: \"no\"\n      weight: 70000\n"))], At::Line(SVC, 6), "weight 70000 is out of range"),
        case("weight \"ten\"", vec![w(SVC, &svc("    port: 80\n    default_values:\n      weight: \"ten\"\n      pooled: \"no\"\n"))], At::Line(SVC, 5), "invalid type: string \"ten\""),
        case("weight 1.5", vec![w(SVC, &svc("    port: 80\n    default_values: {pooled: \"no\", weight: 1.5}\n"))], At::Line(SVC, 4), "floating point"),
        case("pooled: maybe", vec![w(SVC, &svc("    port: 80\n    default_values:\n      pooled: maybe\n      weight: 1\n"))], At::Line(SVC, 5), "invalid pooled value \"maybe\""),
        case("port 70000", vec![w(SVC, &svc("    default_values: {pooled: \"no\", weight: 10}\n    port: 70000\n"))], At::Line(SVC, 4), "70000"),
        case("port -1", vec![w(SVC, &svc("    port: -1\n    default_values: {pooled: \"no\", weight: 10}\n"))], At::Line(SVC, 3), "-1"),
        // Empty and unreadable files.
        case("empty pools file", vec![w(POOLS, "")], At::File(POOLS), "file is empty"),
        case("empty services file", vec![w(SVC, "\n\n")], At::File(SVC), "file is empty"),
        case("comment-only pools file", vec![w(POOLS, "# eqiad: nothing yet\n\n  # really\n")], At::File(POOLS), "file is empty"),
        case("services.yaml not UTF-8", vec![Write(SVC, b"cache_text:\n  varnish-fe:\xff\xfe\n".to_vec())], At::File(SVC), "not valid UTF-8"),
        case("pools.yaml in Latin-1", vec![Write(POOLS, b"cache_text:\n  cp1052: {services: [nginx]} # caf\xe9\n".to_vec())], At::File(POOLS), "not valid UTF-8"),
        // Hostile YAML: must fail fast, not hang or blow the stack.
        case("billion laughs", vec![w(SVC, &billion_laughs())], At::Line(SVC, 1), "a: invalid type: sequence, expected a mapping"),
        case("recursive alias", vec![w(POOLS, "cache_text:\n  cp1052: &a {services: [*a]}\n")], At::Line(POOLS, 2), "cache_text.cp1052.services[0]: invalid type: map, expected a name"),
        case("deep flow nesting", vec![w(POOLS, &deep)], At::Line(POOLS, 2), "nested deeper than 64 levels"),
        // Directory layout.
        case("missing services.yaml", vec![Remove(SVC)], At::Dir, "missing services.yaml"),
        case("both layouts at once", vec![w("node/eqiad.yaml", "eqiad:\n  cache_text:\n    cp1052: [nginx]\n")], At::Dir, "has both codfw/pools.yaml (conftool-rs layout) and node/eqiad.yaml"),
        case("legacy file whose key is another dc", vec![Remove("eqiad"), Remove("codfw"), w("node/eqiad.yaml", "# eqiad nodes\ncodfw:\n  cache_text:\n    cp1052: [nginx]\n")], At::Line("node/eqiad.yaml", 2), "datacenter codfw in a file named for eqiad"),
        case("legacy file with a second dc", vec![Remove("eqiad"), Remove("codfw"), w("node/eqiad.yaml", "eqiad:\n  cache_text:\n    cp1052: [nginx]\ncodfw: {}\n")], At::Line("node/eqiad.yaml", 4), "datacenter codfw in a file named for eqiad"),
        case("legacy file in the conftool-rs shape", vec![Remove("eqiad"), Remove("codfw"), w("node/eqiad.yaml", "eqiad:\n  cache_text:\n    cp1052: {services: [nginx]}\n")], At::Line("node/eqiad.yaml", 3), "expected a list of names"),
        case("legacy unknown service", vec![Remove("eqiad"), Remove("codfw"), w("node/eqiad.yaml", "eqiad:\n  cache_text:\n    cp1052:\n      - nginx\n      - squid\n")], At::Line("node/eqiad.yaml", 5), "service squid is not defined"),
    ]
}

/// Apply a case's edits to a fresh copy of the example under `root/<n>`.
fn prepare(root: &Path, n: usize, edits: &[Edit]) -> PathBuf {
    let dir = root.join(format!("case{n:02}"));
    copy_dir(&example_conf(), &dir);
    for e in edits {
        match e {
            Write(rel, bytes) => {
                let p = dir.join(rel);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(p, bytes).expect("write");
            }
            Remove(rel) => {
                let p = dir.join(rel);
                if p.is_dir() {
                    std::fs::remove_dir_all(p).expect("rm -r");
                } else {
                    std::fs::remove_file(p).expect("rm");
                }
            }
        }
    }
    dir
}

/// Run one bad sync and describe what is wrong with its outcome (empty: nothing).
fn check(ctx: &Ctx, before: &(Keyspace, i64), dir: &Path, at: &At, says: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let started = std::time::Instant::now();
    let run = ctx.sync(dir, &[]);
    let took = started.elapsed();
    if run.code != 2 {
        wrong.push(format!("exit {} instead of 2", run.code));
    }
    let want = match at {
        At::Line(f, line) => format!("{}:{line}:", dir.join(f).display()),
        At::File(f) => format!("{}: ", dir.join(f).display()),
        At::Dir => format!("{}: ", dir.display()),
    };
    if !run.stderr.contains(&want) {
        wrong.push(format!("stderr lacks {want:?}"));
    }
    if !run.stderr.contains(says) {
        wrong.push(format!("stderr lacks {says:?}"));
    }
    if took > std::time::Duration::from_secs(5) {
        wrong.push(format!("took {took:?}"));
    }
    if &ctx.state() != before {
        wrong.push("etcd changed".into());
    }
    if !wrong.is_empty() {
        wrong.push(format!("stderr: {}", run.stderr.trim_end()));
    }
    wrong
}

#[test]
fn bad_input_exits_2_names_the_place_and_writes_nothing() {
    let ctx = Ctx::new();
    let good = ctx.copy_example("good");
    ctx.sync(&good, &[]).expect_code(0);
    // Dynamic state a mistake must not lose.
    ctx.put(
        "/v1/pools/eqiad/appservers/apache/mw1018",
        r#"{"pooled":"no","weight":3}"#,
    );
    let before = ctx.state();
    assert_eq!(before.0.len(), 90);

    let root = ctx.path("bad");
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let dir = prepare(&root, n, &c.edits);
        for wrong in check(&ctx, &before, &dir, &c.at, c.says) {
            failures.push(format!("[{}] {wrong}", c.name));
        }
    }

    // Directories that are not there, or not directories.
    let missing = ctx.path("no/such/dir");
    let wrong = check(
        &ctx,
        &before,
        &missing,
        &At::Dir,
        "No such file or directory",
    );
    failures.extend(
        wrong
            .into_iter()
            .map(|w| format!("[missing directory] {w}")),
    );
    let run = ctx.sync(&missing, &[]);
    if run.stderr.matches("No such file or directory").count() != 1 {
        failures.push(format!(
            "[missing directory] cause not shown once: {}",
            run.stderr
        ));
    }
    let file = ctx.write("a-file", "cache_text: {}\n");
    let wrong = check(&ctx, &before, &file, &At::Dir, "not a directory");
    failures.extend(wrong.into_iter().map(|w| format!("[not a directory] {w}")));

    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
