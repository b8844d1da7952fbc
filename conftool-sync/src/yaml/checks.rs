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
    for c in text.chars() {
        col += 1;
        match state {
            In::Comment => {}
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
