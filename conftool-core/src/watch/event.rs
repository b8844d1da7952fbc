//! What a watch reports, as plain data, and how etcd's events become it: decoded, filtered
//! through the selector and grouped by revision without I/O, so it is unit-tested here.

use std::cmp::Ordering;

use crate::keys::Keyspace;
use crate::model::{ObjectKey, PoolState};
use crate::selection::{Selected, Selection};
use crate::selector::Selector;

/// One item of a [`Watch`](super::Watch).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// Every object the selector matches, read at one revision: replace your view with it.
    ///
    /// Always the first event. It comes again only after a re-list: etcd had compacted the
    /// history the watch needed (it fell behind, or was disconnected, for longer than etcd
    /// keeps history), so the changes between the last event and this snapshot's revision
    /// are not reported one by one; this snapshot holds their outcome.
    Snapshot(Selection),
    /// What one etcd revision (one write, or one transaction) changed among the selected
    /// objects, in etcd's order. Revisions that changed none of them are not reported.
    Changes {
        /// The revision, greater than that of every earlier event of the watch.
        revision: i64,
        /// At most one change per object.
        changes: Vec<ObjectChange>,
    },
}

/// What happened to one object at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectChange {
    /// Created, or its state changed (its `mod_revision` is the event's revision).
    Put(Selected),
    /// Deleted.
    Deleted(ObjectKey),
    /// Written with a value that is not a valid object state. As in a [`Selection`], the
    /// object leaves the objects and is listed as malformed, with the same reason.
    Malformed {
        /// The object.
        key: ObjectKey,
        /// What is wrong with the value.
        reason: String,
    },
    /// A key under the watched prefix that is not an object key (a node name that is not
    /// a valid name, a path below a node, ...) was written. As in a [`Selection`], it is
    /// listed among the unreadable keys (as text: bytes that are not UTF-8 replaced).
    Unreadable(String),
    /// Such a key was deleted.
    UnreadableDeleted(String),
}

impl ObjectChange {
    /// The object changed; `None` for a key that is not an object key.
    pub fn key(&self) -> Option<&ObjectKey> {
        match self {
            ObjectChange::Put(s) => Some(&s.key),
            ObjectChange::Deleted(key) | ObjectChange::Malformed { key, .. } => Some(key),
            ObjectChange::Unreadable(_) | ObjectChange::UnreadableDeleted(_) => None,
        }
    }
}

impl WatchEvent {
    /// Bring `view` up to date with this event: a snapshot replaces it, changes are applied
    /// to it (and its revision becomes theirs). A view kept this way from the first event
    /// on equals a fresh [`Selection`] read at the revision of the last event.
    ///
    /// ```
    /// use conftool_core::watch::{ObjectChange, WatchEvent};
    /// use conftool_core::{Keyspace, ObjectKey, PoolState, Pooled, Selected, Selection, Weight};
    /// let ks = Keyspace::default();
    /// let key = ks.parse_object_key("/v1/pools/eqiad/appservers/apache/mw1018").unwrap();
    /// let mut view = Selection::default();
    /// let put = ObjectChange::Put(Selected {
    ///     key: key.clone(),
    ///     state: PoolState::new(Pooled::No, Weight(10)),
    ///     mod_revision: 12,
    /// });
    /// WatchEvent::Changes { revision: 12, changes: vec![put] }.apply_to(&ks, &mut view);
    /// assert_eq!((view.revision, view.objects.len()), (12, 1));
    /// WatchEvent::Changes { revision: 13, changes: vec![ObjectChange::Deleted(key)] }
    ///     .apply_to(&ks, &mut view);
    /// assert!(view.objects.is_empty());
    /// ```
    pub fn apply_to(&self, ks: &Keyspace, view: &mut Selection) {
        match self {
            WatchEvent::Snapshot(s) => *view = s.clone(),
            WatchEvent::Changes { revision, changes } => {
                view.revision = *revision;
                for c in changes {
                    apply_change(ks, view, c);
                }
            }
        }
    }
}

