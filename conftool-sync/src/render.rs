//! Rendering a [`Plan`] for people: a unified diff of the keyspace (`-` lines are keys as
//! stored now, `+` lines as they will be stored; only keys the plan touches appear) and a
//! one-line summary that counts every write, the sync record's included.
//!
//! Stored values are whatever someone put in etcd: a newline in one would forge diff lines,
//! an escape sequence would reach the terminal. Every key, value and label is shown through
//! [`escape_controls`], so each key is exactly one line and no control character is printed.

use std::fmt;

use conftool_core::{escape_controls, Keyspace, Write};
use similar::TextDiff;

use crate::plan::{Plan, StateTexts};

impl Plan {
    /// One line that counts every write of the plan, e.g. `1 object to create, 0 objects to
    /// delete, 2 service definitions to write or delete, the sync record to update (4
    /// writes)`.
    pub fn summary(&self) -> String {
        let meta = match &self.meta {
            Some(m) if m.old.is_some() => "the sync record to update",
            Some(_) => "the sync record to create",
            None => "the sync record unchanged",
        };
        let typed: Vec<String> = self
            .typed
            .iter()
            .filter(|t| !t.create.is_empty() || !t.delete.is_empty())
            .map(|t| {
                format!(
                    "{}: {} to create, {} to delete; ",
                    t.ty.name,
                    t.create.len(),
                    t.delete.len()
                )
            })
            .collect();
        let typed_writes: usize = self
            .typed
            .iter()
            .map(|t| t.create.len() + t.delete.len())
            .sum();
        let labels = self.labels.changes.len();
        let writes = self.create.len()
            + self.delete.len()
            + self.services.len()
            + self.meta.iter().count()
            + typed_writes
            + labels;
        // Said only when there are some, as the schema types are.
        let labels = match labels {
            0 => String::new(),
            n => format!(
                "the labels of {} to write or delete, ",
                counted(n, "node", "nodes")
            ),
        };
        format!(
            "{}{} to create, {} to delete, {} to write or delete, {labels}{meta} ({})",
            typed.concat(),
            counted(self.create.len(), "object", "objects"),
            counted(self.delete.len(), "object", "objects"),
            counted(
                self.services.len(),
                "service definition",
                "service definitions"
            ),
            counted(writes, "write", "writes"),
        )
    }

    /// The plan as a unified diff between etcd (`old_label`) and the directory
    /// (`new_label`), one line per key, control characters escaped (`\n`, `\x1b`). Empty
    /// when there is nothing to write.
    pub fn render_diff(&self, ks: &Keyspace, old_label: &str, new_label: &str) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_diff(ks, old_label, new_label, &mut out);
        out
    }

    /// [`Plan::render_diff`], written to `out` as it is made rather than returned whole:
    /// an initial sync's diff is a line per object (~8 MB at 100,000 objects) that need not
    /// be held twice. Nothing is written when there is nothing to write.
    pub fn write_diff(
        &self,
        ks: &Keyspace,
        old_label: &str,
        new_label: &str,
        out: &mut dyn fmt::Write,
    ) -> fmt::Result {
        let mut old: Vec<(String, String)> = Vec::new();
        let mut new: Vec<(String, String)> = Vec::new();
        for s in &self.services {
            let key = ks.service_key(&s.key.0, &s.key.1);
            if let Some((_, v)) = &s.old {
                old.push((key.clone(), v.clone()));
            }
            if let Some(def) = &s.new {
                new.push((key, serde_json::to_string(def).unwrap_or_default()));
            }
        }
        // The objects to create, each with which of the few default states it gets: their
        // text made once each, not once an object.
        let mut states = StateTexts::default();
        let mut created: Vec<(String, usize)> = Vec::with_capacity(self.create.len());
        for (key, defaults) in &self.create {
            created.push((ks.object_key(key), states.index(defaults)));
        }
        for d in &self.delete {
            old.push((ks.object_key(&d.key), d.old.clone()));
        }
        for t in &self.typed {
            for (w, _) in t.create_writes(ks) {
                if let Write::Put { key, value, .. } = w {
                    new.push((key, value));
                }
            }
            for (w, before) in t.delete_writes(ks) {
                old.push((w.key().to_string(), before.unwrap_or_default().to_string()));
            }
        }
        self.labels.diff_lines(ks, &mut old, &mut new);
        if let Some(meta) = &self.meta {
            // Old and new both: a changed record shown as an addition alone would read, beside
            // a deletion, like a rename.
            if let Some((_, v)) = &meta.old {
                old.push((ks.sync_meta_key(), v.clone()));
            }
            new.push((ks.sync_meta_key(), meta.new.clone()));
        }
        if old.is_empty() && new.is_empty() && created.is_empty() {
            return Ok(());
        }
        let (old, new) = (
            lines(old, Vec::new(), &StateTexts::default()),
            lines(new, created, &states),
        );
        write!(
            out,
            "{}",
            TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(0)
                .header(&escape_controls(old_label), &escape_controls(new_label))
        )
    }
}

