//! End-to-end tests: the real binaries against real, throwaway etcd members.

mod util;

mod auth;
mod confctl;
mod conftool;
mod fuzz;
mod reliability;
mod stall;
mod sync;
mod sync_bad_input;
mod sync_crash;
mod sync_git;
