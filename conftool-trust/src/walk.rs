//! Walking a path one component at a time, on descriptors: what [`super`] builds every
//! read on another user's behalf (and the audit log's opening) on.
//!
//! The walk starts at `/` (a relative path is taken from the current directory's real
//! path) and opens each directory with `openat(O_PATH | O_DIRECTORY | O_NOFOLLOW)` from the
//! one before, judging each on its own descriptor (`fstat`): who owns it, who may change
//! it, whether the caller may search it. The last component is looked at without following
//! it (`fstatat(AT_SYMLINK_NOFOLLOW)`) and handed back with the directory that holds it, to
//! be opened from that descriptor. Nothing is looked up twice by name, so nothing can be
//! swapped between a check and a use.
//!
//! A symbolic link met on the way is followed only under [`Links::Trusted`], and only when
//! the trusted owners control it: the link itself is theirs, and so is the directory it is
//! in, which nobody else may write to (a sticky directory like `/tmp` is fine: others cannot
//! replace an entry they do not own). Its target is then walked the same way, component by
//! component. Any other link is refused ([`ReadError::Link`]).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::ReadError;

/// The most symbolic links one walk follows (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The user a path is walked for: whose permissions decide what they "could read".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Their user id.
    pub uid: u32,
    /// Their primary group id, if known. Supplementary groups are not consulted, so a file
    /// readable only through one counts as unreadable: the safe side.
    pub gid: Option<u32>,
}

impl Caller {
    /// Whether the permission bits of `st` give this user `bits` (4 read, 2 write, 1
    /// execute/search), as the kernel judges them: the owner's bits for the owner, the
    /// group's for the group, the others' for everyone else; root may do anything.
    pub(crate) fn may(&self, st: &FileStat, bits: u32) -> bool {
        self.allowed(st.st_uid, st.st_gid, st.st_mode, bits)
    }

    /// Whether this user could read what `meta` describes (a file opened for them).
    pub fn can_read(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.allowed(meta.uid(), meta.gid(), meta.mode(), 0o4)
    }

    /// Whether this user could search (pass through) the directory `meta` describes.
    pub fn can_search(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.allowed(meta.uid(), meta.gid(), meta.mode(), 0o1)
    }

    fn allowed(&self, uid: u32, gid: u32, mode: u32, bits: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        if uid == self.uid {
            mode & (bits << 6) != 0
        } else if Some(gid) == self.gid {
            mode & (bits << 3) != 0
        } else {
            mode & bits != 0
        }
    }
}

/// What to do with a symbolic link met on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// Follow it when the trusted owners control it (see the module's documentation).
    Trusted,
    /// Refuse every link.
    Never,
}

/// Where a walk ended: the last component, not opened yet, and what was found on the way.
#[derive(Debug)]
pub(crate) struct Walked {
    /// The directory holding the last component.
    pub dir: OwnedFd,
    /// The last component's name.
    pub name: OsString,
    /// Where it is, links resolved (for messages).
    pub at: PathBuf,
    /// The last component as found (not followed), when the walk looked (`look_at_last`);
    /// `None` if it does not exist.
    pub last: Option<FileStat>,
    /// The first directory on the way that someone other than the trusted owners may
    /// change, and why.
    pub untrusted: Option<String>,
    /// The first directory on the way the caller may not search.
    pub unsearchable: Option<PathBuf>,
}

/// How a walk judges what it meets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// Whose permissions count as "could reach it" (`None`: nobody's are checked).
    pub caller: Option<Caller>,
    /// Owners whose directories and links are trusted (root, and for an audit log the user
    /// writing it).
    pub trusted: &'a [u32],
    /// What to do with links.
    pub links: Links,
    /// Whether to `fstatat` the last component (and follow it if it is a trusted link);
    /// without it, a missing last component is fine (a file about to be created).
    pub look_at_last: bool,
}

enum Step {
    Root,
    Parent,
    Name(OsString),
}

/// The steps of `path`, last first (so that `pop` takes them in order).
fn steps(path: &Path) -> Vec<Step> {
    let mut v: Vec<Step> = path
        .components()
        .filter_map(|c| match c {
            Component::RootDir | Component::Prefix(_) => Some(Step::Root),
            Component::CurDir => None,
            Component::ParentDir => Some(Step::Parent),
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
        })
        .collect();
    v.reverse();
    v
}

