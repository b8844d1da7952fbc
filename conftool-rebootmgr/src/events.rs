//! What a run does, step by step, handed to the caller as [`Event`]s (the library never
//! prints): the binary writes each as one JSON line (`{"event": "slot_taken", ...}`).

use serde::Serialize;

use crate::records::{Phase, TriggerKind};

/// How loud an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The normal course.
    Info,
    /// Held back, aborted and put back: nothing is broken, but it did not go ahead.
    Warn,
    /// Something a person must know: a node that stopped, a slot that ran out.
    Error,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run starts.
    Start {
        /// This boot's id.
        boot_id: String,
        /// A reboot in progress, where it is.
        #[serde(skip_serializing_if = "Option::is_none")]
        phase: Option<Phase>,
    },
    /// This node's checks ran.
    Checks {
        /// Those that fail, with what they said.
        failing: Vec<String>,
        /// How many pass.
        passing: usize,
    },
    /// A key of ours did not parse (skipped).
    Unreadable {
        /// The key.
        key: String,
        /// Why.
        why: String,
    },
    /// Nothing asks for a reboot.
    NotTriggered,
    /// Something asks for one.
    Triggered {
        /// What.
        by: TriggerKind,
    },
    /// The node needs a person: it does nothing until the mark is cleared.
    NeedsPerson {
        /// Why.
        reason: String,
        /// Since when.
        since: String,
    },
    /// Something holds the reboot back; the run will try again.
    HeldBack {
        /// Every reason, worded for people.
        reasons: Vec<String>,
    },
    /// Another member's slot ran out while it was away (it never came back, or not in time).
    SlotExpired {
        /// The member (`node` is the one that noticed, as on every line).
        member: String,
        /// The entry that ran out.
        slot: String,
        /// Its operation, which still holds its objects depooled.
        #[serde(skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
        /// Away since.
        since: String,
    },
    /// A run killed before the reboot left its traces: put back and cleaned up.
    CleanedUp {
        /// What was found.
        found: String,
    },
    /// A slot of the group's semaphore is taken.
    SlotTaken {
        /// The entry.
        slot: String,
        /// Slots in the group.
        concurrency: u32,
        /// How long it outlives this node's last refresh.
        ttl_secs: u64,
    },
    /// The node's objects are depooled into an operation (nothing to depool: none listed).
    Depooled {
        /// The operation.
        operation: String,
        /// It was an open one, resumed.
        resumed: bool,
        /// What was depooled now.
        objects: Vec<String>,
    },
    /// Every load balancer of the node's pools has it out of rotation.
    VerifiedOut {
        /// How long it took.
        ms: u64,
    },
    /// A task ran.
    Task {
        /// `pre_boot` or `post_boot`.
        phase: &'static str,
        /// The task's file name.
        name: String,
        /// How it ended (`ok`, `exit 1: ...`).
        outcome: String,
        /// How long it ran.
        ms: u64,
    },
    /// Waiting before the last check.
    Settling {
        /// For how long.
        ms: u64,
    },
    /// The last check before the reboot passed.
    Rechecked,
    /// The reboot command is about to run.
    Rebooting {
        /// The command.
        command: String,
        /// How long the slot outlives this boot.
        slot_ttl_secs: u64,
    },
    /// The reboot command returned; waiting to go down.
    RebootCommandDone,
    /// Back after the reboot.
    Back {
        /// The boot it went down in.
        previous_boot_id: String,
        /// How long since the reboot command.
        away_ms: u64,
    },
    /// The slot, taken over after the reboot (`false`: it ran out while away).
    SlotResumed {
        /// Whether the entry was still there.
        held: bool,
    },
    /// Every check of this node passes.
    Healthy {
        /// How long it took after boot.
        ms: u64,
    },
    /// The operation ended: what it depooled is put back.
    Repooled {
        /// The operation.
        operation: String,
        /// What was put back.
        restored: Vec<String>,
        /// What was left as it is, with why.
        left: Vec<String>,
    },
    /// Every load balancer has the node back as it was.
    VerifiedIn {
        /// How long it took.
        ms: u64,
    },
    /// The trigger is cleared (or kept: set again since the reboot started).
    TriggerCleared {
        /// What was cleared.
        cleared: Vec<String>,
        /// What was kept, with why.
        kept: Vec<String>,
    },
    /// The slot is given back.
    SlotReleased {
        /// The entry.
        slot: String,
    },
    /// Something went wrong before the reboot: put back, slot released.
    Aborted {
        /// Why.
        why: String,
    },
    /// The node is marked as needing a person.
    Marked {
        /// Why.
        reason: String,
        /// Whether it stays depooled.
        depooled: bool,
        /// The operation that holds it, if it does.
        #[serde(skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
    },
    /// The reboot is done: the node is back in service.
    Done {
        /// From the slot taken to the slot released, across the reboot.
        ms: u64,
    },
}

impl Event {
    /// How loud it is.
    pub fn level(&self) -> Level {
        match self {
            Event::SlotExpired { .. } | Event::Marked { .. } | Event::NeedsPerson { .. } => {
                Level::Error
            }
            Event::HeldBack { .. }
            | Event::Aborted { .. }
            | Event::Unreadable { .. }
            | Event::CleanedUp { .. }
            | Event::SlotResumed { held: false } => Level::Warn,
            _ => Level::Info,
        }
    }

    /// The event's name, as written in its `event` field.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}
