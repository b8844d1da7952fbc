//! The layout's rules, one behaviour per test: most as a case of the example layout with
//! entries added or removed, and what each entry gets.

use conftool_core::Classify as _;

use super::hints::close_to;
use super::*;
use EntryKind::*;

#[test]
fn close_means_at_most_two_edits_ignoring_case() {
    for (name, target, close) in [
        ("pools.yaml", "pools.yaml", true),
        ("Pools.YAML", "pools.yaml", true),
        ("pools.yml", "pools.yaml", true),
        ("pool.yml", "pools.yaml", true),
        ("pol.yml", "pools.yaml", false),
        ("xpools.yamlx", "pools.yaml", true),
        ("xxpools.yaml", "pools.yaml", true),
        ("xxxpools.yaml", "pools.yaml", false),
        ("plos.yaml", "pools.yaml", true),
        ("services.yml", "services.yaml", true),
        ("notes.yaml", "pools.yaml", false),
        ("", "ab", true),
        ("", "abc", false),
    ] {
        assert_eq!(close_to(name, target), close, "{name} ~ {target}");
    }
}

#[test]
fn files_given_in_memory_are_listed_with_their_directories_only() {
    let files = [
        PathBuf::from("eqiad/pools.yaml"),
        PathBuf::from("services.yaml"),
    ];
    let listing = listing_of(files.iter());
    let got: Vec<(String, EntryKind)> = listing
        .iter()
        .map(|(p, k)| (p.display().to_string(), *k))
        .collect();
    assert_eq!(
        got,
        [
            ("eqiad".to_string(), EntryKind::Dir),
            ("eqiad/pools.yaml".to_string(), EntryKind::File),
            ("services.yaml".to_string(), EntryKind::File),
        ]
    );
}

fn listing(entries: &[(&str, EntryKind)]) -> Listing {
    entries
        .iter()
        .map(|(p, k)| (PathBuf::from(p), *k))
        .collect()
}

/// The verdicts, one line each in path order within each kind: `R path`, `E path:
/// reason`, `W path: reason`.
fn verdicts(c: &Classified) -> Vec<String> {
    let notes = |tag: &str, v: &[Notice]| -> Vec<String> {
        v.iter()
            .map(|n| format!("{tag} {}: {}", n.path.display(), n.reason))
            .collect()
    };
    c.read
        .iter()
        .map(|p| format!("R {}", p.display()))
        .chain(notes("E", &c.errors))
        .chain(notes("W", &c.warnings))
        .collect()
}

const RS: &[(&str, EntryKind)] = &[
    ("services.yaml", File),
    ("eqiad", Dir),
    ("eqiad/pools.yaml", File),
    ("codfw", Dir),
    ("codfw/pools.yaml", File),
];

const READ_RS: [&str; 3] = [
    "R codfw/pools.yaml",
    "R eqiad/pools.yaml",
    "R services.yaml",
];

/// The example layout's files read, then `more`.
fn read_rs_and<'a>(more: &[&'a str]) -> Vec<&'a str> {
    [&READ_RS[..], more].concat()
}

/// The example layout with `extra` entries (an entry of the same path replaces the example's)
/// and without the `removed` ones: what each entry not covered by a reported directory gets
/// (reads, then errors, then warnings; every wanted line a prefix of the actual one).
#[track_caller]
fn assert_verdicts(extra: &[(&str, EntryKind)], removed: &[&str], want: &[&str]) {
    let mut entries: Vec<(&str, EntryKind)> = RS
        .iter()
        .copied()
        .filter(|(p, _)| !removed.contains(p))
        .collect();
    entries.extend(extra.iter().copied());
    let got = verdicts(&classify(&listing(&entries)));
    let ok = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g.starts_with(w));
    assert!(ok, "want {want:#?}\ngot  {got:#?}");
}

#[test]
fn the_example_layout_is_read_whole() {
    assert_verdicts(&[], &[], &READ_RS);
}

#[test]
fn a_typo_of_pools_yaml_is_an_error_with_a_hint() {
    assert_verdicts(
        &[("codfw/pools.yml", File)],
        &["codfw/pools.yaml"],
        &[
            "R eqiad/pools.yaml",
            "R services.yaml",
            "E codfw/pools.yml: YAML file not read: did you mean pools.yaml?",
        ],
    );
}

