//! Reading a data directory's files, from the working tree or from a git commit.
//!
//! Only the files a layout uses are read: `services.yaml`, `<dc>/pools.yaml`, and the Python
//! conftool's `node/<dc>.yaml`. Parsing them is [`crate::load`]'s job; this module is the
//! I/O half.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The data files of one directory, keyed by path relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// The directory, as given (used to name files in messages).
    pub dir: PathBuf,
    /// Relative path -> contents.
    pub files: BTreeMap<PathBuf, String>,
    /// The commit the files were read from, if they came from git.
    pub git_rev: Option<String>,
}

impl Files {
    /// Files given in memory (for tests and tools that generate data).
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
        }
    }

    /// The path to show for a relative file.
    pub fn display_path(&self, rel: &Path) -> PathBuf {
        self.dir.join(rel)
    }
}

/// Whether a relative path (as components) is one of the files a layout reads.
fn wanted(parts: &[&str]) -> bool {
    match parts {
        ["services.yaml"] => true,
        [_, "pools.yaml"] => true,
        ["node", f] => f.ends_with(".yaml"),
        _ => false,
    }
}

/// Read the data files of `dir` from the file system.
pub fn read_dir(dir: &Path) -> Result<Files, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let mut files = Files {
        dir: dir.to_path_buf(),
        ..Files::default()
    };
    let mut add = |rel: PathBuf| -> Result<(), Error> {
        let full = dir.join(&rel);
        let text = std::fs::read(&full).map_err(io(&full))?;
        let text = String::from_utf8(text).map_err(|_| Error::Yaml {
            file: full.clone(),
            line: None,
            message: "not valid UTF-8".into(),
        })?;
        files.files.insert(rel, text);
        Ok(())
    };
    if dir.join("services.yaml").exists() {
        add(PathBuf::from("services.yaml"))?;
    }
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if !entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "node" {
            for f in std::fs::read_dir(entry.path()).map_err(io(&entry.path()))? {
                let f = f.map_err(io(&entry.path()))?;
                let fname = f.file_name().to_string_lossy().into_owned();
                if wanted(&["node", &fname]) {
                    add(PathBuf::from("node").join(fname))?;
                }
            }
        } else if entry.path().join("pools.yaml").exists() {
            add(PathBuf::from(name).join("pools.yaml"))?;
        }
    }
    Ok(files)
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
    let mut files = Files {
        dir: dir.to_path_buf(),
        files: BTreeMap::new(),
        git_rev: Some(commit.id().to_string()),
    };
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        let path = format!("{parent}{name}");
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() > 2 {
            return git2::TreeWalkResult::Skip;
        }
        if entry.kind() != Some(git2::ObjectType::Blob) || !wanted(&parts) {
            return git2::TreeWalkResult::Ok;
        }
        let blob = entry.to_object(&repo).and_then(|o| o.peel_to_blob());
        match blob.map(|b| String::from_utf8(b.content().to_vec())) {
            Ok(Ok(text)) => {
                files.files.insert(PathBuf::from(&path), text);
                git2::TreeWalkResult::Ok
            }
            Ok(Err(_)) => {
                failure = Some(Error::Yaml {
                    file: dir.join(&path),
                    line: None,
                    message: format!("not valid UTF-8 (at {rev})"),
                });
                git2::TreeWalkResult::Abort
            }
            Err(e) => {
                failure = Some(Error::from(e));
                git2::TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(files),
    }
}
