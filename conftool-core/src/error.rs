//! The error type of conftool-core.

use std::path::PathBuf;

use tonic::Code as tonic_code;

/// What happened to one etcd member that a request tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberFailure {
    /// The member's client URL.
    pub endpoint: String,
    /// What happened, in words (`no answer within 2.5s ...`, `unreachable: ...`).
    pub what: String,
}

impl std::fmt::Display for MemberFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.what)
    }
}

/// Members and what happened to each, for a message.
fn list(members: &[MemberFailure]) -> String {
    if members.is_empty() {
        // Only when a request ran out of time waiting for another one's connection attempt.
        return "no member could be tried in time".to_string();
    }
    let each: Vec<String> = members.iter().map(MemberFailure::to_string).collect();
    each.join("; ")
}

/// A duration for a message: `300ms`, `1.2s`, `20s`.
pub(crate) fn human(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths % 10 == 0 {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// Everything that can go wrong in conftool-core.
///
/// [`Classify::is_bad_input`](crate::Classify::is_bad_input) tells input errors (exit code 2,
/// nothing was written) from runtime failures (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input or a refusal from the model: a name, a state, a selector, an action, a
    /// malformed stored value, a rule ([`conftool_model::Error`]).
    #[error(transparent)]
    Model(#[from] conftool_model::Error),
    /// A configuration file that cannot be read or parsed.
    #[error("configuration file {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An etcd member answered a request with an error (permission denied, authentication
    /// failed, a request it refuses), or the request could not be made at all (a bad URL):
    /// a definite outcome, which asking another member would not change.
    #[error("etcd at {endpoint}: {message}")]
    Etcd {
        /// The member that answered.
        endpoint: String,
        /// What kind of failure, for a program to act on.
        kind: EtcdFailure,
        /// What went wrong, in words.
        message: String,
    },
    /// No member could serve a request within the timeout: each member that was tried, in
    /// the order they failed, with what happened to it. Members never tried are not listed.
    #[error("etcd unavailable: {}", list(members))]
    Unavailable {
        /// The members tried.
        members: Vec<MemberFailure>,
    },
    /// A selection to write holds stored values that are not what their type says (key,
    /// why): what they mean is unknown, so none of the selection is written.
    #[error(
        "{} selected keys hold malformed values ({}{}); a value missing pooled or weight is \
         not completed with a default: rewrite it whole",
        values.len(),
        values.iter().take(3).map(|(k, why)| format!("{}: {}", conftool_model::escape_controls(k), why)).collect::<Vec<_>>().join("; "),
        if values.len() > 3 { "; ..." } else { "" }
    )]
    Malformed {
        /// Each key and what is wrong with its value.
        values: Vec<(String, String)>,
    },
    /// A compare-and-swap write lost against concurrent changes, even after retrying.
    #[error("conflict: {0}")]
    Conflict(Contention),
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
    /// A setting (or file) the caller may not choose when the process runs for another user
    /// ([`conftool_trust`]); nothing was done.
    #[error("running for another user (through sudo), {0}")]
    Untrusted(Untrusted),
    /// Hosts that are in none of the pools asked about; nothing was written.
    #[error(
        "node {}{} is not in {}",
        nodes.first().map(ToString::to_string).unwrap_or_default(),
        if nodes.len() > 1 {
            format!(" (or {})", nodes[1..].iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        } else {
            String::new()
        },
        service.as_ref().map_or("any pool".to_string(), |s| format!("service {s}"))
    )]
    NotFound {
        /// The hosts asked for.
        nodes: Vec<conftool_model::NodeName>,
        /// The service they were looked for in, if one was named.
        service: Option<conftool_model::Service>,
    },
    /// The configuration says `read_only: true`: every write is refused.
    #[error("the configuration is read-only (read_only: true): writes are refused")]
    ReadOnly,
    /// No operation has this id; nothing written.
    #[error("no operation {0}")]
    OperationNotFound(conftool_model::OperationId),
    /// The operation was ended (by someone else, meanwhile): changes are no longer recorded
    /// in it.
    #[error("operation {0} has ended; no further change is recorded in it")]
    OperationEnded(conftool_model::OperationId),
    /// A lock that was not free in time (or whose entry expired while it waited); nothing
    /// was done under it.
    #[error(
        "lock {name} is busy: {why}{}",
        if holders.is_empty() { String::new() } else {
            format!(" (held by {})", holders.iter().map(|h| format!(
                "{}@{} pid {} since {} for `{}`{}", h.user, h.host, h.pid, h.since,
                conftool_model::escape_controls(&h.command),
                h.reason.as_deref().map_or(String::new(), |r| format!(
                    ": {}", conftool_model::escape_controls(r)
                ))
            )).collect::<Vec<_>>().join("; "))
        }
    )]
    LockBusy {
        /// The lock.
        name: conftool_model::coordination::LockName,
        /// Who holds it.
        holders: Vec<conftool_model::coordination::LockHolder>,
        /// Why it was not taken.
        why: String,
    },
    /// A stop switch is set: nothing automated starts (or goes on) while it is.
    #[error("{0}")]
    Stopped(Box<conftool_model::coordination::Stop>),
    /// Writes that must land together but do not fit in one transaction.
    #[error("{writes} changes are too many to apply atomically (at most {limit} per transaction)")]
    TooLarge {
        /// How many writes.
        writes: usize,
        /// The most one transaction takes.
        limit: usize,
    },
}

