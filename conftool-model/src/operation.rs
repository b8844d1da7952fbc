//! Operations: changes of pool state recorded in etcd so that they can always be undone.
//!
//! A depool that will be undone later (a restart, a rack's network maintenance, a reboot)
//! is an *operation*: a record at `<namespace>/v1/operations/<id>`, outside `/v1/pools` so
//! no consumer of pool keys sees it, holding who, why, when, from where, and every object it
//! changed with its state before and after. The store writes the record in the same
//! transaction as the change, so after a crash at any point the record says exactly what
//! landed. Ending an operation ([`end_plan`]) restores each object to its before-state only
//! if it is still as the operation left it, and never touches an object that became
//! `inactive` meanwhile.
//!
//! Pure: the record and the plans over it. The store reads and writes them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::model::{ObjectKey, PoolState, Pooled};
use crate::selection::Change;

/// An operation's id: `op-` and a UTC time and a random suffix (`op-20261204-164223-3fa9c1`),
/// or any name of letters, digits, `.`, `_`, `-` (at most 64, not starting with `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(String);

impl OperationId {
    /// A new id from the current UTC time (`YYYYMMDD-HHMMSS`) and a random number.
    pub fn new(utc_compact: &str, random: u32) -> Result<OperationId, Error> {
        format!("op-{utc_compact}-{:06x}", random & 0xff_ffff).parse()
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OperationId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(OperationId(s.to_string()))
        } else {
            Err(Error::OperationId(s.to_string()))
        }
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for OperationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OperationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether an operation still has something to undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    /// Open: its changes are in place (or it is about to make them).
    Open,
    /// Ended: what could be restored was.
    Ended,
}

/// One object an operation changed: its state before the operation's first change to it,
/// and after its last (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationObject {
    /// Which object (`dc/cluster/service/node`).
    #[serde(with = "key_text")]
    pub key: ObjectKey,
    /// Its state before the operation changed it.
    pub before: PoolState,
    /// Its state as the operation left it.
    pub after: Option<PoolState>,
}

/// Something an operation did besides writing pool state: a command it ran (a policy's
/// depool command), or a host it left to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStep {
    /// The host the step is about.
    pub host: String,
    /// What was done: `command`, `manual`, ...
    pub kind: String,
    /// The command run, or the note for a person.
    pub detail: String,
    /// The command's exit code (`None`: not run, or killed, or timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What happened, for people (`ok`, `exit 3`, `timed out after 30s`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The command that undoes it, when the operation ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

/// The record of an operation, as stored in etcd (JSON). Fields this version does not know
/// are kept and written back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// Its id (also the last segment of its key).
    pub id: OperationId,
    /// Open or ended.
    pub state: OperationState,
    /// What it is (`depool`, `depool-during`, `run`, ...): with `subject`, how a re-run
    /// finds the operation it should resume.
    pub kind: String,
    /// What it is about: host names, a selector, a label.
    #[serde(default)]
    pub subject: Vec<String>,
    /// The person (the caller of sudo, else the process's user).
    pub user: String,
    /// The etcd user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_user: Option<String>,
    /// The machine it was started from.
    pub host: String,
    /// The tool that started it.
    pub tool: String,
    /// The process that started it.
    pub pid: u32,
    /// Why, as the person said (`--reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Every object it changed.
    #[serde(default)]
    pub objects: Vec<OperationObject>,
    /// Commands run and hosts left to people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<OperationStep>,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The largest record the store writes (etcd's request limit is 1.5 MiB; a record is
/// written with the changes it describes).
pub const MAX_RECORD_BYTES: usize = 512 * 1024;

impl OperationRecord {
    /// The record with `changes` added: an object changed for the first time keeps its
    /// state before; one changed again gets its new state after.
    pub fn with_changes(&self, changes: &[Change]) -> OperationRecord {
        let mut next = self.clone();
        for c in changes {
            match next.objects.iter_mut().find(|o| o.key == c.key) {
                Some(o) => o.after = c.after.clone(),
                None => next.objects.push(OperationObject {
                    key: c.key.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                }),
            }
        }
        next
    }

    /// The JSON stored in etcd; [`Error::OperationTooLarge`] past [`MAX_RECORD_BYTES`].
    pub fn to_json(&self) -> Result<String, Error> {
        // Strings, numbers and JSON values only: serializing cannot fail.
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.len() > MAX_RECORD_BYTES {
            return Err(Error::OperationTooLarge {
                id: self.id.to_string(),
                objects: self.objects.len(),
                bytes: text.len(),
                limit: MAX_RECORD_BYTES,
            });
        }
        Ok(text)
    }

