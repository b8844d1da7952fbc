//! What a selector selected, and the changes an edit makes to it: plain data, computed from
//! a [`Snapshot`] without I/O. Reading and writing them is the store's job.

use crate::action::{Edit, Outcome};
use crate::keys::Keyspace;
use crate::model::{ObjectKey, PoolState};
use crate::selector::Selector;
use crate::write::{Guard, Snapshot, Write};

/// One selected object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Which object.
    pub key: ObjectKey,
    /// Its state when read.
    pub state: PoolState,
    /// Its mod revision when read.
    pub mod_revision: i64,
}

/// The objects a selector matched, read at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The revision of the read.
    pub revision: i64,
    /// Matching objects, sorted by key.
    pub objects: Vec<Selected>,
    /// Matching keys whose value is not a valid object (key, reason).
    pub malformed: Vec<(String, String)>,
    /// Keys read under the pools prefix that are not object keys (a node name that is not a
    /// valid name, a path below a node, ...), sorted. No selector can judge them, so every
    /// one read is listed: read a pool's prefix to learn about that pool's.
    pub unreadable: Vec<String>,
}

impl Selection {
    /// Filter a snapshot through a selector.
    pub fn from_snapshot(ks: &Keyspace, sel: &Selector, snap: &Snapshot) -> Selection {
        let mut out = Selection {
            revision: snap.revision,
            ..Selection::default()
        };
        // Room for every key read: a selection is usually most of what its prefix holds, and
        // a vector grown by doubling copies itself and touches twice the memory.
        out.objects.reserve_exact(snap.kvs.len());
        let pools = ks.pools_prefix();
        let mut names = crate::keys::KeyNames::default();
        for kv in &snap.kvs {
            let Some(key) = names.object_key(ks, &kv.key) else {
                if kv.key.starts_with(&pools) {
                    out.unreadable.push(kv.key.clone());
                }
                continue;
            };
            if !sel.matches(&key) {
                continue;
            }
            match PoolState::from_json(&kv.key, &kv.value) {
                Ok(state) => out.objects.push(Selected {
                    key,
                    state,
                    mod_revision: kv.mod_revision,
                }),
                Err(e) => out.malformed.push((kv.key.clone(), e.to_string())),
            }
        }
        if out.objects.len() < out.objects.capacity() / 2 {
            // A narrow selector over a wide read: give the room back.
            out.objects.shrink_to_fit();
        }
        out
    }

    /// The changes `edit` makes, skipping objects it leaves as they are.
    pub fn changes(&self, edit: impl Fn(&Selected) -> Option<Edit>) -> Vec<Change> {
        self.objects
            .iter()
            .filter_map(|o| {
                let outcome = edit(o)?.apply(&o.state)?;
                Some(Change {
                    key: o.key.clone(),
                    before: o.state.clone(),
                    after: match outcome {
                        Outcome::Put(s) => Some(s),
                        Outcome::Delete => None,
                    },
                    mod_revision: o.mod_revision,
                })
            })
            .collect()
    }
}

/// A change to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which object.
    pub key: ObjectKey,
    /// Its state when read.
    pub before: PoolState,
    /// Its new state; `None` deletes it.
    pub after: Option<PoolState>,
    /// Its mod revision when read (the write's guard).
    pub mod_revision: i64,
}

impl Change {
    /// The guarded write that makes this change: compare-and-swap on the revision read.
    pub fn write(&self, ks: &Keyspace) -> Write {
        let key = ks.object_key(&self.key);
        let guard = Guard::Unchanged(self.mod_revision);
        match &self.after {
            Some(s) => Write::Put {
                key,
                value: s.to_json(),
                guard,
            },
            None => Write::Delete { key, guard },
        }
    }
}

