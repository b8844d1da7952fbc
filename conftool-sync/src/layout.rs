//! Which entries of a data directory are read, and what is said about each of the others.
//!
//! A file that is silently not read is a datacenter silently deleted: `codfw/pools.yml` (a
//! typo) once hid 38% of a fleet's objects. So every entry under the data directory is read,
//! or reported with its path. One pure function, [`classify`], decides, over a [`Listing`]
//! of the entries; the work tree and a git commit are listed by [`crate::source`] and then
//! judged alike.
//!
//! | entry | verdict |
//! |---|---|
//! | `services.yaml`, `<dc>/pools.yaml`, `node/<dc>.yaml`, regular files (in git: blobs) | read |
//! | with the Python layout, `labels/<dc>.yaml` (node labels, see [`crate::labels`]) | read |
//! | with the conftool-rs layout, `labels/<dc>.yaml` | error: labels go in `<dc>/pools.yaml` |
//! | one of those names on a symbolic link (in git: a blob of mode 120000) | error: links are not followed |
//! | one of those names on a directory, FIFO, socket, device or git submodule | error |
//! | any other `.yaml`/`.yml` file, anywhere (`codfw/pools.yml`, `services.yml`, `eqiad/notes.yaml`, `node/eqiad.yml`, `eqiad/old/pools.yaml`) | error, with a hint where one is obvious |
//! | a top-level directory without `pools.yaml` that holds no files (empty, or only hidden files or empty directories) | error: as a datacenter, all of its objects would be deleted |
//! | a top-level directory without `pools.yaml` that holds YAML files | each YAML file is an error (above) |
//! | a top-level directory without `pools.yaml` and without YAML files (`docs/`) | warning |
//! | with the Python layout (`node/<dc>.yaml`), any other top-level directory | warning: another object type; with `--schema`, its declared types' `<type>/*.yaml` are read and only undeclared ones warned about |
//! | any other file, symlink or directory (`README.md`, `eqiad/notes.txt`) | warning |
//! | a hidden entry (`.git`, `.gitignore`, `.pools.yaml.swp`, `.github/`) | nothing said: VCS, CI and editor files are not data; hidden directories are not walked |
//! | a hidden top-level directory holding a `pools.yaml` (`.eqiad/`) | error: it looks like a datacenter (and was read as one before) |
//!
//! A directory reported as a whole (a warning, or an error about the directory itself) covers
//! its contents: they are not reported again.
//!
//! Symbolic links under the data directory are never followed, as directories or as files:
//! the checkout is written by whoever opens a merge request, and CI syncs it as root, so a
//! link (`eqiad/pools.yaml -> /etc/shadow`, `-> /dev/zero`) must not make the sync read
//! outside it, nor a FIFO make it wait forever. Where a data file is expected, a link or a
//! special file is an error that names it and never shows its target or content. (The data
//! directory itself may be a link: that is the operator's choice, not the checkout's.)
//! [`crate::source`] checks again on the opened file, so an entry swapped after listing is
//! refused the same way.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{shown, Error};
use crate::labels::LABELS_DIR;
use crate::load::SERVICES_FILE;

/// A datacenter's file in the conftool-rs layout.
pub const POOLS_FILE: &str = "pools.yaml";
/// The Python conftool layout's directory of `<dc>.yaml` files.
pub const NODE_DIR: &str = "node";

/// Why a symbolic link where a data file is expected is not read.
pub(crate) const SYMLINK_REASON: &str =
    "a symbolic link where a data file is expected: symbolic links are not followed; not read \
     (make it a regular file)";
/// Why a FIFO, socket, device or git submodule where a data file is expected is not read.
pub(crate) const SPECIAL_REASON: &str =
    "not a regular file (a FIFO, socket, device or git submodule) where a data file is \
     expected; not read";

/// What an entry is, as far as choosing what to read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (in git: a blob).
    File,
    /// A directory (in git: a tree).
    Dir,
    /// A symbolic link (in git: a blob of mode 120000).
    Symlink,
    /// Anything else: a FIFO, a socket, a device, a git submodule.
    Other,
}

/// Every entry under a data directory, by path relative to it. Hidden directories are listed
/// but not walked, except that a top-level one's `pools.yaml` is listed too (see [`walk`]).
pub type Listing = BTreeMap<PathBuf, EntryKind>;

