//! End-to-end tests: the real binaries against real, throwaway etcd members.

mod util;

mod confctl;
mod conftool;
mod sync;
mod auth;
mod sync_bad_input;
mod sync_crash;
mod sync_git;
