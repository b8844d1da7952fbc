//! The error type of conftool-core.

use std::path::PathBuf;

use tonic::Code as tonic_code;

/// An invalid datacenter, cluster, service or node name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {}: {reason}", shown(name))]
pub struct NameError {
    /// What the name was for: "datacenter", "cluster", "service" or "node".
    pub kind: &'static str,
    /// The rejected input.
    pub name: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// A name quoted for a message, cut short if it is huge.
fn shown(name: &str) -> String {
    if name.chars().count() <= 80 {
        return format!("{name:?}");
    }
    let head: String = name.chars().take(60).collect();
    format!("{head:?}… ({} characters)", name.chars().count())
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
    #[error("etcd at {endpoints}: {message}")]
    Etcd {
        /// The endpoints that were tried.
        endpoints: String,
        /// What went wrong, in words (unreachable, permission denied, ...).
        message: String,
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
    /// The audit log cannot be opened or written. Displays the path; the cause is the
    /// [`source`](std::error::Error::source), so an error chain shows it once.
    #[error("audit log {}", path.display())]
    Audit {
        /// The log file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A change refused by a rule ([`crate::rules`]); nothing was written.
    #[error("refusing to write: {0}")]
    Refused(#[from] crate::rules::Refusal),
}

impl Error {
    /// Describe an etcd client error for a person: what kind of failure, and its root cause.
    /// `first_contact` says no request has succeeded yet, which makes set-up mistakes
    /// (TLS, scheme) the likely cause of a dropped connection.
    pub fn etcd(endpoints: &str, e: &etcd_client::Error, first_contact: bool) -> Error {
        let message = match e {
            etcd_client::Error::GRpcStatus(status) => {
                let mut root = String::new();
                let mut src = std::error::Error::source(status);
                while let Some(s) = src {
                    root = s.to_string();
                    src = s.source();
                }
                let msg = status.message();
                let kind = match status.code() {
                    _ if msg.contains("leader changed") || msg.contains("no leader") => {
                        "no stable leader (election in progress, or no quorum)"
                    }
                    tonic_code::Unavailable => "unreachable",
                    tonic_code::PermissionDenied => "permission denied",
                    tonic_code::Unauthenticated => "not authenticated",
                    tonic_code::DeadlineExceeded => "timed out (unreachable, or no quorum)",
                    _ if msg.contains("Timeout expired") => "timed out (unreachable, or no quorum)",
                    _ if msg.contains("authentication failed") => "authentication failed",
                    _ if msg.contains("user name is empty") => {
                        "authentication required (no user configured)"
                    }
                    _ => "request failed",
                };
                let detail = if kind.starts_with("timed out") && msg == "Timeout expired" {
                    kind.to_string()
                } else if root.is_empty() || msg.contains(&root) {
                    format!("{kind}: {msg}")
                } else {
                    format!("{kind}: {msg}: {root}")
                };
                let dropped =
                    detail.contains("broken pipe") || detail.contains("connection closed");
                let hint = if detail.contains("BadCertificate")
                    || detail.contains("CertificateRequired")
                {
                    " (the server refused the client certificate: check tls.cert and tls.key)"
                } else if detail.contains("UnknownIssuer")
                    || detail.contains("invalid peer certificate")
                {
                    " (the server's certificate is not trusted: check tls.ca)"
                } else if first_contact && dropped && endpoints.contains("http://") {
                    " (the server closed the connection: does it need https:// and TLS settings?)"
                } else if first_contact && dropped {
                    " (the server closed the connection during set-up: does it require a client \
                     certificate (tls.cert and tls.key)?)"
                } else {
                    ""
                };
                format!("{detail}{hint}")
            }
            etcd_client::Error::TransportError(t) => {
                let mut root = t.to_string();
                let mut src = std::error::Error::source(t);
                while let Some(s) = src {
                    root = s.to_string();
                    src = s.source();
                }
                format!("unreachable: {root}")
            }
            other => other.to_string(),
        };
        Error::Etcd {
            endpoints: endpoints.to_string(),
            message,
        }
    }

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
                | Error::Refused(_)
        )
    }
}

/// Result with conftool-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
