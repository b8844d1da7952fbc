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
//!
//! The parts: the rules that judge one entry are in `rules` (and the hints that name what a
//! stray YAML file was probably meant to be in `hints`); `report` turns the verdicts into the
//! files to read or one error listing every problem.

mod hints;
mod report;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub(crate) use report::problems;
use rules::{Ctx, Verdict};

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

/// Judge every entry of a listing. Pure: the same listing gives the same answer, whether it
/// came from a work tree, a git commit or memory.
pub fn classify(listing: &Listing) -> Classified {
    classify_with(listing, &[])
}

/// [`classify`], with the object types a schema declares: their `<type>/*.yaml` files are
/// read too.
pub fn classify_with(listing: &Listing, types: &[String]) -> Classified {
    let ctx = Ctx::new(listing, types);
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
