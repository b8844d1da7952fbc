//! Integration tests of conftool-maintd against a real etcd (the testkit starts one per
//! test: loopback, free ports, a temp dir; stopped by PID). Nodes are simulated by a
//! diagnose script that prints the file the test writes for each node; the repair command
//! records its stdin.

mod events;
mod haproxy;
mod harness;
mod leader;
mod operators;
mod rounds;
mod status;