#[test]
fn another_case_of_pools_yaml_is_an_error_with_a_hint() {
    assert_verdicts(
        &[("codfw/Pools.yaml", File)],
        &["codfw/pools.yaml"],
        &[
            "R eqiad/pools.yaml",
            "R services.yaml",
            "E codfw/Pools.yaml: YAML file not read: did you mean pools.yaml?",
        ],
    );
}

#[test]
fn a_second_pools_file_beside_pools_yaml_is_an_error_without_a_hint() {
    assert_verdicts(
        &[("codfw/pools.yml", File)],
        &[],
        &read_rs_and(&["E codfw/pools.yml: YAML file not read: only pools.yaml is read in a datacenter's directory"]),
    );
}

#[test]
fn notes_beside_pools_yaml_are_an_error() {
    assert_verdicts(
        &[("eqiad/notes.yaml", File)],
        &[],
        &read_rs_and(&["E eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a datacenter's directory"]),
    );
}

#[test]
fn a_typo_of_services_yaml_is_an_error_with_a_hint() {
    assert_verdicts(
        &[("services.yml", File)],
        &["services.yaml"],
        &[
            "R codfw/pools.yaml",
            "R eqiad/pools.yaml",
            "E services.yml: YAML file not read: did you mean services.yaml?",
        ],
    );
}

#[test]
fn other_yaml_at_the_top_beside_services_yaml_is_an_error_without_a_hint() {
    assert_verdicts(
        &[("services.yml", File), ("eqiad.yaml", File)],
        &[],
        &read_rs_and(&[
            "E eqiad.yaml: YAML file not read: only services.yaml is read at the top of the data directory (datacenters are in <dc>/pools.yaml)",
            "E services.yml: YAML file not read: only services.yaml is read at the top",
        ]),
    );
}

#[test]
fn pools_yaml_at_the_top_is_an_error_saying_where_it_belongs() {
    assert_verdicts(
        &[("pools.yaml", File)],
        &[],
        &read_rs_and(&["E pools.yaml: YAML file not read: pools.yaml belongs in a datacenter's directory, <dc>/pools.yaml"]),
    );
}

#[test]
fn a_pools_file_one_level_too_deep_is_an_error() {
    assert_verdicts(
        &[
            ("eqiad/old", Dir),
            ("eqiad/old/pools.yaml", File),
            ("eqiad/old/why.txt", File),
        ],
        &[],
        &read_rs_and(&[
            "E eqiad/old/pools.yaml: YAML file not read: only <dc>/pools.yaml is read, not the files in a datacenter's subdirectories",
            "W eqiad/old/why.txt: not a data file; not read",
        ]),
    );
}

#[test]
fn empty_datacenter_directories_are_errors() {
    assert_verdicts(
        &[
            ("esams", Dir),
            ("ulsfo", Dir),
            ("ulsfo/.gitkeep", File),
            ("drmrs", Dir),
            ("drmrs/old", Dir),
        ],
        &[],
        &read_rs_and(&[
            "E drmrs: empty directory without pools.yaml: as a datacenter, all of its objects would be deleted; add pools.yaml (`{}` for no objects) or remove the directory",
            "E esams: empty directory without pools.yaml",
            "E ulsfo: empty directory without pools.yaml",
        ]),
    );
}

#[test]
fn a_datacenter_directory_holding_only_other_yaml_reports_each_file() {
    assert_verdicts(
        &[
            ("esams", Dir),
            ("esams/pool.yml", File),
            ("esams/hosts.yaml", File),
            ("esams/README", File),
        ],
        &[],
        &read_rs_and(&[
            "E esams/hosts.yaml: YAML file not read: only pools.yaml is read",
            "E esams/pool.yml: YAML file not read: did you mean pools.yaml?",
            "W esams/README: not a data file; not read",
        ]),
    );
}

#[test]
fn documentation_and_stray_files_are_warnings() {
    assert_verdicts(
        &[
            ("README.md", File),
            ("docs", Dir),
            ("docs/layout.md", File),
            ("docs/img", Dir),
            ("docs/img/a.png", File),
            ("eqiad/NOTES", File),
            ("eqiad/scripts", Dir),
            ("eqiad/scripts/check.py", File),
        ],
        &[],
        &read_rs_and(&[
            "W README.md: not a data file; not read",
            "W docs: directory without pools.yaml or any YAML file, so not a datacenter; not read",
            "W eqiad/NOTES: not a data file; not read",
            "W eqiad/scripts: directory without YAML files; not read",
        ]),
    );
}

