//! The error type of conftool-sync.
//!
//! File names come from a checkout that anyone who can open a merge request controls: every
//! path and quoted text in a message is shown through [`escape_controls`], so an error cannot
//! forge lines or send escape sequences to the terminal (or CI log) that shows it.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use conftool_core::escape_controls;

use crate::caps::Cap;

/// Everything that can go wrong while loading, planning or applying a sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A YAML file that does not parse or validate. Displays as `file:line:column: message`.
    #[error("{}: {}", Place(file, *line), escape_controls(message))]
    Yaml {
        /// The file, as given (directory-relative for git sources).
        file: PathBuf,
        /// Line and column, 1-based, where known.
        line: Option<(usize, usize)>,
        /// What is wrong.
        message: String,
    },
    /// The directory does not have the expected shape: one entry of it (then `dir` is that
    /// entry's path), or several (then `dir` is the data directory and `reason` lists them,
    /// one per line).
    #[error("{}: {reason}", shown(dir))]
    Layout {
        /// The data directory, or the entry of it that is wrong.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory that cannot be read. Displays the path; the cause is the
    /// [`source`](std::error::Error::source), so an error chain shows it once.
    #[error("{}", shown(path))]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A data file larger than the limit ([`crate::source::MAX_FILE_SIZE`]); it was not read
    /// (or not beyond the limit). Displays as `conf/eqiad/pools.yaml: 300 MiB (314572800
    /// bytes) is more than the 64 MiB a data file may be`.
    #[error("{}: {} a data file may be", shown(file), TooLarge(*size, *limit))]
    TooLarge {
        /// The file, as shown.
        file: PathBuf,
        /// Its size, where known before reading; `None` when it turned out larger than the
        /// limit only while being read (it grew, or its size was misreported).
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A cap on what a sync reads and holds ([`crate::Caps`]) was passed: for bytes, `file`
    /// is the data file that would pass it (not read, nothing parsed); for objects, the place
    /// of the first object past it (read no further). Nothing was written.
    #[error("{}: {}", Place(file, *line), OverCap(*cap))]
    OverCap {
        /// The file, as shown.
        file: PathBuf,
        /// Line and column of the first object past the cap.
        line: Option<(usize, usize)>,
        /// Which cap, and its value.
        cap: Cap,
    },
    /// A git repository or revision that cannot be read.
    #[error("git: {0}")]
    Git(GitError),
    /// The plan breaks a safety limit; nothing was written.
    #[error("refusing to sync: {0}")]
    Refused(crate::guard::Refusal),
    /// etcd failed (or a value stored in it is malformed).
    #[error(transparent)]
    Store(#[from] conftool_core::Error),
    /// The sync stopped after some of its writes had landed (they stay; re-running
    /// converges). `done` says what landed, for the audit trail and the report.
    #[error("{cause} (already written, and kept: {}; re-running converges)", done.summary())]
    Stopped {
        /// What had been written.
        done: Box<crate::apply::Outcome>,
        /// Why it stopped.
        cause: Box<Error>,
    },
}

impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        use conftool_core::ErrorClass::{BadInput, Failure};
        match self {
            Error::Yaml { .. }
            | Error::Layout { .. }
            | Error::Io { .. }
            | Error::TooLarge { .. }
            | Error::OverCap { .. }
            | Error::Git(_)
            | Error::Refused(_) => BadInput,
            Error::Store(e) => e.class(),
            // Something was written: never "bad input, nothing written".
            Error::Stopped { .. } => Failure,
        }
    }
}

impl From<git2::Error> for Error {
    fn from(e: git2::Error) -> Self {
        Error::Git(GitError::Other(e.message().to_string()))
    }
}

/// What is wrong with a git repository or revision a sync reads (`--git-rev`). Paths and
/// git's words are shown with control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The directory is in no git repository.
    #[error("{}: no git repository: {}", shown(dir), escape_controls(message))]
    NoRepository {
        /// The data directory.
        dir: PathBuf,
        /// git's words.
        message: String,
    },
    /// A bare repository (no work tree to place the directory in).
    #[error("bare repositories are not supported")]
    Bare,
    /// The data directory is not inside the repository's work tree.
    #[error("{} is not inside {}", shown(dir), shown(workdir))]
    Outside {
        /// The data directory.
        dir: PathBuf,
        /// The repository's work tree.
        workdir: PathBuf,
    },
    /// The revision does not name a commit.
    // `{:?}` spells out control characters itself.
    #[error("revision {rev:?}: {}", escape_controls(message))]
    Revision {
        /// The revision given.
        rev: String,
        /// git's words.
        message: String,
    },
    /// The data directory does not exist at that revision.
    #[error("{} does not exist at {}", shown(path), escape_controls(rev))]
    Missing {
        /// The directory, relative to the work tree.
        path: PathBuf,
        /// The revision.
        rev: String,
    },
    /// The data directory's path is not a directory at that revision.
    #[error("{} is not a directory at {}", shown(path), escape_controls(rev))]
    NotADirectory {
        /// The path, relative to the work tree.
        path: PathBuf,
        /// The revision.
        rev: String,
    },
    /// A file listed a moment ago is gone from the listing.
    #[error("{} vanished from the listing", shown(path))]
    Vanished {
        /// The file.
        path: PathBuf,
    },
    /// Anything else git reports.
    #[error("{}", escape_controls(.0))]
    Other(String),
}

