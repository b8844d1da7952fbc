//! [`LabelSelector`]: `label=value[,label=value...]`, every term must match.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::{LabelName, LabelValue, Labels};
use crate::error::Error;

/// Which nodes a group verb acts on: `rack=B4`, or `rack=B4,row=B` (all must match). Values
/// match exactly, never as patterns: a rack depool must reach the rack it names and no
/// other. There is no empty selector (it would match every host).
///
/// [`Display`](fmt::Display) is canonical (terms sorted by name), so it parses back to the
/// same selector:
///
/// ```
/// use conftool_model::{LabelSelector, Labels};
/// let sel: LabelSelector = "row=B,rack=B4".parse()?;
/// assert_eq!(sel.to_string(), "rack=B4,row=B");
/// assert_eq!(sel.to_string().parse::<LabelSelector>()?, sel);
///
/// let labels = |s: &str| -> Labels {
///     s.parse::<LabelSelector>().unwrap().terms().map(|(n, v)| (n.clone(), v.clone())).collect()
/// };
/// assert!(sel.matches(&labels("rack=B4,row=B,hypervisor=ganeti1021")));
/// assert!(!sel.matches(&labels("rack=B4")));          // row missing
/// assert!(!sel.matches(&labels("rack=B40,row=B")));   // exact values, not patterns
///
/// assert!("".parse::<LabelSelector>().is_err());
/// assert!("rack=B4,rack=B5".parse::<LabelSelector>().is_err());
/// assert!("rack=B.*".parse::<LabelSelector>().is_err());
/// # Ok::<(), conftool_model::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelSelector(BTreeMap<LabelName, LabelValue>);

impl LabelSelector {
    /// A selector of these terms; refused if there are none or a name repeats.
    pub fn new(
        terms: impl IntoIterator<Item = (LabelName, LabelValue)>,
    ) -> Result<LabelSelector, Error> {
        let mut map = BTreeMap::new();
        let mut shown = Vec::new();
        for (name, value) in terms {
            shown.push(format!("{name}={value}"));
            if map.contains_key(&name) {
                return Err(Error::Selector {
                    input: shown.join(","),
                    reason: format!("label {name} is given twice"),
                });
            }
            map.insert(name, value);
        }
        if map.is_empty() {
            return Err(Error::Selector {
                input: String::new(),
                reason: "empty: give at least one label=value (e.g. rack=B4)".into(),
            });
        }
        Ok(LabelSelector(map))
    }

    /// Whether a node with `labels` is selected: it has every label of the selector, with
    /// exactly its value.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|(n, v)| labels.get(n) == Some(v))
    }

    /// The terms, sorted by label name.
    pub fn terms(&self) -> impl Iterator<Item = (&LabelName, &LabelValue)> {
        self.0.iter()
    }
}

impl FromStr for LabelSelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<LabelSelector, Error> {
        let err = |reason: String| Error::Selector {
            input: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(err(
                "empty: give at least one label=value (e.g. rack=B4)".into()
            ));
        }
        let mut terms = Vec::new();
        for term in s.split(',') {
            let Some((name, value)) = term.split_once('=') else {
                return Err(err(if term.is_empty() {
                    "an empty term (a stray ',')".into()
                } else {
                    format!("{term:?} is not label=value")
                }));
            };
            let name: LabelName = name.parse().map_err(|e| err(format!("{e}")))?;
            let value: LabelValue = value.parse().map_err(|e| err(format!("{e}")))?;
            terms.push((name, value));
        }
        LabelSelector::new(terms).map_err(|e| match e {
            Error::Selector { reason, .. } => err(reason),
            other => other,
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}