/// A change that landed, with the etcd revision of the transaction that applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The change (its `before` is the state it replaced).
    pub change: Change,
    /// The revision at which it was written.
    pub revision: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::SetFields;
    use crate::model::{Pooled, Weight};
    use crate::write::Kv;

    fn snap(kvs: &[(&str, &str, i64)]) -> Snapshot {
        Snapshot {
            revision: 42,
            kvs: kvs
                .iter()
                .map(|(k, v, r)| Kv {
                    key: k.to_string(),
                    value: v.as_bytes().to_vec(),
                    mod_revision: *r,
                })
                .collect(),
        }
    }

    const YES: &str = r#"{"pooled":"yes","weight":1}"#;
    const NO: &str = r#"{"pooled":"no","weight":1}"#;

    #[test]
    fn a_selection_gives_back_the_room_it_does_not_use() {
        let ks = Keyspace::default();
        let kvs: Vec<(String, &str, i64)> = (0..10)
            .map(|i| (format!("/v1/pools/eqiad/web/apache/mw{i}"), YES, 1))
            .collect();
        let kvs: Vec<(&str, &str, i64)> =
            kvs.iter().map(|(k, v, r)| (k.as_str(), *v, *r)).collect();
        let of = |sel: &str| {
            let sel: Selector = sel.parse().unwrap();
            Selection::from_snapshot(&ks, &sel, &snap(&kvs)).objects
        };
        // Room for every key read is made first; kept when half of it or more is used.
        let all = of("name=mw.*");
        assert_eq!((all.len(), all.capacity()), (10, 10));
        let half = of("name=mw[0-4]");
        assert_eq!((half.len(), half.capacity()), (5, 10));
        let one = of("name=mw3");
        assert_eq!((one.len(), one.capacity()), (1, 1));
    }

    #[test]
    fn a_selection_is_what_matches_sorted_into_objects_and_malformed_values() {
        let ks = Keyspace::default();
        let sel: Selector = "dc=eqiad,name=mw1.*".parse().unwrap();
        let s = Selection::from_snapshot(
            &ks,
            &sel,
            &snap(&[
                ("/v1/pools/eqiad/app/apache/mw1", YES, 3),
                ("/v1/pools/eqiad/app/apache/mw2", YES, 4),
                ("/v1/pools/codfw/app/apache/mw1", YES, 5),
                ("/v1/pools/eqiad/app/apache/mw10", "not json", 6),
                ("/v1/pools/eqiad/app/apache", YES, 7),
                ("/v1/pools/eqiad/app/apache/mw 1", YES, 8),
                ("/v1/pools/eqiad/app/apache/mw1/x", YES, 9),
                ("/v1/services/app/apache", "{}", 10),
            ]),
        );
        assert_eq!(s.revision, 42);
        let got: Vec<(String, i64)> = s
            .objects
            .iter()
            .map(|o| (o.key.to_string(), o.mod_revision))
            .collect();
        assert_eq!(got, [("eqiad/app/apache/mw1".to_string(), 3)]);
        assert_eq!(s.objects[0].state, PoolState::new(Pooled::Yes, Weight(1)));
        assert_eq!(s.malformed.len(), 1);
        assert_eq!(s.malformed[0].0, "/v1/pools/eqiad/app/apache/mw10");
        assert!(
            s.malformed[0].1.contains("malformed value"),
            "{:?}",
            s.malformed
        );
        // Not object keys: listed whatever the selector, but only under the pools prefix.
        assert_eq!(
            s.unreadable,
            [
                "/v1/pools/eqiad/app/apache",
                "/v1/pools/eqiad/app/apache/mw 1",
                "/v1/pools/eqiad/app/apache/mw1/x"
            ]
        );
    }

    #[test]
    fn changes_skip_what_an_edit_leaves_as_it_is() {
        let ks = Keyspace::default();
        let sel: Selector = "name=.*".parse().unwrap();
        let s = Selection::from_snapshot(
            &ks,
            &sel,
            &snap(&[
                ("/v1/pools/eqiad/app/apache/a", YES, 3),
                ("/v1/pools/eqiad/app/apache/b", NO, 4),
                ("/v1/pools/eqiad/app/apache/c", YES, 5),
            ]),
        );
        let depool = Edit::Set(SetFields {
            pooled: Some(Pooled::No),
            weight: None,
        });
        // b is already depooled; c is left out by the edit itself.
        let changes = s.changes(|o| (o.key.node.as_str() != "c").then_some(depool));
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        assert_eq!(c.key.node.as_str(), "a");
        assert_eq!(c.before.pooled, Pooled::Yes);
        assert_eq!(c.after.as_ref().map(|a| a.pooled), Some(Pooled::No));
        assert_eq!(c.mod_revision, 3);
        assert_eq!(
            c.write(&ks),
            Write::Put {
                key: "/v1/pools/eqiad/app/apache/a".into(),
                value: NO.into(),
                guard: Guard::Unchanged(3),
            }
        );
        let deletes = s.changes(|_| Some(Edit::Delete));
        assert_eq!(deletes.len(), 3);
        assert_eq!(deletes[1].after, None);
        assert_eq!(
            deletes[1].write(&ks),
            Write::Delete {
                key: "/v1/pools/eqiad/app/apache/b".into(),
                guard: Guard::Unchanged(4),
            }
        );
    }
}