/// What kept changing under a compare-and-swap write after every retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Contention {
    /// Objects of a selection; `count` of them were not written.
    #[error("{count} objects kept changing concurrently (for {}) and were not written", human(*during))]
    Objects {
        /// How many were not written.
        count: usize,
        /// How long the writer kept trying.
        during: std::time::Duration,
    },
    /// Objects of a schema-defined type; `count` of them were not written. No longer made:
    /// typed writes go through the round loop of every write and give up with
    /// [`Contention::Objects`] (kept so that code matching on it still builds).
    #[error("{count} objects kept changing concurrently ({rounds} attempts) and were not written")]
    TypedObjects {
        /// How many were not written.
        count: usize,
        /// How many attempts were made.
        rounds: usize,
    },
    /// After a concurrent change, the edit no longer applies to what is stored now.
    #[error("after a concurrent change: {0}")]
    Replanned(String),
    /// The pools of a group of hosts; nothing was written.
    #[error("the group's pools kept changing while it was written")]
    Group,
    /// A new operation's id was taken meanwhile.
    #[error("operation id {0} is taken; try again")]
    OperationId(conftool_model::OperationId),
    /// An operation's record, while recording its steps.
    #[error("operation {0} kept changing; its steps were not recorded")]
    OperationSteps(conftool_model::OperationId),
    /// An operation's record, while marking it ended.
    #[error("operation {0} kept changing; it was not marked ended")]
    OperationEnd(conftool_model::OperationId),
    /// One key (a stop switch); not written.
    #[error("{0} kept changing; not written")]
    Key(String),
    /// The keys of a sync, for `rounds` rounds.
    #[error("keys kept changing under the sync for {rounds} rounds; re-run it")]
    Sync {
        /// How many rounds were tried.
        rounds: usize,
    },
}

/// A setting or file the caller may not choose when the process runs for another user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Untrusted {
    /// The configuration file is not root's alone (or is a link someone else controls).
    #[error(
        "the configuration must be a system file (owned by root and changeable by root only): \
         {}: {why}",
        path.display()
    )]
    NotSystem {
        /// The file.
        path: PathBuf,
        /// What makes it not a system file.
        why: String,
    },
    /// `--config` names a file the caller could not read themselves.
    #[error("--config may only name a file the caller can read: {}", path.display())]
    ConfigNotReadable {
        /// The file.
        path: PathBuf,
    },
    /// `--endpoints` names an endpoint the configuration does not have (1-based position).
    #[error(
        "--endpoints may only name endpoints of {} (to narrow them), and endpoint {position} \
         is not one of them",
        config.display()
    )]
    Endpoint {
        /// The configuration whose endpoints count.
        config: PathBuf,
        /// Which endpoint given, from 1.
        position: usize,
    },
    /// `--namespace` differs from the configuration's.
    #[error("--namespace may not change the namespace of {}", config.display())]
    Namespace {
        /// The configuration whose namespace counts.
        config: PathBuf,
    },
}

impl From<conftool_model::NameError> for Error {
    fn from(e: conftool_model::NameError) -> Self {
        Error::Model(e.into())
    }
}

