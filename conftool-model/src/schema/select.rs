//! Selectors over a schema-defined type: `tag=regex,...,name=regex`, each regex anchored at
//! both ends; the tags are the type's tags and `name`.

use std::fmt;

use regex::Regex;

use super::object::{check_name, BadName};
use crate::selector::Anchoring;

/// Why a selector of a schema-defined type does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// A part without `=`.
    #[error("{part:?} is not tag=regex")]
    NotTagRegex {
        /// The part.
        part: String,
    },
    /// A tag the type does not have.
    #[error("unknown tag {tag:?} (tags: {})", known.join(", "))]
    UnknownTag {
        /// The tag given.
        tag: String,
        /// The type's tags and `name`.
        known: Vec<String>,
    },
    /// A tag given twice in a selector.
    #[error("tag {tag:?} given twice")]
    Twice {
        /// The tag.
        tag: String,
    },
    /// A regular expression that does not compile.
    #[error("bad regex for {tag}: {reason}")]
    BadRegex {
        /// The tag it was given for.
        tag: String,
        /// The regex crate's explanation.
        reason: String,
    },
    /// A part of a TAGS list without `=`.
    #[error("{part:?} is not tag=value; {expected}")]
    NotTagValue {
        /// The part.
        part: String,
        /// What a TAGS list for the type looks like.
        expected: String,
    },
    /// A tag of a TAGS list that the type does not have.
    #[error("unknown tag {tag:?}; {expected}")]
    NotATag {
        /// The tag given.
        tag: String,
        /// What a TAGS list for the type looks like.
        expected: String,
    },
    /// A tag given twice in a TAGS list.
    #[error("tag {tag} given twice")]
    TagTwice {
        /// The tag.
        tag: String,
    },
    /// A TAGS value that is not a valid name.
    #[error("tag {tag}: {source}")]
    BadValue {
        /// The tag.
        tag: String,
        /// Why the value is not a name.
        source: BadName,
    },
    /// Tags a TAGS list leaves out.
    #[error("missing tag {tags}; {expected}")]
    Missing {
        /// The tags, comma-separated.
        tags: String,
        /// What a TAGS list for the type looks like.
        expected: String,
    },
    /// A literal object name that is not a valid name.
    #[error(transparent)]
    BadName(BadName),
}

fn bad_regex(tag: &str, e: &regex::Error) -> SelectorError {
    SelectorError::BadRegex {
        tag: tag.into(),
        reason: e.to_string(),
    }
}

/// A parsed selector for one object type.
///
/// ```
/// use conftool_model::schema::TypeSelector;
/// let tags = vec!["dc".to_string(), "section".to_string()];
/// let sel = TypeSelector::parse("dc=eqiad,name=db1.*", &tags).unwrap();
/// assert!(sel.matches(&tags, &["eqiad", "s1"], "db1001"));
/// assert!(!sel.matches(&tags, &["codfw", "s1"], "db1001"));
/// assert!(TypeSelector::parse("cluster=x", &tags).is_err());
/// assert_eq!(sel.to_string(), "dc=eqiad,name=db1.*");
/// ```
#[derive(Debug, Clone)]
pub struct TypeSelector {
    parts: Vec<(String, String, Regex)>,
}

impl Eq for TypeSelector {}

impl PartialEq for TypeSelector {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl TypeSelector {
    /// A selector that matches every object.
    pub fn any() -> Self {
        TypeSelector { parts: Vec::new() }
    }

    /// Parse `input` for a type with `tags` (plus `name`). An unknown tag, a repeated tag, a
    /// part without `=` or a bad regex is an error.
    pub fn parse(input: &str, tags: &[String]) -> Result<Self, SelectorError> {
        Self::parse_anchored(input, tags, |expr| format!("^(?:{expr})$"))
    }

    /// Parse the selector of a JSON Schema rule in `schema.yaml`, anchored as the Python
    /// tool anchors it: `^` + regex + `$`, searched (its `re.search`). The two differ only
    /// for a top-level alternation: `name=foo|bar` matches names that start with `foo` or
    /// end with `bar` there, so it does here, where a rule means what it meant in Python.
    ///
    /// ```
    /// use conftool_model::schema::TypeSelector;
    /// let sel = TypeSelector::parse_rule("name=db1|db2", &[]).unwrap();
    /// assert!(sel.matches::<&str>(&[], &[], "db1001") && sel.matches::<&str>(&[], &[], "xdb2"));
    /// assert!(!sel.matches::<&str>(&[], &[], "db3"));
    /// ```
    pub fn parse_rule(input: &str, tags: &[String]) -> Result<Self, SelectorError> {
        Self::parse_anchored(input, tags, |expr| format!("^{expr}$"))
    }

