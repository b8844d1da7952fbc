//! One object type of the schema file, checked and compiled: what the Python tool's
//! `loader.factory` accepts, with its meaning (fields of `json_schema` types need no type;
//! keys it ignores are noted; `json_schema` wins over `free_form`), and the cross-checks of
//! this crate (names, reserved and absolute paths, defaults of the declared type).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    err, raw, Field, FieldType, ObjectType, Rule, SchemaError, SchemaNote, TypeSelector,
    Validation, NODE_TYPE, RESERVED_PATHS,
};
use crate::names::validate_name;

pub(super) fn build_type(
    name: &str,
    t: raw::RawType,
    files: &BTreeMap<String, Value>,
    notes: &mut Vec<SchemaNote>,
) -> Result<ObjectType, SchemaError> {
    let mut note = |at: Option<String>, message: String| {
        notes.push(SchemaNote {
            ty: name.to_string(),
            at,
            message,
        })
    };
    for (key, _) in &t.ignored.0 {
        note(
            Some(format!("key {key}")),
            "not a key of an object type (path, tags, schema, json_schema, free_form, \
             depends): ignored, as the Python tool ignores it"
                .into(),
        );
    }
    validate_name("object type", name).map_err(|e| err(name, None, e.to_string()))?;
    if name == NODE_TYPE {
        return Err(err(name, None, "node is built in and cannot be redefined"));
    }
    let path = t.path.trim_end_matches('/');
    if path.starts_with('/') {
        return Err(err(
            name,
            None,
            format!("path {path:?} is absolute: keys outside <namespace>/v1/ are not supported"),
        ));
    }
    for seg in path.split('/') {
        validate_name("path segment", seg)
            .map_err(|e| err(name, None, format!("path {path:?}: {e}")))?;
    }
    if let Some(first) = path
        .split('/')
        .next()
        .filter(|f| RESERVED_PATHS.contains(f))
    {
        return Err(err(
            name,
            None,
            format!("path {path:?} is inside {first}/, which conftool-rs owns"),
        ));
    }
    for (i, tag) in t.tags.iter().enumerate() {
        let ok = !tag.is_empty()
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(err(
                name,
                None,
                format!("tag {tag:?}: tags are letters, digits, '_' and '-'"),
            ));
        }
        if tag == "name" || t.tags[..i].contains(tag) {
            return Err(err(
                name,
                None,
                format!("tag {tag:?} is reserved or repeated"),
            ));
        }
    }
    let by_rules = t.json_schema.is_some();
    let mut fields = Vec::new();
    for (fname, f) in t.schema.0 {
        if fname.is_empty() {
            return Err(err(name, None, "a field has an empty name"));
        }
        let at = || Some(format!("field {fname}"));
        for (key, _) in &f.ignored.0 {
            note(
                at(),
                format!(
                    "{key:?} is not a key of a field (type, default, docstring, example, \
                     hidden): ignored, as the Python tool ignores it"
                ),
            );
        }
        let ty = match (f.ty.as_deref().map(str::parse::<FieldType>), by_rules) {
            (Some(Ok(ty)), _) => ty,
            (Some(Err(e)), false) => return Err(err(name, at(), e.to_string())),
            (None, false) => {
                return Err(err(
                    name,
                    at(),
                    "has no type: give it one (string, int, bool, list, dict, enum:a|b|..., \
                     cidr_list or any); only the fields of json_schema types may leave it \
                     out, as their rules check the values",
                ))
            }
            (Some(Err(e)), true) => {
                let ty = FieldType::of_default(&f.default);
                note(
                    at(),
                    format!(
                        "{e}; the rules of this json_schema type check its values (the Python \
                         tool ignores the type), and command-line values are read as {ty}, \
                         its default's kind"
                    ),
                );
                ty
            }
            (None, true) => FieldType::of_default(&f.default),
        };
        if matches!(&ty, FieldType::Enum(values) if values.iter().any(String::is_empty)) {
            note(
                at(),
                format!("{ty}: the empty string is one of its values, as in the Python tool"),
            );
        }
        if !by_rules && !f.default.is_null() {
            ty.check(&f.default)
                .map_err(|e| err(name, at(), format!("default {e}")))?;
        }
        fields.push(Field {
            name: fname,
            ty,
            default: f.default,
        });
    }
    let validation = match t.json_schema {
        None if t.free_form => Validation::FreeForm,
        None => Validation::Fields,
        Some(js) => {
            if t.free_form {
                note(
                    None,
                    "free_form is ignored in a json_schema type (as the Python tool ignores \
                     it): only the declared fields are kept"
                        .into(),
                );
            }
            let mut rules = Vec::new();
            for (rname, r) in js.rules.0 {
                let at = Some(format!("rule {rname}"));
                let selector = TypeSelector::parse_rule(&r.selector, &t.tags)
                    .map_err(|e| err(name, at.clone(), format!("selector: {e}")))?;
                let file = raw::join(&js.base_path, &r.schema);
                let schema = files.get(&file).cloned().ok_or_else(|| {
                    err(name, at.clone(), format!("schema file {file} was not read"))
                })?;
                let rule = Rule::new(&rname, selector, &file, schema).map_err(|e| SchemaError {
                    rule_file: Some((file.clone(), e.pointer.clone())),
                    ..err(name, at.clone(), format!("{file}: {}", e.reason))
                })?;
                for n in &rule.notes {
                    note(at.clone(), format!("{file}: {n}"));
                }
                rules.push(rule);
            }
            Validation::JsonSchema(rules)
        }
    };
    Ok(ObjectType {
        name: name.to_string(),
        path: path.to_string(),
        tags: t.tags,
        fields,
        validation,
        depends: t.depends,
    })
}