impl From<conftool_model::rules::Refusal> for Error {
    fn from(e: conftool_model::rules::Refusal) -> Self {
        Error::Model(e.into())
    }
}

impl Error {
    /// An etcd client error from the member at `endpoint`, described for a person: what kind
    /// of failure, its root cause, and a hint for set-up mistakes (TLS, scheme), which are the
    /// likely cause of a dropped connection on `first_contact` (no request has succeeded yet).
    pub(crate) fn etcd(endpoint: &str, e: &etcd_client::Error, first_contact: bool) -> Error {
        Error::Etcd {
            endpoint: endpoint.to_string(),
            kind: EtcdFailure::of(e),
            message: describe(endpoint, e, first_contact),
        }
    }
}

impl conftool_model::Classify for Error {
    fn class(&self) -> conftool_model::ErrorClass {
        use conftool_model::ErrorClass::{BadInput, Failure};
        match self {
            Error::Model(e) => e.class(),
            Error::Config { .. }
            | Error::Untrusted(_)
            | Error::TooLarge { .. }
            | Error::OperationNotFound(_)
            | Error::NotFound { .. } => BadInput,
            // Stored values that are not what their type says are the data's fault, not the
            // caller's; the rest happened at run time.
            Error::Malformed { .. }
            | Error::Etcd { .. }
            | Error::Unavailable { .. }
            | Error::Conflict(_)
            | Error::Audit { .. }
            | Error::ReadOnly
            | Error::OperationEnded(_)
            | Error::LockBusy { .. }
            | Error::Stopped(_) => Failure,
        }
    }
}

/// What kind of answer an etcd member gave, for a program to act on (the words are in
/// [`Error::Etcd`]'s message). The one classification of etcd's errors: whether to try
/// another member ([`EtcdFailure::is_transient`]) and whether every member would give the
/// same refusal ([`EtcdFailure::is_credentials`]) are read from it, never from the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EtcdFailure {
    /// The user may not do this (etcd's RBAC).
    PermissionDenied,
    /// Wrong user name or password.
    AuthenticationFailed,
    /// Authentication is required and none was given (or the token expired).
    NotAuthenticated,
    /// The member is unreachable, refused the connection, or the connection broke (a
    /// status made on this side, from a transport error).
    Unreachable,
    /// No answer in time.
    Timeout,
    /// The cluster has no leader (an election, or no quorum).
    NoLeader,
    /// The request itself was refused (too many operations, too large, invalid).
    Refused,
    /// Anything else.
    Other,
}

impl EtcdFailure {
    /// Classify an etcd client error. etcd says some things only in words (an election is
    /// `Unknown: etcdserver: leader changed`), so this is where they are read, once.
    pub(crate) fn of(e: &etcd_client::Error) -> EtcdFailure {
        let status = match e {
            etcd_client::Error::GRpcStatus(status) => status,
            etcd_client::Error::TransportError(_) => return EtcdFailure::Unreachable,
            _ => return EtcdFailure::Other,
        };
        let msg = status.message();
        match status.code() {
            _ if msg.contains("leader changed") || msg.contains("no leader") => {
                EtcdFailure::NoLeader
            }
            // The client's own timeout (tonic: `Cancelled: Timeout expired`).
            _ if msg.contains("Timeout expired") => EtcdFailure::Timeout,
            tonic_code::PermissionDenied => EtcdFailure::PermissionDenied,
            tonic_code::Unauthenticated => EtcdFailure::NotAuthenticated,
            tonic_code::Unavailable | tonic_code::Cancelled => EtcdFailure::Unreachable,
            tonic_code::DeadlineExceeded => EtcdFailure::Timeout,
            _ if msg.contains("authentication failed") => EtcdFailure::AuthenticationFailed,
            _ if msg.contains("user name is empty") => EtcdFailure::NotAuthenticated,
            _ if msg.contains("permission denied") => EtcdFailure::PermissionDenied,
            // A status carrying an error as its source was made by the client from a failed
            // connection, not sent by the server.
            _ if std::error::Error::source(status).is_some() => EtcdFailure::Unreachable,
            tonic_code::InvalidArgument
            | tonic_code::OutOfRange
            | tonic_code::ResourceExhausted
            | tonic_code::FailedPrecondition => EtcdFailure::Refused,
            _ => EtcdFailure::Other,
        }
    }

