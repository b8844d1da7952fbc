//! Compiling one rule's JSON Schema file (boon) to mean what python-jsonschema makes of it:
//! the draft [`super::draft`] chose, `format` never asserted (Python passes no format
//! checker), `$ref` resolved within the file only, and a hierarchical base URL (the file's
//! own path) so that relative ids (`"id": "mediawiki-config/db/readonly"`, draft-04 style)
//! resolve as paths do. Python reads an `id`/`$id` only when a `$ref` needs it, so an id
//! that is no URI reference at all is left out rather than refused.

use serde_json::Value;

use super::draft::{Draft, RuleFileError};

/// Refuses every URL: a rule's schema is its one file; nothing is fetched.
struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("{url} is another document").into())
    }
}

/// Formats are annotations in python-jsonschema unless a format checker is passed, which
/// the Python tool does not do. boon asserts them up to draft-07; each known format is
/// replaced by one that accepts everything (boon does not let `regex` be replaced).
const FORMATS: &[&str] = &[
    "ipv4",
    "ipv6",
    "hostname",
    "idn-hostname",
    "email",
    "idn-email",
    "date",
    "time",
    "date-time",
    "duration",
    "period",
    "json-pointer",
    "relative-json-pointer",
    "uuid",
    "uri",
    "iri",
    "uri-reference",
    "iri-reference",
    "uri-template",
];

fn accept(_: &Value) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}

/// The base URL of a rule file: `file:///` and its path as written (relative ones as if
/// rooted at the schema's directory), so relative ids and `$ref`s join as paths do.
pub(crate) fn base_url(file: &str) -> String {
    format!("file:///{}", file.trim_start_matches('/'))
}

/// A compiled rule file.
pub(crate) struct Compiled {
    pub schemas: boon::Schemas,
    pub index: boon::SchemaIndex,
    /// Ids left out because they are no URI reference (JSON pointers).
    pub ignored_ids: Vec<String>,
}

/// Compile `schema` (the content of `file`) as `draft`.
pub(crate) fn compile(file: &str, schema: &Value, draft: Draft) -> Result<Compiled, RuleFileError> {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        if obj.contains_key("$schema") {
            // boon would read https:// draft-07 as draft-07; Python reads it as 2020-12.
            obj.insert("$schema".into(), Value::from(draft.url()));
        }
    }
    let url = base_url(file);
    let mut ignored_ids = Vec::new();
    // Each round either compiles or drops one more unparseable id (at most one per object).
    loop {
        let mut compiler = boon::Compiler::new();
        compiler.use_loader(Box::new(NoLoader));
        compiler.set_default_draft(draft.boon());
        for name in FORMATS {
            compiler.register_format(boon::Format { name, func: accept });
        }
        compiler
            .add_resource(&url, schema.clone())
            .map_err(|e| RuleFileError::at("", format!("{e}")))?;
        let mut schemas = boon::Schemas::new();
        match compiler.compile(&url, &mut schemas) {
            Ok(index) => {
                return Ok(Compiled {
                    schemas,
                    index,
                    ignored_ids,
                })
            }
            Err(boon::CompileError::ParseIdError { loc }) => {
                let ptr = pointer_in(&loc);
                let removed = remove_at(&mut schema, &ptr, draft.id_keyword());
                if !removed || ignored_ids.contains(&ptr) {
                    return Err(RuleFileError::at(ptr, "this id cannot be read"));
                }
                ignored_ids.push(ptr);
            }
            Err(e) => return Err(explain(e, &url, draft)),
        }
    }
}

/// The JSON pointer of `loc` (`url#/a/b`): its fragment, decoded. Each rule is compiled
/// from one file, so a location is always in it.
fn pointer_in(loc: &str) -> String {
    loc.split_once('#')
        .map(|(_, frag)| percent_decode(frag))
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove `key` from the object at `ptr`; whether it was there.
fn remove_at(v: &mut Value, ptr: &str, key: &str) -> bool {
    v.pointer_mut(ptr)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(key))
        .is_some()
}

