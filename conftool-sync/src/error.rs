//! The error type of conftool-sync.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while loading, planning or applying a sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A YAML file that does not parse or validate. Displays as `file:line:column: message`.
    #[error("{}: {message}", Place(file, *line))]
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
    #[error("{dir}: {reason}")]
    Layout {
        /// The data directory, or the entry of it that is wrong.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or directory that cannot be read. Displays the path; the cause is the
    /// [`source`](std::error::Error::source), so an error chain shows it once.
    #[error("{}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A git repository or revision that cannot be read.
    #[error("git: {0}")]
    Git(String),
    /// The plan breaks a safety limit; nothing was written.
    #[error("refusing to sync: {0}")]
    Refused(String),
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

impl Error {
    /// Whether this is bad input (exit code 2; nothing was written) rather than a runtime
    /// failure (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Yaml { .. } | Error::Layout { .. } | Error::Io { .. } | Error::Git(_) => true,
            Error::Refused(_) => true,
            Error::Store(e) => e.is_bad_input(),
            // Something was written: never "bad input, nothing written".
            Error::Stopped { .. } => false,
        }
    }
}

impl From<git2::Error> for Error {
    fn from(e: git2::Error) -> Self {
        Error::Git(e.message().to_string())
    }
}

struct Place<'a>(&'a PathBuf, Option<(usize, usize)>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some((line, col)) => write!(f, "{}:{line}:{col}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}