/// One entry that is not read: its path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The path (relative to the data directory from [`classify`]; joined to it in
    /// [`crate::Files::warnings`] and in errors).
    pub path: PathBuf,
    /// What it is and why it is not read.
    pub reason: String,
}

/// What a [`Listing`] means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    /// The files to read, relative to the data directory.
    pub read: Vec<PathBuf>,
    /// Entries that look like data but would not be read: the sync must not go on.
    pub errors: Vec<Notice>,
    /// Everything else that is not read: worth a word, not a stop.
    pub warnings: Vec<Notice>,
}

/// How far a walker goes into a directory (relative to the data directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// List everything in it.
    All,
    /// List only its `pools.yaml`, if any (a hidden top-level directory other than `.git`).
    PoolsFile,
    /// List nothing in it (hidden: `.git` can be big, and none of it is data).
    Nothing,
}

/// How far to walk into the directory `rel`: the one rule the work tree and git listings
/// share.
pub fn walk(rel: &Path) -> Walk {
    match rel.file_name() {
        Some(name) if hidden(name) => {
            if rel.components().count() == 1 && name != ".git" {
                Walk::PoolsFile
            } else {
                Walk::Nothing
            }
        }
        _ => Walk::All,
    }
}

fn hidden(name: &OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Whether a file name says YAML (`.yaml` or `.yml`, in any case).
fn is_yaml(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// Whether `name` is at most two edits from `target`, ignoring case: worth a "did you mean".
fn close_to(name: &str, target: &str) -> bool {
    let a: Vec<char> = name.to_lowercase().chars().collect();
    let b: Vec<char> = target.chars().collect();
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()] <= 2
}

/// The verdict on one entry.
enum Verdict {
    Read,
    /// Nothing to say about the entry itself; its contents are judged one by one.
    Descend,
    /// Nothing to say, about it or its contents.
    Silent,
    Error(String),
    Warn(String),
}

/// Judge every entry of a listing. Pure: the same listing gives the same answer, whether it
/// came from a work tree, a git commit or memory.
pub fn classify(listing: &Listing) -> Classified {
    classify_with(listing, &[])
}

/// [`classify`], with the object types a schema declares: their `<type>/*.yaml` files are
/// read too.
pub fn classify_with(listing: &Listing, types: &[String]) -> Classified {
    let ctx = Ctx {
        listing,
        python: listing.iter().any(|(p, k)| is_node_file(p, *k)),
        types,
    };
    let mut out = Classified::default();
    // An entry whose verdict covers its contents: they are skipped. The listing is sorted
    // by components, so a directory's contents follow it, together.
    let mut covered: Option<&Path> = None;
    for (path, &kind) in listing {
        if covered.is_some_and(|c| path.starts_with(c)) {
            continue;
        }
        let notice = |reason| Notice {
            path: path.clone(),
            reason,
        };
        match ctx.verdict(path, kind) {
            Verdict::Read => out.read.push(path.clone()),
            Verdict::Descend => {}
            Verdict::Silent => covered = Some(path),
            Verdict::Error(reason) => {
                out.errors.push(notice(reason));
                covered = Some(path);
            }
            Verdict::Warn(reason) => {
                out.warnings.push(notice(reason));
                covered = Some(path);
            }
        }
    }
    out
}

/// `node/<name>.yaml`, a file or a link: a datacenter of the Python layout (a link is
/// refused by its verdict, but still says which layout the directory is in).
fn is_node_file(path: &Path, kind: EntryKind) -> bool {
    let mut parts = path.iter();
    matches!(kind, EntryKind::File | EntryKind::Symlink)
        && parts.next() == Some(OsStr::new(NODE_DIR))
        && parts
            .next()
            .is_some_and(|f| f.to_string_lossy().ends_with(".yaml"))
        && parts.next().is_none()
}

struct Ctx<'a> {
    listing: &'a Listing,
    /// The Python layout: some `node/<dc>.yaml` exists.
    python: bool,
    /// Object types declared by a schema: `<type>/*.yaml` are read.
    types: &'a [String],
}