/// boon's compile errors in the words of someone editing the file.
fn explain(e: boon::CompileError, url: &str, draft: Draft) -> RuleFileError {
    use boon::CompileError as C;
    let local = |s: &str| s.strip_prefix(url).map(percent_decode);
    match e {
        C::ValidationError { src, .. } => {
            // The metaschema's complaint about a part of the file: the deepest cause is the
            // one that names the keyword.
            let mut leaf = &src;
            while let Some(next) = leaf.causes.first() {
                leaf = next;
            }
            let at = leaf.instance_location.to_string();
            RuleFileError::at(
                at.clone(),
                format!(
                    "not a valid {draft} JSON Schema at {}: {}",
                    if at.is_empty() {
                        "its top"
                    } else {
                        at.as_str()
                    },
                    leaf.kind
                ),
            )
        }
        C::LoadUrlError { url: target, .. } | C::UnsupportedUrlScheme { url: target } => {
            let shown = target
                .strip_prefix("file:///")
                .map(percent_decode)
                .unwrap_or(target.clone());
            RuleFileError {
                reason: format!(
                    "a $ref leads to {shown}, another document: references are followed \
                     within the file only (the Python tool cannot resolve others either); \
                     move the definition into this file (under \"definitions\" or \"$defs\") \
                     and point the $ref at it (\"#/definitions/NAME\")"
                ),
                pointer: None,
            }
        }
        C::JsonPointerNotFound(loc) | C::InvalidJsonPointer(loc) => RuleFileError {
            reason: format!(
                "a $ref points to {}, which is not in the file",
                local(&loc).map_or(loc.clone(), |p| format!("#{p}"))
            ),
            pointer: None,
        },
        C::AnchorNotFound { reference, .. } => RuleFileError {
            reason: format!("a $ref points to {reference}, which is not in the file"),
            pointer: None,
        },
        C::InvalidRegex { url: at, regex, .. } => RuleFileError::at(
            pointer_in(&at),
            format!("{regex:?} is not a regular expression JSON Schema accepts (ECMA 262)"),
        ),
        C::DuplicateId { id, ptr2, .. } => {
            RuleFileError::at(ptr2, format!("id {id:?} is used twice in the file"))
        }
        C::DuplicateAnchor { anchor, ptr2, .. } => {
            RuleFileError::at(ptr2, format!("anchor {anchor:?} is used twice in the file"))
        }
        other => RuleFileError {
            reason: format!("{other:#}").replace(url, "this file"),
            pointer: None,
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::schema::draft::Draft;
    use serde_json::json;

    #[test]
    fn formats_are_not_asserted() {
        let s = json!({"$schema": "http://json-schema.org/draft-07/schema#",
                       "properties": {"ip": {"format": "ipv4"}}});
        let c = compile("x.schema", &s, Draft::Draft7).unwrap();
        assert!(c
            .schemas
            .validate(&json!({"ip": "10.0.0.300"}), c.index)
            .is_ok());
    }

    #[test]
    fn ids_of_every_form_and_refs_within_the_file() {
        let ok = [
            (
                Draft::Draft4,
                json!({"id": "mediawiki-config/db/readonly", "type": "object"}),
            ),
            (
                Draft::Draft4,
                json!({"id": "dbconfig-instance/catchall,", "type": "object"}),
            ),
            (
                Draft::Draft4,
                json!({"id": "#top", "definitions": {"p": {"type": "integer"}},
                                   "properties": {"n": {"$ref": "#/definitions/p"}}}),
            ),
            (
                Draft::Draft6,
                json!({"$id": "x/y.json", "definitions": {"p": {"type": "integer"}},
                                   "properties": {"n": {"$ref": "#/definitions/p"}}}),
            ),
            (
                Draft::Draft7,
                json!({"$id": "http://example.org/s/x.json",
                                   "definitions": {"p": {"type": "integer"}},
                                   "properties": {"n": {"$ref": "#/definitions/p"}}}),
            ),
            (
                Draft::Draft2019,
                json!({"$id": "/abs/x", "$defs": {"p": {"type": "integer"}},
                                      "properties": {"n": {"$ref": "#/$defs/p"}}}),
            ),
            (
                Draft::Draft2020,
                json!({"$id": "urn:example:x", "$defs": {"p": {"type": "integer"}},
                                      "properties": {"n": {"$ref": "#/$defs/p"}}}),
            ),
        ];
        for (draft, s) in ok {
            let c = compile("schemas/a/b.schema", &s, draft)
                .unwrap_or_else(|e| panic!("{draft} {s}: {e:?}"));
            if s.to_string().contains("$ref") {
                assert!(c.schemas.validate(&json!({"n": 1}), c.index).is_ok());
                assert!(
                    c.schemas.validate(&json!({"n": "1"}), c.index).is_err(),
                    "{s}"
                );
            }
        }
        let e = compile(
            "/etc/conftool/json-schema/x.schema",
            &json!({"properties": {"n": {"$ref": "common.json#/definitions/p"}}}),
            Draft::Draft2020,
        )
        .err()
        .unwrap();
        assert!(
            e.reason.contains("etc/conftool/json-schema/common.json"),
            "{}",
            e.reason
        );
        assert!(e.reason.contains("within the file"), "{}", e.reason);
    }

    #[test]
    fn a_schema_its_draft_refuses_is_placed() {
        let e = compile(
            "x",
            &json!({"properties": {"n": {"type": 12}}}),
            Draft::Draft7,
        )
        .err()
        .unwrap();
        assert_eq!(e.pointer.as_deref(), Some("/properties/n/type"), "{e:?}");
        // draft-04's boolean exclusiveMaximum is fine there, and refused by later drafts.
        let s = json!({"properties": {"n": {"maximum": 5, "exclusiveMaximum": true}}});
        let c = compile("x", &s, Draft::Draft4).unwrap();
        assert!(c.schemas.validate(&json!({"n": 5}), c.index).is_err());
        let e = compile("x", &s, Draft::Draft2020).err().unwrap();
        assert_eq!(
            e.pointer.as_deref(),
            Some("/properties/n/exclusiveMaximum"),
            "{e:?}"
        );
    }

    #[test]
    fn locations_are_read_as_json_pointers() {
        assert_eq!(
            pointer_in("schemas/x.schema#/properties/a%20b"),
            "/properties/a b"
        );
        assert_eq!(pointer_in("#"), "");
        assert_eq!(pointer_in("no fragment"), "");
        for (text, decoded) in [
            ("x%41%42", "xAB"),
            ("%7e%7E", "~~"),
            ("a%2", "a%2"),
            ("a%", "a%"),
            ("%zz%", "%zz%"),
            ("plain", "plain"),
        ] {
            assert_eq!(percent_decode(text), decoded, "{text}");
        }
    }

    #[test]
    fn an_id_is_removed_where_the_pointer_leads() {
        let mut v = json!({"properties": {"a": {"id": "#/x", "type": "integer"}}, "id": 1});
        assert!(remove_at(&mut v, "/properties/a", "id"));
        assert_eq!(v["properties"]["a"], json!({"type": "integer"}));
        assert!(!remove_at(&mut v, "/properties/a", "id"), "already gone");
        assert!(!remove_at(&mut v, "/id", "id"), "not an object");
        assert!(!remove_at(&mut v, "/nowhere", "id"));
        assert!(remove_at(&mut v, "", "id"), "the top");
    }
}
