//! Who may choose which settings, and reading the files settings point to safely.
//!
//! The tools run through sudo (a sudoers rule for `confctl` with any arguments is how the
//! Python tool is deployed) and as root in CI. A process running as root *through sudo*
//! ([`Privilege::Sudo`]) serves a caller who is not root, so what the caller chooses (flags,
//! environment, a `--config` path) must not redirect what only root may choose:
//!
//! - the configuration file must be a **system file**: owned by root, writable by root only,
//!   in directories that only root can change ([`system_file`]);
//! - a file the caller names must also be one the caller could read themselves
//!   ([`caller_can_read`]), and no error ever quotes the content of a file the caller could
//!   not read;
//! - endpoints may be narrowed to some of the system's, never replaced; the namespace is the
//!   system's.
//!
//! Files that settings point to (password, TLS material, the configuration itself) are read
//! with [`read_bounded`]: regular files only, opened without blocking, at most a stated size.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Under what authority the process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privilege {
    /// Not root: it can read and write only what its user can, so whatever the user chooses
    /// is theirs to choose.
    User,
    /// Root, not through sudo (root itself, a CI job, a systemd unit).
    Root,
    /// Root through sudo, on behalf of the caller named here.
    Sudo {
        /// The caller's user id (`SUDO_UID`).
        uid: u32,
        /// The caller's primary group id (`SUDO_GID`), if given.
        gid: Option<u32>,
    },
}

impl Privilege {
    /// This process's privilege: root through sudo when the effective user is root and
    /// sudo's `SUDO_UID` names another user (only root can set that for a root process,
    /// so it cannot be forged to gain anything).
    pub fn current() -> Privilege {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        if !nix::unistd::geteuid().is_root() {
            return Privilege::User;
        }
        match num("SUDO_UID") {
            Some(uid) if uid != 0 => Privilege::Sudo {
                uid,
                gid: num("SUDO_GID"),
            },
            _ => Privilege::Root,
        }
    }

    /// Whether the caller is not the root the process runs as.
    pub fn is_sudo(&self) -> bool {
        matches!(self, Privilege::Sudo { .. })
    }
}

/// Why a file is not a system file (`Ok` if it is): owned by root, not writable by group
/// or others, and every directory above it (of the path as given and of the file it
/// resolves to) owned by root and not writable by others, unless it is a sticky directory
/// like `/tmp`, where others cannot replace what root owns.
pub fn system_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != 0 {
        return Err(format!("owned by uid {}, not by root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("cannot resolve it: {e}"))?;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot resolve it: {e}"))?
            .join(path)
    };
    for p in [absolute, canonical] {
        for dir in p.ancestors().skip(1) {
            let m = std::fs::symlink_metadata(dir)
                .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
            let sticky = m.mode() & 0o1000 != 0;
            if m.uid() != 0 {
                return Err(format!(
                    "{} is owned by uid {}, not by root",
                    dir.display(),
                    m.uid()
                ));
            }
            if m.mode() & 0o022 != 0 && !sticky {
                return Err(format!(
                    "{} is writable by group or others (mode {:o})",
                    dir.display(),
                    m.mode() & 0o7777
                ));
            }
        }
    }
    Ok(())
}

/// Whether user `uid` (primary group `gid`) could read `path` by its permission bits (and
/// search every directory above it). Supplementary groups are not known here, so a file
/// readable only through one counts as unreadable: the safe side.
pub fn caller_can_read(path: &Path, uid: u32, gid: Option<u32>) -> bool {
    let allowed = |m: &std::fs::Metadata, bits: u32| {
        let mode = m.permissions().mode();
        if m.uid() == uid {
            mode & (bits << 6) != 0
        } else if Some(m.gid()) == gid {
            mode & (bits << 3) != 0
        } else {
            mode & bits != 0
        }
    };
    let Ok(canonical) = path.canonicalize() else {
        return false;
    };
    let Ok(meta) = std::fs::metadata(&canonical) else {
        return false;
    };
    allowed(&meta, 0o4)
        && canonical
            .ancestors()
            .skip(1)
            .all(|dir| std::fs::metadata(dir).is_ok_and(|m| allowed(&m, 0o1)))
}

/// Why a bounded read failed.
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
}

/// A size for messages: `64 KiB`, `1 MiB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Read a regular file of at most `limit` bytes (`what` names it in the error): opened
/// without blocking (a FIFO cannot hang the tool), checked on the opened handle, read with
/// a bound (a file that grows cannot exceed it).
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig { what, limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooBig { what, limit });
    }
    Ok(buf)
}

/// `O_NONBLOCK`, through nix (no libc dependency here).
fn libc_o_nonblock() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_big_and_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "secret\n").unwrap();
        assert_eq!(read_bounded(&f, 7, "password file").unwrap(), b"secret\n");
        let err = read_bounded(&f, 6, "password file").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bigger than the 6 bytes a password file may be"
        );
        assert!(matches!(
            read_bounded(dir.path(), 10, "x"),
            Err(ReadError::NotAFile)
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_bounded(&fifo, 10, "x"),
            Err(ReadError::NotAFile)
        ));
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn system_files_are_roots_alone() {
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap(); // root-owned 0700 under sticky /tmp
        let f = dir.path().join("config.yaml");
        std::fs::write(&f, "timeout: 5s\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(system_file(&f), Ok(()));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(system_file(&f)
            .unwrap_err()
            .contains("writable by group or others"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(system_file(&f).unwrap_err().contains("owned by uid 65534"));
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        // A directory others may write to (not sticky) above it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(system_file(&f)
            .unwrap_err()
            .contains("writable by group or others"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Readable by the caller: by the bits that apply to them.
        assert!(caller_can_read(&f, 65534, None));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!caller_can_read(&f, 65534, None));
        assert!(caller_can_read(&f, 0, None));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!caller_can_read(&f, 65534, None));
        assert!(caller_can_read(&f, 65534, Some(0)));
    }
}
