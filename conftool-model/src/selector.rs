//! Selectors: `tag=regex[,tag=regex...]` over the tags `dc`, `cluster`, `service`, `name`.
//!
//! Each regex is anchored at both ends, as in the Python confctl: `name=mw101` does not match
//! `mw1018`. A comma separates tags only where the next tag starts (`,dc=`, `,name=`...), so a
//! regex may contain commas (`name=mw10{1,2}8`). Missing tags match everything.
//!
//! ```
//! use conftool_model::Selector;
//! let sel: Selector = "dc=eqiad,cluster=appservers,name=mw10.*".parse().unwrap();
//! assert_eq!(sel.to_string(), "dc=eqiad,cluster=appservers,name=mw10.*");
//! assert!("name=mw101".parse::<Selector>().unwrap().matches_name("mw101"));
//! assert!(!"name=mw101".parse::<Selector>().unwrap().matches_name("mw1018"));
//! assert!("color=red".parse::<Selector>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use regex::Regex;

use crate::error::Error;
use crate::keys::Keyspace;
use crate::model::{ObjectKey, PoolKey};
use crate::names::{Cluster, Datacenter, NodeName, Service};

/// A selector tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tag {
    /// Datacenter.
    Dc,
    /// Cluster.
    Cluster,
    /// Service.
    Service,
    /// Node name.
    Name,
}

impl Tag {
    const ALL: [Tag; 4] = [Tag::Dc, Tag::Cluster, Tag::Service, Tag::Name];

    /// The tag as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Dc => "dc",
            Tag::Cluster => "cluster",
            Tag::Service => "service",
            Tag::Name => "name",
        }
    }

    fn parse(s: &str) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a `name` regex given to [`Selector::with_name_regex`] must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anchoring {
    /// The whole name, as every term of a parsed selector.
    Whole,
    /// A prefix of the name (Python's `re.match`), as the Python confctl's `re:` NAMEDEF.
    Start,
}

/// One `tag=regex` term.
#[derive(Debug, Clone)]
struct Term {
    tag: Tag,
    source: String,
    re: Regex,
    /// The one value the term matches when it spells one out ([`Term::literal`]), compared
    /// as a string: a selection matches thousands of objects against its terms.
    exact: Option<String>,
}

impl Term {
    /// A term matching `re` (built from `source` as its anchoring says).
    fn new(tag: Tag, source: String, re: Regex, anchoring: Anchoring) -> Term {
        let mut term = Term {
            tag,
            source,
            re,
            exact: None,
        };
        if anchoring == Anchoring::Whole {
            term.exact = term.literal();
        }
        term
    }

    /// Whether `value` matches.
    fn is_match(&self, value: &str) -> bool {
        match &self.exact {
            Some(exact) => exact == value,
            None => self.re.is_match(value),
        }
    }

