//! The plan for schema-defined types: per type, in dependency order, the objects to create
//! (with every field's default) and to delete. Objects that stay are never touched: their
//! values are the operators', as with pool objects.
//!
//! A new object must pass its type's checks with its defaults (for json_schema types: every
//! rule whose selector matches it); one that does not is listed in [`TypedPlan::invalid`] and
//! the guard refuses the plan, naming object and rule.

use std::collections::BTreeMap;

use conftool_core::schema::object::compact_json;
use conftool_core::schema::{ObjectError, ObjectId, ObjectType};
use conftool_core::{Guard, Keyspace, Kv, Write};

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
    /// New objects whose defaults their type refuses.
    pub invalid: Vec<ObjectError>,
}

/// Plan every declared type against the keys of the snapshot that are not pool objects or
/// the sync record: the service definitions (a type at path `services` manages them when the
/// directory has no `services.yaml`) and every other key.
pub(crate) fn plan_typed(typed: &[TypedDesired], current: &Current) -> Vec<TypedPlan> {
    if typed.is_empty() {
        return Vec::new();
    }
    let mut keys: Vec<Kv> = current.other.clone();
    let root = Keyspace::default().root_prefix();
    for ((cluster, service), (rev, value)) in &current.services {
        let full = Keyspace::default().service_key(cluster, service);
        keys.push(Kv {
            key: full.strip_prefix(&root).unwrap_or(&full).to_string(),
            value: value.clone(),
            mod_revision: *rev,
        });
    }
    typed.iter().map(|t| plan_one(t, &keys)).collect()
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
    for id in &t.objects {
        if have.contains_key(id) {
            continue;
        }
        if let Err(e) = ty.validate(id, &defaults) {
            p.invalid.push(e);
        }
        p.create.push(TypedCreate {
            id: id.clone(),
            value: value.clone(),
        });
    }
    for (id, kv) in &have {
        if !t.objects.contains(id) {
            p.delete.push(TypedDeletion {
                id: id.clone(),
                mod_revision: kv.mod_revision,
                old: String::from_utf8_lossy(&kv.value).into_owned(),
            });
        }
    }
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
