//! Repair events and their life cycle (pure). An event is one node saying one thing about
//! itself (the same output is the same event); it is kept in etcd at
//! `<namespace>/v1/maint/events/<id>` with its state, what it did and a history of who
//! changed it and why.
//!
//! ```text
//!  observed ──> pending ──> in_progress ──> ready ──(ack, no longer reported)──> forgotten
//!     │            │             │            │                                   (node put back)
//!     │            │             └──> failed ─┴─(forget)──> forgotten (flow restarts if still reported)
//!     └────────────┴── cancel ──> cancelled ──(no longer reported)──> forgotten
//! ```
//!
//! Operators act through [`EventRecord::operator`]: `cancel` (no further action), `ack` (of a
//! ready event: put the node back once it no longer reports it), `forget` (of a failed or
//! cancelled event: drop it, so that a problem that persists starts over). Ack and forget are
//! marks the daemon acts on at its next poll.

use std::fmt;
use std::str::FromStr;

use conftool_core::{NodeName, OperationId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// How many history entries a record keeps (the first, and the latest).
pub const HISTORY_KEEP: usize = 64;

/// An event's id: `ev-YYYYMMDD-HHMMSS-xxxxxx` (letters, digits, `.`, `_`, `-`; at most 64).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// A new id from the current UTC time (`YYYYMMDD-HHMMSS`) and a random number.
    pub fn new(utc_compact: &str, random: u32) -> Result<EventId, Error> {
        format!("ev-{utc_compact}-{:06x}", random & 0xff_ffff).parse()
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EventId {
    type Err = Error;
    /// ```
    /// use conftool_maintd::EventId;
    /// assert!("ev-20260101-120000-3fa9c1".parse::<EventId>().is_ok());
    /// assert!("../x".parse::<EventId>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = s.starts_with("ev-")
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(EventId(s.to_string()))
        } else {
            Err(Error::EventId(s.to_string()))
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where an event is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Seen; no round has taken it up yet (a malformed output stays here: nothing is done).
    Observed,
    /// Waiting: for capacity in a pool, for the round, for a stop switch, for another event.
    Pending,
    /// Its action runs.
    InProgress,
    /// Its action succeeded: the node is out of its pools (evacuate) or repaired.
    Ready,
    /// Its action failed: nothing more is done for it.
    Failed,
    /// An operator cancelled it: nothing more is done for it.
    Cancelled,
}

impl EventState {
    /// Every state, in life-cycle order (for metrics).
    pub const ALL: [EventState; 6] = [
        EventState::Observed,
        EventState::Pending,
        EventState::InProgress,
        EventState::Ready,
        EventState::Failed,
        EventState::Cancelled,
    ];

    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Observed => "observed",
            EventState::Pending => "pending",
            EventState::InProgress => "in_progress",
            EventState::Ready => "ready",
            EventState::Failed => "failed",
            EventState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a node asked for, ordered from the least invasive to the most (a round acts on a
/// node's most invasive request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Its diagnosis could not be read: nothing is done; it is shown to people.
    Malformed,
    /// Run a whitelisted repair command on it, the diagnosis on the command's stdin.
    LiveRepair,
    /// Take it out of every pool (verified; in-flight requests may finish).
    Evacuate,
    /// Take it out of every pool now: it is going down.
    EvacuateFailover,
}

impl Kind {
    /// The name as the diagnose protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Malformed => "malformed",
            Kind::LiveRepair => "live-repair",
            Kind::Evacuate => "evacuate",
            Kind::EvacuateFailover => "evacuate-failover",
        }
    }

    /// Whether it takes the node out of its pools.
    pub fn evacuates(self) -> bool {
        matches!(self, Kind::Evacuate | Kind::EvacuateFailover)
    }

    /// Whether the daemon acts on it at all.
    pub fn acts(self) -> bool {
        self != Kind::Malformed
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator may do to an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// No further action for it.
    Cancel,
    /// The repair of a ready event is done: put the node back once it no longer reports it.
    Ack,
    /// Drop a failed (or cancelled) event; if the node still reports the problem, the flow
    /// starts over as a new event.
    Forget,
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperatorAction::Cancel => "cancel",
            OperatorAction::Ack => "ack",
            OperatorAction::Forget => "forget",
        })
    }
}

/// An operator's ack or forget, waiting for the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Ack or forget.
    pub action: OperatorAction,
    /// Who (`user@host`).
    pub by: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

/// One change of an event: when, by whom, to what state, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: `conftool-maintd@host pid N`, or the operator's `user@host`.
    pub by: String,
    /// The state after it.
    pub state: EventState,
    /// What happened, for people.
    pub what: String,
}

