//! Safety limits checked before a plan is applied.
//!
//! The Python conftool deletes everything when handed an empty directory. Here a plan that
//! would delete too much is refused (nothing written, exit 2) unless explicitly allowed. The
//! guard covers every kind of key a sync deletes: objects and service definitions (the sync
//! record is only ever written, never deleted).
//!
//! - **Objects**: more than [`Limits::max_delete_share`] of the existing objects
//!   (`--max-delete-share`), or any object that is (or may be) `pooled: yes`
//!   (`--allow-delete-pooled`).
//! - **Service definitions**: more than the same share of the existing definitions
//!   (`--max-delete-share`; one flag, because one mistake, an emptied or lost
//!   `services.yaml`, is what both limits are for); and, with no override, any definition
//!   that objects the directory declares still use (they would be left without a port and
//!   defaults, and `confctl` could no longer find them by host).
//! - **Node labels** are not guarded, nor counted in the objects' share: they carry no
//!   traffic (see [`crate::labels`]).
//! - A directory without `services.yaml` (the Python layout allows one) does not manage
//!   service definitions at all ([`crate::ServiceDefs::Unmanaged`]): the plan neither writes
//!   nor deletes them, so there is nothing to guard.
//!
//! Refusals name what they would delete: the first 10, then "and N more".

use crate::error::Error;
use crate::plan::Plan;
use crate::render::counted;

/// What a sync may do without being told explicitly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest share (0.0..=1.0) of the existing objects, and of the existing service
    /// definitions, one run may delete.
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

/// How many names a refusal lists before "and N more".
const NAMED: usize = 10;

/// `a, b, c`, or the first [`NAMED`] and `and N more`.
fn listed(names: impl ExactSizeIterator<Item = String>) -> String {
    let total = names.len();
    let mut shown: Vec<String> = names.take(NAMED).collect();
    if total > NAMED {
        shown.push(format!("and {} more", total - NAMED));
    }
    shown.join(", ")
}

/// `deleting` of `existing` as a share, if it is more than `max`.
fn over_share(deleting: usize, existing: usize, max: f64) -> Option<f64> {
    if deleting == 0 || existing == 0 {
        return None;
    }
    let share = deleting as f64 / existing as f64;
    (share > max).then_some(share)
}

/// Why a sync is refused: what it would delete past a limit. Nothing has been written.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Refusal {
    /// More than the allowed share of the existing objects (of one schema-defined type
    /// when `of_type` is set).
    ObjectShare {
        /// The schema type, or `None` for pool objects.
        of_type: Option<String>,
        /// How many it would delete.
        deleting: usize,
        /// How many exist.
        existing: usize,
        /// The allowed share, 0.0..=1.0.
        allowed: f64,
    },
    /// Objects that are (or may be) `pooled: yes`: their keys.
    Pooled {
        /// The keys it would delete.
        keys: Vec<String>,
    },
    /// Service definitions that objects declared in the directory still use:
    /// `cluster/service` and how many objects use each.
    ServicesInUse {
        /// Each definition and its objects.
        services: Vec<(String, usize)>,
    },
    /// More than the allowed share of the existing service definitions.
    ServiceShare {
        /// The definitions it would delete, `cluster/service`.
        deleting: Vec<String>,
        /// How many exist.
        existing: usize,
        /// The allowed share, 0.0..=1.0.
        allowed: f64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |part: usize, whole: usize| part as f64 / whole as f64 * 100.0;
        match self {
            Refusal::ObjectShare {
                of_type,
                deleting,
                existing,
                allowed,
            } => write!(
                f,
                "it would delete {deleting} of {}{} ({:.0}%), more than the allowed {:.0}%; \
                 check the directory, or raise --max-delete-share if this is intended",
                counted(*existing, "object", "objects"),
                of_type
                    .as_ref()
                    .map_or(String::new(), |t| format!(" of type {t}")),
                pct(*deleting, *existing),
                allowed * 100.0
            ),
            Refusal::Pooled { keys } => {
                let (them, are) = if keys.len() == 1 {
                    ("it", "object that is")
                } else {
                    ("them", "objects that are")
                };
                write!(
                    f,
                    "it would delete {} {are} pooled=yes (serving traffic): {}; depool {them} \
                     first, or pass --allow-delete-pooled",
                    keys.len(),
                    listed(keys.iter().cloned())
                )
            }
            Refusal::ServicesInUse { services } => write!(
                f,
                "it would delete {} that objects declared in the directory still use: {}; \
                 define {} in services.yaml, or remove those objects",
                counted(services.len(), "service definition", "service definitions"),
                listed(services.iter().map(|(name, objects)| {
                    format!("{name} ({})", counted(*objects, "object", "objects"))
                })),
                if services.len() == 1 { "it" } else { "them" }
            ),
            Refusal::ServiceShare {
                deleting,
                existing,
                allowed,
            } => write!(
                f,
                "it would delete {} of {} ({:.0}%), more than the allowed {:.0}%: {}; check \
                 services.yaml, or raise --max-delete-share if this is intended",
                deleting.len(),
                counted(*existing, "service definition", "service definitions"),
                pct(deleting.len(), *existing),
                allowed * 100.0,
                listed(deleting.iter().cloned())
            ),
        }
    }
}

