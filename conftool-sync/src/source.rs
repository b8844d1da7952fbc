//! Reading a data directory's files, from the working tree or from a git commit.
//!
//! Every entry under the directory is listed, and [`crate::layout::classify`] decides what
//! is read (`services.yaml`, `<dc>/pools.yaml`, the Python conftool's `node/<dc>.yaml`), what
//! stops the sync (something that looks like data but would not be read) and what is only
//! worth a warning; both sources list the same way and are judged by the same function.
//! Parsing is [`mod@crate::load`]'s job; this module is the I/O half.
//!
//! The checkout may be hostile (CI syncs merge requests as root), so reading is careful:
//! - Only regular files are read. In the work tree each data file is opened from a handle on
//!   the data directory, one component at a time, without following symbolic links
//!   (`O_NOFOLLOW`) and without blocking (`O_NONBLOCK`: a FIFO does not wait for a writer),
//!   and the opened handle is checked to be a regular file (`fstat`), so an entry swapped for
//!   a link or a FIFO after it was listed is refused like one that was there from the start.
//!   In git, links (mode 120000) and submodules are refused when listed; their target text is
//!   never parsed.
//! - No data file may be larger than [`MAX_FILE_SIZE`]. The size is checked before reading
//!   (the file's `fstat`, the git object's header), and the work tree is read through a
//!   bound of the limit plus one byte, so a file that grows while it is read, or whose size
//!   is misreported, cannot go beyond it either. (libgit2 allocates the size an object's
//!   header declares and refuses a body longer than that, so the header check bounds it.)
//! - Running for another user (sudo: [`conftool_trust::Privilege`]), the directory must
//!   be one that user could list themselves: it is walked and opened on descriptors
//!   ([`conftool_trust::open_dir_for`]) before anything in it is listed, and every
//!   directory and data file opened from it must be one they could search and read (judged
//!   on the opened handle), so no error can quote a file they could not read. With
//!   `--git-rev`, the data directory and the repository's git directory must be ones they
//!   could list. (The listing itself goes by path: a caller who swaps a subdirectory while
//!   the sync runs could have names listed in an error, never content.)

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use conftool_trust::{self as trust, Caller, Privilege};
use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use crate::caps::{Cap, Caps};
use crate::error::Error;
use crate::error::GitError;
use crate::layout::{
    classify_with, walk, EntryKind, Listing, Notice, Walk, POOLS_FILE, SPECIAL_REASON,
    SYMLINK_REASON,
};

/// The largest data file (`services.yaml`, a `pools.yaml`, a `node/<dc>.yaml`) a sync reads:
/// 64 MiB, about 1,000 times the largest real one (a fleet's biggest datacenter is tens of
/// KiB), and small enough that parsing it stays within a CI runner's memory.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// The data files of one directory, keyed by path relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// The directory, as given (used to name files in messages).
    pub dir: PathBuf,
    /// Relative path -> contents.
    pub files: BTreeMap<PathBuf, String>,
    /// The commit the files were read from, if they came from git.
    pub git_rev: Option<String>,
    /// Entries that were not read and are not errors (a README, another tool's directory),
    /// each with its path (joined to `dir`) and why, for the caller to show: the library
    /// never prints.
    pub warnings: Vec<Notice>,
    /// The object types of a schema whose `<type>/*.yaml` files were read (see
    /// [`crate::layout::classify_with`]); empty without a schema.
    pub types: Vec<String>,
}

impl Files {
    /// Files given in memory (for tests and tools that generate data). [`mod@crate::load`]
    /// judges their paths by the same rules as a directory's entries: a file it would not
    /// read is an error rather than ignored.
    pub fn in_memory(
        dir: impl Into<PathBuf>,
        files: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Files {
            dir: dir.into(),
            files: files
                .into_iter()
                .map(|(k, v)| (PathBuf::from(k), v))
                .collect(),
            git_rev: None,
            warnings: Vec::new(),
            types: Vec::new(),
        }
    }

    /// The same files, judged as a directory with these schema-declared object types.
    pub fn with_types(mut self, types: Vec<String>) -> Self {
        self.types = types;
        self
    }