fn apply_change(ks: &Keyspace, view: &mut Selection, change: &ObjectChange) {
    let key = match change {
        ObjectChange::Unreadable(raw) | ObjectChange::UnreadableDeleted(raw) => {
            let at = view.unreadable.binary_search(raw);
            match (change, at) {
                (ObjectChange::Unreadable(_), Err(i)) => view.unreadable.insert(i, raw.clone()),
                (ObjectChange::UnreadableDeleted(_), Ok(i)) => {
                    view.unreadable.remove(i);
                }
                _ => {}
            }
            return;
        }
        ObjectChange::Put(s) => &s.key,
        ObjectChange::Deleted(key) | ObjectChange::Malformed { key, .. } => key,
    };
    // A selection is sorted by etcd key, which is not `ObjectKey`'s own order.
    let at = view.objects.binary_search_by(|o| etcd_order(&o.key, key));
    if let Ok(i) = at {
        view.objects.remove(i);
    }
    let raw = ks.object_key(key);
    let bad = view
        .malformed
        .binary_search_by(|(k, _)| k.as_str().cmp(raw.as_str()));
    if let Ok(i) = bad {
        view.malformed.remove(i);
    }
    match change {
        ObjectChange::Put(s) => {
            let i = at.unwrap_or_else(|i| i);
            view.objects.insert(i, s.clone());
        }
        ObjectChange::Malformed { reason, .. } => {
            let i = bad.unwrap_or_else(|i| i);
            view.malformed.insert(i, (raw, reason.clone()));
        }
        ObjectChange::Deleted(_)
        | ObjectChange::Unreadable(_)
        | ObjectChange::UnreadableDeleted(_) => {}
    }
}

/// The order of two objects' etcd keys (`dc/cluster/service/node` compared byte by byte),
/// without building the keys.
fn etcd_order(a: &ObjectKey, b: &ObjectKey) -> Ordering {
    fn path(k: &ObjectKey) -> impl Iterator<Item = u8> + '_ {
        let parts = [
            k.pool.dc.as_str(),
            k.pool.cluster.as_str(),
            k.pool.service.as_str(),
            k.node.as_str(),
        ];
        parts
            .into_iter()
            .enumerate()
            .flat_map(|(i, p)| (i > 0).then_some(b'/').into_iter().chain(p.bytes()))
    }
    path(a).cmp(path(b))
}

/// One event of an etcd watch response, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEvent<'a> {
    /// A delete (else a put).
    pub delete: bool,
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// The revision of the event (a delete's too).
    pub mod_revision: i64,
}

/// The changes of one revision, possibly none (its events did not concern the selection):
/// the revision still counts as seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Revision {
    pub revision: i64,
    pub changes: Vec<ObjectChange>,
}

/// Group a response's events by revision (etcd sends them in revision order, every event of
/// a revision in one response) and keep those of objects the selector matches, and of keys
/// under the pools prefix that are not object keys, as [`Selection::from_snapshot`] does.
pub(crate) fn by_revision<'a>(
    ks: &Keyspace,
    sel: &Selector,
    events: impl IntoIterator<Item = RawEvent<'a>>,
) -> Vec<Revision> {
    let mut out: Vec<Revision> = Vec::new();
    for ev in events {
        if out.last().is_none_or(|r| r.revision != ev.mod_revision) {
            out.push(Revision {
                revision: ev.mod_revision,
                changes: Vec::new(),
            });
        }
        if let (Some(change), Some(r)) = (decode(ks, sel, &ev), out.last_mut()) {
            r.changes.push(change);
        }
    }
    out
}

