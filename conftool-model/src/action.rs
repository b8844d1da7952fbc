//! Actions on selected objects: `get`, `set/pooled=no:weight=5`, `delete`, and the [`Edit`]
//! that a write action makes to one object's state.
//!
//! ```
//! use conftool_model::{Action, Pooled, Weight};
//! let a: Action = "set/pooled=no:weight=5".parse().unwrap();
//! assert_eq!(a.to_string(), "set/pooled=no:weight=5");
//! assert!("set/color=red".parse::<Action>().is_err());
//! assert!("get".parse::<Action>().is_ok() && "delete".parse::<Action>().is_ok());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::model::{PoolState, Pooled, Weight};

/// Fields to set; unset fields are left as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetFields {
    /// New pooled state.
    pub pooled: Option<Pooled>,
    /// New weight.
    pub weight: Option<Weight>,
}

impl SetFields {
    /// Parse `pooled=no:weight=5` (`pool` is accepted for `pooled`, as in the seed syntax).
    pub fn parse(input: &str, whole: &str) -> Result<SetFields, Error> {
        let err = |reason: String| Error::Action {
            input: whole.to_string(),
            reason,
        };
        let mut f = SetFields::default();
        if input.trim().is_empty() {
            return Err(err(
                "nothing to set; expected e.g. pooled=no:weight=5".into()
            ));
        }
        for part in input.split(':') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{part:?} is not field=value")))?;
            match k.trim() {
                "pooled" | "pool" => {
                    if f.pooled.is_some() {
                        return Err(err("pooled given twice".into()));
                    }
                    f.pooled = Some(v.trim().parse().map_err(|_| {
                        err(format!("pooled must be yes, no or inactive, not {v:?}"))
                    })?);
                }
                "weight" => {
                    if f.weight.is_some() {
                        return Err(err("weight given twice".into()));
                    }
                    f.weight = Some(v.trim().parse().map_err(|_| {
                        err(format!(
                            "weight must be an integer from 0 to 65535, not {v:?}"
                        ))
                    })?);
                }
                other => {
                    return Err(err(format!(
                        "unknown field {other:?}; fields are pooled and weight"
                    )))
                }
            }
        }
        Ok(f)
    }
}

impl fmt::Display for SetFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.pooled {
            parts.push(format!("pooled={p}"));
        }
        if let Some(w) = self.weight {
            parts.push(format!("weight={w}"));
        }
        f.write_str(&parts.join(":"))
    }
}

/// What `confctl select SELECTOR ACTION` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Print the selected objects.
    Get,
    /// Change fields of the selected objects.
    Set(SetFields),
    /// Delete the selected objects.
    Delete,
}

impl FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Action, Error> {
        match s {
            "get" => Ok(Action::Get),
            "delete" => Ok(Action::Delete),
            _ => match s.strip_prefix("set/") {
                Some(fields) => Ok(Action::Set(SetFields::parse(fields, s)?)),
                None => Err(Error::Action {
                    input: s.to_string(),
                    reason: "expected get, delete or set/field=value[:field=value]".into(),
                }),
            },
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Get => f.write_str("get"),
            Action::Delete => f.write_str("delete"),
            Action::Set(fields) => write!(f, "set/{fields}"),
        }
    }
}

/// A write to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Set these fields.
    Set(SetFields),
    /// Delete the object.
    Delete,
}

/// The result of an edit on a state: `None` if it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Store this state.
    Put(PoolState),
    /// Delete the key.
    Delete,
}

impl Edit {
    /// Apply to `before`; `None` when the object is already in the requested state (so it is
    /// not rewritten).
    pub fn apply(&self, before: &PoolState) -> Option<Outcome> {
        match self {
            Edit::Delete => Some(Outcome::Delete),
            Edit::Set(f) => {
                let mut after = before.clone();
                if let Some(p) = f.pooled {
                    after.pooled = p;
                }
                if let Some(w) = f.weight {
                    after.weight = w;
                }
                (after != *before).then_some(Outcome::Put(after))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classify as _;

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "get",
            "delete",
            "set/pooled=no",
            "set/weight=0",
            "set/pooled=inactive:weight=65535",
        ] {
            assert_eq!(s.parse::<Action>().unwrap().to_string(), s);
        }
        let a: Action = "set/pool=yes".parse().unwrap();
        assert_eq!(a.to_string(), "set/pooled=yes");
    }

    #[test]
    fn rejects_bad_actions() {
        for (s, want) in [
            ("put", "expected get, delete or set"),
            ("set/", "nothing to set"),
            ("set/pooled", "is not field=value"),
            ("set/pooled=maybe", "pooled must be"),
            ("set/weight=-1", "weight must be"),
            ("set/weight=70000", "weight must be"),
            ("set/weight=ten", "weight must be"),
            ("set/colour=red", "unknown field"),
            ("set/pooled=no:pooled=yes", "given twice"),
            ("GET", "expected get"),
        ] {
            let e = s.parse::<Action>().unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn edits_skip_no_ops_and_keep_other_fields() {
        let mut before = PoolState::new(Pooled::Yes, Weight(10));
        before.extra.insert("note".into(), "x".into());
        let same = Edit::Set(SetFields {
            pooled: Some(Pooled::Yes),
            weight: None,
        });
        assert_eq!(same.apply(&before), None);
        let depool = Edit::Set(SetFields {
            pooled: Some(Pooled::No),
            weight: None,
        });
        match depool.apply(&before) {
            Some(Outcome::Put(after)) => {
                assert_eq!((after.pooled, after.weight), (Pooled::No, Weight(10)));
                assert_eq!(after.extra["note"], "x");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Edit::Delete.apply(&before), Some(Outcome::Delete));
    }
}