/// Sorted keys and values as the diff's text, a line each: `KEY VALUE`, escaped: those of
/// `pairs` and of `created` (whose values are `states[i]`) together, in one order. Sized
/// before it is written (no doubling), each pair dropped as soon as it is written.
fn lines(
    mut pairs: Vec<(String, String)>,
    mut created: Vec<(String, usize)>,
    states: &StateTexts,
) -> String {
    let state = |i: usize| states.text(i);
    pairs.sort();
    created.sort_by(|a, b| (a.0.as_str(), state(a.1)).cmp(&(b.0.as_str(), state(b.1))));
    let len = |k: &str, v: &str| escape_controls(k).len() + escape_controls(v).len() + 2;
    let total = pairs.iter().map(|(k, v)| len(k, v)).sum::<usize>()
        + created
            .iter()
            .map(|(k, i)| len(k, state(*i)))
            .sum::<usize>();
    let mut text = String::with_capacity(total);
    let mut push = |k: &str, v: &str| {
        text.push_str(&escape_controls(k));
        text.push(' ');
        text.push_str(&escape_controls(v));
        text.push('\n');
    };
    let mut pairs = pairs.into_iter().peekable();
    let mut created = created.into_iter().peekable();
    loop {
        let take_pair = match (pairs.peek(), created.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((k, v)), Some((ck, i))) => (k.as_str(), v.as_str()) <= (ck.as_str(), state(*i)),
        };
        if take_pair {
            if let Some((k, v)) = pairs.next() {
                push(&k, &v);
            }
        } else if let Some((k, i)) = created.next() {
            push(&k, state(i));
        }
    }
    text
}