fn is(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

/// Whether only the trusted owners can change the entries of directory `dir`, at least the
/// one owned by `entry_owner`: the directory is theirs, and no one else may write to it, or
/// it is sticky (then others cannot rename or remove what they do not own).
fn dir_holds(dir: &FileStat, entry_owner: u32, trusted: &[u32]) -> bool {
    let sticky = dir.st_mode & 0o1000 != 0;
    trusted.contains(&dir.st_uid)
        && (dir.st_mode & 0o022 == 0 || (sticky && trusted.contains(&entry_owner)))
}

/// Why someone other than the trusted owners may change directory `st` (at `at`), if so.
fn untrusted_dir(st: &FileStat, at: &Path, trusted: &[u32]) -> Option<String> {
    let sticky = st.st_mode & 0o1000 != 0;
    if !trusted.contains(&st.st_uid) {
        Some(format!(
            "{} is owned by uid {}, not by {}",
            at.display(),
            st.st_uid,
            owners(trusted)
        ))
    } else if st.st_mode & 0o022 != 0 && !sticky {
        Some(format!(
            "{} is writable by group or others (mode {:o})",
            at.display(),
            st.st_mode & 0o7777
        ))
    } else {
        None
    }
}

/// The trusted owners, in words: `root`, `root or uid 33`.
fn owners(trusted: &[u32]) -> String {
    let names: Vec<String> = trusted
        .iter()
        .map(|u| match u {
            0 => "root".to_string(),
            u => format!("uid {u}"),
        })
        .collect();
    names.join(" or ")
}

fn io(e: Errno) -> ReadError {
    ReadError::Io(std::io::Error::from(e))
}

const DIR_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Walk `path` under `rules` (see the module's documentation).
pub(crate) fn walk(path: &Path, rules: Rules<'_>) -> Result<Walked, ReadError> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut pending = steps(&absolute);
    let mut found = Found {
        untrusted: None,
        unsearchable: None,
        rules,
    };
    let (mut dir, mut dir_st) = found.root()?;
    let mut at = PathBuf::from("/");
    let mut links = 0;
    while let Some(step) = pending.pop() {
        let name = match step {
            Step::Root => {
                (dir, dir_st) = found.root()?;
                at = PathBuf::from("/");
                continue;
            }
            Step::Parent => {
                let fd = openat(&dir, "..", DIR_FLAGS, Mode::empty()).map_err(io)?;
                at.pop();
                dir_st = found.enter(&fd, &at)?;
                dir = fd;
                continue;
            }
            Step::Name(name) => name,
        };
        let here = at.join(&name);
        let last = pending.is_empty();
        if last && !rules.look_at_last {
            return Ok(found.end(dir, name, here, None));
        }
        let st = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) if last => return Ok(found.end(dir, name, here, None)),
            Err(e) => return Err(io(e)),
        };
        if is(&st, SFlag::S_IFLNK) {
            let theirs = rules.links == Links::Trusted
                && rules.trusted.contains(&st.st_uid)
                && dir_holds(&dir_st, st.st_uid, rules.trusted);
            if !theirs {
                return Err(ReadError::Link { at: here });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(io(Errno::ELOOP));
            }
            let target = readlinkat(&dir, name.as_os_str()).map_err(io)?;
            // The target's steps come next (an absolute one starts again at `/`, a relative
            // one in the link's directory), then what was pending.
            pending.extend(steps(Path::new(&target)));
            continue;
        }
        if last {
            return Ok(found.end(dir, name, here, Some(st)));
        }
        let fd = match openat(&dir, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOTDIR) => return Err(ReadError::NotADirectory { at: here }),
            // Swapped for a link since the look: refused like one found at once.
            Err(Errno::ELOOP) => return Err(ReadError::Link { at: here }),
            Err(e) => return Err(io(e)),
        };
        dir_st = found.enter(&fd, &here)?;
        dir = fd;
        at = here;
    }
    // The path ends at a directory reached by `..` or `/`: that directory itself, as `.`
    // in it.
    Ok(found.end(dir, OsString::from("."), at, Some(dir_st)))
}

/// What a walk has found so far.
struct Found<'a> {
    untrusted: Option<String>,
    unsearchable: Option<PathBuf>,
    rules: Rules<'a>,
}

impl Found<'_> {
    fn root(&mut self) -> Result<(OwnedFd, FileStat), ReadError> {
        let fd = openat(AT_FDCWD, "/", DIR_FLAGS, Mode::empty()).map_err(io)?;
        let st = self.enter(&fd, Path::new("/"))?;
        Ok((fd, st))
    }

    /// Judge a directory just opened.
    fn enter(&mut self, fd: &OwnedFd, at: &Path) -> Result<FileStat, ReadError> {
        let st = fstat(fd).map_err(io)?;
        if self.untrusted.is_none() {
            self.untrusted = untrusted_dir(&st, at, self.rules.trusted);
        }
        if let Some(c) = self.rules.caller {
            if self.unsearchable.is_none() && !c.may(&st, 0o1) {
                self.unsearchable = Some(at.to_path_buf());
            }
        }
        Ok(st)
    }

    fn end(self, dir: OwnedFd, name: OsString, at: PathBuf, last: Option<FileStat>) -> Walked {
        Walked {
            dir,
            name,
            at,
            last,
            untrusted: self.untrusted,
            unsearchable: self.unsearchable,
        }
    }
}

/// Open the regular file a walk ended at, for reading: from its directory's descriptor,
/// without following a link, without blocking, and only if it is still a regular file once
/// open. A device, FIFO or socket is not even opened when the walk saw it as one.
pub(crate) fn open_regular(w: &Walked) -> Result<(std::fs::File, FileStat), ReadError> {
    match &w.last {
        None => return Err(io(Errno::ENOENT)),
        Some(st) if !is(st, SFlag::S_IFREG) => return Err(ReadError::NotAFile),
        Some(_) => {}
    }
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let fd = match openat(&w.dir, w.name.as_os_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err(ReadError::Link { at: w.at.clone() }),
        Err(e) => return Err(io(e)),
    };
    // What was opened is what is judged: an entry swapped since the look is judged anew.
    let st = fstat(&fd).map_err(io)?;
    if !is(&st, SFlag::S_IFREG) {
        return Err(ReadError::NotAFile);
    }
    Ok((std::fs::File::from(fd), st))
}

/// Why a regular file (`st`) at the end of walk `w` is not root's alone, if it is not.
pub(crate) fn not_system(w: &Walked, st: &FileStat) -> Option<String> {
    if st.st_uid != 0 {
        return Some(format!("owned by uid {}, not by root", st.st_uid));
    }
    let mode = std::fs::Permissions::from_mode(st.st_mode).mode();
    if mode & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:o})",
            mode & 0o7777
        ));
    }
    w.untrusted.clone()
}
