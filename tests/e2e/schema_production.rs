//! The production-shaped installation (`production.rs`) synced by our `conftool-sync` from
//! scratch, compared with what the Python tool's first sync wrote (`reference/
//! after-sync.txt`); and the errors a person editing its files meets, each naming the file,
//! the line and the real problem, with nothing written.

use serde_json::Value;

use crate::production::{Install, TYPES};
use crate::util::*;

/// A stored value as compact JSON: the Python tool's `", "` spacing aside, equal values in
/// the same key order give the same text. Pool objects are written `pooled`, `weight` here
/// and `weight`, `pooled` there (MIGRATING.md): their keys are sorted first.
fn ordered(key: &str, v: &str) -> String {
    let value: Value = serde_json::from_str(v).unwrap_or_else(|e| panic!("{v}: {e}"));
    if key.starts_with("/conftool/v1/pools/") {
        if let Value::Object(m) = &value {
            let mut m = m.clone();
            m.sort_keys();
            return Value::Object(m).to_string();
        }
    }
    value.to_string()
}

fn sync(i: &Install, args: &[&str]) -> Run {
    let mut c = i.cmd("conftool-sync");
    c.arg("--schema")
        .arg(&i.schema)
        .arg("--directory")
        .arg(&i.data)
        .args(args);
    Run::from(c.output().expect("conftool-sync"))
}

#[test]
fn a_first_sync_writes_what_the_python_tools_first_sync_wrote() {
    let i = Install::new();
    let run = sync(&i, &[]).expect_code(0);
    // The schema is read without a word about it; the new objects its rules refuse (the
    // ReadOnly values, null by default) are named, and created all the same, as by Python.
    let warned: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| {
            l.contains(": warning: ") && !l.contains("tcpircbot") && !l.contains("suppress_san")
        })
        .collect();
    assert_eq!(warned.len(), 2, "{}", run.stderr);
    for w in &warned {
        assert!(
            w.contains("mwconfig ")
                && w.contains("/ReadOnly: rule db-read-only")
                && w.contains("created with its fields' defaults"),
            "{w}"
        );
    }
    let mut ours = i.ctx.dump_prefix("/conftool/");
    assert_eq!(
        ours.remove("/conftool/v1/meta/sync").as_deref(),
        Some(r#"{"datacenters":["codfw","eqiad"],"git_rev":null}"#)
    );
    let python = read_keyspace(&crate::production::fixture().join("reference/after-sync.txt"));
    assert_eq!(ours.len(), python.len());
    let differ: Vec<String> = python
        .iter()
        .filter(|(k, v)| ours.get(*k).map(|o| ordered(k, o)) != Some(ordered(k, v)))
        .map(|(k, v)| format!("{k}: python {v}, ours {:?}", ours.get(k)))
        .take(10)
        .collect();
    assert!(differ.is_empty(), "{differ:#?}");
    // A second run writes nothing.
    let before = i.ctx.revision();
    let again = sync(&i, &[]).expect_code(0);
    assert!(again.stderr.contains("Nothing to do"), "{}", again.stderr);
    assert_eq!(i.ctx.revision(), before);
    assert_eq!(TYPES.len(), 8);
}

/// Write `text` over the installation's file `rel` (under its root).
fn overwrite(i: &Install, rel: &str, text: &str) {
    std::fs::write(i.ctx.path(rel), text).expect("write");
}

