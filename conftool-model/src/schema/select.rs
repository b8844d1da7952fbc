//! Selectors over a schema-defined type: `tag=regex,...,name=regex`, each regex anchored at
//! both ends; the tags are the type's tags and `name`.

use std::fmt;

use regex::Regex;

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
    pub fn parse(input: &str, tags: &[String]) -> Result<Self, String> {
        let mut parts: Vec<(String, String, Regex)> = Vec::new();
        for part in input.split(',') {
            let Some((k, expr)) = part.split_once('=') else {
                return Err(format!("{part:?} is not tag=regex"));
            };
            let k = k.trim();
            if k != "name" && !tags.iter().any(|t| t == k) {
                let mut known: Vec<&str> = tags.iter().map(String::as_str).collect();
                known.push("name");
                return Err(format!("unknown tag {k:?} (tags: {})", known.join(", ")));
            }
            if parts.iter().any(|(seen, _, _)| seen == k) {
                return Err(format!("tag {k:?} given twice"));
            }
            let re = Regex::new(&format!("^(?:{expr})$"))
                .map_err(|e| format!("bad regex for {k}: {e}"))?;
            parts.push((k.to_string(), expr.to_string(), re));
        }
        Ok(TypeSelector { parts })
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
        for bad in ["", "scope", "scope=a,scope=b", "name=(", "dc=x"] {
            assert!(TypeSelector::parse(bad, &tags).is_err(), "{bad}");
        }
        assert!(TypeSelector::any().matches(&tags, &["q"], "z"));
    }
}
