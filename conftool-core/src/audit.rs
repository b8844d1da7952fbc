//! The audit trail: JSON lines saying who changed which key from what to what, from which
//! host, when, and at which etcd revision.
//!
//! Every write is recorded twice, around its commit, under one operation id (`op`):
//! - `"event": "intent"` before the commit: the key, the value expected before and the value
//!   to write. A process killed between commit and record leaves this line behind, so a gap
//!   in the trail is visible and can be resolved by reading the keys it names.
//! - `"event": "applied"` after the commit, with the `revision` of the transaction that
//!   wrote it.
//! - one `"event": "end"` line closes the operation: how many writes landed, the error that
//!   stopped it (`null` if none) and, after a transaction whose outcome is unknown (a lost
//!   answer), the keys that may or may not have been written.
//!
//! An intent without an applied line under an ended operation was not written (it lost a
//! compare-and-swap race and was re-planned, or its transaction failed). Reads are never
//! logged.
//!
//! Sinks: a file, opened (and so checked) before anything is written, appended with one
//! `write` per batch of lines so that concurrent writers do not interleave lines; and/or
//! syslog (`/dev/log`, facility `authpriv`, best effort).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::Error;
use crate::keys::Keyspace;
use crate::selection::{Applied, Change};
use conftool_trust::Privilege;

/// Who is acting, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The person: the caller when the process runs for another user (sudo's `SUDO_USER`,
    /// to root or to a service account alike), else the account of the process's user id.
    pub user: String,
    /// The account the process runs as, when it runs for another user (`root`, or the
    /// service account `sudo -u` switched to); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The etcd user the tool authenticated as, if any.
    pub etcd_user: Option<String>,
    /// This machine's host name.
    pub host: String,
    /// The tool (`confctl`, `conftool`, ...).
    pub tool: String,
}

impl Actor {
    /// The actor of this process ([`Actor::for_privilege`] of [`Privilege::current`]).
    pub fn from_env(tool: &str, etcd_user: Option<String>) -> Actor {
        Actor::for_privilege(tool, etcd_user, &Privilege::current())
    }

    /// The actor of a process running under `privilege`. Running for another user, the
    /// person is that user (the account of the real user id when it differs from the
    /// effective one, else `SUDO_USER`, else the account of `SUDO_UID`) and `account` the
    /// effective user's. Otherwise the person is `SUDO_USER` when the process runs as root
    /// (root's word for who it acts for), else the account of the real user id (from the
    /// system's user database, so cron jobs, systemd units and `env -i` are named too), else
    /// `USER`/`LOGNAME`, else `uid <n>`.
    ///
    /// A line is only as trustworthy as the account that wrote it (the log file is that
    /// account's): `account` says which one it was.
    pub fn for_privilege(tool: &str, etcd_user: Option<String>, privilege: &Privilege) -> Actor {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let name_of = |uid: nix::unistd::Uid| {
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .filter(|n| !n.is_empty())
        };
        let (ruid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
        let (user, account) = match privilege {
            Privilege::Sudo { uid, .. } => {
                let caller = nix::unistd::Uid::from_raw(*uid);
                let person = if ruid != euid {
                    name_of(ruid)
                } else {
                    var("SUDO_USER").or_else(|| name_of(caller))
                };
                (
                    person.unwrap_or_else(|| format!("uid {uid}")),
                    Some(name_of(euid).unwrap_or_else(|| format!("uid {euid}"))),
                )
            }
            _ => {
                let sudo = var("SUDO_USER").filter(|_| ruid.is_root());
                let user = sudo
                    .or_else(|| name_of(ruid))
                    .or_else(|| var("USER"))
                    .or_else(|| var("LOGNAME"))
                    .unwrap_or_else(|| format!("uid {ruid}"));
                (user, None)
            }
        };
        Actor {
            user,
            account,
            etcd_user,
            host: hostname(),
            tool: tool.to_string(),
        }
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// What an audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Event {
    /// About to be written.
    Intent,
    /// Written, at a revision.
    Applied,
    /// The operation is over.
    End,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Record<'a> {
    time: &'a str,
    #[serde(flatten)]
    actor: &'a Actor,
    op: &'a str,
    event: Event,
    /// The operation kept in etcd that the writes belong to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Write {
        key: &'a str,
        before: &'a Option<serde_json::Value>,
        after: &'a Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<i64>,
    },
    End {
        applied: usize,
        error: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        unknown: &'a [String],
    },
}

/// One write to audit: the key, its value before and after (`None`: absent), and the
/// revision of the write (`None` before it is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditEntry {
    /// The etcd key.
    pub key: String,
    /// The value before (`None` if the key was created).
    pub before: Option<serde_json::Value>,
    /// The value after (`None` if the key was deleted).
    pub after: Option<serde_json::Value>,
    /// The etcd revision of the write (`None` for an intent).
    pub revision: Option<i64>,
}