    fn parse_anchored(
        input: &str,
        tags: &[String],
        anchor: impl Fn(&str) -> String,
    ) -> Result<Self, SelectorError> {
        let mut parts: Vec<(String, String, Regex)> = Vec::new();
        for part in input.split(',') {
            let Some((k, expr)) = part.split_once('=') else {
                return Err(SelectorError::NotTagRegex { part: part.into() });
            };
            let k = k.trim();
            if k != "name" && !tags.iter().any(|t| t == k) {
                let mut known = tags.to_vec();
                known.push("name".into());
                return Err(SelectorError::UnknownTag {
                    tag: k.into(),
                    known,
                });
            }
            if parts.iter().any(|(seen, _, _)| seen == k) {
                return Err(SelectorError::Twice { tag: k.into() });
            }
            let re = Regex::new(&anchor(expr)).map_err(|e| bad_regex(k, &e))?;
            parts.push((k.to_string(), expr.to_string(), re));
        }
        Ok(TypeSelector { parts })
    }

    /// The selector of the Python tool's `tags` mode TAGS for a type with `tags`: every tag
    /// given once, literally (`dc=eqiad,cluster=cache_text`), in any order; the values in
    /// the type's tag order are returned with it. A type without tags takes the empty
    /// string. A missing, unknown or repeated tag, or a value that is not a valid name, is
    /// an error. (The Python tool ignores unknown tags and lets the last of a repeated tag
    /// win: a typo there acts on objects nobody meant.)
    ///
    /// ```
    /// use conftool_model::schema::TypeSelector;
    /// let tags = vec!["dc".to_string(), "cluster".to_string()];
    /// let (values, sel) = TypeSelector::for_tags("cluster=api,dc=eqiad", &tags).unwrap();
    /// assert_eq!(values, ["eqiad", "api"]);
    /// assert_eq!(sel.to_string(), "dc=eqiad,cluster=api");
    /// assert!(TypeSelector::for_tags("dc=eqiad", &tags).is_err());
    /// assert!(TypeSelector::for_tags("dc=eq.*,cluster=api", &tags).is_err());
    /// assert!(TypeSelector::for_tags("", &[]).unwrap().1.matches::<&str>(&[], &[], "x"));
    /// ```
    pub fn for_tags(input: &str, tags: &[String]) -> Result<(Vec<String>, Self), SelectorError> {
        let expected = || {
            if tags.is_empty() {
                "this type has no tags: give TAGS as ''".to_string()
            } else {
                let parts: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{t}={}", t.to_uppercase()))
                    .collect();
                format!("expected {}", parts.join(","))
            }
        };
        let mut values: Vec<Option<String>> = vec![None; tags.len()];
        if !(tags.is_empty() && input.trim().is_empty()) {
            for part in input.split(',') {
                let Some((tag, value)) = part.split_once('=') else {
                    return Err(SelectorError::NotTagValue {
                        part: part.into(),
                        expected: expected(),
                    });
                };
                let (tag, value) = (tag.trim(), value.trim());
                let Some(i) = tags.iter().position(|t| t == tag) else {
                    return Err(SelectorError::NotATag {
                        tag: tag.into(),
                        expected: expected(),
                    });
                };
                check_name(value).map_err(|source| SelectorError::BadValue {
                    tag: tag.into(),
                    source,
                })?;
                if values[i].replace(value.to_string()).is_some() {
                    return Err(SelectorError::TagTwice { tag: tag.into() });
                }
            }
        }
        let missing: Vec<&str> = tags
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| t.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(SelectorError::Missing {
                tags: missing.join(", "),
                expected: expected(),
            });
        }
        let values: Vec<String> = values.into_iter().flatten().collect();
        let mut sel = TypeSelector::any();
        for (t, v) in tags.iter().zip(&values) {
            sel = sel.with_term(t, &regex::escape(v), Anchoring::Whole)?;
        }
        Ok((values, sel))
    }

    /// This selector with a `name` term matching `name` exactly (taken literally).
    pub fn with_name(self, name: &str) -> Result<Self, SelectorError> {
        check_name(name).map_err(SelectorError::BadName)?;
        self.with_term("name", &regex::escape(name), Anchoring::Whole)
    }

    /// This selector with a `name` term matching the regular expression `regex`, anchored
    /// as `anchoring` says ([`Anchoring::Start`]: the Python tool's `re:` NAMEDEF, its
    /// `re.match`). The regex is compiled on its own first, so a stray `)` cannot escape
    /// the anchors.
    ///
    /// ```
    /// use conftool_model::schema::TypeSelector;
    /// use conftool_model::Anchoring;
    /// let sel = TypeSelector::any().with_name_regex("w1", Anchoring::Start).unwrap();
    /// assert!(sel.matches::<&str>(&[], &[], "w10") && !sel.matches::<&str>(&[], &[], "xw1"));
    /// assert!(TypeSelector::any().with_name_regex("a)|(b", Anchoring::Start).is_err());
    /// ```
    pub fn with_name_regex(self, regex: &str, anchoring: Anchoring) -> Result<Self, SelectorError> {
        self.with_term("name", regex, anchoring)
    }

