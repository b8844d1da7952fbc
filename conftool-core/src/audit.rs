//! The audit trail: one JSON line per write, saying who changed which key from what to
//! what, from which host, when, and at which etcd revision.
//!
//! Sinks: a file (appended with one `write` per record, so concurrent writers do not
//! interleave lines) and/or syslog (`/dev/log`, facility `authpriv`). Reads are never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::Error;
use crate::keys::Keyspace;
use crate::select::Applied;

/// Who is acting, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The person: `SUDO_USER`, else `USER`.
    pub user: String,
    /// The etcd user the tool authenticated as, if any.
    pub etcd_user: Option<String>,
    /// This machine's host name.
    pub host: String,
    /// The tool (`confctl`, `conftool`, ...).
    pub tool: String,
}

impl Actor {
    /// The actor of this process, from the environment.
    pub fn from_env(tool: &str, etcd_user: Option<String>) -> Actor {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Actor {
            user: var("SUDO_USER")
                .or_else(|| var("USER"))
                .or_else(|| var("LOGNAME"))
                .unwrap_or_else(|| "unknown".into()),
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

/// One audited write.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord<'a> {
    /// UTC time, RFC 3339.
    pub time: String,
    /// Who, from where.
    #[serde(flatten)]
    pub actor: &'a Actor,
    /// The etcd key.
    pub key: String,
    /// The value before (`null` if created).
    pub before: Option<serde_json::Value>,
    /// The value after (`null` if deleted).
    pub after: Option<serde_json::Value>,
    /// The etcd revision of the write.
    pub revision: i64,
}

/// One write to audit: the key, its value before and after (`None`: absent), and the
/// revision of the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The etcd key.
    pub key: String,
    /// The value before (`None` if the key was created).
    pub before: Option<serde_json::Value>,
    /// The value after (`None` if the key was deleted).
    pub after: Option<serde_json::Value>,
    /// The etcd revision of the write.
    pub revision: i64,
}

impl AuditEntry {
    /// An entry from stored text: JSON is kept as JSON, anything else as a string.
    pub fn from_text(
        key: String,
        before: Option<&str>,
        after: Option<&str>,
        revision: i64,
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
}

/// Where audit records go.
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

    /// Record applied changes.
    pub fn record(&self, ks: &Keyspace, actor: &Actor, applied: &[Applied]) -> Result<(), Error> {
        let entries: Vec<AuditEntry> = applied
            .iter()
            .map(|a| AuditEntry {
                key: ks.object_key(&a.change.key),
                before: serde_json::to_value(&a.change.before).ok(),
                after: a
                    .change
                    .after
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok()),
                revision: a.revision,
            })
            .collect();
        self.record_entries(actor, &entries)
    }

    /// Record writes of any key.
    pub fn record_entries(&self, actor: &Actor, entries: &[AuditEntry]) -> Result<(), Error> {
        if !self.is_enabled() || entries.is_empty() {
            return Ok(());
        }
        let time = rfc3339(SystemTime::now());
        let lines: Vec<String> = entries
            .iter()
            .map(|e| {
                let rec = AuditRecord {
                    time: time.clone(),
                    actor,
                    key: e.key.clone(),
                    before: e.before.clone(),
                    after: e.after.clone(),
                    revision: e.revision,
                };
                serde_json::to_string(&rec).unwrap_or_default()
            })
            .collect();
        if let Some(path) = &self.file {
            let fail = |e: std::io::Error| Error::Config {
                path: path.clone(),
                reason: format!("cannot write audit log: {e}"),
            };
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(fail)?;
            for line in &lines {
                // One write per line: O_APPEND keeps concurrent writers' lines whole.
                f.write_all(format!("{line}\n").as_bytes()).map_err(fail)?;
            }
        }
        if self.syslog {
            send_syslog(&actor.tool, &lines);
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
    use std::time::Duration;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_593_600_123); // 2026-11-25T08:00:00.123Z
        assert_eq!(rfc3339(t), "2026-11-25T08:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339(leap)[..10], "2000-02-29");
    }
}