/// A path as shown in a message: control characters escaped.
pub(crate) fn shown(path: &Path) -> Cow<'_, str> {
    match path.to_string_lossy() {
        Cow::Borrowed(s) => escape_controls(s),
        Cow::Owned(s) => Cow::Owned(escape_controls(&s).into_owned()),
    }
}

struct Place<'a>(&'a PathBuf, Option<(usize, usize)>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some((line, col)) => write!(f, "{}:{line}:{col}", shown(self.0)),
            None => write!(f, "{}", shown(self.0)),
        }
    }
}

struct TooLarge(Option<u64>, u64);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = Bytes(self.1);
        match self.0 {
            Some(size) => write!(f, "{} ({size} bytes) is more than the {limit}", Bytes(size)),
            None => write!(
                f,
                "more than {limit} read (it grew while being read, or its size was \
                 misreported), more than the {limit}"
            ),
        }
    }
}

struct OverCap(Cap);

impl fmt::Display for OverCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Cap::Bytes {
                limit,
                total: Some(total),
            } => write!(
                f,
                "the data files would add up to {} with this one, more than the {} a sync \
                 reads; not read, nothing parsed (raise the cap with --max-input-bytes if this \
                 is intended)",
                Bytes(total),
                Bytes(limit)
            ),
            Cap::Bytes { limit, total: None } => write!(
                f,
                "the data files add up to more than the {} a sync reads; nothing parsed \
                 (raise the cap with --max-input-bytes if this is intended)",
                Bytes(limit)
            ),
            Cap::Objects { limit } => write!(
                f,
                "more than the {limit} objects a sync holds; read no further (raise the cap \
                 with --max-objects if this is intended)"
            ),
        }
    }
}

/// A byte count for people: `512 bytes`, `64 MiB`, `300.5 MiB`.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        let n = self.0;
        match UNITS.iter().find(|(unit, _)| n >= *unit) {
            Some((unit, name)) if n % unit == 0 => write!(f, "{} {name}", n / unit),
            Some((unit, name)) => write!(f, "{:.1} {name}", n as f64 / *unit as f64),
            None if n == 1 => f.write_str("1 byte"),
            None => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conftool_core::Classify as _;

    #[test]
    fn too_large_names_the_file_its_size_and_the_limit() {
        let e = |size, limit| Error::TooLarge {
            file: "conf/eqiad/pools.yaml".into(),
            size,
            limit,
        };
        let mib = 1 << 20;
        assert_eq!(
            e(Some(300 * mib), 64 * mib).to_string(),
            "conf/eqiad/pools.yaml: 300 MiB (314572800 bytes) is more than the 64 MiB a data \
             file may be"
        );
        assert_eq!(
            e(Some(64 * mib + 1), 64 * mib).to_string(),
            "conf/eqiad/pools.yaml: 64.0 MiB (67108865 bytes) is more than the 64 MiB a data \
             file may be"
        );
        assert_eq!(
            e(None, 10).to_string(),
            "conf/eqiad/pools.yaml: more than 10 bytes read (it grew while being read, or its \
             size was misreported), more than the 10 bytes a data file may be"
        );
        assert_eq!(Bytes(1).to_string(), "1 byte");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3 GiB");
        assert!(e(None, 1).is_bad_input());
    }

    #[test]
    fn paths_and_quoted_text_are_shown_escaped() {
        let path = PathBuf::from("conf/\u{1b}]0;pwned\u{7}/pools.yaml");
        let shown_as = r"conf/\x1b]0;pwned\x07/pools.yaml";
        let cases = [
            Error::Layout {
                dir: path.clone(),
                reason: "not read".into(),
            }
            .to_string(),
            Error::Yaml {
                file: path.clone(),
                line: Some((1, 2)),
                message: "bad\nforged".into(),
            }
            .to_string(),
            Error::Io {
                path: path.clone(),
                source: std::io::Error::other("x"),
            }
            .to_string(),
            Error::TooLarge {
                file: path.clone(),
                size: Some(11),
                limit: 10,
            }
            .to_string(),
            Error::Git(GitError::NotADirectory {
                path: path.to_path_buf(),
                rev: "HEAD".into(),
            })
            .to_string(),
        ];
        for c in &cases {
            assert!(c.contains(shown_as), "{c}");
            assert!(!c.chars().any(char::is_control), "{c:?}");
        }
        assert!(cases[1].ends_with(r"bad\nforged"), "{}", cases[1]);
    }
}
