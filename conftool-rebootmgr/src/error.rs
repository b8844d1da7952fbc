//! The error type of the reboot coordinator's library. What holds a reboot back (a
//! constraint, a stop switch, a busy slot) is not an error: it is an
//! [`Outcome`](crate::Outcome). Errors are what stopped a run from deciding at all.

use std::path::PathBuf;

/// Everything that can go wrong in a run, apart from what holds it back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file cannot be read or is not valid (with its line when known).
    #[error("configuration file {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A name that is not a valid group, check or node name.
    #[error(transparent)]
    Name(#[from] conftool_core::NameError),
    /// A local file (the boot id, the trigger file, the lock file, a task directory) could
    /// not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Local {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// etcd or the conftool library failed (unreachable, a conflict that did not resolve,
    /// an audit log that cannot be written).
    #[error(transparent)]
    Store(#[from] conftool_core::Error),
    /// A change of pool state failed part-way; what landed is in the operation.
    #[error(transparent)]
    Apply(#[from] conftool_core::ApplyError),
    /// A record of ours changed under this run (another process wrote it): nothing was
    /// written over it.
    #[error("{key} changed while this run was using it; not written")]
    Changed {
        /// The key.
        key: String,
    },
    /// The load balancers did not show the node as wanted (out before the reboot, back in
    /// after).
    #[error(transparent)]
    Verify(Box<conftool_core::VerifyError>),
    /// A record of ours in etcd does not parse (damaged, or written by a newer version).
    #[error("{key}: unreadable record: {reason}")]
    Record {
        /// The key.
        key: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl From<conftool_core::VerifyError> for Error {
    fn from(e: conftool_core::VerifyError) -> Error {
        Error::Verify(Box::new(e))
    }
}

/// Bad input (exit 2: fix the configuration or the command line) or a failure.
impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        match self {
            Error::Config { .. } | Error::Name { .. } => conftool_core::ErrorClass::BadInput,
            Error::Store(e) => e.class(),
            Error::Verify(e) => e.class(),
            _ => conftool_core::ErrorClass::Failure,
        }
    }
}
