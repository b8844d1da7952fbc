//! conftool-lb: the load-balancer agent's library. It applies conftool pool state from
//! etcd to HAProxy through HAProxy's runtime API, and reports HAProxy's view through a
//! PyBal-compatible status API.
//!
//! # Layout
//! - [`config`]: the agent's configuration file ([`AgentConfig`]: etcd, the runtime socket,
//!   the pools served and their backends).
//! - [`haproxy`]: HAProxy's side as plain data: `show servers state` parsed by column
//!   names ([`ServerState`]), the runtime commands ([`Command`]); its names for backends
//!   and servers ([`BackendName`], [`ServerName`]) are types of their own, apart from node
//!   names.
//! - [`plan`]: pure: etcd's desired state + HAProxy's view → the commands that close the
//!   gap ([`plan_pool`]), with the weight mapping and the depool threshold.
//! - [`status`]: pure: the status API's text and JSON answers.
//! - `reconcile`: pure: one pool's decisions (a watch event taken into its view, a
//!   reconcile's commands, the findings said when they change).
//! - I/O: [`runtime`] (the unix socket), [`agent`] (reconcile, then watch, then apply;
//!   what happens is handed to the caller as [`AgentEvent`]s: the library never prints),
//!   [`http`] (the status server; its connections are accepted and bounded in `conns`,
//!   within [`limits`]); the events and counters it reports are in `event`; the keys and
//!   values it cannot read are reported once each (`unreadable`).

pub mod agent;
pub mod config;
mod conns;
mod error;
mod event;
pub mod haproxy;
pub mod http;
pub mod limits;
mod names;
pub mod plan;
mod reconcile;
pub mod runtime;
pub mod status;
mod unreadable;

pub use agent::{Agent, AgentEvent, Metrics};
pub use config::{AgentConfig, PoolSpec};
pub use error::Error;
pub use haproxy::{parse_servers_state, parse_stat_sessions, AdminState, Command, ServerState};
pub use limits::{connection_cap, ConnectionCap, LimitsError, StatusLimits};
pub use names::{BackendName, ServerName};
pub use plan::{haproxy_weight, plan_pool, PoolPlan};
