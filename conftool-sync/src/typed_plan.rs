//! The plan for schema-defined types: per type, in dependency order, the objects to create
//! (with every field's default) and to delete. Objects that stay are never touched: their
//! values are the operators', as with pool objects.
//!
//! A new object is checked with its defaults (for json_schema types: every rule whose
//! selector matches it); one that does not pass is still created, as the Python tool creates
//! it (its values are then set with confctl, which checks them), and is listed in
//! [`TypedPlan::invalid`] for the caller to warn about, naming object and rule.

use std::collections::BTreeMap;

use conftool_core::schema::object::compact_json;
use conftool_core::schema::{ObjectError, ObjectId, ObjectType};
use conftool_core::{Guard, Keyspace, Kv, Write};

use crate::merge::merge;
use crate::plan::Current;
use crate::typed_load::TypedDesired;

/// One object to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedCreate {
    /// Which object.
    pub id: ObjectId,
    /// Its stored value: every field's default, in schema order.
    pub value: String,
}

/// One object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedDeletion {
    /// Which object.
    pub id: ObjectId,
    /// Its mod revision when read (the delete's guard).
    pub mod_revision: i64,
    /// Its value when read.
    pub old: String,
}

/// The changes of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedPlan {
    /// The type.
    pub ty: ObjectType,
    /// Objects to create.
    pub create: Vec<TypedCreate>,
    /// Objects to delete.
    pub delete: Vec<TypedDeletion>,
    /// How many objects of the type exist now (for the mass-deletion guard).
    pub existing: usize,
    /// New objects whose defaults a rule of their type refuses: created all the same, as
    /// the Python tool does (their values are then set with confctl, which checks them), and
    /// for the caller to warn about.
    pub invalid: Vec<ObjectError>,
}

/// Plan every declared type against the keys of the snapshot that are not pool objects,
/// service definitions or the sync record (no type may map onto those: see
/// [`conftool_core::schema::RESERVED_PATHS`]).
pub(crate) fn plan_typed(typed: &[TypedDesired], current: &Current) -> Vec<TypedPlan> {
    typed.iter().map(|t| plan_one(t, &current.other)).collect()
}

fn plan_one(t: &TypedDesired, other: &[Kv]) -> TypedPlan {
    let ty = &t.ty;
    let have: BTreeMap<ObjectId, &Kv> = other
        .iter()
        .filter_map(|kv| ty.parse_relative(&kv.key).map(|id| (id, kv)))
        .collect();
    let mut p = TypedPlan {
        ty: ty.clone(),
        existing: have.len(),
        create: Vec::new(),
        delete: Vec::new(),
        invalid: Vec::new(),
    };
    let defaults = ty.defaults();
    let value = compact_json(&defaults);
    merge(
        t.objects.iter().map(|id| (id, ())),
        &have,
        |id, ()| {
            if let Err(e) = ty.validate(id, &defaults) {
                p.invalid.push(e);
            }
            p.create.push(TypedCreate {
                id: id.clone(),
                value: value.clone(),
            });
        },
        |id, kv| {
            p.delete.push(TypedDeletion {
                id: id.clone(),
                mod_revision: kv.mod_revision,
                old: String::from_utf8_lossy(&kv.value).into_owned(),
            })
        },
    );
    p
}

