//! Property tests of the loader: valid files mutated in every way (and arbitrary text) load
//! or fail with an error that says something and names a file; never a panic.

use conftool_sync::{load, Desired, Files};
use proptest::prelude::*;

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
