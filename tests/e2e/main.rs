//! End-to-end tests: the real binaries against real, throwaway etcd members.

mod util;

mod audit;
mod auth;
mod confctl;
mod confctl_compat;
mod conftool;
mod fleet_safety;
mod fuzz;
mod guards;
mod harness;
mod lb_agent;
mod lb_agent_flood;
mod lb_agent_unreadable;
mod measure;
mod migrate;
mod migrate_hostile;
mod output;
mod python_nodes;
mod python_types;
mod reliability;
mod schema;
mod schema_tags;
mod schema_upgrade;
mod stall;
mod sudo;
mod sudo_reads;
mod sudo_writes;
mod sync;
mod sync_bad_input;
mod sync_crash;
mod sync_git;
mod sync_hostile;
mod sync_labels;
mod sync_layout;
mod sync_memory;
