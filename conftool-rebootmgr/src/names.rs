//! The coordinator's own names: a reboot group ([`GroupName`]) and a health check
//! ([`CheckName`]). Both are path-safe as conftool's names are (letters, digits, `.`, `_`,
//! `-`; one etcd key segment each), validated when parsed and when read from YAML.

use std::fmt;
use std::str::FromStr;

use conftool_core::validate_name;
use conftool_core::NameError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! name {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                validate_name($kind, s)?;
                Ok($ty(s.to_string()))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

name!(
    /// A reboot group: the nodes that share one semaphore of reboot slots, and whose
    /// health checks are judged together (`min_passing`, `max_failing`).
    ///
    /// ```
    /// use conftool_rebootmgr::GroupName;
    /// assert_eq!("controllers-eqiad".parse::<GroupName>()?.as_str(), "controllers-eqiad");
    /// assert!("a/b".parse::<GroupName>().is_err());
    /// # Ok::<(), conftool_core::NameError>(())
    /// ```
    GroupName,
    "group"
);

name!(
    /// A health check's name (`galera`, `dkms`): how the group's reports refer to it.
    CheckName,
    "check"
);
