//! Property tests of the parsers: a selector, a label selector or an action parses (and
//! prints as something that parses to the same) or is refused with a message; never a panic.

use conftool_model::Classify as _;
use conftool_model::{Action, KeyNames, Keyspace, LabelSelector, Labels, Selector};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
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

/// Pieces of label selectors.
const LABEL_TOKENS: &[&str] = &[
    "rack", "row", "Rack", "=", "==", ",", ",,", "B4", "b4", "3", ".", "..", "-", "_", " ", "é",
    "\n", "*", "a.b",
];

fn label_selector_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), joined(LABEL_TOKENS)]
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

    /// A label selector parses (printing as something that parses to the same selector,
    /// which matches the labels it names) or is refused with a message.
    #[test]
    fn label_selectors_parse_or_explain(s in label_selector_input()) {
        match s.parse::<LabelSelector>() {
            Ok(sel) => {
                let shown = sel.to_string();
                prop_assert_eq!(shown.parse::<LabelSelector>().ok(), Some(sel.clone()));
                let exactly: Labels = sel.terms().map(|(n, v)| (n.clone(), v.clone())).collect();
                prop_assert!(sel.matches(&exactly));
            }
            Err(e) => {
                prop_assert!(!e.to_string().trim().is_empty());
                prop_assert!(e.is_bad_input(), "{e}");
            }
        }
    }

    /// A value read as the text this tool writes, by the short path, or by the JSON parser
    /// gives what the JSON parser alone gives, near that text as well (a state, or a refusal).
    #[test]
    fn a_state_is_read_as_the_json_parser_reads_it(text in state_text_input()) {
        let direct = conftool_model::PoolState::from_json("k", text.as_bytes()).ok();
        let json = serde_json::from_str::<conftool_model::PoolState>(&text).ok();
        prop_assert_eq!(direct, json, "{}", text);
    }

    /// Keys parsed one after another with shared names (a read's keys, in any order: the
    /// same pool again, a pool whose names are another's prefix, junk in between) give what
    /// each key parsed alone gives.
    #[test]
    fn shared_names_parse_as_each_key_alone(keys in prop::collection::vec(object_key_input(), 1..40)) {
        let ks = Keyspace::new("/conftool");
        let mut names = KeyNames::default();
        for k in &keys {
            prop_assert_eq!(names.object_key(&ks, k), ks.parse_object_key(k), "{}", k);
        }
    }
}

/// Keys under `/conftool/v1/pools/` and near it: few names, so that pools repeat, some
/// names a prefix of others, some invalid, some paths too short or too long.
/// Texts near the one a pool state is written as: `{"pooled":"<word>","weight":<number>}`
/// with words and numbers just outside what it can hold, and a few other shapes.
fn state_text_input() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("yes".to_string()),
        Just("no".to_string()),
        Just("inactive".to_string()),
        "(yes|no|inactive|Yes|NO|true|)[ s\\\"]?",
    ];
    let number = prop_oneof![
        (0u32..70_000).prop_map(|n| n.to_string()),
        "-?0?[0-9]{0,6}(\\.[0-9])?( |x)?",
        Just("\"1\"".to_string()),
    ];
    (word, number, 0..4usize).prop_map(|(w, n, shape)| match shape {
        0 | 1 => format!(r#"{{"pooled":"{w}","weight":{n}}}"#),
        2 => format!(r#"{{"weight":{n},"pooled":"{w}"}}"#),
        _ => format!(r#"{{"pooled":"{w}","weight":{n},"x":1}}"#),
    })
}

fn object_key_input() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "eqiad", "eqiad1", "e", "a-b", "a", "..", "", "x y", "mw1",
    ]);
    let root = prop::sample::select(vec![
        "/conftool/v1/pools/",
        "/conftool/v1/pools",
        "/conftool/v1/poolsx/",
        "/conftool/v1x/pools/",
        "/v1/pools/",
    ]);
    (root, prop::collection::vec(name, 3..6))
        .prop_map(|(root, parts)| format!("{root}{}", parts.join("/")))
}