    /// The path to show for a relative file.
    pub fn display_path(&self, rel: &Path) -> PathBuf {
        self.dir.join(rel)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, source }
}

/// Read the data files of `dir` from the file system. `dir` itself may be a symbolic link;
/// nothing under it is followed (see the module's documentation).
pub fn read_dir(dir: &Path) -> Result<Files, Error> {
    read_dir_capped(dir, &[], &Caps::default())
}

/// [`read_dir`], also reading the `<type>/*.yaml` files of the schema-declared `types`.
pub fn read_dir_with(dir: &Path, types: &[String]) -> Result<Files, Error> {
    read_dir_capped(dir, types, &Caps::default())
}

/// [`read_dir_with`], within `caps` (the data files' bytes together: a file that would pass
/// [`Caps::max_bytes`] is refused before it is read).
pub fn read_dir_capped(dir: &Path, types: &[String], caps: &Caps) -> Result<Files, Error> {
    read_dir_limited(dir, MAX_FILE_SIZE, types, caps.max_bytes)
}

pub(crate) fn read_dir_limited(
    dir: &Path,
    limit: u64,
    types: &[String],
    max_total: u64,
) -> Result<Files, Error> {
    // Running for another user (sudo), the directory must be one they could read: checked
    // before anything in it is listed, on the descriptor the files are then opened from.
    let caller = Privilege::current().caller();
    let checked = match caller {
        Some(c) => Some(trust::open_dir_for(dir, c).map_err(|e| not_for_caller(dir, e))?),
        None => None,
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let (read, warnings) = classify_with(&list_dir(dir)?, types).checked(dir)?;
    // The handle every data file is opened from: what it names stays this directory even
    // if the path is changed under the sync.
    let root = match checked {
        Some(root) => root,
        None => File::from(
            open(
                dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io(dir)(e.into()))?,
        ),
    };
    let mut files = Files {
        dir: dir.to_path_buf(),
        warnings,
        types: types.to_vec(),
        ..Files::default()
    };
    let mut total = 0u64;
    for rel in read {
        let full = dir.join(&rel);
        let file = open_data_file(&root, dir, &rel, caller)?;
        // Bounded by what is left under the cap on all files, too.
        let room = max_total.saturating_sub(total);
        let text = read_bounded(file, &full, limit.min(room))
            .map_err(|e| past_total(e, total, limit, max_total))?;
        total += text.len() as u64;
        let text = String::from_utf8(text).map_err(|_| Error::Yaml {
            file: full.clone(),
            line: None,
            message: "not valid UTF-8".into(),
        })?;
        files.files.insert(rel, text);
    }
    Ok(files)
}

/// Why a file or directory is not read for the user the process runs for.
fn not_for_caller(path: &Path, e: trust::ReadError) -> Error {
    match e {
        trust::ReadError::Io(source) => io(path)(source),
        e => io(path)(std::io::Error::other(e)),
    }
}

/// Open `rel` (relative to the directory `root`, shown as `dir`) for reading: each component
/// without following links, the file without blocking, and only if it is a regular file
/// (and, running for another user, `caller`, one they could reach and read).
fn open_data_file(
    root: &File,
    dir: &Path,
    rel: &Path,
    caller: Option<Caller>,
) -> Result<File, Error> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::Layout {
                dir: dir.join(rel),
                reason: "not a plain relative path; not read".into(),
            }),
        })
        .collect::<Result<_, _>>()?;
    let Some((file_name, parents)) = names.split_last() else {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "an empty path; not read".into(),
        });
    };
    let mut at = dir.to_path_buf();
    let mut parent: Option<File> = None;
    for name in parents {
        at.push(name);
        let base = parent.as_ref().unwrap_or(root);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(base, *name, flags, Mode::empty()) {
            Ok(fd) => {
                let fd = File::from(fd);
                if let Some(c) = caller {
                    let meta = fd.metadata().map_err(io(&at))?;
                    if !c.can_search(&meta) {
                        let why = "no permission to search it".to_string();
                        return Err(not_for_caller(&at, trust::ReadError::NotForCaller(why)));
                    }
                }
                parent = Some(fd)
            }
            // A link is ELOOP, or ENOTDIR with O_DIRECTORY: say which it is.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(not_followed(&at)),
            Err(e) => return Err(io(&at)(e.into())),
        }
    }
    at.push(file_name);
    let base = parent.as_ref().unwrap_or(root);
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let file = match openat(base, *file_name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::ELOOP) => {
            return Err(Error::Layout {
                dir: at,
                reason: SYMLINK_REASON.into(),
            })
        }
        Err(e) => return Err(io(&at)(e.into())),
    };
    // The handle, not the path: what was opened is what is judged.
    let meta = file.metadata().map_err(io(&at))?;
    if !meta.is_file() {
        return Err(Error::Layout {
            dir: at,
            reason: SPECIAL_REASON.into(),
        });
    }
    if caller.is_some_and(|c| !c.can_read(&meta)) {
        let why = "no permission to read it".to_string();
        return Err(not_for_caller(&at, trust::ReadError::NotForCaller(why)));
    }
    Ok(file)
}