    /// Whether another member (or the same one, later) may answer differently: the member
    /// could not be reached or answered too late, or the cluster was electing a leader.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            EtcdFailure::Unreachable | EtcdFailure::Timeout | EtcdFailure::NoLeader
        )
    }

    /// Whether every member would refuse the same way: permission or credentials.
    pub fn is_credentials(self) -> bool {
        matches!(
            self,
            EtcdFailure::PermissionDenied
                | EtcdFailure::AuthenticationFailed
                | EtcdFailure::NotAuthenticated
        )
    }

    /// The kind in words, for a message.
    fn words(self) -> &'static str {
        match self {
            EtcdFailure::PermissionDenied => "permission denied",
            EtcdFailure::AuthenticationFailed => "authentication failed",
            EtcdFailure::NotAuthenticated => "not authenticated",
            EtcdFailure::Unreachable => "unreachable",
            EtcdFailure::Timeout => "timed out (unreachable, or no quorum)",
            EtcdFailure::NoLeader => "no stable leader (election in progress, or no quorum)",
            EtcdFailure::Refused | EtcdFailure::Other => "request failed",
        }
    }
}

/// Describe an etcd client error from the member at `endpoint` for a person: what kind of
/// failure, its root cause, and a hint for set-up mistakes. `first_contact` says no request
/// has succeeded yet, which makes set-up mistakes (TLS, scheme) the likely cause of a dropped
/// connection.
pub(crate) fn describe(endpoint: &str, e: &etcd_client::Error, first_contact: bool) -> String {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let mut root = String::new();
            let mut src = std::error::Error::source(status);
            while let Some(s) = src {
                root = s.to_string();
                src = s.source();
            }
            let msg = status.message();
            let kind = match EtcdFailure::of(e) {
                EtcdFailure::NotAuthenticated if msg.contains("user name is empty") => {
                    "authentication required (no user configured)"
                }
                // A connection that broke on this side keeps tonic's own words for it.
                EtcdFailure::Unreachable if status.code() != tonic_code::Unavailable => {
                    "request failed"
                }
                other => other.words(),
            };
            let detail = if kind.starts_with("timed out") && msg == "Timeout expired" {
                kind.to_string()
            } else if root.is_empty() || msg.contains(&root) {
                format!("{kind}: {msg}")
            } else {
                format!("{kind}: {msg}: {root}")
            };
            // A TLS server answering a plain-text client closes the connection; which of these
            // the client sees first depends on timing.
            let dropped = ["broken pipe", "connection closed", "connection reset"]
                .iter()
                .any(|w| detail.contains(w));
            let hint =
                if detail.contains("BadCertificate") || detail.contains("CertificateRequired") {
                    " (the server refused the client certificate: check tls.cert and tls.key)"
                } else if detail.contains("UnknownIssuer")
                    || detail.contains("invalid peer certificate")
                {
                    " (the server's certificate is not trusted: check tls.ca)"
                } else if first_contact && dropped && endpoint.starts_with("http://") {
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
    }
}

