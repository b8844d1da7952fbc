//! conftool-rebootmgr: coordinated reboots of fleet nodes, on etcd, built on the conftool
//! library the way any outside tool would use it (no CLI code): a leased slot per group,
//! constraints checked before the slot is taken and again just before the reboot, the
//! node's objects depooled into a conftool operation and exactly those put back after.
//!
//! Every node runs `conftool-rebootmgr run` from a timer. A run reads the group's state,
//! runs and publishes this node's health checks, and, when a reboot is asked for and
//! nothing holds it back, goes through the sequence; a run after the boot (a new boot id)
//! finishes it. A run killed at any step leaves records that the next run resumes or
//! cleans up.
//!
//! # Layout
//! - pure: [`names`] ([`GroupName`], [`CheckName`]), [`keys`] (where our records live),
//!   [`records`] (their shapes), [`config`] ([`RebootConfig`]), [`window`] (time windows),
//!   [`constraints`] (what holds a reboot back: [`HeldBack`]), [`events`] (what a run
//!   tells: [`Event`]), [`outcome`] (how it ended: [`Outcome`], exit codes).
//! - I/O: [`local`] (the local lock, boot id, trigger file, commands with timeouts),
//!   [`view`] (reading and writing our keys through conftool's audited writer),
//!   [`Node`] (a connected node: the run, its steps, `status`, the stop switches).

mod admin;
mod after;
mod assess;
pub mod config;
pub mod constraints;
mod error;
pub mod events;
pub mod keys;
pub mod local;
pub mod names;
mod node;
pub mod outcome;
pub mod records;
mod recover;
mod run;
mod sequence;
pub mod view;
pub mod window;

pub use admin::Status;
pub use config::RebootConfig;
pub use constraints::HeldBack;
pub use error::Error;
pub use events::{Event, Level};
pub use names::{CheckName, GroupName};
pub use node::{Emit, Node, Objects, OPERATION_KIND};
pub use outcome::Outcome;
pub use run::RunOptions;
