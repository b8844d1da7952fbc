//! How a run ended, and the exit code that says it (pure). The codes separate "try again
//! later" (a timer run will) from "needs a person" (no run will, until someone looks), as
//! rebootmgr's do.

use crate::constraints::HeldBack;

/// Nothing to do, or the reboot is done.
pub const EXIT_OK: i32 = 0;
/// A runtime failure (etcd unreachable, a file that cannot be written): the next run tries
/// again.
pub const EXIT_FAILURE: i32 = 1;
/// Bad input: the configuration or the command line.
pub const EXIT_BAD_INPUT: i32 = 2;
/// A reboot is asked for and held back (a constraint, a stop switch, a busy slot): the
/// next run tries again. Also `--dry-run` when it would be held back.
pub const EXIT_HELD_BACK: i32 = 3;
/// The node needs a person (a task failed, it did not come back healthy): no run will do
/// anything until the mark is cleared.
pub const EXIT_NEEDS_PERSON: i32 = 4;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// Nothing asks for a reboot (and nothing was left to finish).
    NothingToDo,
    /// A reboot was finished: the node is back in service, its slot released.
    Done,
    /// Held back, for these reasons; try again later.
    HeldBack(Vec<HeldBack>),
    /// The node needs a person, for this reason.
    NeedsPerson(String),
    /// `--dry-run`: it would go ahead (take a slot, depool, reboot).
    WouldReboot,
}

impl Outcome {
    /// The process's exit code.
    ///
    /// ```
    /// use conftool_rebootmgr::Outcome;
    /// assert_eq!(Outcome::Done.exit_code(), 0);
    /// assert_eq!(Outcome::HeldBack(vec![]).exit_code(), 3);
    /// assert_eq!(Outcome::NeedsPerson("pre-boot task failed".into()).exit_code(), 4);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::NothingToDo | Outcome::Done | Outcome::WouldReboot => EXIT_OK,
            Outcome::HeldBack(_) => EXIT_HELD_BACK,
            Outcome::NeedsPerson(_) => EXIT_NEEDS_PERSON,
        }
    }
}
