//! A commit: the data directory's tree at a revision, read through libgit2 without touching
//! the work tree; blobs are sized by their header before they are inflated.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conftool_trust::{self as trust, Privilege};

use super::{not_for_caller, Files, MAX_FILE_SIZE};
use crate::caps::{Cap, Caps};
use crate::error::{Error, GitError};
use crate::layout::{classify_with, walk, EntryKind, Listing, Walk, POOLS_FILE};

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