#[test]
fn errors_in_its_files_name_the_file_line_and_real_problem_and_write_nothing() {
    let i = Install::new();
    sync(&i, &[]).expect_code(0);
    let before = i.ctx.state();
    let node = "srv/conftool-data/node/eqiad.yaml";
    let original_node = std::fs::read_to_string(i.ctx.path(node)).expect("node file");
    let edited = |from: &str, to: &str| {
        assert!(original_node.contains(from), "{from}");
        original_node.replacen(from, to, 1)
    };
    let instance = "etc/conftool/json-schema/dbconfig-instance/instance.schema";
    let original_instance = std::fs::read_to_string(i.ctx.path(instance)).expect("rule file");
    let schema = "etc/conftool/schema.yaml";
    let original_schema = std::fs::read_to_string(&i.schema).expect("schema");
    let cases: Vec<(&str, String, &str, String)> = vec![
        // An unclosed flow list swallows the next line: named, at the '[' to close.
        (
            node,
            edited(
                "mw1301.eqiad.wmnet: [apache2, nginx]",
                "mw1301.eqiad.wmnet: [apache2, nginx",
            ),
            "node/eqiad.yaml:5:25: ",
            "the list opened with '[' here is not closed: ',' or ']' expected before line 6, column 23".into(),
        ),
        // A tab, named as one.
        (
            node,
            edited("    mw1302.eqiad.wmnet", "\tmw1302.eqiad.wmnet"),
            "node/eqiad.yaml:6:1: ",
            "a tab character: YAML indents with spaces only".into(),
        ),
        // A JSON Schema file that is not a valid draft-04 schema: its own line.
        (
            instance,
            original_instance.replacen(
                r#""port": { "type": "integer""#,
                r#""port": { "type": "int""#,
                1,
            ),
            "dbconfig-instance/instance.schema:33:23: ",
            "object type dbconfig-instance, rule catchall: not a valid draft-04 JSON Schema at /properties/port/type".into(),
        ),
        // A typed field without a type: what to add.
        (
            schema,
            original_schema.replacen(
                "    ttl:\n      type: \"int\"\n      default: 300\n",
                "    ttl:\n      default: 300\n",
                1,
            ),
            "schema.yaml:15:5: ",
            "object type discovery, field ttl: has no type: give it one".into(),
        ),
    ];
    for (rel, text, place, says) in cases {
        let original = std::fs::read_to_string(i.ctx.path(rel)).expect("original");
        assert_ne!(text, original, "{rel}: the case changes the file");
        overwrite(&i, rel, &text);
        let run = sync(&i, &[]).expect_code(2);
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(": error: "))
            .unwrap_or_else(|| panic!("no error line: {}", run.stderr));
        assert!(
            line.contains(place) && line.contains(&says),
            "{rel}:\n{line}\nshould say {place}{says}"
        );
        assert_eq!(i.ctx.state(), before, "{rel}: nothing written");
        overwrite(&i, rel, &original);
    }
}

#[test]
fn confctl_sets_fields_declared_with_only_a_default() {
    let i = Install::new();
    sync(&i, &["--quiet"]).expect_code(0);
    let confctl = |args: &[&str]| {
        let mut c = i.cmd("confctl");
        c.arg("--schema").arg(&i.schema).args(args);
        Run::from(c.output().expect("confctl"))
    };
    let key = "/conftool/v1/dbconfig-section/eqiad/s2";
    // Read as their defaults' kinds: an integer and a boolean, which the rule wants.
    let run = confctl(&[
        "--object-type",
        "dbconfig-section",
        "select",
        "datacenter=eqiad,name=s2",
        "set/min_replicas=3:readonly=true:master=db1102",
    ])
    .expect_code(0);
    assert_eq!(
        run.stdout,
        "eqiad/s2: min_replicas changed 0 => 3\neqiad/s2: readonly changed False => True\n\
         eqiad/s2: master changed PLACEHOLDER => db1102\n"
    );
    assert_eq!(
        i.ctx.dump_prefix(key)[key],
        r#"{"master":"db1102","min_replicas":3,"readonly":true,"reason":"PLACEHOLDER","flavor":"regular","omit_replicas_in_mwconfig":false}"#
    );
    // The rule (draft-04, relative id) judges the whole object: nothing written.
    let before = i.ctx.state();
    let run = confctl(&[
        "--object-type",
        "dbconfig-section",
        "select",
        "datacenter=eqiad,name=s2",
        "set/master=db1",
    ])
    .expect_code(2);
    assert!(
        run.stderr.contains("dbconfig-section eqiad/s2: rule catchall (")
            && run.stderr.contains(
                "at '/master': 'db1' does not match pattern '^(PLACEHOLDER|db[0-9]{4}(:[0-9]+)?)$'; \
                 nothing written"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(i.ctx.state(), before);
    // A dict comes from a file, its keys kept in the order written.
    let file = i.ctx.write(
        "instance.yaml",
        "sections:\n  s2: {weight: 5, pooled: true, percentage: 50}\n",
    );
    let at = format!("set/@{}", file.display());
    confctl(&[
        "--object-type",
        "dbconfig-instance",
        "select",
        "datacenter=eqiad,name=db1101",
        &at,
    ])
    .expect_code(0);
    let get = confctl(&[
        "--object-type",
        "dbconfig-instance",
        "select",
        "datacenter=eqiad,name=db1101",
        "get",
    ])
    .expect_code(0);
    assert_eq!(
        get.stdout,
        "{\"db1101\": {\"host_ip\": \"0.0.0.0\", \"port\": 3306, \"sections\": {\"s2\": {\"weight\": 5, \
         \"pooled\": true, \"percentage\": 50}}, \"note\": \"\"}, \"tags\": \"datacenter=eqiad\"}\n"
    );
}
