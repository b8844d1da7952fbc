//! End-to-end tests: the real binaries against real, throwaway etcd members.

mod util;

mod confctl;
mod conftool;
mod sync;
mod auth;
