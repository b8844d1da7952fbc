//! conftool-model: the pure pool model of conftool-rs. No I/O and no network dependency
//! (it builds without protoc): everything here is plain data and the rules over it, unit-tested
//! exhaustively; `conftool-core` reads and writes it in etcd.
//!
//! ```
//! use conftool_model::{Edit, Keyspace, Pooled, Selection, Selector, SetFields, Snapshot, Kv};
//! let ks = Keyspace::new("/conftool");
//! let sel: Selector = "dc=eqiad,cluster=appservers,name=mw10.*".parse()?;
//! // What a range read of `sel.prefix(&ks)` returned:
//! let snap = Snapshot {
//!     revision: 7,
//!     kvs: vec![Kv {
//!         key: "/conftool/v1/pools/eqiad/appservers/apache/mw1018".into(),
//!         value: br#"{"pooled":"yes","weight":10}"#.to_vec(),
//!         mod_revision: 5,
//!     }],
//! };
//! let selection = Selection::from_snapshot(&ks, &sel, &snap);
//! let depool = Edit::Set(SetFields { pooled: Some(Pooled::No), weight: None });
//! let changes = selection.changes(|_| Some(depool));
//! assert_eq!(changes.len(), 1);
//! assert_eq!(changes[0].write(&ks).key(), "/conftool/v1/pools/eqiad/appservers/apache/mw1018");
//! # Ok::<(), conftool_model::Error>(())
//! ```
//!
//! # Layout
//! - [`names`]: validated path-safe names ([`Datacenter`], [`Cluster`], [`Service`], [`NodeName`]).
//! - [`model`]: [`Pooled`], [`Weight`], an object's [`PoolState`], a [`ServiceDef`] with its
//!   [`DepoolThreshold`], the typed keys [`PoolKey`] / [`ObjectKey`], the [`SyncRecord`].
//! - [`keys`]: the etcd keyspace contract ([`Keyspace`]).
//! - [`labels`]: node labels (racks, rows) and the [`LabelSelector`] that picks a group of
//!   hosts by them; their keys, `/v1/labels/<dc>/<node>`.
//! - [`selector`] and [`action`]: the `confctl select` grammar ([`Selector`], [`Action`], [`Edit`]).
//! - [`selection`]: what a selector selected from a [`Snapshot`], and the [`Change`]s an edit makes.
//! - [`rules`]: the depool threshold (serving nodes, `min_pooled`) and the rule that keeps
//!   pattern writes away from `inactive` objects, judged on a list of changes.
//! - [`mod@write`]: reads and guarded writes as data ([`Kv`], [`Snapshot`], [`Write`], [`Guard`],
//!   [`BatchLimits`]).
//! - [`coordination`]: leased locks ([`coordination::LockName`]) and the stop switch.
//! - [`operation`]: changes recorded in etcd so they can be undone ([`OperationRecord`]) and
//!   the plan that undoes them.
//! - [`schema`]: object types declared by the Python tool's schema file, their fields,
//!   JSON Schema rules, keys and stored JSON.
//! - [`text`]: control characters spelled out for people ([`escape_controls`]).

pub mod action;
pub mod coordination;
mod error;
pub mod keys;
pub mod labels;
pub mod model;
pub mod names;
pub mod operation;
pub mod rules;
pub mod schema;
pub mod selection;
pub mod selector;
pub mod text;
pub mod write;

pub use action::{Action, Edit, SetFields};
pub use error::{Classify, Error, ErrorClass, NameError, Result};
pub use keys::{KeyNames, Keyspace};
pub use labels::{
    decode_labels, LabelError, LabelMap, LabelName, LabelPart, LabelSelector, LabelValue, Labels,
};
pub use model::{
    Defaults, DepoolThreshold, ObjectKey, PoolKey, PoolLimits, PoolState, Pooled, ServiceDef,
    SyncRecord, Weight,
};
pub use names::{validate_name, Cluster, Datacenter, NodeName, Service};
pub use operation::{OperationId, OperationRecord, OperationState};
pub use selection::{Applied, Change, Selected, Selection};
pub use selector::{Anchoring, Selector};
pub use text::escape_controls;
pub use write::{batch, batch_guarded, BatchLimits, Guard, Kv, RangeGuard, Snapshot, Write};
