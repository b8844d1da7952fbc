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
}

impl Selection {
    /// Filter a snapshot through a selector.
    pub fn from_snapshot(ks: &Keyspace, sel: &Selector, snap: &Snapshot) -> Selection {
        let mut out = Selection {
            revision: snap.revision,
            ..Selection::default()
        };
        for kv in &snap.kvs {
            let Some(key) = ks.parse_object_key(&kv.key) else {
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
