//! conftool-migrate: moving a Python conftool deployment's live state from etcd **v2** (read
//! over HTTP) to **v3**, values byte for byte. A tool of its own on top of `conftool-core`,
//! with the HTTP client dependencies only it needs (basic auth, v2's JSON answer).
//!
//! - [`v2`]: one recursive, quorum read of a v2 prefix, capped in bytes and keys, with TLS,
//!   basic auth and failover between endpoints ([`v2::V2Source::read`]).
//! - [`migrate`]: a pure plan comparing what v2 holds with what v3 holds
//!   ([`migrate::plan`]), applied through conftool-core's audited write path
//!   ([`migrate::apply`]), and verified against a fresh read of both sides
//!   ([`migrate::verify`]).

pub mod migrate;
pub mod v2;
