//! The work tree: listing a directory without following links, and opening each data file
//! from a descriptor of it, one component at a time (see the parent module's documentation).

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use conftool_trust::{self as trust, Caller, Privilege};
use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use super::{io, not_for_caller, Files, MAX_FILE_SIZE};
use crate::caps::{Cap, Caps};
use crate::error::Error;
use crate::layout::{
    classify_with, walk, EntryKind, Listing, Walk, POOLS_FILE, SPECIAL_REASON, SYMLINK_REASON,
};

/// Read the data files of `dir` from the file system. `dir` itself may be a symbolic link;
/// nothing under it is followed (see the module's documentation).
pub fn read_dir(dir: &Path) -> Result<Files, Error> {
    read_dir_capped(dir, &[], &Caps::default())
}

/// [`read_dir`], also reading the `<type>/*.yaml` files of the schema-declared `types`.
pub fn read_dir_with(dir: &Path, types: &[String]) -> Result<Files, Error> {
    read_dir_capped(dir, types, &Caps::default())
}

/// [`read_dir_with`], within `caps` (the data files' bytes together: a file that would pass
/// [`Caps::max_bytes`] is refused before it is read).
pub fn read_dir_capped(dir: &Path, types: &[String], caps: &Caps) -> Result<Files, Error> {
    read_dir_limited(dir, MAX_FILE_SIZE, types, caps.max_bytes)
}

pub(crate) fn read_dir_limited(
    dir: &Path,
    limit: u64,
    types: &[String],
    max_total: u64,
) -> Result<Files, Error> {
    // Running for another user (sudo), the directory must be one they could read: checked
    // before anything in it is listed, on the descriptor the files are then opened from.
    let caller = Privilege::current().caller();
    let checked = match caller {
        Some(c) => Some(trust::open_dir_for(dir, c).map_err(|e| not_for_caller(dir, e))?),
        None => None,
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let (read, warnings) = classify_with(&list_dir(dir)?, types).checked(dir)?;
    // The handle every data file is opened from: what it names stays this directory even
    // if the path is changed under the sync.
    let root = match checked {
        Some(root) => root,
        None => File::from(
            open(
                dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io(dir)(e.into()))?,
        ),
    };
    let mut files = Files {
        dir: dir.to_path_buf(),
        warnings,
        types: types.to_vec(),
        ..Files::default()
    };
    let mut total = 0u64;
    for rel in read {
        let full = dir.join(&rel);
        let file = open_data_file(&root, dir, &rel, caller)?;
        // Bounded by what is left under the cap on all files, too.
        let room = max_total.saturating_sub(total);
        let text = read_bounded(file, &full, limit.min(room))
            .map_err(|e| past_total(e, total, limit, max_total))?;
        total += text.len() as u64;
        let text = String::from_utf8(text).map_err(|_| Error::Yaml {
            file: full.clone(),
            line: None,
            message: "not valid UTF-8".into(),
        })?;
        files.files.insert(rel, text);
    }
    Ok(files)
}

/// Open `rel` (relative to the directory `root`, shown as `dir`) for reading: each component
/// without following links, the file without blocking, and only if it is a regular file
/// (and, running for another user, `caller`, one they could reach and read).
fn open_data_file(
    root: &File,
    dir: &Path,
    rel: &Path,
    caller: Option<Caller>,
) -> Result<File, Error> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::Layout {
                dir: dir.join(rel),
                reason: "not a plain relative path; not read".into(),
            }),
        })
        .collect::<Result<_, _>>()?;
    let Some((file_name, parents)) = names.split_last() else {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: "an empty path; not read".into(),
        });
    };
    let mut at = dir.to_path_buf();
    let mut parent: Option<File> = None;
    for name in parents {
        at.push(name);
        let base = parent.as_ref().unwrap_or(root);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(base, *name, flags, Mode::empty()) {
            Ok(fd) => {
                let fd = File::from(fd);
                if let Some(c) = caller {
                    let meta = fd.metadata().map_err(io(&at))?;
                    if !c.can_search(&meta) {
                        let why = "no permission to search it".to_string();
                        return Err(not_for_caller(&at, trust::ReadError::NotForCaller(why)));
                    }
                }
                parent = Some(fd)
            }
            // A link is ELOOP, or ENOTDIR with O_DIRECTORY: say which it is.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(not_followed(&at)),
            Err(e) => return Err(io(&at)(e.into())),
        }
    }
    at.push(file_name);
    let base = parent.as_ref().unwrap_or(root);
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let file = match openat(base, *file_name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::ELOOP) => {
            return Err(Error::Layout {
                dir: at,
                reason: SYMLINK_REASON.into(),
            })
        }
        Err(e) => return Err(io(&at)(e.into())),
    };
    // The handle, not the path: what was opened is what is judged.
    let meta = file.metadata().map_err(io(&at))?;
    if !meta.is_file() {
        return Err(Error::Layout {
            dir: at,
            reason: SPECIAL_REASON.into(),
        });
    }
    if caller.is_some_and(|c| !c.can_read(&meta)) {
        let why = "no permission to read it".to_string();
        return Err(not_for_caller(&at, trust::ReadError::NotForCaller(why)));
    }
    Ok(file)
}

/// The error for a directory component that could not be opened as one without following
/// a link.
fn not_followed(path: &Path) -> Error {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    Error::Layout {
        dir: path.to_path_buf(),
        reason: if link {
            "a symbolic link where a directory is expected: symbolic links are not followed; \
             not read"
                .into()
        } else {
            "not a directory; not read".into()
        },
    }
}

