//! Validated, path-safe names: [`Datacenter`], [`Cluster`], [`Service`], [`NodeName`].
//!
//! A name is 1 to 253 characters of ASCII letters, digits, `.`, `_` and `-`, and is neither
//! `.` nor `..`. That keeps every name usable as one etcd key segment and as a file name.
//! Each type validates in [`FromStr`] and in its `Deserialize`, so an invalid name in a YAML
//! file fails where it is read, with its line.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::NameError;

/// The longest name accepted (a DNS name's limit).
pub const MAX_NAME_LEN: usize = 253;

/// Check that `s` is a path-safe name; `kind` names what it is for the error message.
pub fn validate_name(kind: &'static str, s: &str) -> Result<(), NameError> {
    let reason = if s.is_empty() {
        "is empty"
    } else if s.len() > MAX_NAME_LEN {
        "is longer than 253 characters"
    } else if s == "." || s == ".." {
        "is a relative path component"
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "may only contain letters, digits, '.', '_' and '-'"
    } else {
        return Ok(());
    };
    Err(NameError {
        kind,
        name: s.to_string(),
        reason,
    })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        // Shared, not owned: a fleet's keys repeat the same few datacenter, cluster and
        // service names (and each node's name once per service), so a clone is a count, not
        // a copy; 16 bytes instead of a String's 24 plus its own allocation.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(Arc<str>);

        impl $ty {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                validate_name($kind, s)?;
                Ok(Self(Arc::from(s)))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                validate_name($kind, &s)?;
                Ok(Self(Arc::from(s)))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Hash, Eq and Ord are the string's, so a set of names can be searched by `&str`
        // (to share one name among many keys; see conftool-sync's `Current::from_snapshot`).
        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Validate inside the visitor, so a YAML error points at the scalar itself.
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a {} name", $kind)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

name_type!(
    /// A datacenter, e.g. `eqiad`.
    Datacenter,
    "datacenter"
);
name_type!(
    /// A cluster, e.g. `cache_text`.
    Cluster,
    "cluster"
);
name_type!(
    /// A service within a cluster, e.g. `varnish-fe`.
    Service,
    "service"
);
name_type!(
    /// A node (host), e.g. `cp1052` or `mw1018.eqiad.wmnet`.
    NodeName,
    "node"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_path_safe_names() {
        for ok in [
            "eqiad",
            "cache_text",
            "varnish-fe",
            "mw1018.eqiad.wmnet",
            "a",
            "..a",
            "_",
        ] {
            assert!(ok.parse::<NodeName>().is_ok(), "{ok}");
        }
        assert!("x".repeat(253).parse::<Cluster>().is_ok());
    }

    #[test]
    fn rejects_unsafe_names() {
        for (bad, why) in [
            ("", "empty"),
            (".", "relative"),
            ("..", "relative"),
            ("a/b", "may only"),
            ("a b", "may only"),
            ("naïve", "may only"),
            ("a\nb", "may only"),
        ] {
            let err = bad.parse::<Service>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.starts_with("invalid service name"), "{err}");
        }
        assert!("x".repeat(254).parse::<Datacenter>().is_err());
    }
}
