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
//!
//! Layout: [`Files`] and what both sources share here; the work tree in `worktree.rs`
//! ([`read_dir`] and its variants), a commit in `git.rs` ([`read_git`] and its variants).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conftool_trust as trust;

use crate::error::Error;
use crate::layout::Notice;

mod git;
mod worktree;

pub use git::{read_git, read_git_capped, read_git_with};
pub use worktree::{read_dir, read_dir_capped, read_dir_with};

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

/// An I/O error's mapping, naming `path`.
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, source }
}

/// Why a file or directory is not read for the user the process runs for.
fn not_for_caller(path: &Path, e: trust::ReadError) -> Error {
    match e {
        trust::ReadError::Io(source) => io(path)(source),
        e => io(path)(std::io::Error::other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::git::read_git_limited;
    use super::worktree::{past_total, read_bounded, read_dir_limited};
    use super::*;
    use crate::caps::Caps;
    use conftool_core::Classify as _;
    use std::fs::File;

    /// Write `files` (relative path -> contents; a path ending in `/` is an empty directory)
    /// under `dir`.
    pub(super) fn write(dir: &Path, files: &[(&str, &str)]) {
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

    pub(super) const SERVICES: &str =
        "c:\n  s: {port: 1, default_values: {pooled: \"no\", weight: 1}}\n";

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

    pub(super) const SECRET: &str = "token-5f1c0ffee-do-not-print";

    /// A secret outside the checkout, as a file the sync's user can read.
    pub(super) fn secret(tmp: &Path) -> PathBuf {
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
