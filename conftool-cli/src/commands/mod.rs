//! One module per binary / subcommand, plus what the writers share.
pub mod changes;
pub mod confctl;
pub mod conftool;
pub mod lb_agent;
pub mod migrate;
pub mod sync;
