//! Reading (and opening) files by the rules of [`super`]: [`read_file`] for a file read on
//! another user's behalf, [`Opened`] for what a descriptor walk found, [`read_bounded`] for a
//! process's own reads.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::sys::stat::FileStat;

use super::walk::{self, Caller, Links, Rules, Walked};
use super::{Origin, Privilege, Quote, ReadError};

/// A file opened once by walking its path on descriptors (see the module's documentation),
/// with what the walk found out about it.
#[derive(Debug)]
pub struct Opened {
    file: std::fs::File,
    stat: FileStat,
    walked: Walked,
    caller: Caller,
}

impl Opened {
    /// Open `path` for `caller`: links followed only where root controls them.
    pub fn open(path: &Path, caller: Caller) -> Result<Opened, ReadError> {
        let walked = walk::walk(
            path,
            Rules {
                caller: Some(caller),
                trusted: &[0],
                links: Links::Trusted,
                look_at_last: true,
            },
        )?;
        let (file, stat) = walk::open_regular(&walked)?;
        Ok(Opened {
            file,
            stat,
            walked,
            caller,
        })
    }

    /// Why this is not a system file (owned by root, writable by root only, every
    /// directory on its way root's alone), if it is not.
    pub fn not_system(&self) -> Option<String> {
        walk::not_system(&self.walked, &self.stat)
    }

    /// Why the caller could not read this file themselves, if they could not: a directory
    /// on the way they may not search, or the file's permission bits.
    pub fn caller_cannot_read(&self) -> Option<String> {
        if let Some(dir) = &self.walked.unsearchable {
            return Some(format!("no permission to search {}", dir.display()));
        }
        (!self.caller.may(&self.stat, 0o4)).then(|| "no permission to read it".to_string())
    }

    /// The file's owner.
    pub fn owner(&self) -> u32 {
        self.stat.st_uid
    }

    /// Read it all, at most `limit` bytes (`what` names it in the error).
    pub fn read(self, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
        bounded(
            self.file,
            u64::try_from(self.stat.st_size).unwrap_or(0),
            limit,
            what,
        )
    }
}

/// A file's bytes, and whether errors about them may quote them.
#[derive(Debug)]
pub struct Contents {
    /// What the file holds.
    pub bytes: Vec<u8>,
    /// Whether errors may quote it.
    pub quote: Quote,
}

/// Read a file for the user the process runs for (see the module's documentation):
/// running for another user, opened once on descriptors and held to what `origin` requires;
/// otherwise read as the process's own user would ([`read_bounded`]). At most `limit`
/// bytes; `what` names the file in errors.
pub fn read_file(
    path: &Path,
    privilege: &Privilege,
    origin: Origin,
    limit: u64,
    what: &'static str,
) -> Result<Contents, ReadError> {
    let Some(caller) = privilege.caller() else {
        return Ok(Contents {
            bytes: read_bounded(path, limit, what)?,
            quote: Quote::Content,
        });
    };
    let opened = Opened::open(path, caller)?;
    let unreadable = opened.caller_cannot_read();
    match origin {
        Origin::Caller => {
            if let Some(why) = unreadable {
                return Err(ReadError::NotForCaller(why));
            }
        }
        Origin::System => {
            if let Some(why) = opened.not_system() {
                return Err(ReadError::NotSystem(why));
            }
        }
        Origin::CallersOwn => {
            if opened.owner() != caller.uid {
                return Err(ReadError::NotForCaller(format!(
                    "owned by uid {}, not by the caller (uid {})",
                    opened.owner(),
                    caller.uid
                )));
            }
            if let Some(dir) = &opened.walked.unsearchable {
                return Err(ReadError::NotForCaller(format!(
                    "no permission to search {}",
                    dir.display()
                )));
            }
        }
    }
    // The owner may read their own file whatever its mode says (they can change it).
    let quote = if unreadable.is_none() || origin == Origin::CallersOwn {
        Quote::Content
    } else {
        Quote::PlaceOnly
    };
    Ok(Contents {
        bytes: opened.read(limit, what)?,
        quote,
    })
}

/// Read a regular file of at most `limit` bytes (`what` names it in the error), as the
/// process's own user: opened without blocking (a FIFO cannot hang the tool), checked on
/// the opened handle, read with a bound (a file that grows cannot exceed it).
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    bounded(file, meta.len(), limit, what)
}

fn bounded(
    file: std::fs::File,
    len: u64,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, ReadError> {
    if len > limit {
        return Err(ReadError::TooBig { what, limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooBig { what, limit });
    }
    Ok(buf)
}

/// Open the directory `path` for `caller` (walked on descriptors, links followed only where
/// root controls them), if they could list it themselves: search every directory on the
/// way, and read and search it. What is read from it is then opened from this descriptor,
/// so the path cannot be swapped for another directory after the check.
pub fn open_dir_for(path: &Path, caller: Caller) -> Result<std::fs::File, ReadError> {
    use nix::fcntl::OFlag;
    let walked = walk::walk(
        path,
        Rules {
            caller: Some(caller),
            trusted: &[0],
            links: Links::Trusted,
            look_at_last: true,
        },
    )?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::openat(
        &walked.dir,
        walked.name.as_os_str(),
        flags,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ELOOP) => return Err(ReadError::Link { at: walked.at }),
        Err(nix::errno::Errno::ENOTDIR) => return Err(ReadError::NotADirectory { at: walked.at }),
        Err(e) => return Err(ReadError::Io(e.into())),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| ReadError::Io(e.into()))?;
    if let Some(dir) = &walked.unsearchable {
        return Err(ReadError::NotForCaller(format!(
            "no permission to search {}",
            dir.display()
        )));
    }
    if !(caller.may(&st, 0o4) && caller.may(&st, 0o1)) {
        return Err(ReadError::NotForCaller(
            "no permission to list the directory".into(),
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// The directory a file is to be written in (opened), and the file's name in it: every
/// directory on the way owned by one of `owners` and writable by no one else (unless
/// sticky), and no symbolic link followed, not even root's. What writes on root's behalf
/// (the audit log) opens its file from that descriptor, so no directory can be swapped for
/// a link to another one on the way.
pub fn dir_to_write_in(
    path: &Path,
    owners: &[u32],
) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString), ReadError> {
    let walked = walk::walk(
        path,
        Rules {
            caller: None,
            trusted: owners,
            links: Links::Never,
            look_at_last: false,
        },
    )?;
    if let Some(why) = walked.untrusted {
        return Err(ReadError::NotSystem(why));
    }
    Ok((walked.dir, walked.name))
}

/// Why `path` is not a system file (`Ok` if it is): a regular file owned by root, not
/// writable by group or others, every directory on its way (links resolved, each followed
/// only if root controls it) owned by root and not writable by others unless sticky.
/// Checked on descriptors; to read the file, use [`read_file`] or [`Opened`], which judge
/// what they read.
pub fn system_file(path: &Path) -> Result<(), ReadError> {
    let opened = Opened::open(path, Caller { uid: 0, gid: None })?;
    opened
        .not_system()
        .map_or(Ok(()), |why| Err(ReadError::NotSystem(why)))
}

/// Whether user `uid` (primary group `gid`) could read `path` by its permission bits and
/// search every directory on its way (a link counts only if root controls it). Supplementary
/// groups are not known here, so a file readable only through one counts as unreadable.
pub fn caller_can_read(path: &Path, uid: u32, gid: Option<u32>) -> bool {
    Opened::open(path, Caller { uid, gid }).is_ok_and(|o| o.caller_cannot_read().is_none())
}
