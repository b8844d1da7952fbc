//! conftool-cli: the `conftool-sync`, `confctl`, `conftool` and `conftool-migrate` binaries.
//!
//! `src/bin/*.rs` only parse arguments and dispatch; each command lives in [`commands`];
//! [`connection`] holds the shared etcd flags, [`output`] the one writer to stdout
//! ([`pyyaml`] formats its YAML as the Python tool does), [`exit`] the exit-code contract,
//! and [`size`] the byte sizes of the caps' flags.

pub mod commands;
pub mod connection;
pub mod docs;
pub mod exit;
pub mod output;
pub mod pyyaml;
pub mod size;
