//! conftool-core: pool state in etcd v3, read and written safely: the library other tools
//! import. The names of the pure model ([`conftool_model`]: names, keys, states, selectors,
//! actions, rules, write plans) are re-exported here, flat, one path each (the schema's as
//! [`schema`]); this crate adds the store and the one audited write path.
//!
//! ```no_run
//! use conftool_core::{Actor, AuditLog, Config, Edit, HostVerb, Pooled, Selector, SetFields, Store};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = Config::load("/etc/conftool/config.yaml".as_ref())?;
//! let store = Store::connect(&cfg).await?; // etcd, TLS, auth, failover past stalled members
//!
//! // Read: one range read.
//! let sel: Selector = "dc=eqiad,cluster=appservers,name=mw10.*".parse()?;
//! for o in store.select(&sel).await?.objects {
//!     println!("{} {} {}", o.key, o.state.pooled, o.state.weight);
//! }
//!
//! // Write: every write goes through a Writer, audited and judged by the rules (depool
//! // thresholds, inactive objects), compare-and-swap on what was read.
//! let actor = Actor::from_env("my-tool", cfg.username.clone());
//! let mut writer = store.writer(&actor, &AuditLog::from_config(cfg.audit_log.as_deref()))?;
//! let depool = Edit::Set(SetFields { pooled: Some(Pooled::No), weight: None });
//! let landed = writer.edit(&sel, depool).await?;
//! println!("{} objects depooled", landed.len());
//! let host = "mw1018.eqiad.wmnet".parse()?;
//! writer.host(HostVerb::Pool, &[host], None).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - the model ([`conftool_model`]): [`NodeName`], [`PoolState`], [`Selector`], [`Edit`],
//!   [`Selection`], the rules ([`Refusal`], [`HostVerb`]), writes as data ([`Write`],
//!   [`Guard`]); [`schema`] (types of the Python tool's schema file).
//! - [`config`]: connection settings ([`Config`]) from `/etc/conftool/config.yaml` (ours or
//!   the Python tool's layered files), and who may choose them under sudo (the
//!   `conftool-trust` crate: files read on the caller's behalf, opened once on descriptors).
//! - [`Store`]: the etcd code: connection and failover, range reads pinned to one
//!   revision ([`Store::select`], [`Store::find_node`] by point reads, [`Store::pool_members`]),
//!   batched compare-and-swap transactions.
//! - [`Writer`]: the one write path ([`Store::writer`]): rules, compare-and-swap with
//!   re-application after a lost race, the audit trail ([`audit`]), partial results in one
//!   shape ([`ApplyError`]); the host verbs ([`Writer::host`]); planned writes for the sync
//!   and tools that bring their own plan ([`Writer::planned`]). `Store::raw` (the `raw`
//!   feature only) is the fenced-off way around it, for tests and repair tools that must.
//! - objects of schema-defined types: [`Store::select_typed`], [`Writer::apply_typed`],
//!   [`Writer::apply_upgrade`] (`upgrade-schema`).
//! - operations, locks and the stop switch: changes recorded in etcd so they can be undone
//!   after a crash ([`Writer::host`] with an operation, [`Ended`]), leased locks
//!   ([`Store::lock`]), [`Stop`].
//! - [`http1`]: the small bounded HTTP/1.1 client of the load-balancer checks (and of the
//!   `conftool-migrate` crate's v2 reader).
//! - node labels (racks, rows; [`labels`]): [`Store::labels`] and
//!   [`Store::hosts_with_labels`], one range read of `/v1/labels/`.
//! - [`watch`]: [`Store::watch`], a selection at one revision and then every change after
//!   it ([`WatchEvent`]), across failovers, restarts and compaction.
//! - [`mod@verify`]: after a change, ask the load balancers of the pools it touched
//!   ([`LoadBalancers`], the configuration's `load_balancers`) until each host is out of
//!   rotation or back in ([`verify()`]), failing closed.

pub mod audit;
pub mod config;
mod endpoints;
mod error;
mod group;
mod guarded;
pub mod http1;
mod label_store;
mod locks;
mod members;
mod node;
mod operations;
pub mod policy;
mod pyconfig;
mod rounds;
mod runs;
mod select;
mod stops;
mod store;
mod typed;
pub mod verify;
pub mod watch;
mod writer;

// The model's modules, for this crate's own paths (`crate::write::Kv`); the public surface
// is the flat list below, one path to each name, plus `schema` as a module of its own.
pub(crate) use conftool_model::{
    action, coordination, keys, labels, model, names, operation, rules, selection, selector, text,
    write,
};

/// Object types declared by the Python tool's schema file (the model's
/// `conftool_model::schema`): their fields, rules, keys and stored JSON.
pub use conftool_model::schema;

pub use audit::{Actor, AuditLog};
pub use config::{Config, TlsConfig};
pub use conftool_model::coordination::{LockHolder, LockName, Stop, StopRecord, StopScope};
pub use conftool_model::operation::OperationStep;
pub use conftool_model::rules::{
    admit, one_host, HostVerb, Member, Overrides, PoolMembers, Refusal,
};
pub use conftool_model::Error as ModelError;
pub use conftool_model::{
    escape_controls, validate_name, Action, Anchoring, Applied, BatchLimits, Change, Cluster,
    Datacenter, Defaults, DepoolThreshold, Edit, Guard, KeyNames, Keyspace, Kv, LabelError,
    LabelMap, LabelName, LabelSelector, LabelValue, Labels, NameError, NodeName, ObjectKey,
    OperationId, OperationRecord, OperationState, PoolKey, PoolLimits, PoolState, Pooled,
    RangeGuard, Selected, Selection, Selector, Service, ServiceDef, SetFields, Snapshot,
    SyncRecord, Weight, Write,
};
pub use conftool_model::{Classify, ErrorClass};
pub use error::{Contention, Error, EtcdFailure, MemberFailure, Result, Untrusted};
pub use group::{GroupPlan, HostPlan};
pub use locks::{Lock, LockRequest, LockState};
pub use operations::Ended;
pub use runs::{is_threshold_refusal, HostDepool};
pub use select::{ApplyError, Atomicity};
#[cfg(feature = "raw")]
pub use store::Raw;
pub use store::{CommitReport, Store};
pub use typed::TypedApplyError;
pub use verify::{
    observe, verify, Check, LbUrl, LoadBalancers, Observed, Target, Verified, VerifyError,
    VerifyOptions, Want,
};
pub use watch::{ObjectChange, Watch, WatchConfig, WatchEvent, WatchStatus};
pub use writer::{Checked, HostChange, Planned, PlannedWrites, Writer};