impl TypedPlan {
    /// The creates, guarded on absence.
    pub fn create_writes<'a>(
        &'a self,
        ks: &'a Keyspace,
    ) -> impl Iterator<Item = (Write, Option<&'a str>)> + 'a {
        self.create.iter().map(move |c| {
            let w = Write::Put {
                key: self.ty.key(ks, &c.id),
                value: c.value.clone(),
                guard: Guard::Absent,
            };
            (w, None)
        })
    }

    /// The deletes, guarded on the revision read.
    pub fn delete_writes<'a>(
        &'a self,
        ks: &'a Keyspace,
    ) -> impl Iterator<Item = (Write, Option<&'a str>)> + 'a {
        self.delete.iter().map(move |d| {
            let w = Write::Delete {
                key: self.ty.key(ks, &d.id),
                guard: Guard::Unchanged(d.mod_revision),
            };
            (w, Some(d.old.as_str()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::load::{Desired, NodeDefs, ServiceDefs};
    use crate::plan::plan;
    use conftool_core::schema::{RawSchema, Schema};
    use conftool_core::Snapshot;

    /// `b` depends on `a`: `a` is created first and deleted last.
    fn schema() -> Schema {
        let raw: RawSchema = serde_json::from_str(
            r#"{"b": {"path": "b", "tags": [], "depends": ["a"], "schema": {"n": {"type": "int", "default": 1}}},
                "a": {"path": "a", "tags": ["t"], "schema": {}}}"#,
        )
        .unwrap();
        Schema::build(raw, &Default::default()).unwrap()
    }

    fn id(tags: &[&str], name: &str) -> ObjectId {
        ObjectId {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            name: name.into(),
        }
    }

    #[test]
    fn creates_in_dependency_order_deletes_in_reverse_and_keeps_the_rest() {
        let s = schema();
        let ks = Keyspace::new("/ns");
        let order = s.order().unwrap();
        let typed = |a: &[ObjectId], b: &[ObjectId]| {
            vec![
                TypedDesired {
                    ty: order[0].clone(),
                    objects: a.iter().cloned().collect(),
                },
                TypedDesired {
                    ty: order[1].clone(),
                    objects: b.iter().cloned().collect(),
                },
            ]
        };
        let desired = Desired {
            nodes: NodeDefs::Unmanaged,
            service_defs: ServiceDefs::Unmanaged,
            typed: typed(&[id(&["x"], "a1")], &[id(&[], "b1")]),
            ..Desired::default()
        };
        let empty = Current::from_snapshot(&ks, Snapshot::default());
        let p = plan(&desired, &empty);
        let keys: Vec<String> = p.writes(&ks).iter().map(|w| w.key().to_string()).collect();
        assert_eq!(keys, vec!["/ns/v1/a/x/a1", "/ns/v1/b/b1"]);
        let stages: Vec<usize> = p.write_stages(&ks).iter().map(Vec::len).collect();
        assert_eq!(stages, vec![1, 1], "a's creates land before b's are sent");
        assert_eq!(p.meta, None, "no sync record without pool objects");
        assert!(p.typed[1].create[0].value == r#"{"n":1}"#);

        // Both stored, one of each kept (its value untouched), the others deleted: b first.
        let kv = |key: &str, value: &str, rev| conftool_core::Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            mod_revision: rev,
        };
        let snap = Snapshot {
            revision: 9,
            kvs: vec![
                kv("/ns/v1/a/x/a1", "{}", 2),
                kv("/ns/v1/a/x/a2", "{}", 3),
                kv("/ns/v1/a/x/y/deep", "{}", 3),
                kv("/ns/v1/b/b1", r#"{"n":7}"#, 4),
                kv("/ns/v1/b/b2", r#"{"n":1}"#, 5),
            ],
        };
        let current = Current::from_snapshot(&ks, snap);
        let p = plan(&desired, &current);
        let writes = p.writes(&ks);
        let keys: Vec<&str> = writes.iter().map(|w| w.key()).collect();
        assert_eq!(
            keys,
            vec!["/ns/v1/b/b2", "/ns/v1/a/x/a2"],
            "a key of another depth is not the type's"
        );
        assert!(writes.iter().all(|w| matches!(w, Write::Delete { .. })));
        assert_eq!(writes[0].guard(), Guard::Unchanged(5));
        assert_eq!(p.write_stages(&ks).len(), 2, "b's deletes, then a's");
        assert_eq!((p.typed[0].existing, p.typed[1].existing), (2, 2));
        // Nothing declared removed: nothing to write at all.
        let all = Desired {
            typed: typed(
                &[id(&["x"], "a1"), id(&["x"], "a2")],
                &[id(&[], "b1"), id(&[], "b2")],
            ),
            ..desired.clone()
        };
        assert!(plan(&all, &current).writes_nothing());
    }
}
