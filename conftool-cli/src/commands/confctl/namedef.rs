//! NAMEDEF of `confctl tags`: which objects of one pool (node objects) or of one set of
//! tag values (a schema type's objects) an `--action` picks, and how `get` shows them.

use conftool_core::schema::TypeSelector;
use conftool_core::Anchoring;
use conftool_core::{escape_controls, NodeName, PoolKey, Selector};

use super::get::GetStyle;
use crate::exit::BadInput;

/// Which objects of the pool a NAMEDEF picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NameDef {
    /// One object, by name (checked as the type's names are).
    Name(String),
    /// `re:REGEX`: names that start with a match.
    Regex(String),
    /// `all`: every object in the pool.
    All,
}

impl NameDef {
    /// Parse NAMEDEF; `check` says whether a plain name is one of the type's names (`what`
    /// a name is called in the error).
    pub(super) fn parse(
        s: &str,
        what: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> anyhow::Result<NameDef> {
        if s == "all" {
            return Ok(NameDef::All);
        }
        if let Some(re) = s.strip_prefix("re:") {
            if re.is_empty() {
                return Err(BadInput::msg(
                    "NAMEDEF \"re:\" has an empty regex; use `all` for every object of the pool",
                ));
            }
            return Ok(NameDef::Regex(re.to_string()));
        }
        check(s).map_err(|e| {
            BadInput::msg(format!(
                "NAMEDEF {:?} is not {what}, re:REGEX or all: {e}",
                escape_controls(s)
            ))
        })?;
        Ok(NameDef::Name(s.to_string()))
    }

    /// NAMEDEF for node objects.
    pub(super) fn parse_node(s: &str) -> anyhow::Result<NameDef> {
        NameDef::parse(s, "a node name", |n| {
            n.parse::<NodeName>().map(|_| ()).map_err(|e| e.to_string())
        })
    }

    pub(super) fn selector(&self, pool: &PoolKey) -> anyhow::Result<Selector> {
        let sel = Selector::for_pool(pool)?;
        Ok(match self {
            NameDef::Name(n) => sel.with_name(&n.parse()?)?,
            NameDef::Regex(re) => sel.with_name_regex(re, Anchoring::Start)?,
            NameDef::All => sel,
        })
    }

    /// The selector of a schema type's objects under the tag values `pool` selects.
    pub(super) fn typed_selector(&self, pool: &TypeSelector) -> Result<TypeSelector, String> {
        let sel = pool.clone();
        match self {
            NameDef::Name(n) => sel.with_name(n),
            NameDef::Regex(re) => sel.with_name_regex(re, Anchoring::Start),
            NameDef::All => Ok(sel),
        }
    }

    /// How `get` prints what this NAMEDEF selected.
    pub(super) fn get_style(&self) -> GetStyle<'_> {
        match self {
            NameDef::Name(n) => GetStyle::Named(n.as_str()),
            NameDef::Regex(_) => GetStyle::Lines,
            NameDef::All => GetStyle::PoolDict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namedefs() {
        assert_eq!(NameDef::parse_node("all").unwrap(), NameDef::All);
        assert_eq!(
            NameDef::parse_node("re:mw10").unwrap(),
            NameDef::Regex("mw10".into())
        );
        assert!(
            matches!(NameDef::parse_node("mw1018.eqiad.wmnet").unwrap(), NameDef::Name(n) if n.as_str() == "mw1018.eqiad.wmnet")
        );
        for bad in ["re:", "find:mw1018", "a/b", "", "db1:3306"] {
            assert!(NameDef::parse_node(bad).is_err(), "{bad}");
        }
        let typed =
            |s: &str| NameDef::parse(s, "a name", conftool_core::schema::object::check_name);
        assert!(typed("db1:3306").is_ok() && typed("a/b").is_err() && typed("re:").is_err());
        let pool = PoolKey {
            dc: "eqiad".parse().unwrap(),
            cluster: "appservers".parse().unwrap(),
            service: "apache".parse().unwrap(),
        };
        let sel = NameDef::parse_node("re:mw10")
            .unwrap()
            .selector(&pool)
            .unwrap();
        assert!(sel.matches_name("mw1018") && !sel.matches_name("xmw10"));
        let sel = NameDef::parse_node("mw10")
            .unwrap()
            .selector(&pool)
            .unwrap();
        assert!(!sel.matches_name("mw1018") && sel.names_exactly("mw10"));
        assert!(NameDef::parse_node("re:(")
            .unwrap()
            .selector(&pool)
            .is_err());
    }
}