    /// The value if it matches exactly one string (letters, digits, `_`, `-`, and escaped
    /// punctuation such as `\.`), used to narrow the etcd prefix.
    fn literal(&self) -> Option<String> {
        let mut out = String::new();
        let mut chars = self.source.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) if e.is_ascii_punctuation() => out.push(e),
                    _ => return None,
                },
                c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
                _ => return None,
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// A parsed selector.
#[derive(Debug, Clone)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// The selector that matches every object (no term).
    ///
    /// ```
    /// use conftool_model::{ObjectKey, Selector};
    /// let k: ObjectKey = "eqiad/appservers/apache/mw1018".parse()?;
    /// assert!(Selector::any().matches(&k));
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    pub fn any() -> Selector {
        Selector { terms: Vec::new() }
    }

    /// A selector for exactly one node (its name taken literally), optionally in one service.
    ///
    /// ```
    /// use conftool_model::{NodeName, Selector, Service};
    /// let node: NodeName = "mw1018.eqiad.wmnet".parse()?;
    /// let apache: Service = "apache".parse()?;
    /// let sel = Selector::for_node(&node, Some(&apache))?;
    /// assert_eq!(sel.to_string(), r"name=mw1018\.eqiad\.wmnet,service=apache");
    /// assert!(sel.matches_name("mw1018.eqiad.wmnet") && !sel.matches_name("mw1018xeqiadxwmnet"));
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    pub fn for_node(node: &NodeName, service: Option<&Service>) -> Result<Selector, Error> {
        let mut s = format!("name={}", regex::escape(node.as_str()));
        if let Some(svc) = service {
            s.push_str(&format!(",service={}", regex::escape(svc.as_str())));
        }
        s.parse()
    }

    /// A selector for one pool, its names taken literally.
    pub fn for_pool(pool: &PoolKey) -> Result<Selector, Error> {
        format!(
            "dc={},cluster={},service={}",
            regex::escape(pool.dc.as_str()),
            regex::escape(pool.cluster.as_str()),
            regex::escape(pool.service.as_str())
        )
        .parse()
    }

    /// This selector with a `name` term that matches `node` exactly (its name taken
    /// literally, so [`Selector::exact_name`] sees it). Used by `confctl tags`, whose
    /// NAMEDEF is a plain name.
    ///
    /// ```
    /// use conftool_model::{NodeName, PoolKey, Selector};
    /// let pool = PoolKey {
    ///     dc: "eqiad".parse()?,
    ///     cluster: "appservers".parse()?,
    ///     service: "apache".parse()?,
    /// };
    /// let node: NodeName = "mw1018.eqiad.wmnet".parse()?;
    /// let sel = Selector::for_pool(&pool)?.with_name(&node)?;
    /// assert_eq!(sel.to_string(), r"dc=eqiad,cluster=appservers,service=apache,name=mw1018\.eqiad\.wmnet");
    /// assert!(sel.names_exactly("mw1018.eqiad.wmnet"));
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    pub fn with_name(self, node: &NodeName) -> Result<Selector, Error> {
        self.with_name_regex(&regex::escape(node.as_str()), Anchoring::Whole)
    }

    /// This selector with a `name` term matching the regular expression `regex`, taken
    /// whole (commas in it never start a new term), anchored as `anchoring` says.
    /// [`Anchoring::Start`] is the Python conftool's `re:` NAMEDEF (`re.match`): `mw10`
    /// selects `mw1018`. Refused if the selector already has a `name` term or the regex
    /// does not compile (checked on its own, so a stray `)` cannot escape the anchors).
    ///
    /// ```
    /// use conftool_model::Anchoring;
    /// use conftool_model::Selector;
    /// let sel: Selector = "dc=eqiad".parse()?;
    /// let start = sel.clone().with_name_regex("mw10", Anchoring::Start)?;
    /// assert!(start.matches_name("mw1018") && !start.matches_name("xmw1018"));
    /// assert_eq!(start.to_string(), "dc=eqiad,name=(?:mw10).*");
    /// let whole = sel.clone().with_name_regex("mw10", Anchoring::Whole)?;
    /// assert!(!whole.matches_name("mw1018"));
    /// assert!(sel.with_name_regex("a)|(b", Anchoring::Start).is_err());
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    pub fn with_name_regex(mut self, regex: &str, anchoring: Anchoring) -> Result<Selector, Error> {
        let err = |reason: String| Error::Selector {
            input: format!("{self},name={regex}"),
            reason,
        };
        if self.term(Tag::Name).is_some() {
            return Err(err("tag name given twice".into()));
        }
        Regex::new(regex).map_err(|e| err(format!("invalid regex for name: {e}")))?;
        let (source, anchored) = match anchoring {
            Anchoring::Whole => (regex.to_string(), format!("^(?:{regex})$")),
            Anchoring::Start => (format!("(?:{regex}).*"), format!("^(?:{regex})")),
        };
        let re = Regex::new(&anchored).map_err(|e| err(format!("invalid regex for name: {e}")))?;
        self.terms.push(Term::new(Tag::Name, source, re, anchoring));
        Ok(self)
    }

    fn term(&self, tag: Tag) -> Option<&Term> {
        self.terms.iter().find(|t| t.tag == tag)
    }

    fn matches_tag(&self, tag: Tag, value: &str) -> bool {
        self.term(tag).is_none_or(|t| t.is_match(value))
    }

    /// Whether an object matches every term.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        self.matches_tag(Tag::Dc, key.pool.dc.as_str())
            && self.matches_tag(Tag::Cluster, key.pool.cluster.as_str())
            && self.matches_tag(Tag::Service, key.pool.service.as_str())
            && self.matches_tag(Tag::Name, key.node.as_str())
    }

    /// The one node name the `name` term spells out, if it is written as a plain host name
    /// (`name=mw1018.eqiad.wmnet`, or with `\.` escapes): letters, digits, `.`, `_`, `-`
    /// and escaped punctuation only. An unescaped `.` is taken as the dot people mean in a
    /// host name; [`Selector::names_exactly`] checks that an object's name really is this.
    pub fn exact_name(&self) -> Option<String> {
        let term = self.term(Tag::Name)?;
        let mut out = String::new();
        let mut chars = term.source.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) if e.is_ascii_punctuation() => out.push(e),
                    _ => return None,
                },
                c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => out.push(c),
                _ => return None,
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Whether this selector names `node` exactly (see [`Selector::exact_name`]) rather
    /// than matching it by a pattern.
    pub fn names_exactly(&self, node: &str) -> bool {
        self.exact_name().is_some_and(|n| n == node)
    }

    /// Whether every object of a pool that has one match matches too: no `name` term, or
    /// `name=.*` (the other terms are about the pool, which its objects share).
    ///
    /// ```
    /// use conftool_model::Selector;
    /// assert!("dc=eqiad,cluster=appservers".parse::<Selector>()?.selects_whole_pools());
    /// assert!("service=apache,name=.*".parse::<Selector>()?.selects_whole_pools());
    /// assert!(!"dc=eqiad,name=mw1.*".parse::<Selector>()?.selects_whole_pools());
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    pub fn selects_whole_pools(&self) -> bool {
        self.term(Tag::Name).is_none_or(|t| t.source == ".*")
    }

    /// Whether a node name matches the `name` term (true if there is none).
    pub fn matches_name(&self, name: &str) -> bool {
        self.matches_tag(Tag::Name, name)
    }

    /// The narrowest etcd prefix that holds every match: leading literal `dc`, `cluster`,
    /// `service` values become path segments.
    ///
    /// ```
    /// use conftool_model::{Keyspace, Selector};
    /// let ks = Keyspace::default();
    /// let sel: Selector = "dc=eqiad,cluster=appservers,name=mw.*".parse().unwrap();
    /// assert_eq!(sel.prefix(&ks), "/v1/pools/eqiad/appservers/");
    /// let sel: Selector = "dc=eq.*,cluster=appservers".parse().unwrap();
    /// assert_eq!(sel.prefix(&ks), "/v1/pools/");
    /// ```
    pub fn prefix(&self, ks: &Keyspace) -> String {
        let lit = |tag| self.term(tag).and_then(Term::literal);
        let dc: Option<Datacenter> = lit(Tag::Dc).and_then(|s| s.parse().ok());
        let cluster: Option<Cluster> = lit(Tag::Cluster).and_then(|s| s.parse().ok());
        let service: Option<Service> = lit(Tag::Service).and_then(|s| s.parse().ok());
        ks.pools_prefix_for(dc.as_ref(), cluster.as_ref(), service.as_ref())
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(input: &str) -> Result<Selector, Error> {
        let err = |reason: String| Error::Selector {
            input: input.to_string(),
            reason,
        };
        if input.trim().is_empty() {
            return Err(err(
                "empty selector; use e.g. 'name=.*' to select everything".into(),
            ));
        }
        let mut terms: Vec<Term> = Vec::new();
        for part in split_terms(input) {
            let (tag, value) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{part:?} is not tag=regex")))?;
            let tag = Tag::parse(tag.trim()).ok_or_else(|| {
                err(format!(
                    "unknown tag {tag:?}; tags are dc, cluster, service, name"
                ))
            })?;
            if terms.iter().any(|t| t.tag == tag) {
                return Err(err(format!("tag {} given twice", tag.as_str())));
            }
            let re = Regex::new(&format!("^(?:{value})$"))
                .map_err(|e| err(format!("invalid regex for {}: {e}", tag.as_str())))?;
            terms.push(Term::new(tag, value.to_string(), re, Anchoring::Whole));
        }
        Ok(Selector { terms })
    }
}

