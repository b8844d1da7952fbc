//! Checks around the typed read: flow nesting depth (before parsing) and the exact line of a
//! repeated field (after a failure).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// The deepest `[`/`{` nesting accepted. The data files need 3; libyaml's time grows with
/// the square of the depth (50,000 levels: 8 s), so stop long before that.
pub(crate) const MAX_FLOW_DEPTH: usize = 64;

/// The position (1-based line and column) of the first `[` or `{` nested deeper than
/// [`MAX_FLOW_DEPTH`], if any. A light scan, not a YAML parser: it skips comments and quoted
/// scalars, and brackets inside plain scalars (which no valid data file has) at worst make
/// an already invalid file fail here instead of later.
pub(crate) fn too_deep(text: &str) -> Option<(usize, usize)> {
    #[derive(PartialEq)]
    enum In {
        Code,
        Single,
        Double,
        Comment,
    }
    let mut state = In::Code;
    let (mut line, mut col, mut depth) = (1, 0, 0usize);
    let mut prev = '\n';
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        col += 1;
        match state {
            In::Comment => {}
            // `''` is a quote inside a single-quoted scalar, not its end.
            In::Single if c == '\'' && chars.peek() == Some(&'\'') => {
                chars.next();
                col += 1;
            }
            In::Single if c == '\'' => state = In::Code,
            In::Double if escaped => escaped = false,
            In::Double if c == '\\' => escaped = true,
            In::Double if c == '"' => state = In::Code,
            In::Single | In::Double => {}
            In::Code => {
                let token_start = prev.is_whitespace() || matches!(prev, '[' | '{' | ',' | ':');
                match c {
                    '#' if prev.is_whitespace() => state = In::Comment,
                    '\'' if token_start => state = In::Single,
                    '"' if token_start => state = In::Double,
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Some((line, col));
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        if c == '\n' {
            (line, col) = (line + 1, 0);
            if state == In::Comment {
                state = In::Code;
            }
        }
        prev = c;
    }
    None
}

/// Walks a whole document (aliases included) and fails at the first key that repeats an
/// earlier key of the same mapping, so the error carries the duplicate's line.
pub(crate) struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(UniqueKey { seen: &seen })? {
            seen.extend(key);
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A value with a local tag (`!foo`): look inside it.
        let ((), variant) = data.variant_seed(IgnoreTag)?;
        de::VariantAccess::newtype_variant_seed(variant, NoDuplicates)
    }
}

struct IgnoreTag;

impl<'de> DeserializeSeed<'de> for IgnoreTag {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(de::IgnoredAny).map(|_| ())
    }
}

/// A mapping key: a scalar must not repeat one in `seen` (its text is returned); a complex
/// key is only checked inside.
struct UniqueKey<'a> {
    seen: &'a HashSet<String>,
}

