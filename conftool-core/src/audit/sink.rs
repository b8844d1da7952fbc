//! Where lines go: [`AuditLog`] is the configured destination, [`AuditSink`] one open
//! operation writing to it (the file opened by [`super::file`], and/or syslog).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::file::open_log;
use super::record::{AuditEntry, Body, Event, Record};
use super::{rfc3339, Actor};
use crate::error::Error;

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
            reason: None,
            operation: None,
        };
        sink.begin();
        Ok(sink)
    }
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

    /// Start a new operation: a fresh id (`<host>-<pid>-<unix ms>-<n>`, `n` counting the
    /// process's operations, so that writers of one process started in the same millisecond
    /// never share an id) and count.
    pub fn begin(&mut self) {
        static OPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = OPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.op = format!(
            "{}-{}-{}-{n}",
            self.actor.host,
            std::process::id(),
            now.as_millis(),
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
        rec.to_line()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_actor as actor;

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
}
