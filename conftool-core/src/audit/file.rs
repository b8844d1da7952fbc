//! Opening the audit log file so that no one but its writer can redirect or forge its lines.

use std::path::Path;

use crate::error::Error;

/// Open (creating if needed) an audit log file; see [`super::AuditLog::open`].
pub(super) fn open_log(path: &Path) -> Result<std::fs::File, Error> {
    use conftool_trust::ReadError;
    use nix::fcntl::OFlag;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fail = |source: std::io::Error| Error::Audit {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |why: String| fail(std::io::Error::other(why));
    let euid = nix::unistd::geteuid().as_raw();
    // Every directory above it is root's (or the writing user's) alone, and none is a link:
    // a directory link planted in a sticky /tmp-like directory cannot move the log.
    let (dir, name) = conftool_trust::dir_to_write_in(path, &[0, euid]).map_err(|e| match e {
        ReadError::NotSystem(why) => refuse(format!(
            "a directory above it is not root's (or the writing user's) alone: {why}"
        )),
        ReadError::Link { at } => refuse(format!(
            "{} is a symbolic link, which is not followed on the way to an audit log",
            at.display()
        )),
        ReadError::Io(e) => fail(e),
        e => refuse(e.to_string()),
    })?;
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o640);
    let file = match nix::fcntl::openat(&dir, name.as_os_str(), flags, mode) {
        Ok(fd) => std::fs::File::from(fd),
        Err(nix::errno::Errno::ELOOP) => {
            return Err(refuse(
                "it is a symbolic link, which is not followed".into(),
            ))
        }
        Err(e) => return Err(fail(e.into())),
    };
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.nlink() > 1 {
        return Err(refuse(format!(
            "it has {} names (hard links)",
            meta.nlink()
        )));
    }
    if meta.uid() != euid {
        return Err(refuse(format!(
            "owned by uid {}, not by the user writing it (uid {euid})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "writable by group or others (mode {:o}): anyone could forge lines",
            meta.mode() & 0o7777
        )));
    }
    if meta.len() == 0 && meta.mode() & 0o7777 != 0o640 {
        // Just created (or empty): the documented mode, whatever the umask made of it.
        file.set_permissions(std::fs::Permissions::from_mode(0o640))
            .map_err(fail)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{error_chain, test_actor as actor, AuditLog};
    use crate::Classify as _;

    #[test]
    fn an_audit_log_that_cannot_be_opened_fails_at_open_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let path = dir.path().join("file/audit.jsonl");
        let err = AuditLog::from_config(Some(&path))
            .open(&actor())
            .unwrap_err();
        assert!(
            matches!(&err, Error::Audit { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert_eq!(err.to_string(), format!("audit log {}", path.display()));
        assert!(!err.is_bad_input());
        let chain = error_chain(&err);
        assert!(
            chain.ends_with(&format!(
                "{} is not a directory",
                path.parent().unwrap().display()
            )),
            "{chain}"
        );
    }

    #[test]
    fn the_log_is_never_reached_through_a_link_or_opened_for_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep\n").unwrap();
        let open = |p: &Path| AuditLog::from_config(Some(p)).open(&actor()).map(|_| ());
        let why = |p: &Path| error_chain(&open(p).unwrap_err());
        // A planted symbolic link is refused, and the file it points to is untouched.
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(why(&link).contains("symbolic link"), "{}", why(&link));
        // So is a second name for another file.
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&target, &hard).unwrap();
        assert!(why(&hard).contains("2 names"), "{}", why(&hard));
        // And a log anyone may write to.
        let shared = dir.path().join("shared.jsonl");
        std::fs::write(&shared, "").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            why(&shared).contains("writable by group or others"),
            "{}",
            why(&shared)
        );
        assert!(
            why(dir.path()).contains("Is a directory"),
            "{}",
            why(dir.path())
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        // A new log is 0640.
        let fresh = dir.path().join("fresh.jsonl");
        open(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
    }

    #[test]
    fn every_directory_above_the_log_is_checked_and_none_is_a_link() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            return; // ownership cannot be arranged without root
        }
        let dir = tempfile::tempdir().unwrap();
        let why = |p: &Path| {
            error_chain(
                &AuditLog::from_config(Some(p))
                    .open(&actor())
                    .map(|_| ())
                    .unwrap_err(),
            )
        };
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        // A sticky directory anyone may write to, holding someone's directory link.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, shared.join("logs")).unwrap();
        let e = why(&shared.join("logs/audit.jsonl"));
        assert!(e.contains("logs is a symbolic link"), "{e}");
        assert!(!elsewhere.join("audit.jsonl").exists());
        // Someone else's directory in it.
        let theirs = shared.join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let e = why(&theirs.join("audit.jsonl"));
        assert!(e.contains("owned by uid 65534"), "{e}");
        // A directory anyone may write to, not sticky.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = why(&open.join("audit.jsonl"));
        assert!(e.contains("writable by group or others"), "{e}");
        // Root's own directory, inside the sticky one: fine.
        let mine = shared.join("mine");
        std::fs::create_dir(&mine).unwrap();
        AuditLog::from_config(Some(&mine.join("audit.jsonl")))
            .open(&actor())
            .unwrap();
        assert!(mine.join("audit.jsonl").is_file());
    }
}