/// The error for a directory component that could not be opened as one without following
/// a link.
fn not_followed(path: &Path) -> Error {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    Error::Layout {
        dir: path.to_path_buf(),
        reason: if link {
            "a symbolic link where a directory is expected: symbolic links are not followed; \
             not read"
                .into()
        } else {
            "not a directory; not read".into()
        },
    }
}

/// Read all of `file` (shown as `path`), refusing one larger than `limit` bytes: before
/// reading, by its size, and while reading, by never reading more than `limit + 1` bytes.
fn read_bounded(file: File, path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let size = file.metadata().map_err(io(path))?.len();
    if size > limit {
        return Err(Error::TooLarge {
            file: path.to_path_buf(),
            size: Some(size),
            limit,
        });
    }
    // The stated size is only a hint: never more than the limit plus the byte that tells.
    let hint = usize::try_from(size.min(limit)).unwrap_or(0);
    let mut buf = Vec::with_capacity(hint.saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io(path))?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            file: path.to_path_buf(),
            size: None,
            limit,
        });
    }
    Ok(buf)
}

/// The error for a file of `size` bytes after `total` bytes of others, if that passes the
/// cap on all data files together.
fn over_total(file: &Path, total: u64, size: u64, max_total: u64) -> Option<Error> {
    let with = total.saturating_add(size);
    (with > max_total).then(|| Error::OverCap {
        file: file.to_path_buf(),
        line: None,
        cap: Cap::Bytes {
            limit: max_total,
            total: Some(with),
        },
    })
}

/// A file refused by [`read_bounded`] when it was bounded by the smaller of the per-file
/// `limit` and the room left under the cap on all files (after `total` bytes): said as the
/// limit it passed.
fn past_total(e: Error, total: u64, limit: u64, max_total: u64) -> Error {
    let Error::TooLarge { file, size, .. } = e else {
        return e;
    };
    let bytes_cap = |total| Error::OverCap {
        file: file.clone(),
        line: None,
        cap: Cap::Bytes {
            limit: max_total,
            total,
        },
    };
    match size {
        Some(size) if size <= limit => bytes_cap(Some(total.saturating_add(size))),
        // It grew while being read, past the room left under the cap on all files.
        None if max_total.saturating_sub(total) < limit => bytes_cap(None),
        _ => Error::TooLarge { file, size, limit },
    }
}

/// Every entry under `dir`, without following symbolic links.
fn list_dir(dir: &Path) -> Result<Listing, Error> {
    let kind_of = |t: std::fs::FileType| {
        if t.is_dir() {
            EntryKind::Dir
        } else if t.is_file() {
            EntryKind::File
        } else if t.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        }
    };
    let mut listing = Listing::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let full = dir.join(&rel);
        for entry in std::fs::read_dir(&full).map_err(io(&full))? {
            let entry = entry.map_err(io(&full))?;
            let path = rel.join(entry.file_name());
            let kind = kind_of(entry.file_type().map_err(io(&entry.path()))?);
            if kind == EntryKind::Dir {
                match walk(&path) {
                    Walk::All => todo.push(path.clone()),
                    Walk::PoolsFile => {
                        let pools = entry.path().join(POOLS_FILE);
                        match std::fs::symlink_metadata(&pools) {
                            Ok(m) => {
                                listing.insert(path.join(POOLS_FILE), kind_of(m.file_type()));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io(&pools)(e)),
                        }
                    }
                    Walk::Nothing => {}
                }
            }
            listing.insert(path, kind);
        }
    }
    Ok(listing)
}

