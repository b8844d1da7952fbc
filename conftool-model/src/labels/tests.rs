#![allow(clippy::unwrap_used)]

use super::*;
use crate::write::Kv;
use crate::Classify as _;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
        .collect()
}

#[test]
fn label_names_are_lowercase_and_short() {
    for ok in [
        "rack",
        "row",
        "hypervisor",
        "a",
        "0",
        "topology.zone",
        "power_feed-2",
    ] {
        assert_eq!(ok.parse::<LabelName>().unwrap().as_str(), ok);
    }
    assert!("x".repeat(63).parse::<LabelName>().is_ok());
    for (bad, why) in [
        ("", "is empty"),
        ("Rack", "lowercase letters"),
        ("rack/unit", "lowercase letters"),
        ("rack unit", "lowercase letters"),
        ("ráck", "lowercase letters"),
        ("rack=", "lowercase letters"),
        ("rack\n", "lowercase letters"),
    ] {
        let e = bad.parse::<LabelName>().unwrap_err();
        assert_eq!(e.part, LabelPart::Name);
        let msg = e.to_string();
        assert!(msg.starts_with("invalid label name "), "{msg}");
        assert!(msg.contains(why), "{bad:?}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
    assert_eq!(
        "x".repeat(64).parse::<LabelName>().unwrap_err().reason,
        "is longer than 63 characters"
    );
    assert_eq!(
        "Rack".parse::<LabelName>().unwrap_err().to_string(),
        "invalid label name \"Rack\": may only contain lowercase letters, digits, '.', '_' and '-'"
    );
}

#[test]
fn label_values_are_path_safe_like_node_names() {
    for ok in [
        "B4",
        "b4",
        "3",
        "03",
        "1.10",
        "ganeti1021.eqiad.wmnet",
        "_",
        "..x",
    ] {
        assert_eq!(ok.parse::<LabelValue>().unwrap().as_str(), ok);
    }
    assert!("v".repeat(253).parse::<LabelValue>().is_ok());
    for (bad, why) in [
        ("", "is empty"),
        (".", "relative path component"),
        ("..", "relative path component"),
        ("B 4", "may only contain"),
        ("B/4", "may only contain"),
        ("B=4", "may only contain"),
        ("B,4", "may only contain"),
        ("~", "may only contain"),
    ] {
        let e = bad.parse::<LabelValue>().unwrap_err();
        assert_eq!(e.part, LabelPart::Value);
        assert!(e.to_string().starts_with("invalid label value "), "{e}");
        assert!(e.to_string().contains(why), "{bad:?}: {e}");
    }
    let long = "v".repeat(254).parse::<LabelValue>().unwrap_err();
    assert_eq!(long.reason, "is longer than 253 characters");
    // A huge value is cut short in the message.
    assert!(long.to_string().len() < 150, "{long}");
}

#[test]
fn selectors_parse_display_and_round_trip() {
    for (input, canonical) in [
        ("rack=B4", "rack=B4"),
        ("rack=B4,row=B", "rack=B4,row=B"),
        ("row=B,rack=B4", "rack=B4,row=B"),
        (
            "hypervisor=ganeti1021.eqiad.wmnet",
            "hypervisor=ganeti1021.eqiad.wmnet",
        ),
        ("row=3", "row=3"),
    ] {
        let sel: LabelSelector = input.parse().unwrap();
        assert_eq!(sel.to_string(), canonical, "{input}");
        assert_eq!(canonical.parse::<LabelSelector>().unwrap(), sel);
    }
    let sel: LabelSelector = "row=B,rack=B4".parse().unwrap();
    let terms: Vec<(&str, &str)> = sel.terms().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(terms, [("rack", "B4"), ("row", "B")]);
}

#[test]
fn bad_selectors_say_what_is_wrong() {
    for (input, reason) in [
        ("", "empty: give at least one label=value (e.g. rack=B4)"),
        ("rack", "\"rack\" is not label=value"),
        ("rack=B4,", "an empty term (a stray ',')"),
        (",rack=B4", "an empty term (a stray ',')"),
        ("rack=B4,,row=B", "an empty term (a stray ',')"),
        ("rack=", "invalid label value \"\": is empty"),
        ("=B4", "invalid label name \"\": is empty"),
        ("Rack=B4", "invalid label name \"Rack\""),
        ("rack=B 4", "invalid label value \"B 4\""),
        ("rack=B=4", "invalid label value \"B=4\""),
        ("rack=B.*", "invalid label value \"B.*\""),
        ("rack=B4,row=B,rack=B5", "label rack is given twice"),
        ("rack=B4,rack=B4", "label rack is given twice"),
    ] {
        match input.parse::<LabelSelector>() {
            Err(Error::Selector {
                input: got,
                reason: why,
            }) => {
                assert_eq!(got, input);
                assert!(why.starts_with(reason), "{input:?}: {why}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert!(matches!(
        LabelSelector::new([]),
        Err(Error::Selector { .. })
    ));
}

#[test]
fn a_selector_matches_nodes_with_every_term_exactly() {
    let sel: LabelSelector = "rack=B4,row=B".parse().unwrap();
    assert!(sel.matches(&labels(&[("rack", "B4"), ("row", "B")])));
    assert!(sel.matches(&labels(&[
        ("rack", "B4"),
        ("row", "B"),
        ("hypervisor", "g1")
    ])));
    assert!(!sel.matches(&labels(&[("rack", "B4")])));
    assert!(!sel.matches(&labels(&[("rack", "B4"), ("row", "C")])));
    assert!(
        !sel.matches(&labels(&[("rack", "b4"), ("row", "B")])),
        "case matters"
    );
    assert!(!sel.matches(&labels(&[("rack", "B40"), ("row", "B")])));
    assert!(!sel.matches(&Labels::new()));
}

#[test]
fn labels_are_stored_as_sorted_compact_json_and_read_back() {
    let l = labels(&[("row", "B"), ("rack", "B4"), ("hypervisor", "ganeti1021")]);
    let json = l.to_json();
    assert_eq!(json, r#"{"hypervisor":"ganeti1021","rack":"B4","row":"B"}"#);
    assert_eq!(Labels::from_json("k", json.as_bytes()).unwrap(), l);
    // Another writer's spacing and order mean the same labels.
    let spaced = br#"{ "row": "B", "rack": "B4", "hypervisor": "ganeti1021" }"#;
    assert_eq!(Labels::from_json("k", spaced).unwrap(), l);
    assert_eq!(Labels::new().to_json(), "{}");
    assert_eq!(l.to_string(), "hypervisor=ganeti1021,rack=B4,row=B");
    assert_eq!((l.len(), l.is_empty()), (3, false));
}

#[test]
fn malformed_stored_labels_are_errors_naming_the_key() {
    let key = "/v1/labels/eqiad/mw1018";
    for (raw, says) in [
        ("not json", "expected"),
        (r#"["rack","B4"]"#, "invalid type: sequence"),
        (r#"{"rack":4}"#, "invalid type: integer"),
        (r#"{"rack":null}"#, "invalid type: null"),
        (r#"{"rack":{"id":"B4"}}"#, "invalid type: map"),
        (r#"{"Rack":"B4"}"#, "invalid label name \\\"Rack\\\""),
        (r#"{"rack":"B 4"}"#, "invalid label value"),
        ("", "EOF"),
    ] {
        match Labels::from_json(key, raw.as_bytes()) {
            Err(e @ Error::MalformedValue { .. }) => {
                assert!(!e.is_bad_input());
                let msg = format!("{e:?}");
                assert!(e
                    .to_string()
                    .starts_with(&format!("etcd key {key}: malformed value")));
                assert!(msg.contains(says), "{raw:?}: {msg}");
            }
            other => panic!("{raw:?}: {other:?}"),
        }
    }
}

#[test]
fn label_keys_round_trip_and_reject_junk() {
    let ks = Keyspace::new("/conftool");
    assert_eq!(ks.labels_prefix(), "/conftool/v1/labels/");
    assert_eq!(Keyspace::default().labels_prefix(), "/v1/labels/");
    let dc: Datacenter = "eqiad".parse().unwrap();
    assert_eq!(
        ks.labels_prefix_for(Some(&dc)),
        "/conftool/v1/labels/eqiad/"
    );
    assert_eq!(ks.labels_prefix_for(None), ks.labels_prefix());
    let node: NodeName = "mw1018.eqiad.wmnet".parse().unwrap();
    let key = ks.label_key(&dc, &node);
    assert_eq!(key, "/conftool/v1/labels/eqiad/mw1018.eqiad.wmnet");
    assert_eq!(ks.parse_label_key(&key), Some((dc, node)));
    // Outside /v1/pools: no pool reader's prefix covers it.
    assert!(!key.starts_with(&ks.pools_prefix()));
    for junk in [
        "/conftool/v1/labels/eqiad",
        "/conftool/v1/labels/eqiad/",
        "/conftool/v1/labels/eqiad/mw1018/x",
        "/conftool/v1/labels/eqiad/..",
        "/conftool/v1/labels/bad dc/mw1018",
        "/v1/labels/eqiad/mw1018",
        "/conftool/v1/pools/eqiad/mw1018",
    ] {
        assert_eq!(ks.parse_label_key(junk), None, "{junk}");
    }
}

#[test]
fn decoding_a_range_read_skips_foreign_keys_and_refuses_bad_values() {
    let ks = Keyspace::default();
    let kv = |key: &str, value: &str| Kv {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        mod_revision: 2,
    };
    let mut snap = Snapshot {
        revision: 3,
        kvs: vec![
            kv("/v1/labels/codfw/mw2001", r#"{"rack":"A1"}"#),
            kv("/v1/labels/eqiad/mw1018", r#"{"rack":"B4","row":"B"}"#),
            kv("/v1/labels/eqiad/mw1018/notes", "anything"),
            kv("/v1/labels/eqiad", "anything"),
        ],
    };
    let got = decode_labels(&ks, &snap).unwrap();
    let shown: Vec<String> = got
        .iter()
        .map(|((dc, node), l)| format!("{dc}/{node} {l}"))
        .collect();
    assert_eq!(
        shown,
        ["codfw/mw2001 rack=A1", "eqiad/mw1018 rack=B4,row=B"]
    );
    snap.kvs
        .push(kv("/v1/labels/eqiad/mw1019", r#"{"rack":7}"#));
    match decode_labels(&ks, &snap) {
        Err(Error::MalformedValue { key, .. }) => assert_eq!(key, "/v1/labels/eqiad/mw1019"),
        other => panic!("{other:?}"),
    }
}
