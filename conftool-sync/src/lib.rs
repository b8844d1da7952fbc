//! conftool-sync: make etcd's set of pool objects match a data directory.
//!
//! # Layout
//! - [`source`] (I/O): list a directory's entries in the working tree or a git commit and
//!   read its data files into [`Files`]: regular files only (symbolic links and special
//!   files are refused, never followed), at most [`MAX_FILE_SIZE`] each and
//!   [`Caps::max_bytes`] together (see [`Caps`] for why, and for the cap on objects).
//! - [`layout`] (pure): which entries are read, which are errors (they look like data but
//!   would not be read) and which are warnings; [`Files::warnings`] carries the latter.
//! - [`mod@load`] (pure): parse and validate [`Files`] into [`Desired`] state; every error names
//!   its file and line.
//! - [`labels`] (pure): node labels (racks, rows) in both layouts, and their part of the plan
//!   ([`LabelPlan`]), synced to `/v1/labels/<dc>/<node>` as declared.
//! - [`mod@plan`] (pure): [`Desired`] + [`Current`] (decoded from one etcd snapshot) -> [`Plan`];
//!   [`Plan::guard`] applies the safety [`Limits`] to objects and service definitions;
//!   [`Plan::render_diff`] shows it, control characters in stored values escaped.
//! - [`schema_file`] (I/O) and [`typed_load`], [`typed_plan`] (pure): object types declared
//!   by the Python tool's schema file (`--schema`), read from `DIR/<type>/*.yaml` and planned
//!   like pool objects (created with defaults, never overwritten, deleted when removed), in
//!   dependency order; see [`conftool_core::schema`].
//! - [`apply`] (I/O): carry a plan out in compare-and-swap transactions, re-planning on
//!   conflicts.
//!
//! ```no_run
//! # async fn demo(store: &conftool_core::Store) -> Result<(), conftool_sync::Error> {
//! use conftool_core::{Actor, AuditLog};
//! use conftool_sync::{apply, load, read_dir, Limits};
//! let desired = load(&read_dir("conf".as_ref())?)?;
//! let plan = apply::plan_against(store, &desired).await?;
//! print!("{}", plan.render_diff(store.keyspace(), "etcd", "conf"));
//! plan.guard(&Limits::default())?;
//! let actor = Actor::from_env("my-tool", None);
//! let audit = AuditLog::from_config(Some("/var/log/conftool/audit.jsonl".as_ref()));
//! let mut writer = store.writer(&actor, &audit)?; // checks the audit log before anything
//! let outcome = apply::apply(&mut writer, &desired, plan, &Limits::default()).await?;
//! # Ok(()) }
//! ```

pub mod apply;
mod caps;
mod error;
mod guard;
mod json_pos;
pub mod labels;
pub mod layout;
pub mod load;
mod merge;
pub mod plan;
mod render;
pub mod schema_file;
pub mod source;
pub mod typed_load;
pub mod typed_plan;
mod yaml;

pub use apply::Outcome;
pub use caps::{Cap, Caps};
pub use error::{Error, GitError};
pub use guard::{Limits, Refusal};
pub use labels::{LabelChange, LabelPlan};
pub use layout::Notice;
pub use load::{load, load_capped, load_with, Desired, NodeDefs, ServiceDefs};
pub use plan::{plan, Current, Deletion, MetaChange, Plan, ServiceChange, Stage};
pub use schema_file::{
    read_schema, read_schema_as, read_schema_noted, read_schema_noted_as, DEFAULT_SCHEMA,
};
pub use source::{
    read_dir, read_dir_capped, read_dir_with, read_git, read_git_capped, read_git_with, Files,
    MAX_FILE_SIZE,
};
pub use typed_load::TypedDesired;
pub use typed_plan::{TypedCreate, TypedDeletion, TypedPlan};