impl AuditEntry {
    /// An entry from stored text: JSON is kept as JSON, anything else as a string.
    pub fn from_text(
        key: String,
        before: Option<&str>,
        after: Option<&str>,
        revision: Option<i64>,
    ) -> Self {
        let value = |t: &str| {
            serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
        };
        AuditEntry {
            key,
            before: before.map(value),
            after: after.map(value),
            revision,
        }
    }

    /// The entry of a pool-state change (`revision` once it is written).
    pub fn for_change(ks: &Keyspace, change: &Change, revision: Option<i64>) -> Self {
        AuditEntry {
            key: ks.object_key(&change.key),
            before: serde_json::to_value(&change.before).ok(),
            after: change
                .after
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            revision,
        }
    }
}

/// Where audit records go, as configured (`audit_log`); [`crate::Store::writer`] opens
/// (and so checks) it before anything is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditLog {
    file: Option<PathBuf>,
    syslog: bool,
}

impl AuditLog {
    /// A sink from the configuration's `audit_log`: a path, `syslog`, or `None` for no log.
    pub fn from_config(setting: Option<&Path>) -> AuditLog {
        match setting {
            None => AuditLog::default(),
            Some(p) if p == Path::new("syslog") => AuditLog {
                file: None,
                syslog: true,
            },
            Some(p) => AuditLog {
                file: Some(p.to_path_buf()),
                syslog: false,
            },
        }
    }

    /// Whether records go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some() || self.syslog
    }

    /// Open the log for one operation by `actor`. The file is opened now, so an audit log
    /// that cannot be written stops a change before anything is written, not after. It is
    /// opened from a descriptor of its directory, reached without following any symbolic
    /// link, every directory on the way owned by root (or the user writing it) and writable
    /// by no one else unless sticky (so a link planted in a log directory others can write
    /// to, or a directory link above it, cannot redirect root's lines); it is opened without
    /// following a link and without blocking, and must be a regular file with one name,
    /// owned by the user writing it, writable by no one else; created `0640` whatever the
    /// umask.
    pub(crate) fn open(&self, actor: &Actor) -> Result<AuditSink, Error> {
        let file = match &self.file {
            None => None,
            Some(path) => Some((path.clone(), open_log(path)?)),
        };
        let mut sink = AuditSink {
            file,
            syslog: self.syslog,
            actor: actor.clone(),
            op: String::new(),
            applied: 0,
            ops: 0,
            reason: None,
            operation: None,
        };
        sink.begin();
        Ok(sink)
    }
}

