//! Strict YAML reading: duplicate keys and unknown names are errors that point at the line.
//!
//! Deserializing straight into a map silently keeps the last of two duplicate keys, and a
//! check made after deserializing has lost its position. So the maps here are read through
//! seeds that validate each key *inside* the deserializer's visitor: the YAML library then
//! attaches the key's own line and column to the error.
//!
//! Two checks the typed read cannot do well are made around it:
//! - flow nesting depth: libyaml's scanner is quadratic in the depth of `[`/`{` nesting, so a
//!   file of a few hundred kilobytes of `[` would hang the sync for minutes;
//! - a duplicate field (e.g. a second `port:`) at its own line: `serde(derive)` reports it at
//!   the start of the enclosing mapping, so when it does, a second pass finds the repeat.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::Error;

/// An extra rule for a name (e.g. "must be defined in services.yaml").
pub(crate) type Check<'a, K> = &'a dyn Fn(&K) -> Result<(), String>;

/// Accept any name.
pub(crate) fn any<K>(_: &K) -> Result<(), String> {
    Ok(())
}

/// Reads one name (a map key or a list item), validates it and applies `check`.
pub(crate) struct NameSeed<'a, K> {
    pub check: Check<'a, K>,
}

impl<'de, K> DeserializeSeed<'de> for NameSeed<'_, K>
where
    K: FromStr,
    K::Err: Display,
{
    type Value = K;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        d.deserialize_str(self)
    }
}

impl<K> Visitor<'_> for NameSeed<'_, K>
where
    K: FromStr,
    K::Err: Display,
{
    type Value = K;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        let k: K = v.parse().map_err(E::custom)?;
        (self.check)(&k).map_err(E::custom)?;
        Ok(k)
    }
}

/// A mapping from validated names to values read by a seed made from the key; duplicate keys
/// are rejected.
pub(crate) struct MapSeed<'a, K, F> {
    pub check: Check<'a, K>,
    pub value: F,
}

impl<'de, K, F, VS> DeserializeSeed<'de> for MapSeed<'_, K, F>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
    F: Fn(&K) -> VS,
    VS: DeserializeSeed<'de>,
{
    type Value = BTreeMap<K, VS::Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, K, F, VS> Visitor<'de> for MapSeed<'_, K, F>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
    F: Fn(&K) -> VS,
    VS: DeserializeSeed<'de>,
{
    type Value = BTreeMap<K, VS::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        loop {
            let unique = |k: &K| {
                if out.contains_key(k) {
                    Err(format!("duplicate key {k}"))
                } else {
                    (self.check)(k)
                }
            };
            let Some(k) = map.next_key_seed(NameSeed { check: &unique })? else {
                return Ok(out);
            };
            let v = map.next_value_seed((self.value)(&k))?;
            out.insert(k, v);
        }
    }
}

/// A list of validated names without repeats.
pub(crate) struct NameListSeed<'a, K> {
    pub check: Check<'a, K>,
}

impl<'de, K> DeserializeSeed<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<K>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, K> Visitor<'de> for NameListSeed<'_, K>
where
    K: FromStr + Ord + Display,
    K::Err: Display,
{
    type Value = Vec<K>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of names")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<K>, A::Error> {
        let mut out: Vec<K> = Vec::new();
        loop {
            let unique = |k: &K| {
                if out.contains(k) {
                    Err(format!("{k} is listed twice"))
                } else {
                    (self.check)(k)
                }
            };
            match seq.next_element_seed(NameSeed { check: &unique })? {
                Some(k) => out.push(k),
                None => return Ok(out),
            }
        }
    }
}

/// A plain `Deserialize` value, as a seed (for map values that need no context).
pub(crate) fn plain<T>(_: &impl Sized) -> PhantomData<T> {
    PhantomData
}

/// One field name of a fixed set, read as a map key so that an unknown or repeated field is
/// reported at the key's own line.
pub(crate) struct FieldSeed<'a> {
    pub fields: &'static [&'static str],
    pub seen: &'a [&'static str],
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = &'static str;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        let field = self
            .fields
            .iter()
            .find(|f| **f == v)
            .ok_or_else(|| E::unknown_field(v, self.fields))?;
        if self.seen.contains(field) {
            return Err(E::duplicate_field(field));
        }
        Ok(field)
    }
}

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
struct NoDuplicates;

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

/// Parse `text` (the contents of `file`) with `seed`, mapping errors to `file:line:column`.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    file: &Path,
    text: &'de str,
    seed: S,
) -> Result<S::Value, Error> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(Error::Yaml {
            file: file.to_path_buf(),
            line: None,
            message: "file is empty".into(),
        });
    }
    if let Some(at) = too_deep(text) {
        return Err(Error::Yaml {
            file: file.to_path_buf(),
            line: Some(at),
            message: format!("nested deeper than {MAX_FLOW_DEPTH} levels"),
        });
    }
    let de = yaml_serde::Deserializer::from_str(text);
    seed.deserialize(de).map_err(|e| {
        // serde(derive) reports a repeated field at the start of its mapping; look for the
        // repeat itself. (Only on failure: a second parse of a big file is not free.)
        if e.to_string().contains("duplicate field") {
            if let Err(dup) = NoDuplicates.deserialize(yaml_serde::Deserializer::from_str(text)) {
                return yaml_error(file, text, &dup);
            }
        }
        yaml_error(file, text, &e)
    })
}

fn yaml_error(file: &Path, text: &str, e: &yaml_serde::Error) -> Error {
    let mut message = e.to_string();
    // Reader errors (e.g. a control character) carry a byte offset instead of a mark, and
    // the library then reports line 1 column 1: turn the offset into the real place.
    if let Some((rest, offset)) = message.rsplit_once(" at position ") {
        if let Ok(offset) = offset.parse::<usize>() {
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            return Error::Yaml {
                file: file.to_path_buf(),
                line: Some((line, column)),
                message: clip(rest.to_string()),
            };
        }
    }
    let line = e.location().map(|loc| {
        // The library repeats the position in the message, at its end or before a
        // "while parsing ..." context; the position is shown once, in front.
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        let found = message
            .match_indices(&at)
            .map(|(i, _)| i)
            .find(|&i| !message[i + at.len()..].starts_with(|c: char| c.is_ascii_digit()));
        if let Some(i) = found {
            message.replace_range(i..i + at.len(), "");
        }
        (loc.line(), loc.column())
    });
    Error::Yaml {
        file: file.to_path_buf(),
        line,
        message: clip(message),
    }
}

/// Keep messages readable when they quote huge input (a 2 MiB scalar, say).
fn clip(message: String) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message;
    }
    let cut = (0..=200)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    format!(
        "{}… ({} characters in all)",
        &message[..cut],
        message.chars().count()
    )
}
