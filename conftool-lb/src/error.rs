//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The agent configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The agent configuration file is not valid.
    #[error("{path}: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong (with its line, when the YAML parser knows it).
        reason: String,
    },
    /// HAProxy's runtime socket could not be used.
    #[error("HAProxy runtime socket {path}: {source}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// HAProxy answered a command with an error or with output we cannot read.
    #[error("HAProxy: {command}: {reason}")]
    HaProxy {
        /// The command sent.
        command: String,
        /// HAProxy's answer, or what is wrong with it.
        reason: String,
    },
    /// etcd (through conftool-core).
    #[error(transparent)]
    Store(#[from] conftool_core::Error),
    /// A pool's selector could not be built.
    #[error(transparent)]
    Model(#[from] conftool_core::ModelError),
    /// The open-files limit leaves no descriptor for the status API's connections.
    #[error("the open-files limit {limit} leaves no room for status API connections (the agent needs {needed} or more: raise LimitNOFILE)")]
    OpenFiles {
        /// The process's soft `RLIMIT_NOFILE`.
        limit: u64,
        /// The least limit that leaves room for one connection.
        needed: u64,
    },
    /// The status server could not listen.
    #[error("status API on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A configuration the agent cannot use is bad input; the rest happens at run time.
impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        match self {
            Error::ReadConfig { .. } | Error::BadConfig { .. } => {
                conftool_core::ErrorClass::BadInput
            }
            Error::Store(e) => e.class(),
            Error::Model(e) => e.class(),
            Error::Socket { .. }
            | Error::HaProxy { .. }
            | Error::OpenFiles { .. }
            | Error::Listen { .. } => conftool_core::ErrorClass::Failure,
        }
    }
}