    /// Parse a stored record.
    pub fn from_json(key: &str, bytes: &[u8]) -> Result<OperationRecord, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedValue {
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Whether this is the open operation of `kind` about exactly `subject` (the one a
    /// re-run of the same command resumes).
    pub fn resumes(&self, kind: &str, subject: &[String]) -> bool {
        self.state == OperationState::Open && self.kind == kind && self.subject == subject
    }
}

/// Why ending an operation leaves an object as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// It no longer exists.
    Gone,
    /// It became `inactive` (decommissioned meanwhile): never touched.
    Inactive,
    /// Someone changed it after the operation: it is theirs now.
    ChangedSince(PoolState),
    /// It is already in its before-state.
    AlreadyRestored,
    /// The operation deleted it; ending does not recreate objects (the sync does).
    Deleted,
}

impl fmt::Display for Left {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Left::Gone => f.write_str("it no longer exists"),
            Left::Inactive => f.write_str("it became inactive meanwhile"),
            Left::ChangedSince(now) => write!(
                f,
                "changed since the operation (now pooled={} weight={})",
                now.pooled, now.weight
            ),
            Left::AlreadyRestored => f.write_str("already as it was before"),
            Left::Deleted => f.write_str("the operation deleted it; the sync recreates it"),
        }
    }
}

/// What ending an operation does: the changes that restore objects, and the objects it
/// leaves with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndPlan {
    /// Changes back to each object's before-state (CAS on the state read now).
    pub restore: Vec<Change>,
    /// Objects left as they are.
    pub left: Vec<(ObjectKey, Left)>,
}

/// Whether two states are the same for an operation: `pooled` and `weight`.
fn same(a: &PoolState, b: &PoolState) -> bool {
    a.pooled == b.pooled && a.weight == b.weight
}

/// Plan the end of `record` given the objects' current states (with their mod revisions;
/// absent: deleted).
pub fn end_plan(
    record: &OperationRecord,
    current: &BTreeMap<ObjectKey, (PoolState, i64)>,
) -> EndPlan {
    let mut plan = EndPlan::default();
    for o in &record.objects {
        let Some(after) = &o.after else {
            plan.left.push((o.key.clone(), Left::Deleted));
            continue;
        };
        let Some((now, mod_revision)) = current.get(&o.key) else {
            plan.left.push((o.key.clone(), Left::Gone));
            continue;
        };
        if same(now, &o.before) {
            plan.left.push((o.key.clone(), Left::AlreadyRestored));
        } else if now.pooled == Pooled::Inactive && after.pooled != Pooled::Inactive {
            plan.left.push((o.key.clone(), Left::Inactive));
        } else if !same(now, after) {
            plan.left
                .push((o.key.clone(), Left::ChangedSince(now.clone())));
        } else {
            // Back to the before-state's pooled and weight; fields the operation did not
            // set (newer writers' extras) stay as they are now.
            let mut restored = now.clone();
            restored.pooled = o.before.pooled;
            restored.weight = o.before.weight;
            plan.restore.push(Change {
                key: o.key.clone(),
                before: now.clone(),
                after: Some(restored),
                mod_revision: *mod_revision,
            });
        }
    }
    plan
}

/// `dc/cluster/service/node` in JSON.
mod key_text {
    use super::*;