#[test]
fn hidden_entries_say_nothing() {
    assert_verdicts(
        &[
            (".git", Dir),
            (".git/pools.yaml", File),
            (".gitignore", File),
            (".gitlab-ci.yml", File),
            (".github", Dir),
            ("eqiad/.pools.yaml.swp", File),
            ("eqiad/.old", Dir),
            ("eqiad/.old/pools.yaml", File),
        ],
        &[],
        &READ_RS,
    );
}

#[test]
fn a_hidden_datacenter_directory_is_an_error() {
    assert_verdicts(
        &[(".esams", Dir), (".esams/pools.yaml", File)],
        &[],
        &read_rs_and(&[
            "E .esams: hidden directory with a pools.yaml: hidden entries are not read",
        ]),
    );
}

#[test]
fn data_file_names_on_other_kinds_are_errors() {
    assert_verdicts(
        &[
            ("eqiad/pools.yaml", Dir),
            ("eqiad/pools.yaml/x", File),
            ("codfw/pools.yaml", Other),
            ("services.yaml", Symlink),
        ],
        &[],
        &[
            "E codfw/pools.yaml: not a regular file (a FIFO, socket, device or git submodule) where a data file is expected; not read",
            "E eqiad/pools.yaml: a directory where a data file is expected; not read",
            "E services.yaml: a symbolic link where a data file is expected: symbolic links are not followed; not read (make it a regular file)",
        ],
    );
}

#[test]
fn a_datacenters_pools_file_as_a_link_is_an_error() {
    assert_verdicts(
        &[("eqiad/pools.yaml", Symlink)],
        &[],
        &[
            "R codfw/pools.yaml",
            "R services.yaml",
            "E eqiad/pools.yaml: a symbolic link where a data file is expected: symbolic links are not followed",
        ],
    );
}

#[test]
fn links_and_other_kinds_elsewhere_are_warnings_unless_yaml() {
    assert_verdicts(
        &[
            ("esams", Symlink),
            ("eqiad/fifo", Other),
            ("eqiad/hosts.yaml", Symlink),
        ],
        &[],
        &read_rs_and(&[
            "E eqiad/hosts.yaml: YAML file not read: only pools.yaml is read",
            "W eqiad/fifo: not a regular file or directory; not read",
            "W esams: symbolic link, not a data file; not read",
        ]),
    );
}

#[test]
fn schema_types_are_read_and_typos_stay_errors() {
    let l = listing(&[
        ("services.yaml", File),
        ("eqiad", Dir),
        ("eqiad/pools.yaml", File),
        ("codfw", Dir),
        ("codfw/pools.yml", File),
        ("mwconfig", Dir),
        ("mwconfig/a.yaml", File),
        ("mwconfig/b.yml", File),
        ("mwconfig/sub", Dir),
        ("mwconfig/sub/c.yaml", File),
    ]);
    let got = verdicts(&classify_with(&l, &["mwconfig".to_string()]));
    let want = [
        "R eqiad/pools.yaml".to_string(),
        "R mwconfig/a.yaml".into(),
        "R services.yaml".into(),
        "E codfw/pools.yml: YAML file not read: did you mean pools.yaml?".into(),
        "E mwconfig/b.yml: YAML file not read: only <name>.yaml files are read in mwconfig/".into(),
        "E mwconfig/sub/c.yaml: YAML file not read: only the .yaml files directly in \
         mwconfig/ are read"
            .into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn python_layout_reads_node_files_and_skips_other_object_types() {
    let l = listing(&[
        ("services.yaml", File),
        ("README", File),
        ("eqiad.yaml", File),
        ("node", Dir),
        ("node/eqiad.yaml", File),
        ("node/codfw.yaml", Symlink),
        ("node/drmrs.yaml", Other),
        ("node/esams.yml", File),
        ("node/ulsfo.YAML", File),
        ("node/README", File),
        ("node/old", Dir),
        ("node/old/eqiad.yaml", File),
        ("node/tools", Dir),
        ("node/tools/x.py", File),
        ("discovery", Dir),
        ("discovery/dnsdisc.yaml", File),
        ("mwconfig", Dir),
        ("empty", Dir),
    ]);
    let got = verdicts(&classify(&l));
    let skipped = "not read: another object type of the Python conftool layout (the types \
                   its schema defines are not supported yet)";
    let want = [
        "R node/eqiad.yaml".to_string(),
        "R services.yaml".into(),
        "E eqiad.yaml: YAML file not read: only services.yaml is read at the top of the \
         data directory (datacenters are in node/<dc>.yaml)"
            .into(),
        "E node/codfw.yaml: a symbolic link where a data file is expected: symbolic links \
         are not followed"
            .into(),
        "E node/drmrs.yaml: not a regular file (a FIFO, socket, device or git submodule)".into(),
        "E node/esams.yml: YAML file not read: did you mean esams.yaml? (only \
         node/<dc>.yaml files are read)"
            .into(),
        "E node/old/eqiad.yaml: YAML file not read: only the files directly in node/ are \
         read"
            .into(),
        "E node/ulsfo.YAML: YAML file not read: did you mean ulsfo.yaml?".into(),
        "W README: not a data file; not read".into(),
        format!("W discovery: {skipped}"),
        format!("W empty: {skipped}"),
        format!("W mwconfig: {skipped}"),
        "W node/README: not a data file; not read".into(),
        "W node/tools: directory without YAML files; not read".into(),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w.as_str()), "want {w}\ngot  {g}");
    }
}