/// Open (creating if needed) an audit log file; see [`AuditLog::open`].
fn open_log(path: &Path) -> Result<std::fs::File, Error> {
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

/// An open audit log for one operation: intents before each commit, what was applied after
/// it, and an end line.
#[derive(Debug)]
pub(crate) struct AuditSink {
    file: Option<(PathBuf, std::fs::File)>,
    syslog: bool,
    actor: Actor,
    op: String,
    applied: usize,
    /// Operations begun, so that each gets its own id.
    ops: u64,
    /// Why the writes are made, as the person said (`--reason`), on every line.
    reason: Option<String>,
    /// The operation (kept in etcd) the writes belong to, on every line.
    operation: Option<String>,
}

impl AuditSink {
    /// Who writes.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The reason given, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Say which operation (kept in etcd) the writes belong to, from now on.
    pub fn set_operation(&mut self, id: Option<String>) {
        self.operation = id;
    }

    /// Say why the writes are made: recorded on every line from now on.
    pub fn set_reason(&mut self, reason: Option<String>) {
        self.reason = reason;
    }

    /// Start a new operation: a fresh id (`<host>-<pid>-<unix ms>-<n>`) and count.
    pub fn begin(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.ops += 1;
        self.op = format!(
            "{}-{}-{}-{}",
            self.actor.host,
            std::process::id(),
            now.as_millis(),
            self.ops
        );
        self.applied = 0;
    }

    /// Whether records go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.file.is_some() || self.syslog
    }

    /// The operation id shared by this operation's lines.
    #[cfg(test)]
    pub fn op(&self) -> &str {
        &self.op
    }

    /// Record writes about to be committed.
    pub fn intent(&mut self, entries: &[AuditEntry]) -> Result<(), Error> {
        self.write_entries(Event::Intent, entries)
    }

    /// Record writes that landed (each with its revision).
    pub fn applied(&mut self, entries: &[AuditEntry]) -> Result<(), Error> {
        self.applied += entries.len();
        self.write_entries(Event::Applied, entries)
    }

    /// Record pool-state changes about to be committed.
    pub fn intent_changes(&mut self, ks: &Keyspace, changes: &[Change]) -> Result<(), Error> {
        if !self.is_enabled() {
            return Ok(());
        }
        let entries: Vec<AuditEntry> = changes
            .iter()
            .map(|c| AuditEntry::for_change(ks, c, None))
            .collect();
        self.intent(&entries)
    }

    /// Record pool-state changes that landed.
    pub fn applied_changes(&mut self, ks: &Keyspace, applied: &[Applied]) -> Result<(), Error> {
        if !self.is_enabled() {
            self.applied += applied.len();
            return Ok(());
        }
        let entries: Vec<AuditEntry> = applied
            .iter()
            .map(|a| AuditEntry::for_change(ks, &a.change, Some(a.revision)))
            .collect();
        self.applied(&entries)
    }

    /// Close the operation: the error that stopped it, if any, and keys whose write may or
    /// may not have landed.
    pub fn end(&mut self, error: Option<&str>, unknown: &[String]) -> Result<(), Error> {
        if !self.is_enabled() {
            return Ok(());
        }
        let time = rfc3339(SystemTime::now());
        let line = self.line(
            &time,
            Event::End,
            Body::End {
                applied: self.applied,
                error,
                unknown,
            },
        );
        self.emit(&[line])
    }

    fn line(&self, time: &str, event: Event, body: Body<'_>) -> String {
        let rec = Record {
            time,
            actor: &self.actor,
            op: &self.op,
            operation: self.operation.as_deref(),
            reason: self.reason.as_deref(),
            event,
            body,
        };
        // Strings, numbers and JSON values only: serializing cannot fail.
        json_escape_unshowable(serde_json::to_string(&rec).unwrap_or_default())
    }

    fn write_entries(&mut self, event: Event, entries: &[AuditEntry]) -> Result<(), Error> {
        if !self.is_enabled() || entries.is_empty() {
            return Ok(());
        }
        let time = rfc3339(SystemTime::now());
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                self.line(
                    &time,
                    event,
                    Body::Write {
                        key: &e.key,
                        before: &e.before,
                        after: &e.after,
                        revision: e.revision,
                    },
                )
            })
            .collect();
        self.emit(&lines)
    }

    fn emit(&mut self, lines: &[String]) -> Result<(), Error> {
        if let Some((path, f)) = &mut self.file {
            let mut buf = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
            for l in lines {
                buf.push_str(l);
                buf.push('\n');
            }
            // One write for the batch: O_APPEND keeps concurrent writers' lines whole.
            f.write_all(buf.as_bytes()).map_err(|source| Error::Audit {
                path: path.clone(),
                source,
            })?;
        }
        if self.syslog {
            send_syslog(&self.actor.tool, lines);
        }
        Ok(())
    }
}

/// JSON text with the characters JSON leaves as they are but a viewer would not show as
/// stored ([`crate::text::is_unshowable`]: DEL, C1, Unicode's bidirectional controls and
/// separators, from a `--reason` or a stored value) written as `\uXXXX` escapes: the same
/// JSON value, but `less` or a terminal shows the line as it is. (serde_json escapes C0
/// itself; every such character is in the Basic Multilingual Plane, and can only be inside
/// a string.)
fn json_escape_unshowable(json: String) -> String {
    use std::fmt::Write as _;
    if !json.chars().any(crate::text::is_unshowable) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if crate::text::is_unshowable(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes, `: `-separated (what an `end` line records).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        src = s.source();
    }
    text
}