/// Result with conftool-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Classify as _;

    #[test]
    fn durations_read_well() {
        let ms = Duration::from_millis;
        assert_eq!(human(ms(0)), "0ms");
        assert_eq!(human(ms(300)), "300ms");
        assert_eq!(human(ms(999)), "999ms");
        assert_eq!(human(ms(1000)), "1s");
        assert_eq!(human(ms(1234)), "1.2s");
        assert_eq!(human(ms(2460)), "2.5s");
        assert_eq!(human(ms(19_960)), "20s");
    }

    #[test]
    fn unavailable_lists_each_member_tried() {
        let e = Error::Unavailable {
            members: vec![
                MemberFailure {
                    endpoint: "http://127.0.0.1:1234".into(),
                    what: "no answer within 1.2s (stalled, or no quorum)".into(),
                },
                MemberFailure {
                    endpoint: "http://127.0.0.1:5678".into(),
                    what: "unreachable: Connection refused (os error 111)".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "etcd unavailable: http://127.0.0.1:1234: no answer within 1.2s (stalled, or no \
             quorum); http://127.0.0.1:5678: unreachable: Connection refused (os error 111)"
        );
        assert!(!e.is_bad_input());
    }

    #[test]
    fn one_classification_answers_retry_and_credentials() {
        use tonic::{Code, Status};
        let status = |c: Code, m: &str| etcd_client::Error::GRpcStatus(Status::new(c, m));
        let local = etcd_client::Error::GRpcStatus(Status::from_error(Box::new(
            std::io::Error::other("connection reset"),
        )));
        let cases = [
            (
                status(Code::Unknown, "etcdserver: leader changed"),
                EtcdFailure::NoLeader,
            ),
            (
                status(Code::Unavailable, "etcdserver: no leader"),
                EtcdFailure::NoLeader,
            ),
            (
                status(Code::Unavailable, "tcp connect error"),
                EtcdFailure::Unreachable,
            ),
            (
                status(Code::Cancelled, "Timeout expired"),
                EtcdFailure::Timeout,
            ),
            (
                status(Code::Cancelled, "operation was canceled"),
                EtcdFailure::Unreachable,
            ),
            (
                status(Code::DeadlineExceeded, "deadline"),
                EtcdFailure::Timeout,
            ),
            (
                status(Code::Unknown, "Timeout expired"),
                EtcdFailure::Timeout,
            ),
            (local, EtcdFailure::Unreachable),
            (
                status(Code::PermissionDenied, "etcdserver: permission denied"),
                EtcdFailure::PermissionDenied,
            ),
            (
                status(Code::Unknown, "etcdserver: permission denied"),
                EtcdFailure::PermissionDenied,
            ),
            (
                status(
                    Code::InvalidArgument,
                    "etcdserver: authentication failed, invalid user ID or password",
                ),
                EtcdFailure::AuthenticationFailed,
            ),
            (
                status(Code::InvalidArgument, "etcdserver: user name is empty"),
                EtcdFailure::NotAuthenticated,
            ),
            (
                status(Code::Unauthenticated, "etcdserver: invalid auth token"),
                EtcdFailure::NotAuthenticated,
            ),
            (
                status(
                    Code::InvalidArgument,
                    "etcdserver: too many operations in txn request",
                ),
                EtcdFailure::Refused,
            ),
            (
                status(Code::ResourceExhausted, "message too large"),
                EtcdFailure::Refused,
            ),
            (
                status(Code::Internal, "h2 protocol error"),
                EtcdFailure::Other,
            ),
        ];
        for (e, want) in cases {
            let got = EtcdFailure::of(&e);
            assert_eq!(got, want, "{e}");
            let transient = matches!(
                want,
                EtcdFailure::Unreachable | EtcdFailure::Timeout | EtcdFailure::NoLeader
            );
            assert_eq!(got.is_transient(), transient, "{e}");
            let credentials = matches!(
                want,
                EtcdFailure::PermissionDenied
                    | EtcdFailure::AuthenticationFailed
                    | EtcdFailure::NotAuthenticated
            );
            assert_eq!(got.is_credentials(), credentials, "{e}");
            assert!(!(transient && credentials));
        }
        let transport_words = describe(
            "http://e:1",
            &status(Code::Unknown, "etcdserver: leader changed"),
            false,
        );
        assert_eq!(
            transport_words,
            "no stable leader (election in progress, or no quorum): etcdserver: leader changed"
        );
        let empty = describe(
            "http://e:1",
            &status(Code::InvalidArgument, "etcdserver: user name is empty"),
            false,
        );
        assert!(
            empty.starts_with("authentication required (no user configured)"),
            "{empty}"
        );
    }

    #[test]
    fn hints_for_set_up_mistakes_are_per_member() {
        let closed = etcd_client::Error::GRpcStatus(tonic::Status::unavailable(
            "error trying to connect: connection closed",
        ));
        let plain = Error::etcd("http://etcd1:2379", &closed, true).to_string();
        assert!(
            plain.starts_with("etcd at http://etcd1:2379: unreachable"),
            "{plain}"
        );
        assert!(plain.contains("does it need https://"), "{plain}");
        let reset = etcd_client::Error::GRpcStatus(tonic::Status::unknown(
            "transport error: connection reset",
        ));
        let plain = describe("http://etcd1:2379", &reset, true);
        assert!(plain.contains("does it need https://"), "{plain}");
        let tls = describe("https://etcd1:2379", &closed, true);
        assert!(tls.contains("client certificate"), "{tls}");
        assert!(!describe("http://etcd1:2379", &closed, false).contains('('));
    }
}
