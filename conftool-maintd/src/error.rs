//! The error type of conftool-maintd.

use std::path::PathBuf;

use crate::event::{EventId, EventState, OperatorAction};

/// Everything that can go wrong in the maintenance daemon's library.
///
/// [`Error::is_bad_input`] tells what a person must fix (a configuration file, an event id,
/// an operator action the event's state does not allow; nothing was written) from runtime
/// failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store (etcd, the audit log, the rules) failed or refused.
    #[error(transparent)]
    Store(#[from] conftool_core::Error),
    /// The daemon's configuration file cannot be read.
    #[error("maintenance daemon configuration {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The daemon's configuration file says something wrong (with its line, when YAML knows).
    #[error("maintenance daemon configuration {}: {reason}", path.display())]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// Not a valid event id.
    #[error("invalid event id {0:?} (ids look like ev-20260101-120000-3fa9c1)")]
    EventId(String),
    /// No event has this id.
    #[error("no maintenance event {0}; nothing written")]
    NoEvent(EventId),
    /// The event's state does not allow what an operator asked.
    #[error("event {id} is {state}: cannot {action} it: {why}; nothing written")]
    Refused {
        /// The event.
        id: EventId,
        /// Its state.
        state: EventState,
        /// What was asked.
        action: OperatorAction,
        /// Why not, and what to do instead.
        why: String,
    },
    /// An event record in etcd that does not parse.
    #[error("etcd key {key}: malformed maintenance event: {reason}")]
    Malformed {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A compare-and-swap write kept losing against concurrent writers.
    #[error("event {0} kept changing; not written")]
    Conflict(EventId),
    /// Another instance holds the leadership (a one-shot run exits with this).
    #[error("not the leader: {0}")]
    NotLeader(String),
    /// The leadership was lost while leading (the lease expired): this instance stops
    /// acting at once.
    #[error("the leadership was lost (its lease expired): stopping")]
    LostLeadership,
    /// The status page cannot listen.
    #[error("status page on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A person must fix the input (bad input: nothing was written), or it happened at run time.
impl conftool_core::Classify for Error {
    fn class(&self) -> conftool_core::ErrorClass {
        match self {
            Error::Store(e) => e.class(),
            Error::ReadConfig { .. }
            | Error::BadConfig { .. }
            | Error::EventId(_)
            | Error::NoEvent(_)
            | Error::Refused { .. } => conftool_core::ErrorClass::BadInput,
            _ => conftool_core::ErrorClass::Failure,
        }
    }
}

/// A result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