impl Plan {
    /// Refuse the plan if it breaks a limit. Nothing has been written when this fails.
    pub fn guard(&self, limits: &Limits) -> Result<(), Error> {
        let allowed = limits.max_delete_share;
        for t in &self.typed {
            let deleting = t.delete.len();
            if over_share(deleting, t.existing, allowed).is_some() {
                return Err(Error::Refused(Refusal::ObjectShare {
                    of_type: Some(t.ty.name.to_string()),
                    deleting,
                    existing: t.existing,
                    allowed,
                }));
            }
        }
        let deleting = self.delete.len();
        if over_share(deleting, self.existing, allowed).is_some() {
            return Err(Error::Refused(Refusal::ObjectShare {
                of_type: None,
                deleting,
                existing: self.existing,
                allowed,
            }));
        }
        let pooled = self.pooled_deletions();
        if !pooled.is_empty() && !limits.allow_delete_pooled {
            return Err(Error::Refused(Refusal::Pooled {
                keys: pooled.iter().map(|d| d.key.to_string()).collect(),
            }));
        }
        if !self.deleted_in_use.is_empty() {
            return Err(Error::Refused(Refusal::ServicesInUse {
                services: self
                    .deleted_in_use
                    .iter()
                    .map(|((c, s), objects)| (format!("{c}/{s}"), *objects))
                    .collect(),
            }));
        }
        let services = self.service_deletions();
        let existing = self.existing_services;
        if over_share(services.len(), existing, allowed).is_some() {
            return Err(Error::Refused(Refusal::ServiceShare {
                deleting: services.iter().map(|(c, s)| format!("{c}/{s}")).collect(),
                existing,
                allowed,
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_ten_then_say_how_many_more() {
        let names = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}"))
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(listed(names(2)), "k0, k1");
        let ten = listed(names(10));
        assert!(ten.ends_with("k9") && !ten.contains("more"), "{ten}");
        assert!(listed(names(11)).ends_with("k9, and 1 more"));
    }

    #[test]
    fn a_share_is_over_only_when_something_of_something_goes() {
        assert_eq!(over_share(0, 10, 0.0), None);
        assert_eq!(over_share(3, 0, 0.25), None);
        assert_eq!(over_share(0, 0, 0.25), None);
        assert_eq!(over_share(1, 4, 0.25), None);
        assert_eq!(over_share(2, 4, 0.25), Some(0.5));
    }
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

    fn service(cluster: &str, service: &str) -> (conftool_core::Cluster, conftool_core::Service) {
        (cluster.parse().unwrap(), service.parse().unwrap())
    }

    fn service_deletion(cluster: &str, name: &str) -> crate::ServiceChange {
        crate::ServiceChange {
            key: service(cluster, name),
            new: None,
            old: Some((1, r#"{"port":80}"#.into())),
        }
    }

    #[test]
    fn refuses_deleting_many_service_definitions_unless_the_share_is_raised() {
        let plan = Plan {
            services: (0..12)
                .map(|i| service_deletion("c", &format!("s{i:02}")))
                .collect(),
            existing_services: 40,
            existing: 100,
            ..Plan::default()
        };
        let err = plan.guard(&Limits::default()).unwrap_err().to_string();
        assert_eq!(
            err,
            "refusing to sync: it would delete 12 of 40 service definitions (30%), more than \
             the allowed 25%: c/s00, c/s01, c/s02, c/s03, c/s04, c/s05, c/s06, c/s07, c/s08, \
             c/s09, and 2 more; check services.yaml, or raise --max-delete-share if this is \
             intended"
        );
        let lenient = Limits {
            max_delete_share: 0.3,
            ..Limits::default()
        };
        assert!(plan.guard(&lenient).is_ok());
        // --allow-delete-pooled is about objects: it does not lift this.
        let pooled = Limits {
            allow_delete_pooled: true,
            ..Limits::default()
        };
        assert!(plan.guard(&pooled).is_err());
        // Written definitions are not deletions.
        let writes = Plan {
            services: vec![crate::ServiceChange {
                new: Some(conftool_core::ServiceDef {
                    port: 80,
                    default_values: conftool_core::Defaults::LEGACY,
                    depool_threshold: None,
                    min_pooled: None,
                }),
                old: None,
                ..service_deletion("c", "new")
            }],
            existing_services: 1,
            ..Plan::default()
        };
        assert!(writes.guard(&Limits::default()).is_ok());
    }

    #[test]
    fn refuses_deleting_service_definitions_still_in_use_whatever_the_limits() {
        let plan = Plan {
            services: vec![service_deletion("c", "a"), service_deletion("c", "b")],
            deleted_in_use: [(service("c", "a"), 3)].into_iter().collect(),
            existing_services: 2,
            ..Plan::default()
        };
        let none = Limits {
            max_delete_share: 1.0,
            allow_delete_pooled: true,
        };
        assert_eq!(
            plan.guard(&none).unwrap_err().to_string(),
            "refusing to sync: it would delete 1 service definition that objects declared in \
             the directory still use: c/a (3 objects); define it in services.yaml, or remove \
             those objects"
        );
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
