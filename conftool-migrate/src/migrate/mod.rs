//! Moving a Python deployment's live state from etcd v2 to v3, values byte for byte.
//!
//! Plan, then apply, like the sync: [`plan`] compares what v2 holds ([`V2Read`]) with what
//! v3 holds under the same prefix ([`Snapshot`]) and returns plain data ([`MigrationPlan`]):
//! keys to create, keys already identical, keys whose v3 value differs, what is not copied
//! (directories, non-JSON values, values with a TTL, keys no conftool tool writes: see
//! [`key_problem`]), and keys only v3 has (reported, never deleted). [`MigrationPlan::writes`] turns it into compare-and-swap guarded writes
//! (create-if-absent; replace-only-if-unchanged-since-read), which [`apply`] commits through
//! the audited write path ([`conftool_core::PlannedWrites::commit`]), and [`verify`] checks the result
//! against a fresh read of both sides. All but [`apply`] are pure.

mod apply;
mod keys;

pub use apply::{apply, v3_prefix, Error, Migrated};
pub use keys::{key_problem, KeyProblem};

use crate::v2::{V2Kind, V2Read};
use conftool_core::{Guard, Snapshot, Write};

/// What to do with keys whose v3 value differs from v2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse the whole run (nothing written) while any differ.
    Refuse,
    /// Replace them with v2's value (compare-and-swap on the v3 value read).
    Differing,
}

/// A key whose v3 value differs from v2's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Differing {
    /// The key.
    pub key: String,
    /// v2's value (what would be written).
    pub v2: String,
    /// v3's value (lossy UTF-8, for display and the audit trail).
    pub v3: String,
    /// v3's mod revision (the guard of an overwrite).
    pub mod_revision: i64,
    /// Both parse to the same JSON: only the formatting differs.
    pub same_json: bool,
}

/// Why a v2 key is not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The value is not JSON (conftool writes only JSON objects).
    NotJson,
    /// The key has a TTL (a lock or lease): ephemeral, not state.
    Expiring {
        /// Seconds left when read.
        ttl: i64,
    },
    /// The key itself is not one to copy (see [`key_problem`]).
    UnsafeKey(KeyProblem),
}

/// A v2 key that is not copied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The key.
    pub key: String,
    /// Why.
    pub reason: SkipReason,
}

/// What a migration would do; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The v2 index and v3 revision compared.
    pub v2_index: u64,
    /// The v3 revision read.
    pub v3_revision: i64,
    /// Keys absent from v3, with v2's value.
    pub create: Vec<(String, String)>,
    /// Keys whose v3 value already equals v2's, byte for byte.
    pub identical: usize,
    /// Keys whose v3 value differs.
    pub differing: Vec<Differing>,
    /// v2 directories (v3 has none; their keys are copied on their own).
    pub directories: usize,
    /// v2 keys not copied.
    pub skipped: Vec<Skipped>,
    /// Keys under the prefix that only v3 has: reported, never deleted.
    pub only_in_v3: Vec<String>,
}

/// Whether `value` is JSON (what conftool writes).
fn is_json(value: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(value).is_ok()
}

/// The keys v2 holds that a migration copies: JSON values without a TTL under safe keys,
/// with their values.
pub fn copied(v2: &V2Read) -> impl Iterator<Item = (&str, &str)> {
    v2.entries.iter().filter_map(|e| match &e.kind {
        V2Kind::Value { value, .. } if key_problem(&e.key).is_none() && is_json(value) => {
            Some((e.key.as_str(), value.as_str()))
        }
        _ => None,
    })
}