/// Best effort: a missing syslog daemon must not fail a change that already landed.
fn send_syslog(tool: &str, lines: &[String]) {
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    // <86> = facility authpriv (10) * 8 + severity info (6).
    for line in lines {
        let _ = sock.send_to(format!("<86>{tool}: {line}").as_bytes(), "/dev/log");
    }
}

/// Format a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Format a time as `YYYYMMDD-HHMMSS` (UTC): the stamp in operation and event ids.
pub fn utc_compact(t: SystemTime) -> String {
    let digits: String = rfc3339(t)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let cut = 8.min(digits.len());
    format!("{}-{}", &digits[..cut], &digits[cut..])
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classify as _;
    use std::time::Duration;

    fn actor() -> Actor {
        Actor {
            user: "alice".into(),
            account: None,
            etcd_user: Some("conftool".into()),
            host: "cumin1001".into(),
            tool: "confctl".into(),
        }
    }

    #[test]
    fn compact_stamps_are_the_utc_date_and_time_of_ids() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_409_743_250);
        assert_eq!(rfc3339(t), "2026-12-04T18:42:23.250Z");
        assert_eq!(utc_compact(t), "20261204-184223");
        assert_eq!(utc_compact(UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn an_operation_is_intents_applied_and_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::from_config(Some(&path));
        let mut sink = log.open(&actor()).unwrap();
        assert!(path.exists(), "opening creates the file");
        let entry =
            |rev| AuditEntry::from_text("/v1/k".into(), Some(r#"{"a":1}"#), Some("plain"), rev);
        sink.intent(&[entry(None)]).unwrap();
        sink.applied(&[entry(Some(7))]).unwrap();
        sink.end(Some("boom"), &["/v1/other".to_string()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        for l in &lines {
            assert_eq!(l["op"], sink.op());
            assert_eq!(l["user"], "alice");
            assert_eq!(l["etcd_user"], "conftool");
            assert_eq!(l["host"], "cumin1001");
            assert_eq!(l["tool"], "confctl");
        }
        assert!(sink.op().starts_with("cumin1001-"), "{}", sink.op());
        assert_eq!(lines[0]["event"], "intent");
        assert_eq!(lines[0]["before"], serde_json::json!({"a": 1}));
        assert_eq!(lines[0]["after"], "plain");
        assert!(lines[0].get("revision").is_none(), "{text}");
        assert_eq!(lines[1]["event"], "applied");
        assert_eq!(lines[1]["revision"], 7);
        assert_eq!(lines[2]["event"], "end");
        assert_eq!(lines[2]["applied"], 1);
        assert_eq!(lines[2]["error"], "boom");
        assert_eq!(lines[2]["unknown"], serde_json::json!(["/v1/other"]));
        assert!(lines[2].get("key").is_none(), "{text}");
        // A clean end has no unknown keys and a null error.
        let mut sink = log.open(&actor()).unwrap();
        sink.end(None, &[]).unwrap();
        let last: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert!(
            last["error"].is_null() && last.get("unknown").is_none(),
            "{last}"
        );
        assert_eq!(last["applied"], 0);
    }

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
    fn unshowable_characters_are_escaped_in_the_json_and_kept_in_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut sink = AuditLog::from_config(Some(&path)).open(&actor()).unwrap();
        let reason = "T123\u{7f} \u{202e}dlrow\u{202c}\u{9b}2J\u{2028}x\u{1b}";
        sink.set_reason(Some(reason.into()));
        sink.end(None, &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.trim_end().chars().any(crate::text::is_unshowable),
            "{text:?}"
        );
        assert!(
            text.contains(r"\u007f") && text.contains(r"\u202e"),
            "{text}"
        );
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(line["reason"], reason, "the value is kept exactly");
        assert_eq!(
            json_escape_unshowable("{\"a\":\"é\"}".into()),
            "{\"a\":\"é\"}"
        );
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

    #[test]
    fn a_disabled_log_records_nothing_and_opens_nothing() {
        let log = AuditLog::from_config(None);
        assert!(!log.is_enabled());
        let mut sink = log.open(&actor()).unwrap();
        assert!(!sink.is_enabled());
        sink.intent(&[AuditEntry::from_text("k".into(), None, None, None)])
            .unwrap();
        sink.end(Some("x"), &[]).unwrap();
        assert!(AuditLog::from_config(Some(Path::new("syslog"))).is_enabled());
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_593_600_123); // 2026-11-25T08:00:00.123Z
        assert_eq!(rfc3339(t), "2026-11-25T08:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }
}
