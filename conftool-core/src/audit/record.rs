//! One audit line: what it records ([`Event`]), the write it is about ([`AuditEntry`]), and
//! its JSON text.

use serde::Serialize;

use super::Actor;
use crate::keys::Keyspace;
use crate::selection::Change;

/// What an audit line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Event {
    /// About to be written.
    Intent,
    /// Written, at a revision.
    Applied,
    /// The operation is over.
    End,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Record<'a> {
    pub(super) time: &'a str,
    #[serde(flatten)]
    pub(super) actor: &'a Actor,
    pub(super) op: &'a str,
    pub(super) event: Event,
    /// The operation kept in etcd that the writes belong to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) operation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<&'a str>,
    #[serde(flatten)]
    pub(super) body: Body<'a>,
}

impl Record<'_> {
    /// The line's JSON text, unshowable characters escaped.
    pub(super) fn to_line(&self) -> String {
        // Strings, numbers and JSON values only: serializing cannot fail.
        json_escape_unshowable(serde_json::to_string(self).unwrap_or_default())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(super) enum Body<'a> {
    Write {
        key: &'a str,
        before: &'a Option<serde_json::Value>,
        after: &'a Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<i64>,
    },
    End {
        applied: usize,
        error: Option<&'a str>,
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        unknown: &'a [String],
    },
}

/// One write to audit: the key, its value before and after (`None`: absent), and the
/// revision of the write (`None` before it is made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditEntry {
    /// The etcd key.
    pub key: String,
    /// The value before (`None` if the key was created).
    pub before: Option<serde_json::Value>,
    /// The value after (`None` if the key was deleted).
    pub after: Option<serde_json::Value>,
    /// The etcd revision of the write (`None` for an intent).
    pub revision: Option<i64>,
}

impl AuditEntry {
    /// An entry from stored text: JSON is kept as JSON, anything else as a string.
    pub fn from_text(
        key: String,
        before: Option<&str>,
        after: Option<&str>,
        revision: Option<i64>,
    ) -> Self {
        let value = |t: &str| {
            serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
        };
        AuditEntry {
            key,
            before: before.map(value),
            after: after.map(value),
            revision,
        }
    }

    /// The entry of a pool-state change (`revision` once it is written).
    pub fn for_change(ks: &Keyspace, change: &Change, revision: Option<i64>) -> Self {
        AuditEntry {
            key: ks.object_key(&change.key),
            before: serde_json::to_value(&change.before).ok(),
            after: change
                .after
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            revision,
        }
    }
}

/// JSON text with the characters JSON leaves as they are but a viewer would not show as
/// stored ([`crate::text::is_unshowable`]: DEL, C1, Unicode's bidirectional controls and
/// separators, from a `--reason` or a stored value) written as `\uXXXX` escapes: the same
/// JSON value, but `less` or a terminal shows the line as it is. (serde_json escapes C0
/// itself; every such character is in the Basic Multilingual Plane, and can only be inside
/// a string.)
fn json_escape_unshowable(json: String) -> String {
    use std::fmt::Write as _;
    if !json.chars().any(crate::text::is_unshowable) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if crate::text::is_unshowable(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// An error and its causes, `: `-separated (what an `end` line records).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        src = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_without_unshowable_characters_is_kept_as_it_is() {
        assert_eq!(
            json_escape_unshowable("{\"a\":\"é\"}".into()),
            "{\"a\":\"é\"}"
        );
    }
}
