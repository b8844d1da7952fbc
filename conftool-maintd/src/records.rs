//! Events in etcd, at `<namespace>/v1/maint/events/<id>`: read, created, changed and deleted
//! with compare-and-swap, every write through conftool's audited [`Writer`] (so the audit
//! trail carries the writer's reason: the event id, the operator's reason), changes made
//! as read-modify-write that re-reads after a lost race.
//!
//! ```no_run
//! # async fn demo(store: &conftool_core::Store, actor: &conftool_core::Actor) -> Result<(), conftool_maintd::Error> {
//! use conftool_core::AuditLog;
//! use conftool_maintd::{records, OperatorAction};
//! let id = "ev-20260101-120000-3fa9c1".parse()?;
//! let mut writer = store.writer(actor, &AuditLog::default())?.with_reason("T123 disk swapped");
//! let done = records::operator(&mut writer, &id, OperatorAction::Ack, "alice@cumin1001", Some("T123")).await?;
//! println!("{} is {}", done.record.id, done.record.state);
//! # Ok(()) }
//! ```

use std::time::SystemTime;

use conftool_core::audit::rfc3339;
use conftool_core::{Guard, Keyspace, Store, Write, Writer};

use crate::error::Error;
use crate::event::{EventId, EventRecord, OperatorAction, Verdict};

/// How many times a lost race is re-read and re-tried.
const ROUNDS: usize = 8;

/// `<namespace>/v1/maint/events/`.
pub fn events_prefix(ks: &Keyspace) -> String {
    format!("{}maint/events/", ks.root_prefix())
}

/// The key of one event.
pub fn event_key(ks: &Keyspace, id: &EventId) -> String {
    format!("{}{id}", events_prefix(ks))
}

/// An event as read, with the revision a write of it compares against.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The record.
    pub record: EventRecord,
    /// Its key's mod revision when read.
    pub mod_revision: i64,
}

/// Every event (oldest first), and the keys under the prefix that do not parse (with why).
pub async fn list(store: &Store) -> Result<(Vec<Stored>, Vec<(String, String)>), Error> {
    let snap = store.read_prefix(&events_prefix(store.keyspace())).await?;
    let mut out = Vec::new();
    let mut malformed = Vec::new();
    for kv in snap.kvs {
        match serde_json::from_slice::<EventRecord>(&kv.value) {
            Ok(record) => out.push(Stored {
                record,
                mod_revision: kv.mod_revision,
            }),
            Err(e) => malformed.push((kv.key, e.to_string())),
        }
    }
    out.sort_by(|a, b| (&a.record.observed, &a.record.id).cmp(&(&b.record.observed, &b.record.id)));
    Ok((out, malformed))
}

/// One event, if it exists.
pub async fn get(store: &Store, id: &EventId) -> Result<Option<Stored>, Error> {
    let key = event_key(store.keyspace(), id);
    let snap = store.read_prefix(&key).await?;
    let Some(kv) = snap.kvs.into_iter().find(|kv| kv.key == key) else {
        return Ok(None);
    };
    let record = serde_json::from_slice(&kv.value).map_err(|e| Error::Malformed {
        key: kv.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(Stored {
        record,
        mod_revision: kv.mod_revision,
    }))
}

/// Create an event; `false` if its id is taken.
pub async fn create(writer: &mut Writer<'_>, record: &EventRecord) -> Result<bool, Error> {
    let key = event_key(writer.store().keyspace(), &record.id);
    put(writer, &key, Some(text(record)), None, Guard::Absent).await
}

/// Delete an event if it is still as read; `false` if it changed (or went) meanwhile.
pub async fn delete(writer: &mut Writer<'_>, stored: &Stored) -> Result<bool, Error> {
    let key = event_key(writer.store().keyspace(), &stored.record.id);
    let before = text(&stored.record);
    put(
        writer,
        &key,
        None,
        Some(&before),
        Guard::Unchanged(stored.mod_revision),
    )
    .await
}

/// Change an event: `change` is given the record as stored now and says whether it
/// changed it (an error stops it, nothing written); after a lost race it is given the
/// fresh record. The record as it stands afterwards.
pub async fn update<F>(
    writer: &mut Writer<'_>,
    id: &EventId,
    mut change: F,
) -> Result<EventRecord, Error>
where
    F: FnMut(&mut EventRecord) -> Result<bool, Error>,
{
    for _ in 0..ROUNDS {
        let store = writer.store();
        let Some(stored) = get(store, id).await? else {
            return Err(Error::NoEvent(id.clone()));
        };
        let mut next = stored.record.clone();
        if !change(&mut next)? {
            return Ok(stored.record);
        }
        let key = event_key(store.keyspace(), id);
        let before = text(&stored.record);
        if put(
            writer,
            &key,
            Some(text(&next)),
            Some(&before),
            Guard::Unchanged(stored.mod_revision),
        )
        .await?
        {
            return Ok(next);
        }
    }
    Err(Error::Conflict(id.clone()))
}

/// What an operator's action did.
#[derive(Debug, Clone)]
pub struct Operated {
    /// The record as it stands now.
    pub record: EventRecord,
    /// Whether it changed, or was already so.
    pub verdict: Verdict,
}

/// An operator's `cancel`, `ack` or `forget` of event `id`, as `by` (`user@host`), audited
/// through `writer` (whose reason is the operator's). Refused ([`Error::Refused`]) where the
/// event's state does not allow it, [`Error::NoEvent`] for an unknown id: nothing written.
pub async fn operator(
    writer: &mut Writer<'_>,
    id: &EventId,
    action: OperatorAction,
    by: &str,
    reason: Option<&str>,
) -> Result<Operated, Error> {
    let mut verdict = Verdict::Already;
    let record = update(writer, id, |r| {
        let now = rfc3339(SystemTime::now());
        verdict = r.operator(action, by, &now, reason)?;
        Ok(verdict == Verdict::Done)
    })
    .await?;
    Ok(Operated { record, verdict })
}

/// A record as stored (plain data: serializing cannot fail).
fn text(r: &EventRecord) -> String {
    serde_json::to_string(r).unwrap_or_default()
}

/// One guarded put (or delete, without a value), audited as one run of planned writes;
/// `false` when the guard failed.
async fn put(
    writer: &mut Writer<'_>,
    key: &str,
    value: Option<String>,
    before: Option<&str>,
    guard: Guard,
) -> Result<bool, Error> {
    let write = match value {
        Some(value) => Write::Put {
            key: key.to_string(),
            value,
            guard,
        },
        None => Write::Delete {
            key: key.to_string(),
            guard,
        },
    };
    let mut run = writer.planned();
    let report = run.commit(&[(write, before)]).await;
    let error = report
        .error
        .as_ref()
        .map(|e| conftool_core::audit::error_chain(e));
    run.finish(error.as_deref(), &[])?;
    if let Some(e) = report.error {
        return Err(e.into());
    }
    Ok(report.conflicted.is_empty() && !report.applied.is_empty())
}
