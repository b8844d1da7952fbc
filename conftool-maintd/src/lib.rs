//! conftool-maintd: the maintenance daemon (after Ganeti's `maintd`). Each node reports its
//! health through a self-diagnose command; the daemon turns what nodes say into repair
//! events with identities and a life cycle, kept in etcd, and acts on them within the pools'
//! limits: it takes nodes out of their pools for repair (verified with the load balancers,
//! recorded as operations) and runs whitelisted live repairs; operators cancel, acknowledge
//! or forget events (`confctl maint`). One instance leads (a leased lock); the others stand
//! by and take over when it dies.
//!
//! It is built on conftool-core as any outside tool would be: the audited [`Writer`]
//! (`depool_into_operation`, operations), leased locks, the stop switch and verification.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use conftool_core::{Actor, AuditLog, Config, Store};
//! use conftool_maintd::{Ctx, Daemon, MaintConfig};
//! let conftool = Config::load("/etc/conftool/config.yaml".as_ref())?;
//! let cfg = MaintConfig::load("/etc/conftool/maintd.yaml".as_ref())?;
//! let store = Store::connect(&conftool).await?;
//! let actor = Actor::from_env("conftool-maintd", conftool.username.clone());
//! let ctx = Ctx {
//!     by: format!("conftool-maintd@{} pid {}", actor.host, std::process::id()),
//!     store, cfg, lbs: conftool.load_balancers.clone(), actor,
//!     audit: AuditLog::from_config(conftool.audit_log.as_deref()),
//! };
//! let daemon = Daemon::new(ctx, Default::default());
//! daemon.run(|event| eprintln!("{event:?}"), std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! Pure: [`diagnose`] (what a node said: an [`Observation`], its fingerprint), [`event`]
//! (the [`EventRecord`], its states, the operators' actions), [`reconcile`] (what a poll
//! creates and forgets), [`round`] (which actions start, within thresholds), [`status`]
//! (the status page and metrics, rendered). I/O: [`config`], [`command`] (running a
//! node's command with a time limit), [`records`] (events in etcd), [`leader`],
//! [`actions`] (evacuate, live repair, repool), [`daemon`] (the loop), [`http`].
//!
//! [`Writer`]: conftool_core::Writer

pub mod actions;
pub mod command;
pub mod config;
pub mod daemon;
pub mod diagnose;
mod error;
pub mod event;
pub mod http;
pub mod leader;
pub mod reconcile;
pub mod records;
pub mod round;
pub mod status;

pub use actions::Ctx;
pub use config::MaintConfig;
pub use daemon::{Daemon, DaemonEvent};
pub use diagnose::Observation;
pub use error::{Error, Result};
pub use event::{EventId, EventRecord, EventState, Kind, OperatorAction, Verdict};
pub use status::{Shared, Status};