/// Read the data files of `dir` as committed at `rev` in the git repository containing
/// `dir`, ignoring the working tree entirely. Links and submodules where data files are
/// expected are refused, and no blob larger than [`MAX_FILE_SIZE`] is read.
pub fn read_git(dir: &Path, rev: &str) -> Result<Files, Error> {
    read_git_capped(dir, rev, &[], &Caps::default())
}

/// [`read_git`], also reading the `<type>/*.yaml` files of the schema-declared `types`.
pub fn read_git_with(dir: &Path, rev: &str, types: &[String]) -> Result<Files, Error> {
    read_git_capped(dir, rev, types, &Caps::default())
}

/// [`read_git_with`], within `caps` (the blobs' bytes together: one that would pass
/// [`Caps::max_bytes`] is refused by its header, before it is inflated).
pub fn read_git_capped(
    dir: &Path,
    rev: &str,
    types: &[String],
    caps: &Caps,
) -> Result<Files, Error> {
    read_git_limited(dir, rev, MAX_FILE_SIZE, types, caps.max_bytes)
}

pub(crate) fn read_git_limited(
    dir: &Path,
    rev: &str,
    limit: u64,
    types: &[String],
    max_total: u64,
) -> Result<Files, Error> {
    // Running for another user (sudo), the data directory and the repository's git
    // directory must be ones they could list themselves.
    let caller = Privilege::current().caller();
    if let Some(c) = caller {
        trust::open_dir_for(dir, c).map_err(|e| not_for_caller(dir, e))?;
    }
    let repo = git2::Repository::discover(dir).map_err(|e| {
        Error::Git(GitError::NoRepository {
            dir: dir.to_path_buf(),
            message: e.message().to_string(),
        })
    })?;
    if let Some(c) = caller {
        trust::open_dir_for(repo.path(), c).map_err(|e| not_for_caller(repo.path(), e))?;
    }
    let workdir = repo.workdir().ok_or(Error::Git(GitError::Bare))?;
    let canon = |p: &Path| {
        p.canonicalize().map_err(|source| Error::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let rel = canon(dir)?
        .strip_prefix(canon(workdir)?)
        .map(Path::to_path_buf)
        .map_err(|_| {
            Error::Git(GitError::Outside {
                dir: dir.to_path_buf(),
                workdir: workdir.to_path_buf(),
            })
        })?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            Error::Git(GitError::Revision {
                rev: rev.to_string(),
                message: e.message().to_string(),
            })
        })?;
    let root = commit.tree()?;
    let tree = if rel.as_os_str().is_empty() {
        root
    } else {
        let entry = root.get_path(&rel).map_err(|_| {
            Error::Git(GitError::Missing {
                path: rel.clone(),
                rev: rev.to_string(),
            })
        })?;
        entry.to_object(&repo)?.into_tree().map_err(|_| {
            Error::Git(GitError::NotADirectory {
                path: rel.clone(),
                rev: rev.to_string(),
            })
        })?
    };
    let (listing, ids) = list_tree(&repo, &tree)?;
    let (read, warnings) = classify_with(&listing, types).checked(dir)?;
    let mut files = Files {
        dir: dir.to_path_buf(),
        files: BTreeMap::new(),
        git_rev: Some(commit.id().to_string()),
        warnings,
        types: types.to_vec(),
    };
    let mut total = 0u64;
    for path in read {
        let id = ids
            .get(&path)
            .ok_or_else(|| Error::Git(GitError::Vanished { path: path.clone() }))?;
        // The header first: the blob is not inflated if it is too large.
        let too_large = |size: u64| Error::TooLarge {
            file: dir.join(&path),
            size: Some(size),
            limit,
        };
        let (size, _) = repo.odb()?.read_header(*id)?;
        if size as u64 > limit {
            return Err(too_large(size as u64));
        }
        if let Some(e) = over_total(&dir.join(&path), total, size as u64, max_total) {
            return Err(e);
        }
        let blob = repo.find_blob(*id)?;
        if blob.size() as u64 > limit {
            return Err(too_large(blob.size() as u64));
        }
        if let Some(e) = over_total(&dir.join(&path), total, blob.size() as u64, max_total) {
            return Err(e);
        }
        total += blob.size() as u64;
        let text = String::from_utf8(blob.content().to_vec()).map_err(|_| Error::Yaml {
            file: dir.join(&path),
            line: None,
            message: format!("not valid UTF-8 (at {rev})"),
        })?;
        files.files.insert(path, text);
    }
    Ok(files)
}

