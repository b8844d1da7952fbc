//! The error type of conftool-core.

use std::path::PathBuf;

/// An invalid datacenter, cluster, service or node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct NameError {
    /// What the name was for: "datacenter", "cluster", "service" or "node".
    pub kind: &'static str,
    /// The rejected input.
    pub name: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// Everything that can go wrong in conftool-core.
///
/// [`Error::is_bad_input`] tells input errors (exit code 2, nothing was written) from runtime
/// failures (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An invalid name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A `pooled` value other than yes/no/inactive.
    #[error("invalid pooled value {0:?}: expected yes, no or inactive")]
    Pooled(String),
    /// A weight outside 0..=65535 or not a number.
    #[error("invalid weight {0:?}: expected an integer from 0 to 65535")]
    Weight(String),
    /// A selector that does not parse.
    #[error("invalid selector {input:?}: {reason}")]
    Selector {
        /// The selector as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An action that does not parse.
    #[error("invalid action {input:?}: {reason}")]
    Action {
        /// The action as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file that cannot be read or parsed.
    #[error("configuration file {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A value stored in etcd that is not what the schema says.
    #[error("etcd key {key}: malformed value: {reason}")]
    MalformedValue {
        /// The key.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// etcd could not be reached or refused a request.
    #[error("etcd at {endpoints}: {source}")]
    Etcd {
        /// The endpoints that were tried.
        endpoints: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// A request did not finish within the configured timeout.
    #[error("etcd at {endpoints}: no answer within {timeout:?} (unreachable, or no quorum)")]
    Timeout {
        /// The endpoints that were tried.
        endpoints: String,
        /// The configured timeout.
        timeout: std::time::Duration,
    },
    /// A compare-and-swap write lost against concurrent changes, even after retrying.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl Error {
    /// Whether this is bad input from the user (exit code 2) rather than a runtime failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Name(_)
                | Error::Pooled(_)
                | Error::Weight(_)
                | Error::Selector { .. }
                | Error::Action { .. }
                | Error::Config { .. }
        )
    }
}

/// Result with conftool-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
