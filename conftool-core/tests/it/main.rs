//! conftool-core against a real, throwaway etcd: the store's paged reads and its batched,
//! guarded writes; its watch; the one write path. And `verify` against scripted load
//! balancers on loopback.

mod coordination;
mod labels;
mod node;
mod store;
mod thresholds;
mod typed;
mod verify;
mod watch;
mod writer;
