//! The reboot coordinator's integration tests: simulated groups of nodes (directories and
//! processes on this machine, see `sim`) whose pools live in a real etcd, driven through
//! the real binary.

// The harness's helpers are test code too: a failed setup step should stop the test.
#![allow(clippy::unwrap_used)]

mod sim;

mod failures;
mod haproxy;
mod holds;
mod roll;