/// Every entry of a git tree, and the object id of each.
fn list_tree(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
) -> Result<(Listing, BTreeMap<PathBuf, git2::Oid>), Error> {
    let kind_of = |e: &git2::TreeEntry<'_>| match e.kind() {
        Some(git2::ObjectType::Tree) => EntryKind::Dir,
        Some(git2::ObjectType::Blob) if e.filemode() == 0o120000 => EntryKind::Symlink,
        Some(git2::ObjectType::Blob) => EntryKind::File,
        _ => EntryKind::Other,
    };
    let mut listing = Listing::new();
    let mut ids = BTreeMap::new();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
        let path = Path::new(parent).join(name);
        let kind = kind_of(entry);
        listing.insert(path.clone(), kind);
        ids.insert(path.clone(), entry.id());
        if kind != EntryKind::Dir {
            return git2::TreeWalkResult::Ok;
        }
        match walk(&path) {
            Walk::All => git2::TreeWalkResult::Ok,
            Walk::Nothing => git2::TreeWalkResult::Skip,
            Walk::PoolsFile => {
                match repo.find_tree(entry.id()) {
                    Ok(t) => {
                        if let Some(e) = t.get_name(POOLS_FILE) {
                            let pools = path.join(POOLS_FILE);
                            listing.insert(pools.clone(), kind_of(&e));
                            ids.insert(pools, e.id());
                        }
                    }
                    Err(e) => failure = Some(Error::from(e)),
                }
                git2::TreeWalkResult::Skip
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok((listing, ids)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

    /// Write `files` (relative path -> contents; a path ending in `/` is an empty directory)
    /// under `dir`.
    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let p = dir.join(rel);
            if rel.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
                continue;
            }
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// Make `dir` a git repository (if it is not one) with everything in it committed;
    /// returns the commit.
    fn commit_all(dir: &Path) -> String {
        let repo = git2::Repository::init(dir).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "data", &tree, &parents)
            .unwrap()
            .to_string()
    }

    const SERVICES: &str = "c:\n  s: {port: 1, default_values: {pooled: \"no\", weight: 1}}\n";

    /// The work tree and the commit of the same tree give the same files and the same
    /// warnings; `.git` (the data directory is the repository's root) says nothing.
    #[test]
    fn work_tree_and_git_are_judged_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(
            dir,
            &[
                ("services.yaml", SERVICES),
                ("eqiad/pools.yaml", "c: {}\n"),
                ("codfw/pools.yaml", "c: {}\n"),
                ("README.md", "# data\n"),
                ("docs/layout.md", "..."),
                ("eqiad/NOTES", "..."),
                (".gitignore", "*.swp\n"),
                ("eqiad/.pools.yaml.swp", "x"),
            ],
        );
        let head = commit_all(dir);
        let tree = read_dir(dir).unwrap();
        let git = read_git(dir, "HEAD").unwrap();
        let paths: Vec<&Path> = tree.files.keys().map(PathBuf::as_path).collect();
        assert_eq!(
            paths,
            ["codfw/pools.yaml", "eqiad/pools.yaml", "services.yaml"].map(Path::new)
        );
        let warned: Vec<String> = tree
            .warnings
            .iter()
            .map(|n| {
                format!(
                    "{}: {}",
                    n.path.strip_prefix(dir).unwrap().display(),
                    n.reason
                )
            })
            .collect();
        assert_eq!(
            warned,
            [
                "README.md: not a data file; not read",
                "docs: directory without pools.yaml or any YAML file, so not a datacenter; not read",
                "eqiad/NOTES: not a data file; not read",
            ]
        );
        assert_eq!(tree.warnings[0].path, dir.join("README.md"));
        assert_eq!(git.git_rev.as_deref(), Some(head.as_str()));
        assert_eq!((&git.files, &git.warnings), (&tree.files, &tree.warnings));
    }

    /// The same mistakes give the same error, naming every offending path, from both.
    #[test]
    fn work_tree_and_git_refuse_alike() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(
            dir,
            &[
                ("services.yaml", SERVICES),
                ("eqiad/pools.yaml", "c: {}\n"),
                ("eqiad/notes.yaml", "x: 1\n"),
                ("codfw/pools.yml", "c: {}\n"),
                // Git keeps no empty directory: a placeholder, which is hidden, so the
                // directory is empty all the same.
                ("esams/.gitkeep", ""),
                (".ulsfo/pools.yaml", "c: {}\n"),
                ("README.md", "# data\n"),
            ],
        );
        commit_all(dir);
        let want = format!(
            "{d}: 4 entries would not be read:\n  \
             {d}/.ulsfo: hidden directory with a pools.yaml: hidden entries are not read (a \
             datacenter's name must not start with '.'); rename it or move it out of the data \
             directory\n  \
             {d}/codfw/pools.yml: YAML file not read: did you mean pools.yaml?\n  \
             {d}/eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a \
             datacenter's directory\n  \
             {d}/esams: empty directory without pools.yaml: as a datacenter, all of its objects \
             would be deleted; add pools.yaml (`{{}}` for no objects) or remove the directory",
            d = dir.display()
        );
        let tree = read_dir(dir).unwrap_err();
        assert!(tree.is_bad_input());
        assert_eq!(tree.to_string(), want);
        assert_eq!(read_git(dir, "HEAD").unwrap_err().to_string(), want);

        // Truly empty (git cannot hold it): the work tree says so just the same.
        std::fs::remove_file(dir.join("esams/.gitkeep")).unwrap();
        assert_eq!(read_dir(dir).unwrap_err().to_string(), want);
    }

    const SECRET: &str = "token-5f1c0ffee-do-not-print";

    /// A secret outside the checkout, as a file the sync's user can read.
    fn secret(tmp: &Path) -> PathBuf {
        let p = tmp.join("secret");
        std::fs::write(&p, format!("{SECRET}: [x]\n")).unwrap();
        p
    }

    /// A data file that is a link, to a secret or to a device, from the work tree and from
    /// git alike: an error naming the link, never its target or content.
    #[test]
    fn links_where_data_files_are_expected_are_refused_in_both_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = secret(tmp.path());
        let dir = tmp.path().join("conf");
        write(
            &dir,
            &[("services.yaml", SERVICES), ("codfw/pools.yaml", "c: {}\n")],
        );
        std::fs::create_dir(dir.join("eqiad")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("eqiad/pools.yaml")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("services.yaml.tmp")).unwrap();
        commit_all(&dir);
        let want = format!(
            "{}/eqiad/pools.yaml: a symbolic link where a data file is expected: symbolic \
             links are not followed; not read (make it a regular file)",
            dir.display()
        );
        for e in [
            read_dir(&dir).unwrap_err(),
            read_git(&dir, "HEAD").unwrap_err(),
        ] {
            assert!(e.is_bad_input());
            assert_eq!(e.to_string(), want);
            assert!(!format!("{e:?}").contains(SECRET));
        }
        // services.yaml itself a link to /dev/zero: refused without reading a byte.
        std::fs::remove_file(dir.join("eqiad/pools.yaml")).unwrap();
        write(&dir, &[("eqiad/pools.yaml", "c: {}\n")]);
        std::fs::remove_file(dir.join("services.yaml")).unwrap();
        std::fs::rename(dir.join("services.yaml.tmp"), dir.join("services.yaml")).unwrap();
        commit_all(&dir);
        let want = format!(
            "{}/services.yaml: a symbolic link where a data file is expected",
            dir.display()
        );
        for e in [
            read_dir(&dir).unwrap_err(),
            read_git(&dir, "HEAD").unwrap_err(),
        ] {
            assert!(e.to_string().starts_with(&want), "{e}");
        }
    }

    /// A FIFO and a socket where data files are expected: refused when listed, without
    /// waiting for a writer.
    #[test]
    fn special_files_where_data_files_are_expected_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, &[("services.yaml", SERVICES), ("codfw/", "")]);
        std::fs::create_dir(dir.join("eqiad")).unwrap();
        nix::unistd::mkfifo(&dir.join("eqiad/pools.yaml"), Mode::S_IRWXU).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("codfw/pools.yaml")).unwrap();
        let e = read_dir(dir).unwrap_err();
        let special = "not a regular file (a FIFO, socket, device or git submodule) where a \
                       data file is expected; not read";
        assert_eq!(
            e.to_string(),
            format!(
                "{d}: 2 entries would not be read:\n  {d}/codfw/pools.yaml: {special}\n  \
                 {d}/eqiad/pools.yaml: {special}",
                d = dir.display()
            )
        );
    }

    /// Entries swapped after listing (for a link, a FIFO, or a directory for a link to one)
    /// are refused when opened: the checks are made on what is opened.
    #[test]
    fn a_swap_after_listing_is_refused_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = secret(tmp.path());
        let outside = tmp.path().join("outside");
        write(&outside, &[("pools.yaml", "c: {}\n")]);
        let dir = tmp.path().join("conf");
        write(
            &dir,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        std::os::unix::fs::symlink(&secret, dir.join("link.yaml")).unwrap();
        nix::unistd::mkfifo(&dir.join("fifo.yaml"), Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("codfw")).unwrap();
        let root = File::open(&dir).unwrap();
        let open = |rel: &str| open_data_file(&root, &dir, Path::new(rel), None).map(|_| ());
        let d = dir.display();
        assert!(open("eqiad/pools.yaml").is_ok());
        assert_eq!(
            open("link.yaml").unwrap_err().to_string(),
            format!("{d}/link.yaml: {SYMLINK_REASON}")
        );
        assert_eq!(
            open("fifo.yaml").unwrap_err().to_string(),
            format!("{d}/fifo.yaml: {SPECIAL_REASON}")
        );
        assert_eq!(
            open("codfw/pools.yaml").unwrap_err().to_string(),
            format!(
                "{d}/codfw: a symbolic link where a directory is expected: symbolic links are \
                 not followed; not read"
            )
        );
        assert_eq!(
            open("services.yaml/x").unwrap_err().to_string(),
            format!("{d}/services.yaml: not a directory; not read")
        );
    }

    /// The data directory itself may be a link (an operator's choice).
    #[test]
    fn the_data_directory_itself_may_be_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("conf-v2");
        write(
            &real,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        let link = tmp.path().join("conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let files = read_dir(&link).unwrap();
        assert_eq!(files.files.len(), 2);
        assert_eq!(files.dir, link);
    }

    /// Files larger than the limit are refused, by their size before reading (work tree and
    /// git), and while reading when their size is misreported (`/proc` files say 0).
    #[test]
    fn data_files_larger_than_the_limit_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // 34 bytes and 7.
        write(
            dir,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        commit_all(dir);
        let services = SERVICES.len() as u64;
        assert!(read_dir_limited(dir, services, &[], u64::MAX).is_ok());
        assert!(read_git_limited(dir, "HEAD", services, &[], u64::MAX).is_ok());
        let want = format!(
            "{}/services.yaml: {services} bytes ({services} bytes) is more than the {} bytes a \
             data file may be",
            dir.display(),
            services - 1
        );
        for e in [
            read_dir_limited(dir, services - 1, &[], u64::MAX).unwrap_err(),
            read_git_limited(dir, "HEAD", services - 1, &[], u64::MAX).unwrap_err(),
        ] {
            assert!(e.is_bad_input());
            assert_eq!(e.to_string(), want);
        }
        // A sparse file one byte over the real limit: refused by its size, nothing read.
        let big = File::create(dir.join("eqiad/pools.yaml")).unwrap();
        big.set_len(MAX_FILE_SIZE + 1).unwrap();
        assert_eq!(
            read_dir(dir).unwrap_err().to_string(),
            format!(
                "{}/eqiad/pools.yaml: 64.0 MiB (67108865 bytes) is more than the 64 MiB a data \
                 file may be",
                dir.display()
            )
        );
        // A file whose stated size is 0 but that holds more: stopped at the limit.
        let status = File::open("/proc/self/status").unwrap();
        assert_eq!(status.metadata().unwrap().len(), 0);
        let e = read_bounded(status, Path::new("/proc/self/status"), 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/self/status: more than 100 bytes read (it grew while being read, or its size \
             was misreported), more than the 100 bytes a data file may be"
        );
        let small = File::open("/proc/self/status").unwrap();
        assert!(read_bounded(small, Path::new("/proc/self/status"), 1 << 20).is_ok());
    }

    /// The files' sizes are added up as they are read; the one that would pass the cap on
    /// all of them is refused before it is read, by its stated size (work tree and git) or
    /// while it is read (a size misreported). Exactly at the cap is fine.
    #[test]
    fn data_files_together_larger_than_the_cap_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(
            dir,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        commit_all(dir);
        let all = SERVICES.len() as u64 + 6;
        let caps = |max_bytes| Caps {
            max_bytes,
            max_objects: 1,
        };
        assert!(read_dir_capped(dir, &[], &caps(all)).is_ok());
        assert!(read_git_capped(dir, "HEAD", &[], &caps(all)).is_ok());
        let want = format!(
            "{}/services.yaml: the data files would add up to {all} bytes with this one, more \
             than the {} bytes a sync reads; not read, nothing parsed (raise the cap with \
             --max-input-bytes if this is intended)",
            dir.display(),
            all - 1
        );
        // Files are read in path order: eqiad/pools.yaml first, then services.yaml.
        for e in [
            read_dir_capped(dir, &[], &caps(all - 1)).unwrap_err(),
            read_git_capped(dir, "HEAD", &[], &caps(all - 1)).unwrap_err(),
        ] {
            assert!(e.is_bad_input());
            assert_eq!(e.to_string(), want);
        }
        // A file whose stated size is 0 but that holds more: stopped at what is left.
        let status = File::open("/proc/self/status").unwrap();
        let e = read_bounded(status, Path::new("/proc/self/status"), 100).unwrap_err();
        assert_eq!(
            past_total(e, 900, MAX_FILE_SIZE, 1000).to_string(),
            "/proc/self/status: the data files add up to more than the 1000 bytes a sync reads; \
             nothing parsed (raise the cap with --max-input-bytes if this is intended)"
        );
        // Past the per-file limit too: that limit is the one named.
        let e = Error::TooLarge {
            file: "x".into(),
            size: Some(MAX_FILE_SIZE + 1),
            limit: 10,
        };
        assert!(past_total(e, 0, MAX_FILE_SIZE, 10)
            .to_string()
            .ends_with("more than the 64 MiB a data file may be"));
    }

    #[test]
    fn files_given_in_memory_are_judged_too() {
        let f = Files::in_memory(
            "conf",
            [
                ("services.yaml".to_string(), SERVICES.to_string()),
                ("eqiad/pools.yaml".to_string(), "c: {}\n".to_string()),
                ("eqiad/notes.yaml".to_string(), "x: 1\n".to_string()),
            ],
        );
        let e = crate::load(&f).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conf/eqiad/notes.yaml: YAML file not read: only pools.yaml is read in a \
             datacenter's directory"
        );
    }
}