/// Read all of `file` (shown as `path`), refusing one larger than `limit` bytes: before
/// reading, by its size, and while reading, by never reading more than `limit + 1` bytes.
pub(super) fn read_bounded(file: File, path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let size = file.metadata().map_err(io(path))?.len();
    if size > limit {
        return Err(Error::TooLarge {
            file: path.to_path_buf(),
            size: Some(size),
            limit,
        });
    }
    // The stated size is only a hint: never more than the limit plus the byte that tells.
    let hint = usize::try_from(size.min(limit)).unwrap_or(0);
    let mut buf = Vec::with_capacity(hint.saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io(path))?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            file: path.to_path_buf(),
            size: None,
            limit,
        });
    }
    Ok(buf)
}

/// A file refused by [`read_bounded`] when it was bounded by the smaller of the per-file
/// `limit` and the room left under the cap on all files (after `total` bytes): said as the
/// limit it passed.
pub(super) fn past_total(e: Error, total: u64, limit: u64, max_total: u64) -> Error {
    let Error::TooLarge { file, size, .. } = e else {
        return e;
    };
    let bytes_cap = |total| Error::OverCap {
        file: file.clone(),
        line: None,
        cap: Cap::Bytes {
            limit: max_total,
            total,
        },
    };
    match size {
        Some(size) if size <= limit => bytes_cap(Some(total.saturating_add(size))),
        // It grew while being read, past the room left under the cap on all files.
        None if max_total.saturating_sub(total) < limit => bytes_cap(None),
        _ => Error::TooLarge { file, size, limit },
    }
}

/// Every entry under `dir`, without following symbolic links.
fn list_dir(dir: &Path) -> Result<Listing, Error> {
    let kind_of = |t: std::fs::FileType| {
        if t.is_dir() {
            EntryKind::Dir
        } else if t.is_file() {
            EntryKind::File
        } else if t.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        }
    };
    let mut listing = Listing::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let full = dir.join(&rel);
        for entry in std::fs::read_dir(&full).map_err(io(&full))? {
            let entry = entry.map_err(io(&full))?;
            let path = rel.join(entry.file_name());
            let kind = kind_of(entry.file_type().map_err(io(&entry.path()))?);
            if kind == EntryKind::Dir {
                match walk(&path) {
                    Walk::All => todo.push(path.clone()),
                    Walk::PoolsFile => {
                        let pools = entry.path().join(POOLS_FILE);
                        match std::fs::symlink_metadata(&pools) {
                            Ok(m) => {
                                listing.insert(path.join(POOLS_FILE), kind_of(m.file_type()));
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(io(&pools)(e)),
                        }
                    }
                    Walk::Nothing => {}
                }
            }
            listing.insert(path, kind);
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::{secret, write, SERVICES};

    /// A FIFO and a socket where data files are expected: refused when listed, without
    /// waiting for a writer.
    #[test]
    fn special_files_where_data_files_are_expected_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, &[("services.yaml", SERVICES), ("codfw/", "")]);
        std::fs::create_dir(dir.join("eqiad")).unwrap();
        nix::unistd::mkfifo(&dir.join("eqiad/pools.yaml"), Mode::S_IRWXU).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("codfw/pools.yaml")).unwrap();
        let e = read_dir(dir).unwrap_err();
        let special = "not a regular file (a FIFO, socket, device or git submodule) where a \
                       data file is expected; not read";
        assert_eq!(
            e.to_string(),
            format!(
                "{d}: 2 entries would not be read:\n  {d}/codfw/pools.yaml: {special}\n  \
                 {d}/eqiad/pools.yaml: {special}",
                d = dir.display()
            )
        );
    }

    /// Entries swapped after listing (for a link, a FIFO, or a directory for a link to one)
    /// are refused when opened: the checks are made on what is opened.
    #[test]
    fn a_swap_after_listing_is_refused_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = secret(tmp.path());
        let outside = tmp.path().join("outside");
        write(&outside, &[("pools.yaml", "c: {}\n")]);
        let dir = tmp.path().join("conf");
        write(
            &dir,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        std::os::unix::fs::symlink(&secret, dir.join("link.yaml")).unwrap();
        nix::unistd::mkfifo(&dir.join("fifo.yaml"), Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("codfw")).unwrap();
        let root = File::open(&dir).unwrap();
        let open = |rel: &str| open_data_file(&root, &dir, Path::new(rel), None).map(|_| ());
        let d = dir.display();
        assert!(open("eqiad/pools.yaml").is_ok());
        assert_eq!(
            open("link.yaml").unwrap_err().to_string(),
            format!("{d}/link.yaml: {SYMLINK_REASON}")
        );
        assert_eq!(
            open("fifo.yaml").unwrap_err().to_string(),
            format!("{d}/fifo.yaml: {SPECIAL_REASON}")
        );
        assert_eq!(
            open("codfw/pools.yaml").unwrap_err().to_string(),
            format!(
                "{d}/codfw: a symbolic link where a directory is expected: symbolic links are \
                 not followed; not read"
            )
        );
        assert_eq!(
            open("services.yaml/x").unwrap_err().to_string(),
            format!("{d}/services.yaml: not a directory; not read")
        );
    }

    /// The data directory itself may be a link (an operator's choice).
    #[test]
    fn the_data_directory_itself_may_be_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("conf-v2");
        write(
            &real,
            &[("services.yaml", SERVICES), ("eqiad/pools.yaml", "c: {}\n")],
        );
        let link = tmp.path().join("conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let files = read_dir(&link).unwrap();
        assert_eq!(files.files.len(), 2);
        assert_eq!(files.dir, link);
    }
}
