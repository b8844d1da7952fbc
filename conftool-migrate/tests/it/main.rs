//! The migration's apply against a real etcd (one binary for the crate's integration tests).

mod migrate;
