//! How service owners say their hosts are depooled (`depool-policy.yaml`): by conftool (the
//! default), by a command of theirs (`ssh {host} sudo depool`, with its `repool`
//! counterpart for when the operation ends), or by a person (`manual: "master DB: needs a
//! manual depool"`). A group depool (a rack) follows it host by host and ends with what still
//! needs a person, as in the rack-maintenance seed.
//!
//! ```yaml
//! # The first rule that matches a host wins; hosts no rule matches are depooled by conftool.
//! - hosts: 'db1[0-9]+\..*'        # a regex on the host name, anchored at both ends
//!   manual: "master DB: needs a manual depool"
//! - label: {role: lvs}            # every label given must match
//!   command: "ssh {host} sudo depool"
//!   repool: "ssh {host} sudo pool"
//!   timeout: 60s                  # default 30s
//! - hosts: 'mw.*'
//!   conftool: true
//! ```
//!
//! Parsing and matching are pure; reading the file and running commands are the caller's.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::names::NodeName;

/// How one host is depooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// By conftool: its objects in etcd.
    Conftool,
    /// By running a command (`{host}` replaced by the host's name), with its counterpart for
    /// when the operation ends.
    Command {
        /// What depools it.
        depool: String,
        /// What puts it back, if anything.
        repool: Option<String>,
        /// How long each may run.
        timeout: Duration,
    },
    /// By a person: the note says what to do.
    Manual(String),
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mechanism::Conftool => f.write_str("conftool"),
            Mechanism::Command { depool, .. } => write!(f, "command `{depool}`"),
            Mechanism::Manual(note) => write!(f, "manual: {note}"),
        }
    }
}

/// One rule: which hosts, and how.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A regex on the host name (anchored at both ends), if any.
    pub hosts: Option<regex::Regex>,
    /// Labels a host must all carry, if any.
    pub labels: BTreeMap<String, String>,
    /// How those hosts are depooled.
    pub mechanism: Mechanism,
}

/// A parsed policy: rules in order.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The rules; the first that matches a host wins.
    pub rules: Vec<Rule>,
}

/// A policy file that does not say a clear thing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .line { Some(l) => format!("line {l}: {}", .message), None => .message.clone() })]
pub struct PolicyError {
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong and what to change.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    hosts: Option<String>,
    label: Option<BTreeMap<String, String>>,
    conftool: Option<bool>,
    command: Option<String>,
    repool: Option<String>,
    manual: Option<String>,
    timeout: Option<String>,
}