/// One event as a change of a selected object (or of a key under the pools prefix that is
/// not an object key), or `None` if it is not about one.
fn decode(ks: &Keyspace, sel: &Selector, ev: &RawEvent<'_>) -> Option<ObjectChange> {
    // Lossy, as a read of the prefix is: such a key is unreadable either way.
    let raw = String::from_utf8_lossy(ev.key);
    let Some(key) = ks.parse_object_key(&raw) else {
        if !raw.starts_with(&ks.pools_prefix()) {
            return None;
        }
        let raw = raw.into_owned();
        return Some(if ev.delete {
            ObjectChange::UnreadableDeleted(raw)
        } else {
            ObjectChange::Unreadable(raw)
        });
    };
    let raw = raw.as_ref();
    if !sel.matches(&key) {
        return None;
    }
    if ev.delete {
        return Some(ObjectChange::Deleted(key));
    }
    Some(match PoolState::from_json(raw, ev.value) {
        Ok(state) => ObjectChange::Put(Selected {
            key,
            state,
            mod_revision: ev.mod_revision,
        }),
        // The same reason a selection gives for it.
        Err(e) => ObjectChange::Malformed {
            key,
            reason: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::{Kv, Snapshot};

    fn put<'a>(key: &'a str, value: &'a str, rev: i64) -> RawEvent<'a> {
        RawEvent {
            delete: false,
            key: key.as_bytes(),
            value: value.as_bytes(),
            mod_revision: rev,
        }
    }

    fn del(key: &str, rev: i64) -> RawEvent<'_> {
        RawEvent {
            delete: true,
            key: key.as_bytes(),
            value: b"",
            mod_revision: rev,
        }
    }

    const YES: &str = r#"{"pooled":"yes","weight":1}"#;

    #[test]
    fn a_change_names_its_object_and_none_for_a_key_that_is_not_one() {
        let ks = Keyspace::default();
        let revs = by_revision(
            &ks,
            &Selector::any(),
            [
                put("/v1/pools/eqiad/appservers/apache/mw1018", YES, 5),
                del("/v1/pools/eqiad/appservers/apache/mw1019", 6),
                put("/v1/pools/eqiad/appservers/apache/mw1020", "{", 7),
                put("/v1/pools/eqiad/appservers/apache", YES, 8),
                del("/v1/pools/eqiad/appservers/apache", 9),
            ],
        );
        let keys: Vec<Option<String>> = revs
            .iter()
            .flat_map(|r| &r.changes)
            .map(|c| c.key().map(|k| k.node.to_string()))
            .collect();
        assert_eq!(
            keys,
            [
                Some("mw1018".to_string()),
                Some("mw1019".to_string()),
                Some("mw1020".to_string()),
                None,
                None
            ]
        );
    }

    #[test]
    fn groups_by_revision_and_keeps_only_selected_objects() {
        let ks = Keyspace::default();
        let sel: Selector = "dc=eqiad,cluster=appservers,name=mw1.*".parse().unwrap();
        let revs = by_revision(
            &ks,
            &sel,
            [
                put("/v1/pools/eqiad/appservers/apache/mw1018", YES, 5),
                // Another node name, another cluster, not an object key, not UTF-8.
                put("/v1/pools/eqiad/appservers/apache/db1001", YES, 5),
                put("/v1/pools/eqiad/api/apache/mw1018", YES, 5),
                put("/v1/pools/eqiad/appservers/apache", YES, 6),
                RawEvent {
                    key: b"/v1/pools/eqiad/appservers/apache/mw\xff",
                    ..put("", YES, 6)
                },
                del("/v1/pools/eqiad/appservers/nginx/mw1019", 7),
                put("/v1/pools/eqiad/appservers/nginx/mw1020", "{", 7),
            ],
        );
        let at: Vec<i64> = revs.iter().map(|r| r.revision).collect();
        assert_eq!(
            at,
            vec![5, 6, 7],
            "every revision seen, even with no change"
        );
        assert_eq!(revs[0].changes.len(), 1);
        assert!(matches!(&revs[0].changes[0],
            ObjectChange::Put(s) if s.key.node.as_str() == "mw1018" && s.mod_revision == 5));
        // Under the pools prefix but not object keys: unreadable, whatever the selector.
        assert_eq!(
            revs[1].changes,
            [
                ObjectChange::Unreadable("/v1/pools/eqiad/appservers/apache".into()),
                ObjectChange::Unreadable("/v1/pools/eqiad/appservers/apache/mw\u{fffd}".into()),
            ]
        );
        assert!(
            matches!(&revs[2].changes[0], ObjectChange::Deleted(k) if k.node.as_str() == "mw1019")
        );
        let ObjectChange::Malformed { key, reason } = &revs[2].changes[1] else {
            panic!("{:?}", revs[2].changes[1]);
        };
        assert_eq!(key.node.as_str(), "mw1020");
        // The reason a selection gives for the same value.
        let snap = Snapshot {
            revision: 7,
            kvs: vec![Kv {
                key: "/v1/pools/eqiad/appservers/nginx/mw1020".into(),
                value: b"{".to_vec(),
                mod_revision: 7,
            }],
        };
        let selection = Selection::from_snapshot(&ks, &sel, &snap);
        assert_eq!(selection.malformed[0].1, *reason);
    }

    #[test]
    fn a_view_kept_from_events_equals_a_fresh_selection() {
        let ks = Keyspace::new("/conftool");
        let sel: Selector = "dc=eqiad".parse().unwrap();
        // Names whose etcd key order differs from their field order (`-` and `.` sort before
        // `/`), values that come and go and turn malformed and back.
        let keys = [
            "/conftool/v1/pools/eqiad/app/apache/mw1",
            "/conftool/v1/pools/eqiad/app-x/apache/mw1",
            "/conftool/v1/pools/eqiad/app/apache-x/mw1",
            "/conftool/v1/pools/eqiad/app/apache/mw1.x",
            "/conftool/v1/pools/eqiad/app/apache/mw1-x",
            "/conftool/v1/pools/eqiad/app.x/apache/mw1",
            // Not object keys: unreadable ones come and go too.
            "/conftool/v1/pools/eqiad/app/apache/mw 1",
            "/conftool/v1/pools/eqiad/app/apache/mw1/x",
        ];
        let mut store: std::collections::BTreeMap<String, (String, i64)> = Default::default();
        let mut view = Selection::default();
        let mut rev = 1;
        let mut with_unreadable = 0;
        for step in 0..200usize {
            rev += 1;
            let key = keys[step * 7 % keys.len()];
            let raw = match step % 5 {
                0 | 3 => None,
                1 => Some("not json".to_string()),
                _ => Some(format!(r#"{{"pooled":"no","weight":{step}}}"#)),
            };
            let event = match &raw {
                Some(v) => put(key, v, rev),
                None => del(key, rev),
            };
            match raw.clone() {
                Some(v) => store.insert(key.to_string(), (v, rev)),
                None => store.remove(key),
            };
            for r in by_revision(&ks, &sel, [event]) {
                WatchEvent::Changes {
                    revision: r.revision,
                    changes: r.changes,
                }
                .apply_to(&ks, &mut view);
            }
            let snap = Snapshot {
                revision: rev,
                kvs: store
                    .iter()
                    .map(|(k, (v, m))| Kv {
                        key: k.clone(),
                        value: v.clone().into_bytes(),
                        mod_revision: *m,
                    })
                    .collect(),
            };
            assert_eq!(
                view,
                Selection::from_snapshot(&ks, &sel, &snap),
                "step {step}"
            );
            with_unreadable += usize::from(!view.unreadable.is_empty());
        }
        assert!(with_unreadable > 0, "the unreadable keys were exercised");
        // A snapshot replaces the view whole.
        let fresh = Selection {
            revision: 99,
            ..Selection::default()
        };
        WatchEvent::Snapshot(fresh.clone()).apply_to(&ks, &mut view);
        assert_eq!(view, fresh);
    }

    #[test]
    fn the_view_is_in_etcds_byte_order_where_one_segment_is_a_prefix_of_another() {
        let ks = Keyspace::default();
        let mut keys = Vec::new();
        for dc in ["eqiad", "eqiad1", "eqiad-x"] {
            for cluster in ["app", "app1", "app.x"] {
                for node in ["mw1", "mw1-a", "mw10", "mw1.a"] {
                    keys.push(format!("/v1/pools/{dc}/{cluster}/http/{node}"));
                }
            }
        }
        for a in &keys {
            for b in &keys {
                let (ka, kb) = (
                    ks.parse_object_key(a).unwrap(),
                    ks.parse_object_key(b).unwrap(),
                );
                assert_eq!(etcd_order(&ka, &kb), a.cmp(b), "{a} against {b}");
            }
        }
        // A view kept from events, with keys arriving in reverse, is in that order.
        let sel: Selector = "dc=.*".parse().unwrap();
        let mut view = Selection::default();
        for (i, key) in keys.iter().rev().enumerate() {
            let rev = i64::try_from(i).unwrap() + 2;
            for r in by_revision(&ks, &sel, [put(key, YES, rev)]) {
                WatchEvent::Changes {
                    revision: r.revision,
                    changes: r.changes,
                }
                .apply_to(&ks, &mut view);
            }
        }
        let mut sorted = keys.clone();
        sorted.sort();
        let got: Vec<String> = view.objects.iter().map(|o| ks.object_key(&o.key)).collect();
        assert_eq!(got, sorted);
    }
}
