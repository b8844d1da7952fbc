//! conftool-core: the typed pool model of conftool-rs and its etcd v3 store.
//!
//! # Layout
//! - [`names`]: validated path-safe names ([`Datacenter`], [`Cluster`], [`Service`], [`NodeName`]).
//! - [`model`]: [`Pooled`], [`Weight`], an object's [`PoolState`], a [`ServiceDef`], and the
//!   typed keys [`PoolKey`] / [`ObjectKey`].
//! - [`keys`]: the etcd keyspace contract ([`Keyspace`]): `<ns>/v1/pools/<dc>/<cluster>/<service>/<node>`.
//! - [`selector`] and [`action`]: the `confctl select` grammar ([`Selector`], [`Action`],
//!   [`Edit`]).
//! - [`config`]: connection settings ([`Config`]) from `/etc/conftool/config.yaml`.
//! - [`store`]: the only I/O: [`Store`] reads a prefix at one revision ([`Snapshot`]) and applies
//!   guarded [`Write`]s in batched compare-and-swap transactions.
//! - [`select`]: [`Store::select`] (one range read) and [`Store::apply`] (compare-and-swap
//!   changes, re-applied to fresh data after a lost race).
//! - [`Store::find_node`]: one node's objects by point reads (sync record + services), not
//!   a whole-fleet read.
//! - [`rules`]: the depool threshold and the reactivation rule, judged on a list of
//!   changes; [`Store::pool_members`] reads the pools they judge by.
//! - [`trust`]: who may choose which settings (root through sudo vs its caller), and
//!   bounded reads of the files settings point to.
//! - [`audit`]: one JSON line per write to a file and/or syslog.
//! - [`text`]: [`escape_controls`], for untrusted text (stored values, file names) shown to
//!   a person.
//!
//! Everything but [`store`], [`select`]'s store methods and [`audit`]'s sinks is pure and
//! unit-tested without etcd.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conftool_core::Error> {
//! use conftool_core::{Config, Store};
//! let store = Store::connect(&Config::default()).await?;
//! let snap = store.read_prefix(&store.keyspace().pools_prefix()).await?;
//! println!("{} objects at revision {}", snap.kvs.len(), snap.revision);
//! # Ok(()) }
//! ```

pub mod action;
pub mod audit;
pub mod config;
mod endpoints;
mod error;
pub mod keys;
mod members;
pub mod model;
pub mod names;
mod node;
pub mod rules;
pub mod select;
pub mod selector;
pub mod store;
pub mod text;
pub mod trust;

pub use action::{Action, Edit, SetFields};
pub use audit::{Actor, AuditEntry, AuditLog, AuditSink};
pub use config::{Config, TlsConfig};
pub use error::{Error, MemberFailure, NameError, Result};
pub use keys::Keyspace;
pub use model::{
    Defaults, DepoolThreshold, ObjectKey, PoolKey, PoolState, Pooled, ServiceDef, SyncRecord,
    Weight,
};
pub use names::{Cluster, Datacenter, NodeName, Service};
pub use select::{Applied, ApplyError, Atomicity, Change, Selected, Selection};
pub use selector::Selector;
pub use store::{BatchLimits, CommitReport, Guard, Kv, Snapshot, Store, Write};
pub use text::escape_controls;