/// `n` and the noun that goes with it: `0 objects`, `1 object`, `2 objects`.
pub(crate) fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Desired;
    use crate::plan::{plan, Current, Deletion, MetaChange, ServiceChange};
    use conftool_core::{Defaults, Kv, ObjectKey, Snapshot};

    fn key(node: &str) -> ObjectKey {
        ObjectKey::new(
            "eqiad".parse().unwrap(),
            "c".parse().unwrap(),
            "s".parse().unwrap(),
            node.parse().unwrap(),
        )
    }

    const OLD_RECORD: &str = r#"{"datacenters":["eqiad"],"git_rev":"aaaa"}"#;
    const NEW_RECORD: &str = r#"{"datacenters":["eqiad"],"git_rev":"bbbb"}"#;

    /// etcd holding objects `n1`, `n2` and the record of commit `aaaa`.
    fn current(ks: &Keyspace) -> Current {
        let obj = |n: &str, rev| Kv {
            key: ks.object_key(&key(n)),
            value: br#"{"pooled":"no","weight":1}"#.to_vec(),
            mod_revision: rev,
        };
        let snap = Snapshot {
            revision: 9,
            kvs: vec![
                obj("n1", 3),
                obj("n2", 4),
                Kv {
                    key: ks.sync_meta_key(),
                    value: OLD_RECORD.as_bytes().to_vec(),
                    mod_revision: 5,
                },
            ],
        };
        Current::from_snapshot(ks, snap)
    }

    fn desired(nodes: &[&str], rev: &str) -> Desired {
        Desired {
            objects: nodes.iter().map(|n| (key(n), Defaults::LEGACY)).collect(),
            git_rev: Some(rev.into()),
            ..Desired::default()
        }
    }

    #[test]
    fn a_changed_sync_record_shows_its_old_and_new_value() {
        let ks = Keyspace::default();
        // Commit bbbb drops n2: one deletion and a new record.
        let p = plan(&desired(&["n1"], "bbbb"), &current(&ks));
        assert_eq!(
            p.meta,
            Some(MetaChange {
                new: NEW_RECORD.into(),
                old: Some((5, OLD_RECORD.into())),
            })
        );
        assert_eq!(
            p.meta.as_ref().unwrap().guard(),
            conftool_core::Guard::Unchanged(5)
        );
        let diff = p.render_diff(&ks, "etcd", "conf");
        let want = format!(
            "--- etcd\n+++ conf\n@@ -1,2 +1 @@\n\
             -/v1/meta/sync {OLD_RECORD}\n\
             -/v1/pools/eqiad/c/s/n2 {{\"pooled\":\"no\",\"weight\":1}}\n\
             +/v1/meta/sync {NEW_RECORD}\n"
        );
        assert_eq!(diff, want);
        // The audit trail gets the replaced record too.
        let writes = p.writes_with_before(&ks);
        let (_, before) = writes
            .iter()
            .find(|(w, _)| w.key() == ks.sync_meta_key())
            .unwrap();
        assert_eq!(*before, Some(OLD_RECORD));

        // Only the record changes (same content, another commit): the diff is its two lines.
        let p = plan(&desired(&["n1", "n2"], "bbbb"), &current(&ks));
        assert!(p.is_empty());
        let diff = p.render_diff(&ks, "etcd", "conf");
        assert_eq!(
            diff,
            format!(
                "--- etcd\n+++ conf\n@@ -1 +1 @@\n-/v1/meta/sync {OLD_RECORD}\n+/v1/meta/sync {NEW_RECORD}\n"
            )
        );
        assert_eq!(
            p.summary(),
            "0 objects to create, 0 objects to delete, 0 service definitions to write or \
             delete, the sync record to update (1 write)"
        );
    }

    /// A stored value with a newline and an escape sequence: shown escaped, on its key's
    /// one line; nothing forged, no control character printed (the labels' neither).
    #[test]
    fn stored_values_cannot_forge_lines_or_reach_the_terminal() {
        let ks = Keyspace::default();
        let hostile = "{\"pooled\":\"no\",\"weight\":1}\n+forged line\u{1b}]0;title\u{7}\r\u{9b}2J";
        let p = Plan {
            delete: vec![Deletion {
                key: key("n1"),
                mod_revision: 3,
                old: hostile.into(),
            }],
            ..Plan::default()
        };
        let diff = p.render_diff(&ks, "etcd", "conf\n+++ x\u{1b}[2J");
        assert_eq!(
            diff,
            "--- etcd\n+++ conf\\n+++ x\\x1b[2J\n@@ -1 +0,0 @@\n\
             -/v1/pools/eqiad/c/s/n1 {\"pooled\":\"no\",\"weight\":1}\\n+forged \
             line\\x1b]0;title\\x07\\r\\u{9b}2J\n"
        );
        assert!(!diff.lines().any(|l| l.starts_with("+forged")));
        assert!(!diff.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn summary_counts_every_write_with_the_right_plurals() {
        let deletion = |n: &str| Deletion {
            key: key(n),
            mod_revision: 1,
            old: "{}".into(),
        };
        let service = ServiceChange {
            key: ("c".parse().unwrap(), "s".parse().unwrap()),
            new: None,
            old: Some((1, "{}".into())),
        };
        let state = || Defaults::LEGACY;
        let record = |old: Option<(i64, String)>| MetaChange {
            new: NEW_RECORD.into(),
            old,
        };
        let cases = [
            (
                Plan::default(),
                "0 objects to create, 0 objects to delete, 0 service definitions to write or \
                 delete, the sync record unchanged (0 writes)",
            ),
            (
                Plan {
                    create: vec![(key("n1"), state())],
                    delete: vec![deletion("n2")],
                    services: vec![service.clone()],
                    meta: Some(record(None)),
                    ..Plan::default()
                },
                "1 object to create, 1 object to delete, 1 service definition to write or \
                 delete, the sync record to create (4 writes)",
            ),
            (
                Plan {
                    create: vec![(key("n1"), state()), (key("n3"), state())],
                    delete: vec![deletion("n2"), deletion("n4")],
                    services: vec![service.clone(), service],
                    meta: Some(record(Some((3, OLD_RECORD.into())))),
                    ..Plan::default()
                },
                "2 objects to create, 2 objects to delete, 2 service definitions to write or \
                 delete, the sync record to update (7 writes)",
            ),
            (
                Plan {
                    create: vec![(key("n1"), state())],
                    ..Plan::default()
                },
                "1 object to create, 0 objects to delete, 0 service definitions to write or \
                 delete, the sync record unchanged (1 write)",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(p.summary(), want);
        }
    }

    #[test]
    fn outcome_summary_counts_every_write_with_the_right_plurals() {
        use crate::apply::Outcome;
        let o = |created, deleted, services, meta| Outcome {
            created,
            deleted,
            services,
            meta,
            ..Outcome::default()
        };
        assert_eq!(
            o(0, 0, 0, true).summary(),
            "created 0 objects, deleted 0 objects, wrote 0 service definitions and the sync record"
        );
        assert_eq!(
            o(1, 1, 1, false).summary(),
            "created 1 object, deleted 1 object, wrote 1 service definition \
             (the sync record unchanged)"
        );
        assert_eq!(
            o(2, 3, 9, true).summary(),
            "created 2 objects, deleted 3 objects, wrote 9 service definitions and the sync record"
        );
    }
}