impl UniqueKey<'_> {
    fn scalar<E: de::Error>(self, text: String) -> Result<Option<String>, E> {
        if self.seen.contains(&text) {
            return Err(E::custom(format!("duplicate key {text}")));
        }
        Ok(Some(text))
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKey<'_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKey<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.scalar(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.scalar(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.scalar(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.scalar(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.scalar(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.scalar("null".to_string())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.scalar("null".to_string())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        NoDuplicates.visit_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        NoDuplicates.visit_map(map).map(|()| None)
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        NoDuplicates.visit_enum(data).map(|()| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_counted_where_brackets_mean_nesting_only() {
        assert_eq!(too_deep(&nest(MAX_FLOW_DEPTH)), None);
        assert_eq!(
            too_deep(&nest(MAX_FLOW_DEPTH + 1)),
            Some((1, MAX_FLOW_DEPTH + 1))
        );
        // The place is the first bracket over the limit, on its own line and column.
        let text = format!("a: 1\n  b: {}", nest(MAX_FLOW_DEPTH + 3));
        assert_eq!(
            too_deep(&text),
            Some((2, "  b: ".len() + MAX_FLOW_DEPTH + 1))
        );
        // Closing brackets bring the depth down again.
        let siblings = format!("{}\n{}", nest(MAX_FLOW_DEPTH), nest(MAX_FLOW_DEPTH));
        assert_eq!(too_deep(&siblings), None);
        let deep = "[".repeat(MAX_FLOW_DEPTH + 1);
        // Inside comments and quoted scalars, brackets are text.
        for quiet in [
            format!("# {deep}\nx: 1\n"),
            format!("x: 1 # {deep}\n"),
            format!("x: '{deep}'\n"),
            format!("x: \"{deep}\"\n"),
            format!("x: \"a\\\"{deep}\"\n"),
            format!("x: 'it''s {deep}'\n"),
        ] {
            assert_eq!(too_deep(&quiet), None, "{quiet}");
        }
        // A comment ends at its line; a `#` inside a word starts none; a quote inside a
        // word starts no string; an escaped backslash ends the escape.
        assert!(too_deep(&format!("# c\n{deep}")).is_some());
        assert!(too_deep(&format!("x#{deep}")).is_some());
        assert!(too_deep(&format!("it's {deep}")).is_some());
        assert!(too_deep(&format!("x: \"a\\\\\" {deep}")).is_some());
        // A double quote inside a word starts no string either.
        assert!(too_deep(&format!("a\"{deep}")).is_some());
        // Columns count the two characters of a quoted quote.
        let text = format!("x: 'a''b' {deep}");
        assert_eq!(
            too_deep(&text),
            Some((1, "x: 'a''b' ".len() + MAX_FLOW_DEPTH + 1))
        );
        // After a closed quote the scan counts again.
        assert!(too_deep(&format!("x: \"q\" {deep}")).is_some());
        assert!(too_deep(&format!("x: 'q' {deep}")).is_some());
    }

    fn dup(text: &str) -> Option<String> {
        NoDuplicates
            .deserialize(yaml_serde::Deserializer::from_str(text))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn repeated_keys_of_any_kind_are_found_at_their_line() {
        assert_eq!(dup("a: 1\nb: 2\nc: {d: 1, e: 2}\n"), None);
        let e = dup("a: 1\nb: 2\na: 3\n").expect("duplicate");
        assert!(e.starts_with("duplicate key a at line 3"), "{e}");
        for (text, key) in [
            ("1: x\n1: y\n", "1"),
            ("-1: x\n-1: y\n", "-1"),
            ("1.5: x\n1.5: y\n", "1.5"),
            ("true: x\ntrue: y\n", "true"),
            ("~: x\n~: y\n", "null"),
            ("? \n: x\n? \n: y\n", "null"),
        ] {
            let e = dup(text).unwrap_or_else(|| panic!("{text:?}: no duplicate found"));
            assert!(
                e.starts_with(&format!("duplicate key {key} ")),
                "{text:?}: {e}"
            );
        }
        // Inside sequences, nested maps and tagged values, too.
        assert!(dup("- a: 1\n  a: 2\n").is_some());
        assert!(dup("x:\n  y:\n    z: 1\n    z: 2\n").is_some());
        assert!(dup("x: !tag\n  a: 1\n  a: 2\n").is_some());
        assert!(dup("x: !tag [1, 2]\n").is_none());
        // Complex keys are looked into, not compared.
        assert!(dup("? [a, b]\n: 1\n? [a, b]\n: 2\n").is_none());
        let e = dup("? {k: 1, k: 2}\n: 1\n").expect("duplicate inside a complex key");
        assert!(e.starts_with("duplicate key k at line 1"), "{e}");
        let e = dup("? !t {k: 1, k: 2}\n: 1\n").expect("duplicate inside a tagged key");
        assert!(e.starts_with("duplicate key k at line 1"), "{e}");
        // The same key in two different maps is fine.
        assert!(dup("a: {k: 1}\nb: {k: 1}\n").is_none());
        // Aliases are walked like what they point to.
        assert!(dup("base: &b {k: 1}\nuse: *b\n").is_none());
    }
}
