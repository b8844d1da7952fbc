//! conftool-core: the etcd v3 store of conftool-rs, over the pure model of `conftool-model`
//! (re-exported here whole: names, keys, states, selectors, actions, rules, write plans).
//!
//! # Layout
//! - the model ([`conftool_model`]): [`names`], [`model`], [`keys`], [`selector`], [`action`],
//!   [`selection`], [`rules`], [`write`], [`text`].
//! - [`config`]: connection settings ([`Config`]) from `/etc/conftool/config.yaml`.
//! - [`store`]: the only I/O: [`Store`] reads a prefix at one revision ([`Snapshot`]) and applies
//!   guarded [`Write`]s in batched compare-and-swap transactions.
//! - [`select`]: [`Store::select`] (one range read) and [`Store::apply`] (compare-and-swap
//!   changes, re-applied to fresh data after a lost race).
//! - [`Store::find_node`]: one node's objects by point reads (sync record + services), not
//!   a whole-fleet read.
//! - [`Store::pool_members`]: whole pools, read for the [`rules`].
//! - [`trust`]: who may choose which settings (root through sudo vs its caller), and
//!   bounded reads of the files settings point to.
//! - [`audit`]: one JSON line per write to a file and/or syslog.
//! - [`watch`]: [`Store::watch`], a selection at one revision and then every change after
//!   it ([`WatchEvent`]), across failovers, restarts and compaction.
//!
//! Everything but [`store`], [`select`]'s store methods, [`audit`]'s sinks and the
//! [`watch`]'s task is pure and unit-tested without etcd.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conftool_core::Error> {
//! use conftool_core::{Config, Store};
//! let store = Store::connect(&Config::default()).await?;
//! let snap = store.read_prefix(&store.keyspace().pools_prefix()).await?;
//! println!("{} objects at revision {}", snap.kvs.len(), snap.revision);
//! # Ok(()) }
//! ```

pub mod audit;
pub mod config;
mod endpoints;
mod error;
mod members;
mod node;
pub mod select;
pub mod store;
pub mod trust;
pub mod watch;

// The pure model, re-exported whole: `conftool_core::model::PoolState` and
// `conftool_model::model::PoolState` are one type.
pub use conftool_model::{action, keys, model, names, rules, selection, selector, text, write};

pub use audit::{Actor, AuditEntry, AuditLog, AuditSink};
pub use config::{Config, TlsConfig};
pub use conftool_model::{
    escape_controls, Action, Applied, BatchLimits, Change, Cluster, Datacenter, Defaults,
    DepoolThreshold, Edit, Guard, Keyspace, Kv, NameError, NodeName, ObjectKey, PoolKey, PoolState,
    Pooled, Selected, Selection, Selector, Service, ServiceDef, SetFields, Snapshot, SyncRecord,
    Weight, Write,
};
pub use error::{Error, MemberFailure, Result};
pub use select::{ApplyError, Atomicity};
pub use store::{CommitReport, Store};
pub use watch::{ObjectChange, Watch, WatchConfig, WatchEvent, WatchStatus};
