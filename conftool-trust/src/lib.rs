//! Who may choose which settings, and reading files safely on another user's behalf.
//!
//! The tools run through sudo (a sudoers rule for `confctl` with any arguments is how the
//! Python tool is deployed), to root or to a service account, and as root in CI. A process
//! that runs *for another user* ([`Privilege::Sudo`]: its real and effective users differ,
//! or sudo's `SUDO_UID` names another user than the effective one) holds rights its caller
//! does not, so what the caller chooses (flags, environment, paths) must not redirect what
//! only the system may choose, nor read for them what they could not read themselves:
//!
//! - the configuration file must be a **system file**: owned by root, writable by root only,
//!   in directories that only root can change (sticky ones like `/tmp` included);
//! - a file the caller names (`--config`, `--schema`, `set/@FILE`, a data directory) must be
//!   one the caller could read themselves ([`Origin::Caller`]); a file the system names
//!   (the default schema, the etcd client files of the configuration) must be root's alone
//!   ([`Origin::System`]); the caller's own `~/.etcdrc` must be theirs ([`Origin::CallersOwn`]);
//! - no error quotes the content of a file the caller could not read ([`Quote`]);
//! - endpoints may be narrowed to some of the system's, never replaced; the namespace is the
//!   system's.
//!
//! # One way to read a file for someone else
//! [`read_file`] opens a file **once**, walking its path component by component on
//! descriptors (`openat` with `O_PATH | O_NOFOLLOW` from `/`, every directory judged by its
//! `fstat`: owner, mode, the caller's search permission), then the file itself with
//! `O_RDONLY | O_NOFOLLOW | O_NONBLOCK` from its directory's descriptor, judged by `fstat` on
//! what was opened (a regular file, its owner and mode, the caller's read permission) and
//! read from that descriptor, at most a stated size. A file swapped for a link (or a link
//! for a file) between two steps is judged as what was actually opened: there is no second
//! lookup to race with. FIFOs and devices are never read (`/dev/zero` cannot exhaust
//! memory, a FIFO cannot hang the tool).
//!
//! **Symbolic links.** A link the caller could have planted is never followed. A link is
//! followed only when root controls it: the link is owned by root and sits in a directory
//! owned by root that no one else may write to (or a sticky one). That keeps the links an
//! administrator (or the distribution: `/etc/alternatives`, `/var/run -> /run`,
//! `/etc/ssl/certs/*`) puts in system paths working, while a link in the caller's home or in
//! `/tmp` (owned by the caller) is refused with its path named. Its target is walked with
//! the same checks. The audit log, which root *writes*, follows no link at all
//! (conftool-core's audit log).
//!
//! Running as root without sudo (CI) or as an ordinary user, the process reads only what
//! its own user may, so it is not protected from itself: [`read_file`] then reads the path
//! as the user would ([`read_bounded`]: still a regular file only, non-blocking, bounded).

mod read;
mod walk;

use std::path::PathBuf;

pub use read::dir_to_write_in;
pub use read::{
    caller_can_read, open_dir_for, read_bounded, read_file, system_file, Contents, Opened,
};
pub use walk::Caller;

/// Under what authority the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// Not root, and for no one else: it can read and write only what its user can, so
    /// whatever the user chooses is theirs to choose.
    User,
    /// Root, for no one else (root itself, a CI job, a systemd unit).
    Root,
    /// For another user: through sudo (to root or to a service account), or any run whose
    /// real and effective users differ. Named after its usual cause.
    Sudo {
        /// The caller's user id (the real user id when it differs from the effective one,
        /// else `SUDO_UID`).
        uid: u32,
        /// The caller's primary group id (the real group id, else `SUDO_GID`), if known.
        gid: Option<u32>,
    },
}

impl Privilege {
    /// This process's privilege: [`Privilege::Sudo`] when its real and effective users
    /// differ, or when sudo's `SUDO_UID` names another user than the effective one (sudo
    /// to root, and `sudo -u serviceaccount` alike); else [`Privilege::Root`] or
    /// [`Privilege::User`] by the effective user.
    ///
    /// Setting `SUDO_UID` by hand only makes one's own run stricter: it gains no right.
    pub fn current() -> Privilege {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        Privilege::decide(
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            ),
            nix::unistd::geteuid().as_raw(),
            (num("SUDO_UID"), num("SUDO_GID")),
        )
    }

    /// The rule of [`Privilege::current`], given the real user and group, the effective
    /// user, and sudo's `SUDO_UID` and `SUDO_GID`.
    fn decide(real: (u32, u32), euid: u32, sudo: (Option<u32>, Option<u32>)) -> Privilege {
        if real.0 != euid {
            return Privilege::Sudo {
                uid: real.0,
                gid: Some(real.1),
            };
        }
        match sudo.0 {
            Some(uid) if uid != euid => Privilege::Sudo { uid, gid: sudo.1 },
            _ if euid == 0 => Privilege::Root,
            _ => Privilege::User,
        }
    }

    /// Whether the process runs for another user than its own.
    pub fn is_sudo(&self) -> bool {
        matches!(self, Privilege::Sudo { .. })
    }

    /// The user the process runs for, when that is not its own user.
    pub fn caller(&self) -> Option<Caller> {
        match self {
            Privilege::Sudo { uid, gid } => Some(Caller {
                uid: *uid,
                gid: *gid,
            }),
            _ => None,
        }
    }
}

/// Who chose the path of a file to read, which decides what it must be when the process
/// runs for another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The caller (a flag, an argument, a file they wrote): it must be a file they could
    /// read themselves.
    Caller,
    /// The system (a default path, a path in the system configuration): it must be a
    /// system file; its content is quoted in errors only if the caller could read it.
    System,
    /// The caller's own file (`~/.etcdrc`): it must be owned by them.
    CallersOwn,
}

/// Whether errors about a file may quote what is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Yes: whoever reads the error could read the file.
    Content,
    /// No: say where the problem is, never what the file holds (a file root read on behalf
    /// of a caller who could not).
    PlaceOnly,
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a directory, FIFO, device, socket).
    #[error("not a regular file")]
    NotAFile,
    /// Bigger than allowed.
    #[error("bigger than the {} a {what} may be", size(*limit))]
    TooBig {
        /// What kind of file.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// A symbolic link that is not followed: one that someone other than root controls
    /// (see the module's documentation), or any link where none are followed.
    #[error("{} is a symbolic link, which is not followed here", at.display())]
    Link {
        /// Where the link is.
        at: PathBuf,
    },
    /// A path component that should be a directory is not one.
    #[error("{} is not a directory", at.display())]
    NotADirectory {
        /// The component.
        at: PathBuf,
    },
    /// The user the process runs for could not read the file themselves.
    #[error("the user this runs for could not read it ({0})")]
    NotForCaller(String),
    /// A file the system names is not root's alone.
    #[error("not a system file (owned by root and changeable by root only): {0}")]
    NotSystem(String),
}

impl ReadError {
    /// Whether the file (or a directory above it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A size for messages: `64 KiB`, `1 MiB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests;