impl Ctx<'_> {
    /// The entries below `dir` (not itself), skipping the contents of hidden directories.
    fn below<'b>(&'b self, dir: &'b Path) -> impl Iterator<Item = (&'b PathBuf, EntryKind)> {
        self.listing
            .range::<Path, _>((std::ops::Bound::Excluded(dir), std::ops::Bound::Unbounded))
            .take_while(move |(p, _)| p.starts_with(dir))
            .filter(move |(p, _)| {
                p.strip_prefix(dir)
                    .map_or(true, |rest| !rest.iter().any(hidden))
            })
            .map(|(p, k)| (p, *k))
    }

    fn has(&self, path: &Path) -> bool {
        self.listing.contains_key(path)
    }

    fn verdict(&self, path: &Path, kind: EntryKind) -> Verdict {
        use EntryKind::*;
        let parts: Vec<String> = path
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let Some(name) = parts.last().map(String::as_str) else {
            return Verdict::Descend;
        };
        let top = parts.len() == 1;
        if name.starts_with('.') {
            let pools = path.join(POOLS_FILE);
            return if top && kind == Dir && name != ".git" && self.has(&pools) {
                Verdict::Error(format!(
                    "hidden directory with a {POOLS_FILE}: hidden entries are not read (a \
                     datacenter's name must not start with '.'); rename it or move it out of \
                     the data directory"
                ))
            } else {
                Verdict::Silent
            };
        }
        // Where a data file is expected: read it if it is one.
        let typed = |t: &String| self.types.contains(t);
        let data_file = match parts.as_slice() {
            [f] => f == SERVICES_FILE,
            [t, f] if typed(t) => f.ends_with(".yaml"),
            [n, f] if n == NODE_DIR => f.ends_with(".yaml"),
            [l, f] if l == LABELS_DIR && self.python => f.ends_with(".yaml"),
            [_, f] => f == POOLS_FILE,
            _ => false,
        };
        if data_file {
            return match kind {
                File => Verdict::Read,
                Symlink => Verdict::Error(SYMLINK_REASON.into()),
                Dir => Verdict::Error("a directory where a data file is expected; not read".into()),
                Other => Verdict::Error(SPECIAL_REASON.into()),
            };
        }
        if kind == Dir {
            return self.dir_verdict(path, &parts);
        }
        if is_yaml(name) {
            return Verdict::Error(self.yaml_reason(&parts));
        }
        Verdict::Warn(
            match kind {
                Symlink => "symbolic link, not a data file; not read",
                Other => "not a regular file or directory; not read",
                _ => "not a data file; not read",
            }
            .into(),
        )
    }

    fn dir_verdict(&self, path: &Path, parts: &[String]) -> Verdict {
        let has_yaml = self.below(path).any(|(p, k)| {
            k != EntryKind::Dir && p.file_name().is_some_and(|f| is_yaml(&f.to_string_lossy()))
        });
        if parts.len() > 1 {
            return if has_yaml {
                Verdict::Descend
            } else {
                Verdict::Warn("directory without YAML files; not read".into())
            };
        }
        if ((parts[0] == NODE_DIR || parts[0] == LABELS_DIR) && self.python)
            || self.has(&path.join(POOLS_FILE))
            || self.types.contains(&parts[0])
        {
            return Verdict::Descend;
        }
        // Only beside the Python layout's node/: with the conftool-rs layout, a directory of
        // YAML files is judged below (`codfw/pools.yml` must stay an error, not a warning).
        if !self.types.is_empty() && self.python {
            return Verdict::Warn(
                "not read: an object type of the Python conftool layout that the schema does \
                 not declare"
                    .into(),
            );
        }
        if self.python {
            return Verdict::Warn(
                "not read: another object type of the Python conftool layout (the types its \
                 schema defines are not supported yet)"
                    .into(),
            );
        }
        let has_files = self.below(path).any(|(_, k)| k != EntryKind::Dir);
        if !has_files {
            return Verdict::Error(if parts[0] == NODE_DIR {
                "empty node/ directory (the Python conftool layout keeps node/<dc>.yaml files in \
                 it); remove it if it is not used"
                    .into()
            } else {
                format!(
                    "empty directory without {POOLS_FILE}: as a datacenter, all of its objects \
                     would be deleted; add {POOLS_FILE} (`{{}}` for no objects) or remove the \
                     directory"
                )
            });
        }
        if has_yaml {
            // Each YAML file in it is an error of its own, with its own hint.
            return Verdict::Descend;
        }
        Verdict::Warn(format!(
            "directory without {POOLS_FILE} or any YAML file, so not a datacenter; not read"
        ))
    }

    /// Why a YAML file that is not read is an error, with a hint where one is obvious.
    fn yaml_reason(&self, parts: &[String]) -> String {
        let name = parts.last().map_or("", String::as_str);
        let at_top = || {
            let dcs = if self.python {
                "node/<dc>.yaml"
            } else {
                "<dc>/pools.yaml"
            };
            format!(
                "YAML file not read: only {SERVICES_FILE} is read at the top of the data \
                 directory (datacenters are in {dcs})"
            )
        };
        match parts {
            [_] if close_to(name, SERVICES_FILE) && !self.has(Path::new(SERVICES_FILE)) => {
                format!("YAML file not read: did you mean {SERVICES_FILE}?")
            }
            [_] if close_to(name, POOLS_FILE) => format!(
                "YAML file not read: {POOLS_FILE} belongs in a datacenter's directory, \
                 <dc>/{POOLS_FILE}"
            ),
            [_] => at_top(),
            [t, _] if self.types.contains(t) => {
                format!("YAML file not read: only <name>.yaml files are read in {t}/")
            }
            [n, _] if n == NODE_DIR => {
                let lower = name.to_ascii_lowercase();
                let cut = if lower.ends_with(".yaml") { 5 } else { 4 };
                let stem = &name[..name.len() - cut];
                format!(
                    "YAML file not read: did you mean {stem}.yaml? (only node/<dc>.yaml files \
                     are read)"
                )
            }
            [l, _] if l == LABELS_DIR && self.python => {
                let lower = name.to_ascii_lowercase();
                let cut = if lower.ends_with(".yaml") { 5 } else { 4 };
                let stem = &name[..name.len() - cut];
                format!(
                    "YAML file not read: did you mean {stem}.yaml? (only labels/<dc>.yaml files \
                     are read)"
                )
            }
            [l, _] if l == LABELS_DIR && !self.has(&Path::new(l).join(POOLS_FILE)) => format!(
                "YAML file not read: labels/<dc>.yaml is the Python conftool layout's (beside \
                 node/<dc>.yaml); with <dc>/{POOLS_FILE}, a node's labels are in its entry: \
                 `mw1018: {{services: [apache], labels: {{rack: B4}}}}`"
            ),
            [dc, _] => {
                let has_pools = self.has(&Path::new(dc).join(POOLS_FILE));
                if close_to(name, POOLS_FILE) && !has_pools {
                    format!("YAML file not read: did you mean {POOLS_FILE}?")
                } else {
                    format!(
                        "YAML file not read: only {POOLS_FILE} is read in a datacenter's \
                         directory"
                    )
                }
            }
            [n, ..] if n == NODE_DIR => {
                "YAML file not read: only the files directly in node/ are read".into()
            }
            [l, ..] if l == LABELS_DIR && self.python => {
                "YAML file not read: only the files directly in labels/ are read".into()
            }
            [t, ..] if self.types.contains(t) => {
                format!("YAML file not read: only the .yaml files directly in {t}/ are read")
            }
            _ => format!(
                "YAML file not read: only <dc>/{POOLS_FILE} is read, not the files in a \
                 datacenter's subdirectories"
            ),
        }
    }
}

