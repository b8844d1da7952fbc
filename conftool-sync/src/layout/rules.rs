//! The verdict on one entry of a [`Listing`]: the table in the module header, as code.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{hidden, EntryKind, Listing, NODE_DIR, POOLS_FILE, SPECIAL_REASON, SYMLINK_REASON};
use crate::labels::LABELS_DIR;
use crate::load::SERVICES_FILE;

/// Whether a file name says YAML (`.yaml` or `.yml`, in any case).
fn is_yaml(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// The verdict on one entry.
pub(super) enum Verdict {
    Read,
    /// Nothing to say about the entry itself; its contents are judged one by one.
    Descend,
    /// Nothing to say, about it or its contents.
    Silent,
    Error(String),
    Warn(String),
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

/// What the verdict on one entry depends on besides the entry: the rest of the listing.
pub(super) struct Ctx<'a> {
    listing: &'a Listing,
    /// The Python layout: some `node/<dc>.yaml` exists.
    pub(super) python: bool,
    /// Object types declared by a schema: `<type>/*.yaml` are read.
    pub(super) types: &'a [String],
}

impl<'a> Ctx<'a> {
    pub(super) fn new(listing: &'a Listing, types: &'a [String]) -> Self {
        Ctx {
            listing,
            python: listing.iter().any(|(p, k)| is_node_file(p, *k)),
            types,
        }
    }

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

    pub(super) fn has(&self, path: &Path) -> bool {
        self.listing.contains_key(path)
    }

    pub(super) fn verdict(&self, path: &Path, kind: EntryKind) -> Verdict {
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
}
