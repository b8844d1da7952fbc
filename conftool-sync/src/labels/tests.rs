#![allow(clippy::unwrap_used)]

use super::*;
use crate::layout::{classify, EntryKind, Listing};
use crate::load::load;
use crate::plan::{plan, Current};
use crate::Limits;
use conftool_core::{Kv, Snapshot};

const SERVICES: &str = "cache_text:\n  nginx:\n    port: 443\n    default_values: {pooled: \"no\", weight: 10}\nappservers:\n  apache:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 1}\n";

fn files(extra: &[(&str, &str)]) -> Files {
    let mut v = vec![("services.yaml".to_string(), SERVICES.to_string())];
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    Files::in_memory("conf", v)
}

/// The desired labels as `dc/node labels` lines.
fn shown_labels(m: &LabelMap) -> Vec<String> {
    m.iter()
        .map(|((dc, n), l)| format!("{dc}/{n} {l}"))
        .collect()
}

/// The error's text (`file:line:column: message` for YAML).
fn err(f: &Files) -> String {
    load(f).unwrap_err().to_string()
}

#[test]
fn pools_entries_carry_labels_and_the_objects_stay_the_same() {
    let with = files(&[(
        "eqiad/pools.yaml",
        "cache_text:\n  cp1052: {services: [nginx], labels: {rack: B4, row: B}}\n  cp1053:\n    labels:\n      rack: B5\n      row: B\n    services: [nginx]\nappservers:\n  cp1052: {services: [apache], labels: {row: B, rack: B4}}\n  mw1018: {services: [apache]}\n  mw1019: {services: [apache], labels: {}}\n  mw1020: {services: [], labels: {row: 3, unit: 03, pdu: 1.10, spare: true}}\n",
    )]);
    let d = load(&with).unwrap();
    assert_eq!(
        shown_labels(&d.labels),
        [
            "eqiad/cp1052 rack=B4,row=B",
            "eqiad/cp1053 rack=B5,row=B",
            // Numbers and booleans are their text as written.
            "eqiad/mw1020 pdu=1.10,row=3,spare=true,unit=03",
        ]
    );
    let without = files(&[(
        "eqiad/pools.yaml",
        "cache_text:\n  cp1052: {services: [nginx]}\n  cp1053: {services: [nginx]}\nappservers:\n  cp1052: {services: [apache]}\n  mw1018: {services: [apache]}\n  mw1019: {services: [apache]}\n  mw1020: {services: []}\n",
    )]);
    let plain = load(&without).unwrap();
    assert!(plain.labels.is_empty());
    assert_eq!(d.objects, plain.objects);
    assert_eq!(d.services, plain.services);
}

