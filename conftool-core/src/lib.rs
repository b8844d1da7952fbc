//! conftool-core: pool state in etcd v3, read and written safely. The pure model
//! ([`conftool_model`]: names, keys, states, selectors, actions, rules, write plans) is
//! re-exported here whole; this crate adds the store and the one audited write path.
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
//! - the model ([`conftool_model`]): [`names`], [`model`], [`keys`], [`selector`], [`action`],
//!   [`selection`], [`rules`], [`mod@write`], [`text`], [`schema`] (types of the Python
//!   tool's schema file).
//! - [`config`]: connection settings ([`Config`]) from `/etc/conftool/config.yaml`, and who
//!   may choose them ([`trust`]: a run for another user, through sudo, vs its caller; files
//!   read on the caller's behalf, opened once on descriptors).
//! - [`Store`]: the only network code: connection and failover, range reads pinned to one
//!   revision ([`Store::select`], [`Store::find_node`] by point reads, [`Store::pool_members`]),
//!   batched compare-and-swap transactions.
//! - [`Writer`]: the one write path ([`Store::writer`]): rules, compare-and-swap with
//!   re-application after a lost race, the audit trail ([`audit`]), partial results in one
//!   shape ([`ApplyError`]); the host verbs ([`Writer::host`]); planned writes for the sync
//!   ([`Writer::operation`]). [`Store::raw`] is the fenced-off way around it, for tests and
//!   tools that must.
//! - objects of schema-defined types: [`Store::select_typed`], [`Writer::apply_typed`],
//!   [`Writer::apply_upgrade`] (`upgrade-schema`).
//! - [`v2`] and [`migrate`]: moving a Python deployment's live state from etcd v2 (read over
//!   HTTP) to v3, values byte for byte: a pure plan, applied through [`Writer::operation`].
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
mod http1;
mod label_store;
mod locks;
mod members;
pub mod migrate;
mod node;
mod operations;
pub mod policy;
pub mod pyconfig;
mod runs;
mod select;
mod stops;
mod store;
pub mod trust;
mod typed;
pub mod v2;
pub mod verify;
pub mod watch;
mod writer;

// The pure model, re-exported whole: `conftool_core::model::PoolState` and
// `conftool_model::model::PoolState` are one type.
pub use conftool_model::{
    action, coordination, keys, labels, model, names, operation, rules, schema, selection,
    selector, text, write,
};

pub use audit::{Actor, AuditLog};
pub use config::{Config, TlsConfig};
pub use conftool_model::coordination::{LockHolder, LockName, Stop, StopRecord, StopScope};
pub use conftool_model::rules::{HostVerb, Overrides, Refusal};
pub use conftool_model::Error as ModelError;
pub use conftool_model::{
    escape_controls, Action, Applied, BatchLimits, Change, Cluster, Datacenter, Defaults,
    DepoolThreshold, Edit, Guard, Keyspace, Kv, LabelError, LabelMap, LabelName, LabelSelector,
    LabelValue, Labels, NameError, NodeName, ObjectKey, OperationId, OperationRecord,
    OperationState, PoolKey, PoolLimits, PoolState, Pooled, RangeGuard, Selected, Selection,
    Selector, Service, ServiceDef, SetFields, Snapshot, SyncRecord, Weight, Write,
};
pub use error::{Error, EtcdFailure, MemberFailure, Result};
pub use group::{GroupPlan, HostPlan};
pub use locks::{Lock, LockRequest, LockState};
pub use operations::Ended;
pub use runs::{is_threshold_refusal, HostDepool};
pub use select::{ApplyError, Atomicity};
pub use store::{CommitReport, Raw, Store};
pub use typed::TypedApplyError;
pub use verify::{
    observe, verify, Check, LbUrl, LoadBalancers, Observed, Target, Verified, VerifyError,
    VerifyOptions, Want,
};
pub use watch::{ObjectChange, Watch, WatchConfig, WatchEvent, WatchStatus};
pub use writer::{HostChange, Planned, PlannedWrites, Writer};
