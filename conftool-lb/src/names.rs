//! HAProxy's names for backends ([`BackendName`]) and servers ([`ServerName`]), kept apart
//! from each other and from conftool's node names ([`NodeName`]) so that the planner cannot
//! put one where another belongs.
//!
//! They are HAProxy's names as `show servers state` reports them, so they are not validated
//! beyond what HAProxy guarantees (one non-empty field without spaces): a server HAProxy lists
//! need not be a valid conftool node name, and is then reported (unknown to etcd), not
//! refused. [`ServerName::to_node`] is where a server becomes a node, and it can fail.

use std::borrow::Borrow;
use std::fmt;

use conftool_core::{NameError, NodeName};
use serde::{Serialize, Serializer};

macro_rules! haproxy_name {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $ty {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $ty {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // As the string: plans and events read in test failures as they did with `String`.
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

        // Hash, Eq and Ord are the string's, so a map by name can be searched by `&str`.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

haproxy_name!(
    /// A backend's name (`be_name`), e.g. `appservers_apache`: the configuration's `backend`
    /// of a pool, as HAProxy knows it.
    BackendName
);
haproxy_name!(
    /// A server's name (`srv_name`) within its backend, e.g. `mw1018`: by the agent's
    /// convention a node's name, but only HAProxy's word for it.
    ServerName
);

impl ServerName {
    /// The node this server stands for, by the agent's convention that servers are named
    /// after nodes: an error if its name is not a valid node name.
    pub fn to_node(&self) -> Result<NodeName, NameError> {
        self.0.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_a_node_only_if_its_name_is_one() {
        assert_eq!(
            ServerName::from("mw1018").to_node().map(|n| n.to_string()),
            Ok("mw1018".to_string())
        );
        assert!(ServerName::from("mw1018:80").to_node().is_err());
    }

    #[test]
    fn names_show_and_compare_as_their_text() {
        let b = BackendName::from("be_apache");
        assert_eq!(b.to_string(), "be_apache");
        assert_eq!(format!("{b:?}"), "\"be_apache\"");
        assert_eq!(b.as_ref(), "be_apache");
        let mut servers = vec![ServerName::from("mw10"), ServerName::from("mw9")];
        servers.sort();
        assert_eq!(servers, ["mw10", "mw9"]);
        assert_eq!(
            serde_json::to_string(&ServerName::from("mw1")).ok(),
            Some("\"mw1\"".into())
        );
    }
}