    pub fn serialize<S: Serializer>(k: &ObjectKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(k)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Weight;
    use Pooled::{Inactive, No, Yes};

    fn key(node: &str) -> ObjectKey {
        format!("eqiad/appservers/apache/{node}").parse().unwrap()
    }

    fn st(p: Pooled, w: u16) -> PoolState {
        PoolState::new(p, Weight(w))
    }

    fn record() -> OperationRecord {
        OperationRecord {
            id: "op-20261204-164223-00abcd".parse().unwrap(),
            state: OperationState::Open,
            kind: "depool".into(),
            subject: vec!["mw1".into()],
            user: "alice".into(),
            etcd_user: None,
            host: "cumin1001".into(),
            tool: "confctl".into(),
            pid: 42,
            reason: Some("kernel".into()),
            started: "2026-12-04T16:42:23Z".into(),
            ended: None,
            objects: Vec::new(),
            steps: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    fn change(node: &str, from: PoolState, to: Option<PoolState>) -> Change {
        Change {
            key: key(node),
            before: from,
            after: to,
            mod_revision: 3,
        }
    }

    #[test]
    fn ids_are_path_safe_and_generated_from_time_and_a_random_number() {
        let id = OperationId::new("20261204-164223", 0x1234_abcd).unwrap();
        assert_eq!(id.as_str(), "op-20261204-164223-34abcd");
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65), "é"] {
            let e = bad.parse::<OperationId>().unwrap_err().to_string();
            assert!(e.contains("invalid operation id"), "{bad}: {e}");
        }
        assert!("manual.fix_1-2".parse::<OperationId>().is_ok());
    }

    #[test]
    fn a_record_keeps_the_first_before_and_the_last_after() {
        let r = record()
            .with_changes(&[change("mw1", st(Yes, 5), Some(st(No, 5)))])
            .with_changes(&[
                change("mw1", st(No, 5), Some(st(No, 0))),
                change("mw2", st(Yes, 1), Some(st(No, 1))),
            ]);
        assert_eq!(r.objects.len(), 2);
        assert_eq!(
            (r.objects[0].before.clone(), r.objects[0].after.clone()),
            (st(Yes, 5), Some(st(No, 0)))
        );
        assert_eq!(r.objects[1].key, key("mw2"));
        // Stored as JSON with keys as text, and read back the same.
        let text = r.to_json().unwrap();
        assert!(
            text.contains(r#""key":"eqiad/appservers/apache/mw1""#),
            "{text}"
        );
        assert!(text.contains(r#""state":"open""#), "{text}");
        assert_eq!(OperationRecord::from_json("k", text.as_bytes()).unwrap(), r);
        // Fields of newer versions survive.
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["ticket"] = "T123".into();
        let back = OperationRecord::from_json("k", v.to_string().as_bytes()).unwrap();
        assert_eq!(back.extra["ticket"], "T123");
        let e = OperationRecord::from_json("/v1/operations/x", b"{}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("etcd key /v1/operations/x: malformed value"),
            "{e}"
        );
    }

    #[test]
    fn a_record_too_big_for_etcd_is_refused_with_its_size() {
        let many: Vec<Change> = (0..6000)
            .map(|i| change(&format!("mw{i}"), st(Yes, 1), Some(st(No, 1))))
            .collect();
        let e = record()
            .with_changes(&many)
            .to_json()
            .unwrap_err()
            .to_string();
        assert!(e.contains("would record 6000 objects"), "{e}");
        assert!(e.contains("split the change"), "{e}");
    }

    #[test]
    fn ending_restores_only_what_is_still_as_the_operation_left_it() {
        let r = record().with_changes(&[
            change("same", st(Yes, 5), Some(st(No, 5))),
            change("moved", st(Yes, 5), Some(st(No, 5))),
            change("gone", st(Yes, 5), Some(st(No, 5))),
            change("decom", st(Yes, 5), Some(st(No, 5))),
            change("back", st(Yes, 5), Some(st(No, 5))),
            change("deleted", st(No, 5), None),
        ]);
        let mut extra = st(No, 5);
        extra.extra.insert("note".into(), "x".into());
        let current: BTreeMap<ObjectKey, (PoolState, i64)> = [
            (key("same"), (extra, 10)),
            (key("moved"), (st(No, 7), 11)),
            (key("decom"), (st(Inactive, 5), 12)),
            (key("back"), (st(Yes, 5), 13)),
        ]
        .into_iter()
        .collect();
        let plan = end_plan(&r, &current);
        assert_eq!(plan.restore.len(), 1);
        let c = &plan.restore[0];
        assert_eq!((c.key.clone(), c.mod_revision), (key("same"), 10));
        let after = c.after.clone().unwrap();
        assert_eq!((after.pooled, after.weight), (Yes, Weight(5)));
        assert_eq!(after.extra["note"], "x", "fields it did not set stay");
        let left: BTreeMap<String, String> = plan
            .left
            .iter()
            .map(|(k, why)| (k.node.to_string(), why.to_string()))
            .collect();
        assert_eq!(
            left["moved"],
            "changed since the operation (now pooled=no weight=7)"
        );
        assert_eq!(left["gone"], "it no longer exists");
        assert_eq!(left["decom"], "it became inactive meanwhile");
        assert_eq!(left["back"], "already as it was before");
        assert_eq!(
            left["deleted"],
            "the operation deleted it; the sync recreates it"
        );
        assert_eq!(left.len(), 5);
    }

    #[test]
    fn an_operation_that_set_inactive_is_undone_from_inactive() {
        let r = record().with_changes(&[change("a", st(No, 1), Some(st(Inactive, 1)))]);
        let current = [(key("a"), (st(Inactive, 1), 4))].into_iter().collect();
        let plan = end_plan(&r, &current);
        assert_eq!(plan.restore.len(), 1);
        assert_eq!(plan.restore[0].after.as_ref().map(|s| s.pooled), Some(No));
    }

    #[test]
    fn a_rerun_resumes_only_the_open_operation_of_the_same_kind_and_subject() {
        let r = record();
        assert!(r.resumes("depool", &["mw1".into()]));
        assert!(!r.resumes("depool", &["mw2".into()]));
        assert!(!r.resumes("run", &["mw1".into()]));
        let ended = OperationRecord {
            state: OperationState::Ended,
            ..record()
        };
        assert!(!ended.resumes("depool", &["mw1".into()]));
    }
}
