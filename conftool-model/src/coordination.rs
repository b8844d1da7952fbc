//! What fleet-wide tools coordinate through, besides pool state: leased locks (who may work
//! on a host or a pool now) and the stop switch (nothing automated starts while it is set).
//!
//! - A **lock** is a set of holder entries at `<namespace>/v1/locks/<name>/<holder>`, each
//!   on an etcd lease of its own: the first `concurrency` entries by creation hold it, the
//!   others wait; an entry whose holder died goes away when its lease runs out, so a lock is
//!   never stuck ([`holding`]).
//! - The **stop switch** is `<namespace>/v1/stop` (everything) or `<namespace>/v1/stop/<cluster>`:
//!   any content stops, even content this version cannot read ([`StopRecord`]).
//!
//! Pure: names, records and the rule of who holds; the store reads and writes them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::model::PoolKey;
use crate::names::{Cluster, NodeName};

/// A lock's name: letters, digits, `.`, `_`, `-`, `:` (at most 200, not starting with
/// `.`). By convention `host:<node>` and `pool:<dc>:<cluster>:<service>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockName(String);

impl LockName {
    /// The lock of one host.
    pub fn host(node: &NodeName) -> LockName {
        LockName(format!("host:{node}"))
    }

    /// The lock of one pool.
    pub fn pool(pool: &PoolKey) -> LockName {
        LockName(format!(
            "pool:{}:{}:{}",
            pool.dc, pool.cluster, pool.service
        ))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LockName {
    type Err = Error;
    /// ```
    /// use conftool_model::coordination::LockName;
    /// assert_eq!("host:mw1018".parse::<LockName>()?.as_str(), "host:mw1018");
    /// assert!("a/b".parse::<LockName>().is_err());
    /// # Ok::<(), conftool_model::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 200
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        if ok {
            Ok(LockName(s.to_string()))
        } else {
            Err(Error::LockName(s.to_string()))
        }
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for LockName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LockName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One holder's entry of a lock (held, or waiting for a slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The entry's id (the last segment of its key): `<host>-<pid>-<random>`.
    pub id: String,
    /// The person.
    pub user: String,
    /// The machine the holder runs on.
    pub host: String,
    /// The holder's process.
    pub pid: u32,
    /// What holds it (the command line, or a tool's name).
    pub command: String,
    /// Why, as the person said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the entry was made (RFC 3339, UTC).
    pub since: String,
    /// The lease's time to live, in seconds: how long the entry outlives its holder.
    pub ttl_secs: u64,
    /// How many may hold the lock at once, as this holder asked.
    pub concurrency: u32,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Who holds a lock: the first entries by creation (`entries` sorted by their creation
/// revision), as many as the smallest concurrency any of them asked for (the safe side
/// when holders disagree). Returns how many of `entries` hold it.
pub fn holding(entries: &[LockHolder]) -> usize {
    let n = entries
        .iter()
        .map(|e| e.concurrency.max(1))
        .min()
        .unwrap_or(1);
    entries.len().min(usize::try_from(n).unwrap_or(usize::MAX))
}

/// What a stop switch says: who set it, why, since when. Any content at a stop key stops,
/// also content this version cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRecord {
    /// Who set it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// Since when (RFC 3339, UTC).
    pub since: String,
    /// Fields of newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Which stop switch: everything, or one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StopScope {
    /// Every automated run.
    All,
    /// Runs on this cluster's hosts.
    Cluster(Cluster),
}

impl fmt::Display for StopScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopScope::All => f.write_str("everything"),
            StopScope::Cluster(c) => write!(f, "cluster {c}"),
        }
    }
}

/// A stop switch that is set: its scope and what it says (`None`: content that is not a
/// record, which stops all the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// What it stops.
    pub scope: StopScope,
    /// Its record, if it reads as one.
    pub record: Option<StopRecord>,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record {
            Some(r) => write!(
                f,
                "stop switch set for {} by {} since {}: {}",
                self.scope,
                r.by,
                r.since,
                crate::text::escape_controls(&r.reason)
            ),
            None => write!(f, "stop switch set for {} (unreadable record)", self.scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(id: &str, concurrency: u32) -> LockHolder {
        LockHolder {
            id: id.into(),
            user: "alice".into(),
            host: "cumin1001".into(),
            pid: 1,
            command: "confctl run".into(),
            reason: None,
            since: "2026-12-04T00:00:00Z".into(),
            ttl_secs: 60,
            concurrency,
            extra: serde_json::Map::new(),
        }
    }

    #[test]
    fn names_of_hosts_and_pools_are_lock_names() {
        let node: NodeName = "mw1018.eqiad.wmnet".parse().unwrap();
        assert_eq!(LockName::host(&node).as_str(), "host:mw1018.eqiad.wmnet");
        let pool: PoolKey = "eqiad/appservers/apache/x"
            .parse::<crate::ObjectKey>()
            .unwrap()
            .pool;
        let p = LockName::pool(&pool);
        assert_eq!(p.to_string(), "pool:eqiad:appservers:apache");
        assert_eq!(p.as_str().parse::<LockName>().unwrap(), p);
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(201), "é"] {
            let e = bad.parse::<LockName>().unwrap_err().to_string();
            assert!(e.contains("invalid lock name"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_first_entries_hold_as_many_as_the_smallest_concurrency() {
        assert_eq!(holding(&[]), 0);
        let three: Vec<LockHolder> = ["a", "b", "c"].iter().map(|i| holder(i, 2)).collect();
        assert_eq!(holding(&three), 2);
        let one = vec![holder("a", 5), holder("b", 1), holder("c", 5)];
        assert_eq!(holding(&one), 1);
        // 0 is taken as 1: a lock always lets someone through.
        assert_eq!(holding(&[holder("a", 0), holder("b", 0)]), 1);
        assert_eq!(holding(&[holder("a", 9)]), 1);
    }

    #[test]
    fn records_read_back_and_a_stop_says_who_and_why() {
        let h = holder("cumin1001-1-ab", 2);
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<LockHolder>(&text).unwrap(), h);
        let stop = Stop {
            scope: StopScope::Cluster("appservers".parse().unwrap()),
            record: Some(StopRecord {
                by: "alice".into(),
                reason: "incident\u{1b}[2J".into(),
                since: "2026-12-04T10:00:00Z".into(),
                extra: serde_json::Map::new(),
            }),
        };
        assert_eq!(
            stop.to_string(),
            "stop switch set for cluster appservers by alice since 2026-12-04T10:00:00Z: \
             incident\\x1b[2J"
        );
        let odd = Stop {
            scope: StopScope::All,
            record: None,
        };
        assert_eq!(
            odd.to_string(),
            "stop switch set for everything (unreadable record)"
        );
    }
}