/// The listing implied by a set of file paths (their directories added): how files given in
/// memory are judged.
pub(crate) fn listing_of<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> Listing {
    let mut listing = Listing::new();
    for f in files {
        for dir in f.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() {
                listing.insert(dir.to_path_buf(), EntryKind::Dir);
            }
        }
        listing.insert(f.clone(), EntryKind::File);
    }
    listing
}

impl Classified {
    /// The files to read and the warnings (paths joined to `dir`), or one error listing every
    /// entry that looks like data but would not be read.
    pub(crate) fn checked(self, dir: &Path) -> Result<(Vec<PathBuf>, Vec<Notice>), Error> {
        let join = |n: Notice| Notice {
            path: dir.join(n.path),
            reason: n.reason,
        };
        if !self.errors.is_empty() {
            return Err(problems(dir, self.errors.into_iter().map(join).collect()));
        }
        Ok((self.read, self.warnings.into_iter().map(join).collect()))
    }
}

/// One error for every problem at once (paths as shown): `path: reason` for one, a list
/// under the directory for more.
pub(crate) fn problems(dir: &Path, mut notices: Vec<Notice>) -> Error {
    if notices.len() == 1 {
        let n = notices.remove(0);
        return Error::Layout {
            dir: n.path,
            reason: n.reason,
        };
    }
    let list: String = notices
        .iter()
        .map(|n| format!("\n  {}: {}", shown(&n.path), n.reason))
        .collect();
    Error::Layout {
        dir: dir.to_path_buf(),
        reason: format!("{} entries would not be read:{list}", notices.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

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
    use EntryKind::*;

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

    /// Every case: the base layout with extra entries (and some removed), and what each entry
    /// not covered by a reported directory gets (reads, then errors, then warnings; every
    /// line a prefix of the actual one).
    #[test]
    fn every_entry_is_read_or_reported() {
        // (name, entries added, entries removed, verdicts)
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, EntryKind)>,
            &'a [&'a str],
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            ("the example layout", vec![], &[], READ_RS.to_vec()),
            (
                "a typo of pools.yaml",
                vec![("codfw/pools.yml", File)],
                &["codfw/pools.yaml"],
                vec![
                    "R eqiad/pools.yaml",
                    "R services.yaml",
                    "E codfw/pools.yml: YAML file not read: did you mean pools.yaml?",
                ],
            ),
            (
                "another case of pools.yaml",
                vec![("codfw/Pools.yaml", File)],
                &["codfw/pools.yaml"],
                vec![
                    "R eqiad/pools.yaml",
                    "R services.yaml",
                    "E codfw/Pools.yaml: YAML file not read: did you mean pools.yaml?",
                ],
            ),
            (
                "a second pools file beside pools.yaml",
                vec![("codfw/pools.yml", File)],
                &[],
                [&READ_RS[..], &["E codfw/pools.yml: YAML file not read: only pools.yaml is read in a datacenter's directory"]].concat(),
            ),
            (
                "notes beside pools.yaml",
                vec![("eqiad/notes.yaml", File)],
                &[],
                [&READ_RS[..], &["E eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a datacenter's directory"]].concat(),
            ),
            (
                "a typo of services.yaml",
                vec![("services.yml", File)],
                &["services.yaml"],
                vec![
                    "R codfw/pools.yaml",
                    "R eqiad/pools.yaml",
                    "E services.yml: YAML file not read: did you mean services.yaml?",
                ],
            ),
            (
                "services.yml beside services.yaml",
                vec![("services.yml", File), ("eqiad.yaml", File)],
                &[],
                [&READ_RS[..], &[
                    "E eqiad.yaml: YAML file not read: only services.yaml is read at the top of the data directory (datacenters are in <dc>/pools.yaml)",
                    "E services.yml: YAML file not read: only services.yaml is read at the top",
                ]].concat(),
            ),
            (
                "pools.yaml at the top",
                vec![("pools.yaml", File)],
                &[],
                [&READ_RS[..], &["E pools.yaml: YAML file not read: pools.yaml belongs in a datacenter's directory, <dc>/pools.yaml"]].concat(),
            ),
            (
                "a pools file one level too deep",
                vec![("eqiad/old", Dir), ("eqiad/old/pools.yaml", File), ("eqiad/old/why.txt", File)],
                &[],
                [&READ_RS[..], &[
                    "E eqiad/old/pools.yaml: YAML file not read: only <dc>/pools.yaml is read, not the files in a datacenter's subdirectories",
                    "W eqiad/old/why.txt: not a data file; not read",
                ]].concat(),
            ),
            (
                "empty datacenter directories",
                vec![
                    ("esams", Dir),
                    ("ulsfo", Dir),
                    ("ulsfo/.gitkeep", File),
                    ("drmrs", Dir),
                    ("drmrs/old", Dir),
                ],
                &[],
                [&READ_RS[..], &[
                    "E drmrs: empty directory without pools.yaml: as a datacenter, all of its objects would be deleted; add pools.yaml (`{}` for no objects) or remove the directory",
                    "E esams: empty directory without pools.yaml",
                    "E ulsfo: empty directory without pools.yaml",
                ]].concat(),
            ),
            (
                "a datacenter directory holding only other YAML",
                vec![("esams", Dir), ("esams/pool.yml", File), ("esams/hosts.yaml", File), ("esams/README", File)],
                &[],
                [&READ_RS[..], &[
                    "E esams/hosts.yaml: YAML file not read: only pools.yaml is read",
                    "E esams/pool.yml: YAML file not read: did you mean pools.yaml?",
                    "W esams/README: not a data file; not read",
                ]].concat(),
            ),
            (
                "documentation and stray files",
                vec![
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
                [&READ_RS[..], &[
                    "W README.md: not a data file; not read",
                    "W docs: directory without pools.yaml or any YAML file, so not a datacenter; not read",
                    "W eqiad/NOTES: not a data file; not read",
                    "W eqiad/scripts: directory without YAML files; not read",
                ]].concat(),
            ),
            (
                "hidden entries say nothing",
                vec![
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
                READ_RS.to_vec(),
            ),
            (
                "a hidden datacenter directory",
                vec![(".esams", Dir), (".esams/pools.yaml", File)],
                &[],
                [&READ_RS[..], &["E .esams: hidden directory with a pools.yaml: hidden entries are not read"]].concat(),
            ),
            (
                "data file names on other kinds",
                vec![("eqiad/pools.yaml", Dir), ("eqiad/pools.yaml/x", File), ("codfw/pools.yaml", Other), ("services.yaml", Symlink)],
                &[],
                vec![
                    "E codfw/pools.yaml: not a regular file (a FIFO, socket, device or git submodule) where a data file is expected; not read",
                    "E eqiad/pools.yaml: a directory where a data file is expected; not read",
                    "E services.yaml: a symbolic link where a data file is expected: symbolic links are not followed; not read (make it a regular file)",
                ],
            ),
            (
                "a datacenter's pools file as a link",
                vec![("eqiad/pools.yaml", Symlink)],
                &[],
                vec![
                    "R codfw/pools.yaml",
                    "R services.yaml",
                    "E eqiad/pools.yaml: a symbolic link where a data file is expected: symbolic links are not followed",
                ],
            ),
            (
                "links and other kinds elsewhere",
                vec![("esams", Symlink), ("eqiad/fifo", Other), ("eqiad/hosts.yaml", Symlink)],
                &[],
                [&READ_RS[..], &[
                    "E eqiad/hosts.yaml: YAML file not read: only pools.yaml is read",
                    "W eqiad/fifo: not a regular file or directory; not read",
                    "W esams: symbolic link, not a data file; not read",
                ]].concat(),
            ),
        ];
        let mut failures = Vec::new();
        for (name, extra, removed, want) in cases {
            let mut entries: Vec<(&str, EntryKind)> = RS
                .iter()
                .copied()
                .filter(|(p, _)| !removed.contains(p))
                .collect();
            entries.extend(extra);
            let got = verdicts(&classify(&listing(&entries)));
            let ok =
                got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g.starts_with(w));
            if !ok {
                failures.push(format!("{name}:\n  want {want:#?}\n  got  {got:#?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
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
            "E mwconfig/b.yml: YAML file not read: only <name>.yaml files are read in mwconfig/"
                .into(),
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
            "E node/drmrs.yaml: not a regular file (a FIFO, socket, device or git submodule)"
                .into(),
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

        // Both layouts at once: both are read, for load to refuse the mix by name.
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
        // node/ without a single <dc>.yaml is not the Python layout.
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

    #[test]
    fn all_errors_are_reported_at_once() {
        let l = listing(&[
            ("services.yaml", File),
            ("eqiad", Dir),
            ("eqiad/pools.yaml", File),
            ("eqiad/notes.yaml", File),
            ("codfw", Dir),
            ("codfw/pools.yml", File),
            ("esams", Dir),
        ]);
        let e = classify(&l).checked(Path::new("conf")).unwrap_err();
        assert!(e.is_bad_input());
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
        // One problem: the entry's own path in front.
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
        // Warnings only: the files to read, and the warnings with their paths as shown.
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
}