#[test]
fn bad_labels_in_pools_name_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    lables: {rack: B4}\n",
            "conf/eqiad/pools.yaml:4:5: appservers.mw1018: unknown field `lables`, expected `services` or `labels`",
        ),
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    labels:\n      Rack: B4\n",
            "conf/eqiad/pools.yaml:5:7: appservers.mw1018.labels: invalid label name \"Rack\": may only contain lowercase letters, digits, '.', '_' and '-'",
        ),
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    labels:\n      rack: B 4\n",
            "conf/eqiad/pools.yaml:5:13: appservers.mw1018.labels.rack: invalid label value \"B 4\": may only contain letters, digits, '.', '_' and '-'",
        ),
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    labels:\n      rack:\n",
            "conf/eqiad/pools.yaml:5:7: appservers.mw1018.labels: a label needs a value (to remove a label, remove its line)",
        ),
        (
            "appservers:\n  mw1018: {services: [apache], labels: {rack: ~}}\n",
            "a label needs a value",
        ),
        (
            "appservers:\n  mw1018: {services: [apache], labels: {rack: [B4]}}\n",
            "conf/eqiad/pools.yaml:2:47: appservers.mw1018.labels.rack: invalid type: sequence, expected a label value",
        ),
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    labels:\n      rack: B4\n      rack: B5\n",
            "conf/eqiad/pools.yaml:6:7: appservers.mw1018.labels: duplicate key rack",
        ),
        (
            "appservers:\n  mw1018:\n    services: [apache]\n    labels: {rack: B4}\n    labels: {rack: B4}\n",
            "conf/eqiad/pools.yaml:5:5: appservers.mw1018: duplicate key labels",
        ),
        (
            "appservers:\n  mw1018: {services: [apache], labels: [rack, B4]}\n",
            "conf/eqiad/pools.yaml:2:40: appservers.mw1018.labels: invalid type: sequence, expected a mapping of label names to values, e.g. {rack: B4, row: B}",
        ),
        (
            "appservers:\n  mw1018: {labels: {rack: B4}}\n",
            "conf/eqiad/pools.yaml:2:11: appservers.mw1018: missing field `services`",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = err(&files(&[("eqiad/pools.yaml", text)]));
        if !got.contains(want) {
            failures.push(format!("{text:?}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_node_with_other_labels_in_another_cluster_names_both_places() {
    let text = "cache_text:\n  cp1052: {services: [nginx], labels: {rack: B4, row: B}}\n  cp1053: {services: [nginx], labels: {rack: B4}}\nappservers:\n  cp1053: {services: [apache], labels: {rack: B4}}\n  cp1052:\n    services: [apache]\n    labels: {rack: B5, row: B}\n";
    assert_eq!(
        err(&files(&[("eqiad/pools.yaml", text)])),
        "conf/eqiad/pools.yaml:8:13: appservers.cp1052.labels: labels {rack=B5,row=B} differ \
         from {rack=B4,row=B} given in cluster cache_text at line 2; a node's labels must be \
         the same in every cluster it is in"
    );
    // `labels: {}` says "none": it differs from labels given elsewhere.
    let none = "cache_text:\n  cp1052:\n    services: [nginx]\n    labels:\n      rack: B4\nappservers:\n  cp1052: {services: [apache], labels: {}}\n";
    assert_eq!(
        err(&files(&[("eqiad/pools.yaml", none)])),
        "conf/eqiad/pools.yaml:7:40: appservers.cp1052.labels: labels {} differ from \
         {rack=B4} given in cluster cache_text at line 5; a node's labels must be the same in \
         every cluster it is in"
    );
    // The same node in two datacenters is two nodes: each has its own labels.
    let d = load(&files(&[
        (
            "eqiad/pools.yaml",
            "cache_text:\n  cp1: {services: [nginx], labels: {rack: B4}}\n",
        ),
        (
            "codfw/pools.yaml",
            "cache_text:\n  cp1: {services: [nginx], labels: {rack: A1}}\n",
        ),
    ]))
    .unwrap();
    assert_eq!(
        shown_labels(&d.labels),
        ["codfw/cp1 rack=A1", "eqiad/cp1 rack=B4"]
    );
}

const PY_NODES: &str = "eqiad:\n  cache_text:\n    cp1052: [nginx]\n    cp1053: [nginx]\n  appservers:\n    mw1018: [apache]\n    mw1019: []\n";

fn python(extra: &[(&str, &str)]) -> Files {
    let mut v = vec![("node/eqiad.yaml".to_string(), PY_NODES.to_string())];
    v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    Files::in_memory("py", v)
}

#[test]
fn the_python_layout_keeps_labels_in_labels_dc_yaml() {
    let d = load(&python(&[(
        "labels/eqiad.yaml",
        "# node -> labels\ncp1052: {rack: B4, row: B}\nmw1019: {rack: C1}\nmw1018: {}\n",
    )]))
    .unwrap();
    assert_eq!(
        shown_labels(&d.labels),
        ["eqiad/cp1052 rack=B4,row=B", "eqiad/mw1019 rack=C1"]
    );
    let plain = load(&python(&[])).unwrap();
    assert_eq!(d.objects, plain.objects);
    assert!(plain.labels.is_empty());

    for (file, text, want) in [
        (
            "labels/eqiad.yaml",
            "cp1052: {rack: B4}\nmw9999: {rack: B4}\n",
            "py/labels/eqiad.yaml:2:1: node mw9999 is not in node/eqiad.yaml",
        ),
        (
            "labels/codfw.yaml",
            "cp2001: {rack: A1}\n",
            "py/labels/codfw.yaml:1:1: node cp2001: there is no node/codfw.yaml for these labels' datacenter",
        ),
        (
            "labels/eqiad.yaml",
            "cp1052: {rack: B4}\ncp1052: {rack: B5}\n",
            "py/labels/eqiad.yaml:2:1: duplicate key cp1052",
        ),
        (
            "labels/eqiad.yaml",
            "cp1052: {rack: B4, services: [nginx]}\n",
            "py/labels/eqiad.yaml:1:30: cp1052.services: invalid type: sequence, expected a label value",
        ),
        (
            "labels/eqiad.yaml",
            "cp1052: [rack]\n",
            "py/labels/eqiad.yaml:1:9: cp1052: invalid type: sequence",
        ),
        (
            "labels/eqiad.yaml",
            "eqiad:\n  cp1052: {rack: B4}\n",
            "py/labels/eqiad.yaml:1:1: node eqiad is not in node/eqiad.yaml",
        ),
        (
            "labels/eqiad.yaml",
            "cp1052:\n  rack: B4\n  Row: B\n",
            "py/labels/eqiad.yaml:3:3: cp1052: invalid label name \"Row\"",
        ),
    ] {
        let got = err(&python(&[(file, text)]));
        assert_eq!(got.get(..want.len()), Some(want), "{text:?}: {got}");
    }
}

#[test]
fn a_labels_file_is_read_or_refused_never_skipped() {
    let kinds = |paths: &[&str]| -> Listing {
        let mut l = Listing::new();
        for p in paths {
            let p = std::path::PathBuf::from(p);
            for dir in p.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
                l.insert(dir.to_path_buf(), EntryKind::Dir);
            }
            l.insert(p, EntryKind::File);
        }
        l
    };
    // Python layout: labels/<dc>.yaml is read; a near miss is an error with a hint.
    let c = classify(&kinds(&[
        "node/eqiad.yaml",
        "labels/eqiad.yaml",
        "labels/codfw.yml",
        "labels/old/eqiad.yaml",
        "labels/README.md",
    ]));
    let read: Vec<String> = c.read.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(read, ["labels/eqiad.yaml", "node/eqiad.yaml"]);
    let errors: Vec<String> = c
        .errors
        .iter()
        .map(|n| format!("{}: {}", n.path.display(), n.reason))
        .collect();
    assert_eq!(
        errors,
        [
            "labels/codfw.yml: YAML file not read: did you mean codfw.yaml? (only labels/<dc>.yaml files are read)",
            "labels/old/eqiad.yaml: YAML file not read: only the files directly in labels/ are read",
        ]
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    // conftool-rs layout: the labels are in pools.yaml; a labels/ file says so.
    let c = classify(&kinds(&[
        "services.yaml",
        "eqiad/pools.yaml",
        "labels/eqiad.yaml",
    ]));
    assert_eq!(c.read.len(), 2);
    assert_eq!(c.errors.len(), 1);
    assert!(
        c.errors[0]
            .reason
            .contains("labels/<dc>.yaml is the Python conftool layout's")
            && c.errors[0].reason.contains("labels: {rack: B4}"),
        "{:?}",
        c.errors
    );
    let e = err(&files(&[
        ("eqiad/pools.yaml", "cache_text: {}\n"),
        ("labels/eqiad.yaml", "cp1052: {rack: B4}\n"),
    ]));
    assert!(e.contains("labels/eqiad.yaml: YAML file not read"), "{e}");
}

/// etcd holding labels of `a` (as given), `b` (another spacing of b's labels), `c`
/// (malformed) and `gone`; the directory declares `a`, `b`, `c`, `new`.
#[test]
fn labels_are_created_rewritten_and_deleted_as_declared_only() {
    let ks = Keyspace::default();
    let l = |s: &str| -> Labels {
        s.parse::<conftool_core::LabelSelector>()
            .unwrap()
            .terms()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    };
    let at = |n: &str| -> (Datacenter, NodeName) { ("eqiad".parse().unwrap(), n.parse().unwrap()) };
    let desired = crate::Desired {
        labels: [
            (at("a"), l("rack=B4,row=B")),
            (at("b"), l("rack=B5,row=B")),
            (at("c"), l("rack=C1")),
            (at("new"), l("rack=D1")),
        ]
        .into_iter()
        .collect(),
        ..crate::Desired::default()
    };
    let kv = |n: &str, v: &str, rev| Kv {
        key: ks.label_key(&at(n).0, &at(n).1),
        value: v.as_bytes().to_vec(),
        mod_revision: rev,
    };
    let snap = Snapshot {
        revision: 9,
        kvs: vec![
            kv("a", r#"{"rack":"B3","row":"B"}"#, 2),
            kv("b", r#"{ "row": "B", "rack": "B5" }"#, 3),
            kv("c", r#"{"rack":1}"#, 4),
            kv("gone", r#"{"rack":"Z9"}"#, 5),
        ],
    };
    let current = Current::from_snapshot(&ks, snap);
    assert_eq!(current.labels.len(), 4);
    assert_eq!(current.other.len(), 4, "still visible to schema types");
    let p = plan(&desired, &current);
    let writes: Vec<String> = p
        .writes_with_before(&ks)
        .iter()
        .filter(|(w, _)| w.key().starts_with("/v1/labels/"))
        .map(|(w, before)| match w {
            Write::Put { key, value, guard } => format!("put {key} {value} {guard:?} {before:?}"),
            Write::Delete { key, guard } => format!("del {key} {guard:?} {before:?}"),
        })
        .collect();
    assert_eq!(
        writes,
        [
            r#"put /v1/labels/eqiad/a {"rack":"B4","row":"B"} Unchanged(2) Some("{\"rack\":\"B3\",\"row\":\"B\"}")"#,
            r#"put /v1/labels/eqiad/c {"rack":"C1"} Unchanged(4) Some("{\"rack\":1}")"#,
            r#"del /v1/labels/eqiad/gone Unchanged(5) Some("{\"rack\":\"Z9\"}")"#,
            r#"put /v1/labels/eqiad/new {"rack":"D1"} Absent None"#,
        ]
    );
    assert_eq!(p.labels.existing, 4);
    assert!(!p.is_empty());
    assert_eq!(
        p.summary(),
        "0 objects to create, 0 objects to delete, 0 service definitions to write or delete, \
         the labels of 4 nodes to write or delete, the sync record to create (5 writes)"
    );
    let diff = p.render_diff(&ks, "etcd", "conf");
    assert_eq!(
        diff,
        "--- etcd\n+++ conf\n@@ -1,3 +1,4 @@\n\
         -/v1/labels/eqiad/a {\"rack\":\"B3\",\"row\":\"B\"}\n\
         -/v1/labels/eqiad/c {\"rack\":1}\n\
         -/v1/labels/eqiad/gone {\"rack\":\"Z9\"}\n\
         +/v1/labels/eqiad/a {\"rack\":\"B4\",\"row\":\"B\"}\n\
         +/v1/labels/eqiad/c {\"rack\":\"C1\"}\n\
         +/v1/labels/eqiad/new {\"rack\":\"D1\"}\n\
         +/v1/meta/sync {\"datacenters\":[],\"git_rev\":null}\n"
    );
    // Label deletions are not counted by the delete guard, however many.
    let strict = Limits {
        max_delete_share: 0.0,
        allow_delete_pooled: false,
    };
    assert!(p.guard(&strict).is_ok());

    // Once written (the sync record too), nothing to do: b's other spelling is the same
    // labels.
    let synced = Snapshot {
        revision: 10,
        kvs: vec![
            kv("a", r#"{"rack":"B4","row":"B"}"#, 6),
            kv("b", r#"{ "row": "B", "rack": "B5" }"#, 3),
            kv("c", r#"{"rack":"C1"}"#, 6),
            kv("new", r#"{"rack":"D1"}"#, 6),
            Kv {
                key: ks.sync_meta_key(),
                value: br#"{"datacenters":[],"git_rev":null}"#.to_vec(),
                mod_revision: 6,
            },
        ],
    };
    assert!(plan(&desired, &Current::from_snapshot(&ks, synced)).writes_nothing());
}

#[test]
fn a_schema_type_named_labels_is_refused_beside_node() {
    let mut f = python(&[("labels/eqiad.yaml", "cp1052: {rack: B4}\n")]);
    f.types = vec!["labels".into()];
    let load_err = crate::load::load_with(&f, None).unwrap_err().to_string();
    assert!(
        load_err.contains("the schema declares an object type named labels"),
        "{load_err}"
    );
}

#[test]
fn a_schema_type_at_the_labels_path_is_refused() {
    use conftool_core::schema::{RawSchema, Schema};
    // The schema itself refuses it (the prefixes conftool-rs owns), before any sync.
    let raw: RawSchema =
        serde_json::from_str(r#"{"racks": {"path": "labels", "tags": ["dc"], "schema": {}}}"#)
            .unwrap();
    let e = Schema::build(raw, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("path \"labels\" is inside labels/, which conftool-rs owns"),
        "{e}"
    );
}