/// Compare v2 with v3 (both sorted by key; see [`conftool_core::Store::read_prefix`]). Pure.
pub fn plan(v2: &V2Read, v3: &Snapshot) -> MigrationPlan {
    let mut p = MigrationPlan {
        v2_index: v2.index,
        v3_revision: v3.revision,
        ..MigrationPlan::default()
    };
    let mut v3_iter = v3.kvs.iter().peekable();
    for e in &v2.entries {
        if let (V2Kind::Value { .. }, Some(why)) = (&e.kind, key_problem(&e.key)) {
            p.skipped.push(Skipped {
                key: e.key.clone(),
                reason: SkipReason::UnsafeKey(why),
            });
            continue;
        }
        let value = match &e.kind {
            V2Kind::Dir => {
                p.directories += 1;
                continue;
            }
            V2Kind::Expiring { ttl } => {
                p.skipped.push(Skipped {
                    key: e.key.clone(),
                    reason: SkipReason::Expiring { ttl: *ttl },
                });
                continue;
            }
            V2Kind::Value { value, .. } if !is_json(value) => {
                p.skipped.push(Skipped {
                    key: e.key.clone(),
                    reason: SkipReason::NotJson,
                });
                continue;
            }
            V2Kind::Value { value, .. } => value,
        };
        // Merge-join: v3 keys before this one are v3's alone.
        while let Some(kv) = v3_iter.peek() {
            if kv.key.as_str() < e.key.as_str() {
                p.only_in_v3.push(kv.key.clone());
                v3_iter.next();
            } else {
                break;
            }
        }
        match v3_iter.peek() {
            Some(kv) if kv.key == e.key => {
                if kv.value == value.as_bytes() {
                    p.identical += 1;
                } else {
                    let v3 = String::from_utf8_lossy(&kv.value).into_owned();
                    let same_json = serde_json::from_str::<serde_json::Value>(&v3).ok()
                        == serde_json::from_str::<serde_json::Value>(value).ok();
                    p.differing.push(Differing {
                        key: e.key.clone(),
                        v2: value.clone(),
                        v3,
                        mod_revision: kv.mod_revision,
                        same_json,
                    });
                }
                v3_iter.next();
            }
            _ => p.create.push((e.key.clone(), value.clone())),
        }
    }
    // v3's keys that v2's (the skipped ones included) do not name.
    let skipped: std::collections::BTreeSet<&str> =
        p.skipped.iter().map(|s| s.key.as_str()).collect();
    p.only_in_v3.extend(v3_iter.map(|kv| kv.key.clone()));
    p.only_in_v3.retain(|k| !skipped.contains(k.as_str()));
    p
}

impl MigrationPlan {
    /// Whether applying would write something (with differing keys overwritten or not).
    pub fn pending(&self) -> bool {
        !self.create.is_empty() || !self.differing.is_empty()
    }

    /// The guarded writes, each with the v3 value it replaces (`None`: created). Keys that
    /// differ are included only with [`Overwrite::Differing`].
    pub fn writes(&self, overwrite: Overwrite) -> Vec<(Write, Option<String>)> {
        let mut out: Vec<(Write, Option<String>)> = self
            .create
            .iter()
            .map(|(key, value)| {
                let w = Write::Put {
                    key: key.clone(),
                    value: value.clone(),
                    guard: Guard::Absent,
                };
                (w, None)
            })
            .collect();
        if overwrite == Overwrite::Differing {
            out.extend(self.differing.iter().map(|d| {
                let w = Write::Put {
                    key: d.key.clone(),
                    value: d.v2.clone(),
                    guard: Guard::Unchanged(d.mod_revision),
                };
                (w, Some(d.v3.clone()))
            }));
        }
        out
    }

    /// `20000 to create, 3 identical, 1 differing (1 only in formatting), 12 directories
    /// skipped, 1 non-JSON skipped, 0 with a TTL skipped, 2 only in v3` (and `, 1 unsafe
    /// key skipped` when there are some).
    pub fn summary(&self) -> String {
        let count =
            |want: fn(&SkipReason) -> bool| self.skipped.iter().filter(|s| want(&s.reason)).count();
        let not_json = count(|r| *r == SkipReason::NotJson);
        let expiring = count(|r| matches!(r, SkipReason::Expiring { .. }));
        let unsafe_keys = count(|r| matches!(r, SkipReason::UnsafeKey(_)));
        let formatting = self.differing.iter().filter(|d| d.same_json).count();
        let mut text = format!(
            "{} to create, {} already identical, {} differing ({} only in JSON formatting), \
             {} directories skipped, {} non-JSON skipped, {} with a TTL skipped, {} only in v3",
            self.create.len(),
            self.identical,
            self.differing.len(),
            formatting,
            self.directories,
            not_json,
            expiring,
            self.only_in_v3.len()
        );
        if unsafe_keys > 0 {
            text.push_str(&format!(", {unsafe_keys} unsafe keys skipped"));
        }
        text
    }
}

