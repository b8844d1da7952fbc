//! Safety limits checked before a plan is applied.
//!
//! The Python conftool deletes everything when handed an empty directory. Here a plan that
//! would delete more than a share of the objects, or delete objects that are serving
//! (`pooled: yes`), is refused unless explicitly allowed.

use crate::error::Error;
use crate::plan::Plan;
use crate::render::counted;

/// What a sync may do without being told explicitly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest share (0.0..=1.0) of the existing objects one run may delete.
    pub max_delete_share: f64,
    /// Whether objects that are `pooled: yes` may be deleted.
    pub allow_delete_pooled: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_delete_share: 0.25,
            allow_delete_pooled: false,
        }
    }
}

impl Plan {
    /// Refuse the plan if it breaks a limit. Nothing has been written when this fails.
    pub fn guard(&self, limits: &Limits) -> Result<(), Error> {
        let deleting = self.delete.len();
        if deleting > 0 && self.existing > 0 {
            let share = deleting as f64 / self.existing as f64;
            if share > limits.max_delete_share {
                return Err(Error::Refused(format!(
                    "it would delete {deleting} of {} ({:.0}%), more than the allowed {:.0}%; \
                     check the directory, or raise --max-delete-share if this is intended",
                    counted(self.existing, "object", "objects"),
                    share * 100.0,
                    limits.max_delete_share * 100.0
                )));
            }
        }
        let pooled = self.pooled_deletions();
        if !pooled.is_empty() && !limits.allow_delete_pooled {
            let mut names: Vec<String> =
                pooled.iter().take(10).map(|d| d.key.to_string()).collect();
            if pooled.len() > 10 {
                names.push(format!("and {} more", pooled.len() - 10));
            }
            let (them, are) = if pooled.len() == 1 {
                ("it", "object that is")
            } else {
                ("them", "objects that are")
            };
            return Err(Error::Refused(format!(
                "it would delete {} {are} pooled=yes (serving traffic): {}; \
                 depool {them} first, or pass --allow-delete-pooled",
                pooled.len(),
                names.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Deletion;

    fn raw_deletion(node: &str, old: &str) -> Deletion {
        Deletion {
            old: old.to_string(),
            ..deletion(node, "no")
        }
    }

    #[test]
    fn unreadable_values_count_as_pooled() {
        let plan = Plan {
            delete: vec![
                raw_deletion("weightless-yes", r#"{"pooled":"yes"}"#),
                raw_deletion("string-weight", r#"{"pooled":"yes","weight":"10"}"#),
                raw_deletion("not-json", "garbage"),
                raw_deletion("no-pooled-field", r#"{"weight":1}"#),
                raw_deletion("weightless-no", r#"{"pooled":"no"}"#),
                raw_deletion("bool-false", r#"{"pooled":false,"weight":"x"}"#),
                raw_deletion("inactive", r#"{"pooled":"inactive","weight":0,"new":1}"#),
            ],
            existing: 100,
            ..Plan::default()
        };
        let names: Vec<String> = plan
            .pooled_deletions()
            .iter()
            .map(|d| d.key.node.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "weightless-yes",
                "string-weight",
                "not-json",
                "no-pooled-field"
            ]
        );
    }

    fn deletion(node: &str, pooled: &str) -> Deletion {
        Deletion {
            key: conftool_core::ObjectKey::new(
                "eqiad".parse().unwrap(),
                "c".parse().unwrap(),
                "s".parse().unwrap(),
                node.parse().unwrap(),
            ),
            mod_revision: 1,
            old: format!(r#"{{"pooled":"{pooled}","weight":1}}"#),
        }
    }

    #[test]
    fn refuses_mass_deletion_unless_allowed() {
        let plan = Plan {
            delete: (0..3).map(|i| deletion(&format!("n{i}"), "no")).collect(),
            existing: 10,
            ..Plan::default()
        };
        let err = plan.guard(&Limits::default()).unwrap_err().to_string();
        assert!(err.contains("delete 3 of 10 objects (30%)"), "{err}");
        let lenient = Limits {
            max_delete_share: 0.3,
            ..Limits::default()
        };
        assert!(plan.guard(&lenient).is_ok());
        let last = Plan {
            delete: vec![deletion("n0", "no")],
            existing: 1,
            ..Plan::default()
        };
        let err = last.guard(&Limits::default()).unwrap_err().to_string();
        assert!(err.contains("delete 1 of 1 object (100%)"), "{err}");
    }

    #[test]
    fn refuses_deleting_pooled_objects_unless_allowed() {
        let plan = Plan {
            delete: vec![deletion("n1", "yes"), deletion("n2", "inactive")],
            existing: 100,
            ..Plan::default()
        };
        let err = plan.guard(&Limits::default()).unwrap_err().to_string();
        assert!(err.contains("eqiad/c/s/n1") && !err.contains("n2"), "{err}");
        assert!(
            err.contains("delete 1 object that is pooled=yes") && err.contains("depool it first"),
            "{err}"
        );
        let two = Plan {
            delete: vec![deletion("n1", "yes"), deletion("n2", "yes")],
            ..plan.clone()
        };
        let err = two.guard(&Limits::default()).unwrap_err().to_string();
        assert!(
            err.contains("delete 2 objects that are pooled=yes")
                && err.contains("depool them first"),
            "{err}"
        );
        let allow = Limits {
            allow_delete_pooled: true,
            ..Limits::default()
        };
        assert!(plan.guard(&allow).is_ok());
    }
}