/// Split at commas that start a new `tag=` term.
fn split_terms(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in input.match_indices(',') {
        let rest = &input[i + 1..];
        let starts_term = rest
            .split_once('=')
            .is_some_and(|(t, _)| !t.contains(',') && t.bytes().all(|b| b.is_ascii_alphabetic()));
        if starts_term && i >= start {
            parts.push(&input[start..i]);
            start = i + 1;
        }
    }
    parts.push(&input[start..]);
    parts
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", t.tag.as_str(), t.source)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classify as _;

    #[test]
    fn exact_name_is_a_plain_host_name_only() {
        let exact = |s: &str| s.parse::<Selector>().unwrap().exact_name();
        assert_eq!(
            exact("name=mw1018.eqiad.wmnet").as_deref(),
            Some("mw1018.eqiad.wmnet")
        );
        assert_eq!(
            exact("dc=eqiad,name=mw1018\\.eqiad").as_deref(),
            Some("mw1018.eqiad")
        );
        assert_eq!(exact("name=cp-1_2").as_deref(), Some("cp-1_2"));
        for pattern in [
            "name=mw10.*",
            "name=mw1018|mw1019",
            "name=mw10[12]8",
            "name=mw\\d+",
            "name=mw\\d",
        ] {
            assert_eq!(exact(pattern), None, "{pattern}");
        }
        assert_eq!(exact("dc=eqiad"), None);
        let sel: Selector = "name=mw101.".parse().unwrap();
        assert!(sel.names_exactly("mw101."));
        assert!(
            !sel.names_exactly("mw1018"),
            "a dot that matched a digit is not exact"
        );
    }

    fn key(dc: &str, cluster: &str, service: &str, node: &str) -> ObjectKey {
        ObjectKey::new(
            dc.parse().unwrap(),
            cluster.parse().unwrap(),
            service.parse().unwrap(),
            node.parse().unwrap(),
        )
    }

    #[test]
    fn anchored_matching() {
        let sel: Selector = "dc=eqiad,name=mw10.*".parse().unwrap();
        assert!(sel.matches(&key("eqiad", "appservers", "apache", "mw1018")));
        assert!(!sel.matches(&key("codfw", "appservers", "apache", "mw1018")));
        assert!(!sel.matches(&key("eqiad", "appservers", "apache", "xmw1018")));
        let exact: Selector = "name=mw101".parse().unwrap();
        assert!(!exact.matches(&key("eqiad", "a", "b", "mw1018")));
        assert!(exact.matches(&key("eqiad", "a", "b", "mw101")));
        // An alternation must not escape the anchors.
        let alt: Selector = "name=mw1|mw2".parse().unwrap();
        assert!(!alt.matches(&key("eqiad", "a", "b", "mw1x")));
        assert!(alt.matches(&key("eqiad", "a", "b", "mw2")));
    }

    #[test]
    fn commas_inside_regexes() {
        let sel: Selector = "name=mw10{1,2}8,service=apache".parse().unwrap();
        assert_eq!(sel.terms.len(), 2);
        assert!(
            sel.matches(&key("eqiad", "a", "apache", "mw1008"))
                && !sel.matches(&key("eqiad", "a", "apache", "mw10008"))
        );
        assert_eq!(sel.to_string(), "name=mw10{1,2}8,service=apache");
    }

    #[test]
    fn errors_are_clear() {
        for (input, want) in [
            ("", "empty selector"),
            ("name", "is not tag=regex"),
            ("host=mw1", "unknown tag \"host\""),
            ("name=(", "invalid regex for name"),
            ("name=a,name=b", "given twice"),
        ] {
            let e = input.parse::<Selector>().unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn the_literal_prefix_stops_at_any_regex_meaning() {
        let ks = Keyspace::default();
        let prefix = |s: &str| s.parse::<Selector>().unwrap().prefix(&ks);
        // Literal dc, cluster and service narrow the read, in that order only.
        assert_eq!(
            prefix("dc=eqiad,cluster=appservers,service=apache"),
            "/v1/pools/eqiad/appservers/apache/"
        );
        assert_eq!(prefix("service=apache,dc=eqiad"), "/v1/pools/eqiad/");
        assert_eq!(prefix("cluster=appservers"), "/v1/pools/");
        // `.` is a name character but a regex wildcard: `eqia.` matches `eqiax` too.
        assert_eq!(prefix("dc=eqia.,cluster=appservers"), "/v1/pools/");
        // An escape that is not punctuation is a class (`\d`), not a literal.
        assert_eq!(prefix("dc=eqia\\d"), "/v1/pools/");
        // An escaped dot is a literal dot.
        assert_eq!(prefix("dc=eq\\.iad"), "/v1/pools/eq.iad/");
        assert_eq!(prefix("dc=eqiad|codfw"), "/v1/pools/");
        assert_eq!(prefix("dc=eqiad,cluster=app.*"), "/v1/pools/eqiad/");
        // A trailing backslash is no literal either.
        assert!("dc=eqiad\\".parse::<Selector>().is_err());
        assert_eq!(prefix("name=mw1018"), "/v1/pools/");
    }

    #[test]
    fn matches_name_is_the_name_term_alone() {
        let sel: Selector = "dc=codfw,name=mw10.8".parse().unwrap();
        assert!(sel.matches_name("mw1018"));
        assert!(!sel.matches_name("mw10188"));
        assert!(!sel.matches_name("xmw1018"));
        let no_name: Selector = "dc=codfw".parse().unwrap();
        assert!(no_name.matches_name("anything"));
    }

    #[test]
    fn a_comma_starts_a_term_only_before_a_tag_name() {
        // `,2}` and `,x=...` where x is not alphabetic stay inside the regex.
        let sel: Selector = "name=mw(1,2),service=apache".parse().unwrap();
        assert_eq!(sel.terms.len(), 2);
        let sel: Selector = "name=a,1=b".parse().unwrap();
        assert_eq!(sel.terms.len(), 1, "{sel}");
        assert!(sel.matches_name("a,1=b"));
        let sel: Selector = "name=a,b,c".parse().unwrap();
        assert_eq!(sel.terms.len(), 1);
        assert!(sel.matches_name("a,b,c"));
    }

    #[test]
    fn name_terms_added_whole_keep_commas_and_refuse_a_second_name() {
        let pool: Selector = "dc=eqiad,cluster=a,service=b".parse().unwrap();
        let sel = pool
            .clone()
            .with_name_regex("x,dc=y", Anchoring::Whole)
            .unwrap();
        assert!(sel.matches_name("x,dc=y") && !sel.matches_name("x"));
        let start = pool
            .clone()
            .with_name_regex("mw1|mw2", Anchoring::Start)
            .unwrap();
        assert!(start.matches(&key("eqiad", "a", "b", "mw2x")));
        assert!(!start.matches(&key("eqiad", "a", "b", "xmw2")));
        assert!(!start.matches(&key("codfw", "a", "b", "mw2")));
        assert_eq!(start.exact_name(), None, "a pattern is never an exact name");
        let named: Selector = "name=a".parse().unwrap();
        let e = named.with_name_regex("b", Anchoring::Whole).unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
        let e = pool.with_name_regex("(", Anchoring::Start).unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("invalid regex for name"));
    }

    #[test]
    fn a_term_that_spells_out_one_value_matches_as_its_regex_does() {
        let values = [
            "mw1018",
            "mw1018.eqiad.wmnet",
            "mw1018xeqiad",
            "mw101",
            "mw10188",
            "MW1018",
            "a-b_c",
            "a.b",
            "ab",
            "",
            "mw1018\n",
        ];
        for source in [
            "mw1018",
            r"mw1018\.eqiad\.wmnet",
            "a-b_c",
            r"a\.b",
            "mw10.",
            "a|b",
        ] {
            let sel: Selector = format!("name={source}").parse().unwrap();
            let term = sel.term(Tag::Name).unwrap();
            assert_eq!(
                term.exact.is_some(),
                !source.ends_with('.') && !source.contains('|')
            );
            for v in values {
                assert_eq!(term.is_match(v), term.re.is_match(v), "{source} on {v:?}");
            }
        }
        // Matched from the start only: not compared whole.
        let start = Selector::any()
            .with_name_regex("mw10", Anchoring::Start)
            .unwrap();
        let term = start.term(Tag::Name).unwrap();
        assert!(term.exact.is_none() && term.is_match("mw1018"));
        let whole = Selector::any()
            .with_name_regex("mw10", Anchoring::Whole)
            .unwrap();
        let term = whole.term(Tag::Name).unwrap();
        assert_eq!(term.exact.as_deref(), Some("mw10"));
        assert!(term.is_match("mw10") && !term.is_match("mw1018"));
    }

    #[test]
    fn node_selectors_escape_regex() {
        let sel = Selector::for_node(
            &"mw1018.eqiad.wmnet".parse().unwrap(),
            Some(&"apache".parse().unwrap()),
        )
        .unwrap();
        assert!(sel.matches(&key("eqiad", "a", "apache", "mw1018.eqiad.wmnet")));
        assert!(!sel.matches(&key("eqiad", "a", "apache", "mw1018xeqiadxwmnet")));
        let pool = Selector::for_pool(&PoolKey {
            dc: "eqiad".parse().unwrap(),
            cluster: "cache_text".parse().unwrap(),
            service: "varnish-fe".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(
            pool.prefix(&Keyspace::default()),
            "/v1/pools/eqiad/cache_text/varnish-fe/"
        );
    }
}
