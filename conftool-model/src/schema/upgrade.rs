//! `confctl upgrade-schema`, as data: after a schema change (a field added), every object of
//! the type gets the fields it lacks, with their defaults. Pure: the store reads and writes.
//!
//! Each object's upgraded value is its stored value (every stored key kept, in stored order,
//! also keys the schema does not declare) followed by the missing schema fields with their
//! defaults, in schema order. It is checked as a `set` checks what it writes (each field by
//! its type, the json_schema rules on the whole object); an object that fails is listed and
//! never written (the Python tool resets invalid values to defaults on write: here nothing
//! is changed silently). An object that lacks no field is not rewritten.

use serde_json::Value;

use super::edit::{TypedChange, TypedObject, TypedSelection};
use super::object::py_json;
use super::{ObjectError, ObjectType, Validation};

/// What upgrading one type's objects would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradePlan {
    /// Valid objects that lack fields: the writes.
    pub upgrades: Vec<Upgrade>,
    /// Objects the schema refuses as stored: left untouched.
    pub invalid: Vec<ObjectError>,
    /// Valid objects that already have every field.
    pub complete: usize,
}

/// One object's upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The guarded write (its `new` is the whole upgraded value).
    pub change: TypedChange,
    /// The fields added, with their defaults, in schema order.
    pub added: Vec<(String, Value)>,
}

impl Upgrade {
    /// `TYPE tags/name: + field: default` per added field (the default as JSON).
    pub fn lines(&self, ty: &ObjectType) -> Vec<String> {
        self.added
            .iter()
            .map(|(k, v)| format!("{} {}: + {k}: {}", ty.name, self.change.id, py_json(v)))
            .collect()
    }
}

impl TypedSelection {
    /// The upgrade of every selected object of `ty` (see the module docs).
    pub fn upgrade(&self, ty: &ObjectType) -> UpgradePlan {
        let mut plan = UpgradePlan::default();
        for o in &self.objects {
            match upgrade(ty, o) {
                Err(e) => plan.invalid.push(e),
                Ok(None) => plan.complete += 1,
                Ok(Some(u)) => plan.upgrades.push(u),
            }
        }
        plan
    }
}

fn upgrade(ty: &ObjectType, o: &TypedObject) -> Result<Option<Upgrade>, ObjectError> {
    let mut fields: Vec<(String, Value)> = o
        .stored_order
        .iter()
        .filter_map(|k| o.stored.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    let added: Vec<(String, Value)> = ty
        .fields
        .iter()
        .filter(|f| !o.stored.contains_key(&f.name))
        .map(|f| (f.name.clone(), f.default.clone()))
        .collect();
    fields.extend(added.iter().cloned());
    // What a `set` would check: the schema's fields (and a free-form type's others); keys
    // a strict type does not declare are kept but not judged, as `set` keeps them.
    let checked: Vec<(String, Value)> = fields
        .iter()
        .filter(|(k, _)| {
            ty.validation == Validation::FreeForm || ty.fields.iter().any(|f| &f.name == k)
        })
        .cloned()
        .collect();
    ty.validate(&o.id, &checked)?;
    if added.is_empty() {
        return Ok(None);
    }
    Ok(Some(Upgrade {
        change: TypedChange {
            id: o.id.clone(),
            key: o.key.clone(),
            before: Value::Object(o.stored.clone()).to_string(),
            old: ty.effective(&o.stored),
            new: Some(fields),
            set: added.iter().map(|(k, _)| k.clone()).collect(),
            mod_revision: o.mod_revision,
        },
        added,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::Keyspace;
    use crate::schema::{RawSchema, Schema, TypeSelector};
    use crate::write::{Kv, Snapshot};
    use std::collections::BTreeMap;

    /// A schema of one type, written as JSON (this crate reads no YAML).
    fn ty(json: &str) -> ObjectType {
        let raw: RawSchema = serde_json::from_str(json).unwrap();
        Schema::build(raw, &BTreeMap::new()).unwrap().types[0].clone()
    }

    fn selection(ty: &ObjectType, kvs: &[(&str, &str)]) -> TypedSelection {
        let ks = Keyspace::default();
        let snap = Snapshot {
            revision: 9,
            kvs: kvs
                .iter()
                .map(|(k, v)| Kv {
                    key: format!("/v1/things/{k}"),
                    value: v.as_bytes().to_vec(),
                    mod_revision: 3,
                })
                .collect(),
        };
        TypedSelection::from_snapshot(&ks, ty, &TypeSelector::any(), &snap)
    }

    #[test]
    fn missing_fields_are_added_after_the_stored_ones_and_nothing_is_reset() {
        let t = ty(r#"{"thing": {"path": "things", "tags": [], "schema": {
            "b": {"type": "int", "default": 1},
            "a": {"type": "string", "default": "x"},
            "c": {"type": "bool", "default": false}}}}"#);
        let sel = selection(
            &t,
            &[
                ("one", r#"{"c":true,"b":5,"legacy":[1]}"#),
                ("two", r#"{"b":2,"a":"y","c":false}"#),
                ("bad", r#"{"b":"7"}"#),
            ],
        );
        let plan = sel.upgrade(&t);
        assert_eq!(plan.complete, 1);
        assert_eq!(plan.invalid.len(), 1);
        assert!(
            plan.invalid[0].to_string().contains("thing bad: field b"),
            "{:?}",
            plan.invalid
        );
        let [u] = &plan.upgrades[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(u.change.id.name, "one");
        let new = u.change.new.clone().unwrap();
        let keys: Vec<&str> = new.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["c", "b", "legacy", "a"],
            "stored order, then the missing field"
        );
        assert_eq!(u.lines(&t), ["thing one: + a: \"x\""]);
        assert_eq!(
            u.change.write(),
            crate::write::Write::Put {
                key: "/v1/things/one".into(),
                value: r#"{"c":true,"b":5,"legacy":[1],"a":"x"}"#.into(),
                guard: crate::write::Guard::Unchanged(3),
            }
        );
    }
}