/// The default time a policy command may run.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl Policy {
    /// Parse a policy file's text (a YAML list of rules).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: Vec<RawRule> = yaml_serde::from_str(text).map_err(|e| PolicyError {
            line: e.location().map(|l| l.line()),
            message: format!(
                "{}; a rule is one of `hosts:` (a regex) or `label:` (a map), or both, and \
                 one of `conftool: true`, `command: ...` (with `repool:` and `timeout:`) or \
                 `manual: ...`",
                strip_location(&e.to_string())
            ),
        })?;
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            rules.push(rule(i + 1, r)?);
        }
        Ok(Policy { rules })
    }

    /// How `host` (with its `labels`) is depooled.
    pub fn mechanism(&self, host: &NodeName, labels: &BTreeMap<String, String>) -> &Mechanism {
        self.rules
            .iter()
            .find(|r| {
                r.hosts.as_ref().is_none_or(|re| re.is_match(host.as_str()))
                    && r.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map_or(&Mechanism::Conftool, |r| &r.mechanism)
    }

    /// Whether any rule looks at labels (so they are worth reading).
    pub fn uses_labels(&self) -> bool {
        self.rules.iter().any(|r| !r.labels.is_empty())
    }
}

/// A yaml error's text without its ` at line L column C` (the line is given apart), and its
/// `.[N]: ` path said as `rule N+1: `.
fn strip_location(s: &str) -> String {
    let s = match s.find(" at line ") {
        Some(i) => &s[..i],
        None => s,
    };
    let rule = s
        .strip_prefix(".[")
        .and_then(|r| r.split_once("]: "))
        .and_then(|(n, rest)| Some((n.parse::<usize>().ok()? + 1, rest)));
    match rule {
        Some((n, rest)) => format!("rule {n}: {rest}"),
        None => s.to_string(),
    }
}

fn rule(n: usize, r: RawRule) -> Result<Rule, PolicyError> {
    let bad = |message: String| PolicyError {
        line: None,
        message: format!("rule {n}: {message}"),
    };
    let hosts = match &r.hosts {
        Some(re) => Some(
            regex::Regex::new(&format!("^(?:{re})$"))
                .map_err(|e| bad(format!("hosts: invalid regex {re:?}: {e}")))?,
        ),
        None => None,
    };
    let labels = r.label.unwrap_or_default();
    if hosts.is_none() && labels.is_empty() {
        return Err(bad(
            "says no hosts: give `hosts:` (a regex on the host name) or `label:`".into(),
        ));
    }
    let timeout = match &r.timeout {
        Some(t) => crate::config::parse_duration(t).map_err(|e| bad(format!("timeout: {e}")))?,
        None => DEFAULT_COMMAND_TIMEOUT,
    };
    let extras = r.repool.is_some() || r.timeout.is_some();
    let mechanism = match (r.conftool, r.command, r.manual) {
        (Some(true), None, None) => Mechanism::Conftool,
        (None, Some(depool), None) if !depool.trim().is_empty() => Mechanism::Command {
            depool,
            repool: r.repool,
            timeout,
        },
        (None, None, Some(note)) if !note.trim().is_empty() => Mechanism::Manual(note),
        (Some(false), None, None) => {
            return Err(bad(
                "`conftool: false` says how not to depool; say how: `command:` or `manual:`".into(),
            ))
        }
        (None, None, None) => {
            return Err(bad(
                "says no mechanism: give one of `conftool: true`, `command:` or `manual:`".into(),
            ))
        }
        _ => {
            return Err(bad(
                "gives several mechanisms (or an empty one): give exactly one of \
                 `conftool: true`, `command:` or `manual:`"
                    .into(),
            ))
        }
    };
    let not_command = !matches!(mechanism, Mechanism::Command { .. });
    if not_command && extras {
        return Err(bad(
            "`repool:` and `timeout:` go with `command:` only".into()
        ));
    }
    Ok(Rule {
        hosts,
        labels,
        mechanism,
    })
}

/// A command of the policy for `host`: `{host}` replaced by its name (a validated name:
/// letters, digits, `.`, `_`, `-`, so nothing a shell would interpret).
pub fn command_for(template: &str, host: &NodeName) -> String {
    template.replace("{host}", host.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
- hosts: 'db1[0-9]+\..*'
  manual: "master DB: needs a manual depool"
- label: {role: lvs}
  command: "ssh {host} sudo depool"
  repool: "ssh {host} sudo pool"
  timeout: 60s
- hosts: 'mw.*'
  label: {rack: B4}
  conftool: true
- hosts: 'mw.*'
  command: "true"
"#;

    fn host(n: &str) -> NodeName {
        n.parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_first_matching_rule_says_how() {
        let p = Policy::parse(EXAMPLE).unwrap();
        assert_eq!(p.rules.len(), 4);
        assert!(p.uses_labels());
        let none = labels(&[]);
        assert_eq!(
            p.mechanism(&host("db1001.eqiad.wmnet"), &none),
            &Mechanism::Manual("master DB: needs a manual depool".into())
        );
        // Anchored: db1 inside a name does not match.
        assert_eq!(
            p.mechanism(&host("xdb1001.eqiad.wmnet"), &none),
            &Mechanism::Conftool
        );
        assert_eq!(
            p.mechanism(&host("lvs1001"), &labels(&[("role", "lvs")])),
            &Mechanism::Command {
                depool: "ssh {host} sudo depool".into(),
                repool: Some("ssh {host} sudo pool".into()),
                timeout: Duration::from_secs(60),
            }
        );
        // Both a regex and labels must match.
        assert_eq!(
            p.mechanism(&host("mw1"), &labels(&[("rack", "B4"), ("row", "B")])),
            &Mechanism::Conftool
        );
        match p.mechanism(&host("mw1"), &labels(&[("rack", "C1")])) {
            Mechanism::Command {
                depool,
                repool,
                timeout,
            } => {
                assert_eq!(
                    (depool.as_str(), repool, *timeout),
                    ("true", &None, DEFAULT_COMMAND_TIMEOUT)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            command_for("ssh {host} sudo depool", &host("lvs1001")),
            "ssh lvs1001 sudo depool"
        );
        assert_eq!(
            Policy::default().mechanism(&host("a"), &none),
            &Mechanism::Conftool
        );
    }

    #[test]
    fn a_policy_that_says_nothing_clear_is_refused_with_what_to_change() {
        for (text, want) in [
            (
                "- hosts: 'a'\n  script: x\n",
                "rule 1: unknown field `script`",
            ),
            ("- hosts: 'a'\n  script: x\n", "line 2"),
            ("- hosts: 'a'\n", "rule 1: says no mechanism"),
            ("- manual: x\n", "rule 1: says no hosts"),
            (
                "- hosts: 'a'\n  manual: x\n  command: y\n",
                "gives several mechanisms",
            ),
            (
                "- hosts: 'a'\n  manual: ''\n",
                "gives several mechanisms (or an empty one)",
            ),
            ("- hosts: 'a'\n  conftool: false\n", "say how"),
            ("- hosts: '['\n  conftool: true\n", "hosts: invalid regex"),
            (
                "- hosts: 'a'\n  manual: x\n  repool: y\n",
                "go with `command:` only",
            ),
            (
                "- hosts: 'a'\n  command: x\n  timeout: soon\n",
                "rule 1: timeout: invalid duration",
            ),
            ("hosts: a\n", "a rule is one of"),
        ] {
            let e = Policy::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let d = Mechanism::Manual("x".into()).to_string();
        assert_eq!(d, "manual: x");
        assert_eq!(Mechanism::Conftool.to_string(), "conftool");
    }
}
