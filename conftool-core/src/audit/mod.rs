//! The audit trail: JSON lines saying who changed which key from what to what, from which
//! host, when, and at which etcd revision.
//!
//! Every write is recorded twice, around its commit, under one operation id (`op`):
//! - `"event": "intent"` before the commit: the key, the value expected before and the value
//!   to write. A process killed between commit and record leaves this line behind, so a gap
//!   in the trail is visible and can be resolved by reading the keys it names.
//! - `"event": "applied"` after the commit, with the `revision` of the transaction that
//!   wrote it.
//! - one `"event": "end"` line closes the operation: how many writes landed, the error that
//!   stopped it (`null` if none) and, after a transaction whose outcome is unknown (a lost
//!   answer), the keys that may or may not have been written.
//!
//! An intent without an applied line under an ended operation was not written (it lost a
//! compare-and-swap race and was re-planned, or its transaction failed). Reads are never
//! logged.
//!
//! Sinks: a file, opened (and so checked) before anything is written, appended with one
//! `write` per batch of lines so that concurrent writers do not interleave lines; and/or
//! syslog (`/dev/log`, facility `authpriv`, best effort).
//!
//! Layout: [`Actor`] and [`hostname`] (who acts, `identity.rs`); the line and the write it
//! records (`record.rs`); [`AuditLog`] and the open sink (`sink.rs`), whose file is opened
//! safely by `file.rs`; UTC stamps [`rfc3339`] and [`utc_compact`] (`time.rs`).

mod file;
mod identity;
mod record;
mod sink;
mod time;

pub use identity::{hostname, Actor};
pub use record::error_chain;
pub(crate) use record::AuditEntry;
pub use sink::AuditLog;
pub(crate) use sink::AuditSink;
pub use time::{rfc3339, utc_compact};

/// The actor of the unit tests' lines.
#[cfg(test)]
pub(crate) fn test_actor() -> Actor {
    Actor {
        user: "alice".into(),
        account: None,
        etcd_user: Some("conftool".into()),
        host: "cumin1001".into(),
        tool: "confctl".into(),
    }
}
