//! conftool-core: the typed pool model of conftool-rs and its etcd v3 store.
//!
//! # Layout
//! - [`names`]: validated path-safe names ([`Datacenter`], [`Cluster`], [`Service`], [`NodeName`]).
//! - [`model`]: [`Pooled`], [`Weight`], an object's [`PoolState`], a [`ServiceDef`], and the
//!   typed keys [`PoolKey`] / [`ObjectKey`].
//! - [`keys`]: the etcd keyspace contract ([`Keyspace`]): `<ns>/v1/pools/<dc>/<cluster>/<service>/<node>`.
//! - [`config`]: connection settings ([`Config`]) from `/etc/conftool/config.yaml`.
//! - [`store`]: the only I/O: [`Store`] reads a prefix at one revision ([`Snapshot`]) and applies
//!   guarded [`Write`]s in batched compare-and-swap transactions.
//!
//! Everything but [`store`] is pure and unit-tested without etcd.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conftool_core::Error> {
//! use conftool_core::{Config, Store};
//! let store = Store::connect(&Config::default()).await?;
//! let snap = store.read_prefix(&store.keyspace().pools_prefix()).await?;
//! println!("{} objects at revision {}", snap.kvs.len(), snap.revision);
//! # Ok(()) }
//! ```

pub mod config;
mod error;
pub mod keys;
pub mod model;
pub mod names;
pub mod store;

pub use config::{Config, TlsConfig};
pub use error::{Error, NameError, Result};
pub use keys::Keyspace;
pub use model::{Defaults, ObjectKey, PoolKey, PoolState, Pooled, ServiceDef, Weight};
pub use names::{Cluster, Datacenter, NodeName, Service};
pub use store::{BatchLimits, CommitReport, Guard, Kv, Snapshot, Store, Write};