    fn with_term(
        mut self,
        tag: &str,
        expr: &str,
        anchoring: Anchoring,
    ) -> Result<Self, SelectorError> {
        if self.parts.iter().any(|(seen, _, _)| seen == tag) {
            return Err(SelectorError::Twice { tag: tag.into() });
        }
        Regex::new(expr).map_err(|e| bad_regex(tag, &e))?;
        let (source, anchored) = match anchoring {
            Anchoring::Start => (format!("(?:{expr}).*"), format!("^(?:{expr})")),
            _ => (expr.to_string(), format!("^(?:{expr})$")),
        };
        let re = Regex::new(&anchored).map_err(|e| bad_regex(tag, &e))?;
        self.parts.push((tag.to_string(), source, re));
        Ok(self)
    }

    /// Whether the object with tag values `values` (in the order of `tags`) and `name`
    /// matches. A tag the selector does not mention matches anything.
    pub fn matches<S: AsRef<str>>(&self, tags: &[String], values: &[S], name: &str) -> bool {
        self.parts.iter().all(|(k, _, re)| {
            if k == "name" {
                return re.is_match(name);
            }
            tags.iter()
                .position(|t| t == k)
                .and_then(|i| values.get(i))
                .is_some_and(|v| re.is_match(v.as_ref()))
        })
    }
}

impl fmt::Display for TypeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, expr, _)) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={expr}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn anchored_and_strict() {
        let tags = vec!["scope".to_string()];
        let s = TypeSelector::parse("name=a|b", &tags).unwrap();
        assert!(s.matches(&tags, &["x"], "a"));
        assert!(!s.matches(&tags, &["x"], "ab"));
        for (bad, want) in [
            ("", r#""" is not tag=regex"#),
            ("scope", r#""scope" is not tag=regex"#),
            ("scope=a,scope=b", r#"tag "scope" given twice"#),
            ("name=(", "bad regex for name: regex parse error:"),
            ("dc=x", r#"unknown tag "dc" (tags: scope, name)"#),
        ] {
            let e = TypeSelector::parse(bad, &tags).unwrap_err().to_string();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
        assert!(TypeSelector::any().matches(&tags, &["q"], "z"));
    }

    #[test]
    fn tags_mode_tags_are_literal_complete_and_once() {
        let tags = vec!["dc".to_string(), "cluster".to_string()];
        let (v, sel) = TypeSelector::for_tags(" cluster = a.b , dc=eqiad", &tags).unwrap();
        assert_eq!(v, ["eqiad", "a.b"]);
        assert!(sel.matches(&tags, &["eqiad", "a.b"], "n"));
        assert!(!sel.matches(&tags, &["eqiad", "axb"], "n"));
        for (bad, want) in [
            ("dc=eqiad", "missing tag cluster"),
            ("", "is not tag=value"),
            ("dc=eqiad,cluster=a,name=x", "unknown tag \"name\""),
            ("dc=eqiad,dc=codfw,cluster=a", "given twice"),
            ("dc=eqiad,cluster=a/b", "invalid name"),
            ("dc=,cluster=a", "invalid name"),
            ("dc=eqiad,cluster=a,", "is not tag=value"),
        ] {
            let e = TypeSelector::for_tags(bad, &tags).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let (v, sel) = TypeSelector::for_tags("", &[]).unwrap();
        assert!(v.is_empty() && sel.to_string().is_empty());
        let e = TypeSelector::for_tags("dc=eqiad", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tags"), "{e}");
        let named = sel.clone().with_name("db1001:3306").unwrap();
        assert!(named.matches::<&str>(&[], &[], "db1001:3306"));
        assert!(!named.matches::<&str>(&[], &[], "db1001:33067"));
        assert!(sel.clone().with_name("a/b").is_err());
        assert!(named.with_name_regex("x", Anchoring::Start).is_err());
    }

    #[test]
    fn a_selector_reads_back_as_written_and_equal_means_the_same_text() {
        let tags = vec!["scope".to_string()];
        let s = TypeSelector::parse("scope=a|b,name=x.*", &tags).unwrap();
        assert_eq!(s.to_string(), "scope=a|b,name=x.*");
        assert_eq!(s, TypeSelector::parse("scope=a|b,name=x.*", &tags).unwrap());
        assert_ne!(s, TypeSelector::parse("scope=a|b", &tags).unwrap());
        assert_ne!(s, TypeSelector::any());
        assert_eq!(TypeSelector::any(), TypeSelector::any());
        let one = TypeSelector::parse("name=x", &tags).unwrap();
        assert_eq!(one.to_string(), "name=x");
    }

    #[test]
    fn a_name_regex_anchored_at_the_start_matches_any_end() {
        let sel = TypeSelector::any()
            .with_name_regex("w1", Anchoring::Start)
            .unwrap();
        assert_eq!(sel.to_string(), "name=(?:w1).*");
        assert!(sel.matches::<&str>(&[], &[], "w10"));
        assert!(!sel.matches::<&str>(&[], &[], "xw1"));
        let whole = TypeSelector::any()
            .with_name_regex("w1", Anchoring::Whole)
            .unwrap();
        assert_eq!(whole.to_string(), "name=w1");
        assert!(!whole.matches::<&str>(&[], &[], "w10"));
    }
}