/// Both layouts at once: both are read, for load to refuse the mix by name.
#[test]
fn both_layouts_at_once_are_both_read() {
    let both = listing(&[
        ("services.yaml", File),
        ("eqiad", Dir),
        ("eqiad/pools.yaml", File),
        ("node", Dir),
        ("node/codfw.yaml", File),
    ]);
    assert_eq!(
        verdicts(&classify(&both)),
        ["R eqiad/pools.yaml", "R node/codfw.yaml", "R services.yaml"]
    );
}

/// node/ without a single <dc>.yaml is not the Python layout.
#[test]
fn an_empty_node_directory_is_an_error_not_the_python_layout() {
    let empty_node = listing(&[("services.yaml", File), ("node", Dir)]);
    let got = verdicts(&classify(&empty_node));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[1].starts_with("E node: empty node/ directory"),
        "{got:?}"
    );
}

#[test]
fn hidden_directories_are_not_walked() {
    assert_eq!(walk(Path::new("eqiad")), Walk::All);
    assert_eq!(walk(Path::new("eqiad/old")), Walk::All);
    assert_eq!(walk(Path::new(".git")), Walk::Nothing);
    assert_eq!(walk(Path::new(".eqiad")), Walk::PoolsFile);
    assert_eq!(walk(Path::new("eqiad/.old")), Walk::Nothing);
}

/// Three problems: services.yaml is read, and the three entries that look like data are not.
fn three_problems() -> Listing {
    listing(&[
        ("services.yaml", File),
        ("eqiad", Dir),
        ("eqiad/pools.yaml", File),
        ("eqiad/notes.yaml", File),
        ("codfw", Dir),
        ("codfw/pools.yml", File),
        ("esams", Dir),
    ])
}

#[test]
fn a_layout_error_is_bad_input() {
    let e = classify(&three_problems())
        .checked(Path::new("conf"))
        .unwrap_err();
    assert!(e.is_bad_input());
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = classify(&three_problems())
        .checked(Path::new("conf"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "conf: 3 entries would not be read:\n  \
         conf/codfw/pools.yml: YAML file not read: did you mean pools.yaml?\n  \
         conf/eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a \
         datacenter's directory\n  \
         conf/esams: empty directory without pools.yaml: as a datacenter, all of its \
         objects would be deleted; add pools.yaml (`{}` for no objects) or remove the \
         directory"
    );
}

#[test]
fn one_error_has_the_entrys_own_path_in_front() {
    let one = listing(&[
        ("services.yaml", File),
        ("codfw", Dir),
        ("codfw/pools.yml", File),
    ]);
    let e = classify(&one).checked(Path::new("conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "conf/codfw/pools.yml: YAML file not read: did you mean pools.yaml?"
    );
}

/// Warnings only: the files to read, and the warnings with their paths as shown.
#[test]
fn warnings_alone_give_the_files_to_read_and_the_warnings() {
    let warned = listing(&[("services.yaml", File), ("README.md", File)]);
    let (read, warnings) = classify(&warned).checked(Path::new("conf")).unwrap();
    assert_eq!(read, [PathBuf::from("services.yaml")]);
    assert_eq!(
        warnings,
        [Notice {
            path: "conf/README.md".into(),
            reason: "not a data file; not read".into()
        }]
    );
}