/// An event as stored in etcd (JSON). Fields this version does not know are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its id (also the last segment of its key).
    pub id: EventId,
    /// The node that reported it.
    pub node: NodeName,
    /// Where it is in its life cycle.
    pub state: EventState,
    /// What the node asked for.
    pub kind: Kind,
    /// Its identity: the node and its output as a JSON value (see
    /// [`crate::Observation::fingerprint`]).
    pub fingerprint: String,
    /// What the node said (for a malformed one: why, and what it printed).
    pub output: serde_json::Value,
    /// The repair command it names (`live-repair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When it was first seen.
    pub observed: String,
    /// The operation its action was recorded in (the node's evacuation, or the repair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
    /// Why it waits (pending), as last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// An operator's ack or forget, for the daemon to act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Every change, oldest first (the first and the latest [`HISTORY_KEEP`]).
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What an operator's action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The record changed.
    Done,
    /// It was already so: nothing changed.
    Already,
}

impl EventRecord {
    /// Move to `state`, saying who and why (the history keeps its first entry and the
    /// latest ones).
    pub fn to(&mut self, state: EventState, by: &str, at: &str, what: impl Into<String>) {
        self.state = state;
        self.note(by, at, what);
    }

    /// Add a history entry without changing the state.
    pub fn note(&mut self, by: &str, at: &str, what: impl Into<String>) {
        self.history.push(HistoryEntry {
            at: at.to_string(),
            by: by.to_string(),
            state: self.state,
            what: what.into(),
        });
        if self.history.len() > HISTORY_KEEP {
            let drop = self.history.len() - HISTORY_KEEP;
            self.history.drain(1..=drop);
        }
    }

    /// Whether an operator asked the daemon to forget it.
    pub fn forget_requested(&self) -> bool {
        self.mark
            .as_ref()
            .is_some_and(|m| m.action == OperatorAction::Forget)
    }

    /// Whether an operator acknowledged it (ready).
    pub fn acked(&self) -> bool {
        self.mark
            .as_ref()
            .is_some_and(|m| m.action == OperatorAction::Ack)
    }

    /// Apply an operator's action, or say why its state does not allow it.
    pub fn operator(
        &mut self,
        action: OperatorAction,
        by: &str,
        at: &str,
        reason: Option<&str>,
    ) -> Result<Verdict, Error> {
        use EventState::*;
        let why = reason.map_or(String::new(), |r| format!(": {r}"));
        let refuse = |why: &str| Error::Refused {
            id: self.id.clone(),
            state: self.state,
            action,
            why: why.to_string(),
        };
        let mark = Mark {
            action,
            by: by.to_string(),
            at: at.to_string(),
        };
        match (action, self.state) {
            (OperatorAction::Cancel, Cancelled) => Ok(Verdict::Already),
            (OperatorAction::Cancel, Failed) => Err(refuse(
                "nothing more is done for a failed event anyway (forget it to start over)",
            )),
            (OperatorAction::Cancel, InProgress) => {
                self.to(
                    Cancelled,
                    by,
                    at,
                    format!(
                        "cancelled by {by}: the running action finishes, nothing after it{why}"
                    ),
                );
                Ok(Verdict::Done)
            }
            (OperatorAction::Cancel, Ready) => {
                self.to(Cancelled, by, at, format!("cancelled by {by}: no further action; the node is not put back by the daemon (its operation is left to people){why}"));
                Ok(Verdict::Done)
            }
            (OperatorAction::Cancel, _) => {
                self.to(
                    Cancelled,
                    by,
                    at,
                    format!("cancelled by {by}: no further action{why}"),
                );
                Ok(Verdict::Done)
            }
            (OperatorAction::Ack, Ready) if self.acked() => Ok(Verdict::Already),
            (OperatorAction::Ack, Ready) => {
                self.mark = Some(mark);
                self.note(by, at, format!("acknowledged by {by}: the node goes back into its pools once it no longer reports this{why}"));
                Ok(Verdict::Done)
            }
            (OperatorAction::Ack, _) => Err(refuse("only a ready event can be acknowledged")),
            (OperatorAction::Forget, _) if self.forget_requested() => Ok(Verdict::Already),
            (OperatorAction::Forget, Failed | Cancelled) => {
                self.mark = Some(mark);
                self.note(by, at, format!("forget asked by {by}: dropped at the daemon's next poll; a problem still reported starts over{why}"));
                Ok(Verdict::Done)
            }
            (OperatorAction::Forget, Observed | Pending) if self.kind == Kind::Malformed => {
                self.mark = Some(mark);
                self.note(by, at, format!("forget asked by {by}{why}"));
                Ok(Verdict::Done)
            }
            (OperatorAction::Forget, Ready) => Err(refuse(
                "a ready event is acknowledged (ack), which puts the node back once it no \
                 longer reports the problem",
            )),
            (OperatorAction::Forget, _) => Err(refuse(
                "it is being handled (cancel it first, or wait until it is ready or failed)",
            )),
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
pub(crate) mod tests;
