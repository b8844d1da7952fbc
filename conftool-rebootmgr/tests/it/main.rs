//! The reboot coordinator's integration tests: simulated groups of nodes (directories and
//! processes on this machine, see `sim`) whose pools live in a real etcd, driven through
//! the real binary.

mod sim;

mod roll;
