//! The records the coordinator keeps in etcd (pure: their shapes, as JSON). Fields a newer
//! version adds are kept (`extra`) and written back.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conftool_core::{NodeName, OperationId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::CheckName;

/// A moment, to the millisecond, written as RFC 3339 in UTC (`2026-12-04T16:42:23.120Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(u64);

impl Stamp {
    /// Now.
    pub fn now() -> Stamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Stamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Milliseconds since 1970-01-01 UTC.
    pub fn from_unix_ms(ms: u64) -> Stamp {
        Stamp(ms)
    }

    /// Milliseconds since 1970-01-01 UTC.
    pub fn unix_ms(self) -> u64 {
        self.0
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Parse `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
    ///
    /// ```
    /// use conftool_rebootmgr::records::Stamp;
    /// let s = Stamp::parse("2024-01-01T00:00:01.250Z").unwrap();
    /// assert_eq!(s.to_string(), "2024-01-01T00:00:01.250Z");
    /// assert_eq!(s.unix_secs(), 1_704_067_201);
    /// assert!(Stamp::parse("yesterday").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Stamp> {
        let s = s.strip_suffix('Z')?;
        let (date, time) = s.split_once('T')?;
        let mut d = date.splitn(3, '-').map(str::parse::<i64>);
        let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let mut t = hms.splitn(3, ':').map(str::parse::<i64>);
        let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
        let secs = days_from_civil(y, m, day) * 86_400 + h * 3600 + mi * 60 + sec;
        u64::try_from(secs * 1000 + ms).ok().map(Stamp)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method; the
/// inverse of the one conftool's audit log writes its times with).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        f.write_str(&conftool_core::audit::rfc3339(t))
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Stamp::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a time: {s:?}")))
    }
}

/// Where a reboot in progress is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The slot is taken; the node is being depooled and prepared (pre-boot tasks, the
    /// settling wait, the last check).
    Draining,
    /// The reboot command is running, or ran: the node is away.
    Rebooting,
    /// Back with a new boot id: post-boot tasks, waiting until healthy, the repool.
    Booted,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Draining => "draining",
            Phase::Rebooting => "rebooting",
            Phase::Booted => "booted",
        })
    }
}

/// What asked for a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// The trigger file exists.
    File,
    /// The node's `reboot_required` key exists.
    Key,
    /// An operator ran it with `--now`.
    Now,
}

/// The trigger as it was seen when the reboot started: what is cleared after it, and only
/// if it is still the same (a trigger set again after the boot asks for another reboot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// What asked first (file, key, `--now`).
    pub by: TriggerKind,
    /// The trigger file's modification time (ns since 1970), if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mtime_ns: Option<u128>,
    /// The trigger key's mod revision, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_revision: Option<i64>,
}

/// A reboot in progress (`groups/<group>/reboots/<node>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reboot {
    /// The node.
    pub node: NodeName,
    /// Where it is.
    pub phase: Phase,
    /// Since when it is there.
    pub phase_since: Stamp,
    /// When the reboot started (the slot was taken).
    pub started: Stamp,
    /// The boot the reboot started in; after the boot, the new one is `booted_as`.
    pub boot_id: String,
    /// The boot it came back as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_as: Option<String>,
    /// The id of its entry of the group's slot lock.
    pub slot: String,
    /// The operation its objects were depooled into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
    /// What asked for it.
    pub trigger: Trigger,
    /// The slot ran out while the node was away: who noticed, when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_lost: Option<SlotLost>,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A slot that ran out (its lease expired) while its node was away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotLost {
    /// The node that noticed it.
    pub noticed_by: NodeName,
    /// When.
    pub at: Stamp,
}