/// What a comparison of both sides found after a migration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Values v2 holds that a migration copies.
    pub v2_values: usize,
    /// Keys v3 holds under the prefix.
    pub v3_keys: usize,
    /// v2 values found in v3 byte for byte.
    pub matched: usize,
    /// v2 keys missing from v3.
    pub missing: Vec<String>,
    /// v2 keys whose v3 value differs.
    pub differing: Vec<String>,
}

impl Verification {
    /// Every copied v2 value is in v3, byte for byte.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.differing.is_empty() && self.matched == self.v2_values
    }
}

/// Compare both sides after a migration. Pure.
pub fn verify(v2: &V2Read, v3: &Snapshot) -> Verification {
    let p = plan(v2, v3);
    Verification {
        v2_values: copied(v2).count(),
        v3_keys: v3.kvs.len(),
        matched: p.identical,
        missing: p.create.into_iter().map(|(k, _)| k).collect(),
        differing: p.differing.into_iter().map(|d| d.key).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::V2Entry;
    use conftool_core::Kv;

    fn val(key: &str, value: &str) -> V2Entry {
        V2Entry {
            key: key.into(),
            kind: V2Kind::Value {
                value: value.into(),
                modified_index: 1,
            },
        }
    }
    fn dir(key: &str) -> V2Entry {
        V2Entry {
            key: key.into(),
            kind: V2Kind::Dir,
        }
    }
    fn kv(key: &str, value: &str, rev: i64) -> Kv {
        Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            mod_revision: rev,
        }
    }
    fn v2(mut entries: Vec<V2Entry>) -> V2Read {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        V2Read {
            index: 7,
            entries,
            ..V2Read::default()
        }
    }
    fn v3(mut kvs: Vec<Kv>) -> Snapshot {
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot { revision: 9, kvs }
    }

    const YES: &str = r#"{"pooled": "yes", "weight": 10}"#;
    const NO: &str = r#"{"pooled": "no", "weight": 10}"#;

    #[test]
    fn an_empty_v3_gets_every_json_value_and_nothing_else() {
        let src = v2(vec![
            dir("/c/v1"),
            dir("/c/v1/pools"),
            val("/c/v1/pools/a", YES),
            val("/c/v1/pools/b", NO),
            val("/c/v1/junk", "not json"),
            V2Entry {
                key: "/c/v1/lock".into(),
                kind: V2Kind::Expiring { ttl: 5 },
            },
        ]);
        let p = plan(&src, &v3(vec![]));
        assert_eq!(
            p.create,
            vec![
                ("/c/v1/pools/a".into(), YES.into()),
                ("/c/v1/pools/b".into(), NO.into())
            ]
        );
        assert_eq!((p.identical, p.directories), (0, 2));
        assert_eq!(
            p.skipped,
            vec![
                Skipped {
                    key: "/c/v1/junk".into(),
                    reason: SkipReason::NotJson
                },
                Skipped {
                    key: "/c/v1/lock".into(),
                    reason: SkipReason::Expiring { ttl: 5 }
                },
            ]
        );
        assert!(p.pending());
        let w = p.writes(Overwrite::Refuse);
        assert_eq!(w.len(), 2);
        assert!(w
            .iter()
            .all(|(w, before)| w.guard() == Guard::Absent && before.is_none()));
        assert_eq!((p.v2_index, p.v3_revision), (7, 9));
    }

    #[test]
    fn keys_no_conftool_tool_writes_are_skipped_and_not_verified() {
        let bad = ["/c/a\n+/c/forged", "/c/../x", "/c//y", "/c/\u{1b}[2J"];
        let mut entries: Vec<V2Entry> = bad.iter().map(|k| val(k, YES)).collect();
        entries.push(val("/c/ok", YES));
        entries.push(V2Entry {
            key: "/c/../lock".into(),
            kind: V2Kind::Expiring { ttl: 3 },
        });
        let src = v2(entries);
        let p = plan(&src, &v3(vec![]));
        assert_eq!(p.create, vec![("/c/ok".into(), YES.into())]);
        let unsafe_keys: Vec<(&str, KeyProblem)> = p
            .skipped
            .iter()
            .filter_map(|s| match s.reason {
                SkipReason::UnsafeKey(why) => Some((s.key.as_str(), why)),
                _ => None,
            })
            .collect();
        assert_eq!(
            unsafe_keys,
            vec![
                ("/c/\u{1b}[2J", KeyProblem::ControlCharacter),
                ("/c/../x", KeyProblem::DotSegment),
                ("/c//y", KeyProblem::EmptySegment),
                ("/c/a\n+/c/forged", KeyProblem::ControlCharacter),
            ]
        );
        assert!(
            p.summary()
                .ends_with("1 with a TTL skipped, 0 only in v3, 4 unsafe keys skipped"),
            "{}",
            p.summary()
        );
        assert_eq!(copied(&src).collect::<Vec<_>>(), vec![("/c/ok", YES)]);
        let v = verify(&src, &v3(vec![kv("/c/ok", YES, 2)]));
        assert!(v.is_ok() && v.v2_values == 1, "{v:?}");
    }

    #[test]
    fn identical_differing_and_v3_only_keys_are_told_apart() {
        let src = v2(vec![
            val("/c/b", YES),
            val("/c/d", NO),
            val("/c/f", YES),
            val("/c/h", "[1, 2]"),
        ]);
        let dst = v3(vec![
            kv("/c/a", YES, 3),
            kv("/c/b", YES, 4),
            kv("/c/d", YES, 5),
            kv("/c/e", NO, 6),
            kv("/c/f", r#"{"pooled":"yes","weight":10}"#, 7),
            kv("/c/z", NO, 8),
        ]);
        let p = plan(&src, &dst);
        assert_eq!(p.identical, 1);
        assert_eq!(p.create, vec![("/c/h".into(), "[1, 2]".into())]);
        assert_eq!(
            p.differing
                .iter()
                .map(|d| (d.key.as_str(), d.mod_revision, d.same_json))
                .collect::<Vec<_>>(),
            vec![("/c/d", 5, false), ("/c/f", 7, true)]
        );
        assert_eq!(p.differing[0].v3, YES);
        assert_eq!(p.only_in_v3, vec!["/c/a", "/c/e", "/c/z"]);

        // Refused: only the create; overwritten: guarded on the revision read.
        assert_eq!(p.writes(Overwrite::Refuse).len(), 1);
        let all = p.writes(Overwrite::Differing);
        assert_eq!(all.len(), 3);
        assert_eq!(
            all[1],
            (
                Write::Put {
                    key: "/c/d".into(),
                    value: NO.into(),
                    guard: Guard::Unchanged(5)
                },
                Some(YES.to_string())
            )
        );
        assert!(
            p.summary().starts_with(
                "1 to create, 1 already identical, 2 differing (1 only in JSON formatting)"
            ),
            "{}",
            p.summary()
        );
    }

    #[test]
    fn a_finished_migration_plans_nothing_and_verifies() {
        let src = v2(vec![
            dir("/c/v1"),
            val("/c/v1/a", YES),
            val("/c/v1/x", "nope"),
        ]);
        let dst = v3(vec![kv("/c/v1/a", YES, 2), kv("/c/v1/extra", NO, 3)]);
        let p = plan(&src, &dst);
        assert!(!p.pending());
        assert!(p.writes(Overwrite::Differing).is_empty());
        let v = verify(&src, &dst);
        assert!(v.is_ok(), "{v:?}");
        assert_eq!((v.v2_values, v.v3_keys, v.matched), (1, 2, 1));
    }

    #[test]
    fn a_missing_or_changed_value_fails_verification() {
        let src = v2(vec![val("/c/a", YES), val("/c/b", NO)]);
        let v = verify(&src, &v3(vec![kv("/c/a", NO, 2)]));
        assert!(!v.is_ok());
        assert_eq!(v.missing, vec!["/c/b"]);
        assert_eq!(v.differing, vec!["/c/a"]);
        // A skipped key that v3 happens to hold is not "only in v3".
        let src = v2(vec![val("/c/n", "plain")]);
        assert!(plan(&src, &v3(vec![kv("/c/n", "plain", 2)]))
            .only_in_v3
            .is_empty());
    }
}
