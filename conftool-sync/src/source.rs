//! Reading a data directory's files, from the working tree or from a git commit.
//!
//! Every entry under the directory is listed, and [`crate::layout::classify`] decides what
//! is read (`services.yaml`, `<dc>/pools.yaml`, the Python conftool's `node/<dc>.yaml`), what
//! stops the sync (something that looks like data but would not be read) and what is only
//! worth a warning; both sources list the same way and are judged by the same function.
//! Parsing is [`crate::load`]'s job; this module is the I/O half.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::layout::{classify, walk, EntryKind, Listing, Notice, Walk, POOLS_FILE};

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
}

impl Files {
    /// Files given in memory (for tests and tools that generate data). [`crate::load`]
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
        }
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

/// Read the data files of `dir` from the file system.
pub fn read_dir(dir: &Path) -> Result<Files, Error> {
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let (read, warnings) = classify(&list_dir(dir)?).checked(dir)?;
    let mut files = Files {
        dir: dir.to_path_buf(),
        warnings,
        ..Files::default()
    };
    for rel in read {
        let full = dir.join(&rel);
        let text = std::fs::read(&full).map_err(io(&full))?;
        let text = String::from_utf8(text).map_err(|_| Error::Yaml {
            file: full.clone(),
            line: None,
            message: "not valid UTF-8".into(),
        })?;
        files.files.insert(rel, text);
    }
    Ok(files)
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
/// `dir`, ignoring the working tree entirely.
pub fn read_git(dir: &Path, rev: &str) -> Result<Files, Error> {
    let repo = git2::Repository::discover(dir).map_err(|e| {
        Error::Git(format!(
            "{}: no git repository: {}",
            dir.display(),
            e.message()
        ))
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::Git("bare repositories are not supported".into()))?;
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
            Error::Git(format!(
                "{} is not inside {}",
                dir.display(),
                workdir.display()
            ))
        })?;
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| Error::Git(format!("revision {rev:?}: {}", e.message())))?;
    let root = commit.tree()?;
    let tree = if rel.as_os_str().is_empty() {
        root
    } else {
        let entry = root
            .get_path(&rel)
            .map_err(|_| Error::Git(format!("{} does not exist at {rev}", rel.display())))?;
        entry
            .to_object(&repo)?
            .into_tree()
            .map_err(|_| Error::Git(format!("{} is not a directory at {rev}", rel.display())))?
    };
    let (listing, ids) = list_tree(&repo, &tree)?;
    let (read, warnings) = classify(&listing).checked(dir)?;
    let mut files = Files {
        dir: dir.to_path_buf(),
        files: BTreeMap::new(),
        git_rev: Some(commit.id().to_string()),
        warnings,
    };
    for path in read {
        let id = ids
            .get(&path)
            .ok_or_else(|| Error::Git(format!("{} vanished from the listing", path.display())))?;
        let blob = repo.find_blob(*id)?;
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

    /// Make `dir` a git repository with everything in it committed; returns the commit.
    fn commit_all(dir: &Path) -> String {
        let repo = git2::Repository::init(dir).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new("t", "t@example.invalid", &git2::Time::new(0, 0)).unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "data", &tree, &[])
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