/// A node that stopped and needs a person (`nodes/<node>/needs_person`): while it is set,
/// the node does nothing but report its health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// What happened.
    pub reason: String,
    /// At which step (`pre_boot_task`, `reboot`, `post_boot_task`, `healthy`, ...).
    pub step: String,
    /// Since when.
    pub since: Stamp,
    /// The operation that still holds the node's objects depooled, if it does (its record
    /// says what, and ending it puts them back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationId>,
    /// Whether the node was left depooled.
    pub depooled: bool,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One check's result on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check.
    pub name: CheckName,
    /// Exit 0 within its timeout.
    pub passing: bool,
    /// What it said or why it failed (short).
    #[serde(default)]
    pub detail: String,
}

/// What a member tells its group at every run (`groups/<group>/reports/<node>`): that it is
/// up, in which boot, whether it waits for a reboot, and its checks' results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The member.
    pub node: NodeName,
    /// When it was written.
    pub at: Stamp,
    /// The boot it was written in.
    pub boot_id: String,
    /// A reboot is asked for (file, key or `--now`).
    #[serde(default)]
    pub triggered: bool,
    /// Its checks' results.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// The same news as `other` (only the time differs): no need to write it again yet.
    pub fn same_news(&self, other: &Report) -> bool {
        self.node == other.node
            && self.boot_id == other.boot_id
            && self.triggered == other.triggered
            && self.checks == other.checks
    }

    /// This member's result of `check`, if it ran it.
    pub fn result(&self, check: &CheckName) -> Option<&CheckResult> {
        self.checks.iter().find(|c| &c.name == check)
    }
}

/// Parse one of our records, naming the key when it does not parse.
pub fn parse<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, crate::Error> {
    serde_json::from_slice(value).map_err(|e| crate::Error::Record {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// A record as JSON (our records are plain strings and numbers: it cannot fail).
pub fn json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_their_text() {
        for ms in [0, 1_704_067_200_000, 1_709_210_096_789, 4_102_444_799_999] {
            let s = Stamp(ms);
            assert_eq!(Stamp::parse(&s.to_string()), Some(s), "{s}");
        }
        assert_eq!(
            Stamp::parse("2024-02-29T12:00:00Z").map(|s| s.0 % 1000),
            Some(0)
        );
        assert_eq!(
            Stamp::parse("2024-02-29T12:00:00.5Z").map(|s| s.0 % 1000),
            Some(500)
        );
        for bad in [
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Stamp(5_000).since(Stamp(3_500)),
            Duration::from_millis(1500)
        );
        assert_eq!(Stamp(3_000).since(Stamp(3_500)), Duration::ZERO);
    }

    #[test]
    fn a_reboot_record_keeps_what_a_newer_version_added() {
        let text = r#"{"node":"mw1","phase":"rebooting","phase_since":"2024-01-01T00:00:00.000Z","started":"2024-01-01T00:00:00.000Z","boot_id":"b1","slot":"mw1-1-a","trigger":{"by":"file","file_mtime_ns":5},"future":[1]}"#;
        let r: Reboot = parse("k", text.as_bytes()).unwrap();
        assert_eq!(
            (r.phase, r.trigger.by),
            (Phase::Rebooting, TriggerKind::File)
        );
        let back = json(&r);
        assert!(back.contains(r#""future":[1]"#), "{back}");
        assert_eq!(parse::<Reboot>("k", back.as_bytes()).unwrap(), r);
        let e = parse::<Reboot>("/v1/rebootmgr/groups/web/reboots/mw1", b"{}").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "/v1/rebootmgr/groups/web/reboots/mw1: unreadable record: missing field"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_report_is_news_when_anything_but_its_time_changed() {
        let r = Report {
            node: "mw1".parse().unwrap(),
            at: Stamp(1),
            boot_id: "b".into(),
            triggered: false,
            checks: vec![CheckResult {
                name: "dkms".parse().unwrap(),
                passing: true,
                detail: String::new(),
            }],
            extra: serde_json::Map::new(),
        };
        assert!(r.same_news(&Report {
            at: Stamp(2),
            ..r.clone()
        }));
        assert!(!r.same_news(&Report {
            triggered: true,
            ..r.clone()
        }));
        let mut failing = r.clone();
        failing.checks[0].passing = false;
        assert!(!r.same_news(&failing));
    }
}
