//! What the agent tells its caller ([`AgentEvent`], one per action or finding: the library
//! never prints) and what it counts for `/metrics` ([`Metrics`]).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use conftool_core::PoolLimits;

use crate::names::ServerName;

/// What the agent did or noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// Connected to etcd.
    Connected {
        /// The endpoints.
        endpoints: String,
    },
    /// etcd could not be reached at start; retrying. HAProxy is not touched meanwhile.
    ConnectFailed {
        /// Why.
        error: String,
    },
    /// A pool's snapshot arrived (first, or after compaction).
    Snapshot {
        /// Backend.
        backend: String,
        /// etcd revision.
        revision: i64,
        /// Objects in the pool.
        objects: usize,
    },
    /// Changes to a pool arrived.
    Changes {
        /// Backend.
        backend: String,
        /// etcd revision.
        revision: i64,
        /// Objects changed.
        objects: usize,
    },
    /// One command sent and accepted by HAProxy.
    Applied {
        /// Backend.
        backend: String,
        /// Server.
        server: String,
        /// The command line.
        command: String,
        /// Why: the etcd revision of the view it comes from.
        revision: i64,
    },
    /// HAProxy could not be read or refused a command; retried at the next recheck.
    HaProxyError {
        /// Backend.
        backend: String,
        /// Why.
        error: String,
    },
    /// The watch reported an error; HAProxy keeps the last applied state.
    WatchError {
        /// Backend.
        backend: String,
        /// Why.
        error: String,
    },
    /// Depooled nodes kept in rotation by the depool threshold (reported when it changes).
    KeptByThreshold {
        /// Backend.
        backend: String,
        /// The nodes kept.
        servers: Vec<String>,
        /// Pooled nodes needed.
        required: usize,
        /// Pooled nodes in etcd.
        pooled: usize,
    },
    /// Nodes etcd has that the backend lacks (reported when it changes).
    MissingInBackend {
        /// Backend.
        backend: String,
        /// The nodes.
        servers: Vec<String>,
    },
    /// Backend servers etcd does not know (reported when it changes).
    UnknownToEtcd {
        /// Backend.
        backend: String,
        /// The servers.
        servers: Vec<String>,
    },
    /// A key under the pool's prefix that is not an object key, or an object's value that
    /// is not a valid state: skipped (a malformed object is left as HAProxy has it).
    /// Reported once per key and reason, and again if it goes away and comes back. The key
    /// and reason are as etcd has them: escape them before showing them to a person.
    Unreadable {
        /// Backend.
        backend: String,
        /// The etcd key.
        key: String,
        /// What is wrong with it, or with its value.
        reason: String,
    },
}

/// Counters for `/metrics`, shared with the status server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reconciliations run (per pool).
    pub reconciles: AtomicU64,
    /// Commands HAProxy accepted.
    pub commands: AtomicU64,
    /// HAProxy errors (unreachable socket, refused command, unreadable answer).
    pub haproxy_errors: AtomicU64,
    /// Watch errors.
    pub watch_errors: AtomicU64,
    /// The etcd revision of the last event handled.
    pub revision: AtomicU64,
    /// Each pool's (backend's) depool threshold, as last read from etcd (for `/alerts`).
    pub thresholds: Mutex<BTreeMap<String, PoolLimits>>,
    /// Each pool's servers that etcd has depooled or drained but the threshold keeps in
    /// rotation, as of the last plan (for `/alerts`).
    pub kept: Mutex<BTreeMap<String, Vec<ServerName>>>,
    /// Watch lag of the last batch, in microseconds: from the watch handing over its oldest
    /// event to HAProxy having been brought in line with it.
    pub watch_lag_us: AtomicU64,
    /// Watch events received and not yet taken in (after the last batch).
    pub watch_backlog: AtomicU64,
    /// Status API connections open now.
    pub status_connections: AtomicU64,
    /// Status API connections allowed.
    pub status_max_connections: AtomicU64,
    /// Status API connections closed to make room for a new one.
    pub status_evicted: AtomicU64,
    /// Status API connections closed by the header or the idle timeout.
    pub status_timeouts: AtomicU64,
    /// Status API accepts that failed.
    pub status_accept_errors: AtomicU64,
    /// Times the descriptor kept for HAProxy's socket was used.
    pub haproxy_reserve_used: AtomicU64,
    /// Per pool (backend): how often its watch resumed after a failure, and re-listed after
    /// compaction (as of its last event).
    pub watch_restarts: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl Metrics {
    /// A pool's depool threshold as last read (the default before it was).
    pub fn threshold(&self, backend: &str) -> PoolLimits {
        let map = self.thresholds.lock().unwrap_or_else(|e| e.into_inner());
        map.get(backend).copied().unwrap_or_default()
    }

    /// A pool's servers kept in rotation by the threshold, as of the last plan.
    pub fn kept(&self, backend: &str) -> Vec<ServerName> {
        let map = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        map.get(backend).cloned().unwrap_or_default()
    }
}
