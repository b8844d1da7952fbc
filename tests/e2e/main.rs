//! End-to-end tests: the real binaries against real, throwaway etcd members.

mod util;

mod audit;
mod auth;
mod confctl;
mod confctl_compat;
mod conftool;
mod fuzz;
mod guards;
mod harness;
mod lb_agent;
mod migrate;
mod output;
mod production;
mod python_nodes;
mod python_types;
mod reliability;
mod schema;
mod schema_production;
mod schema_tags;
mod schema_upgrade;
mod stall;
mod sudo;
mod switch_over;
mod sync;
mod sync_bad_input;
mod sync_crash;
mod sync_git;
mod sync_hostile;
mod sync_layout;
