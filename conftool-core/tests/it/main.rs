//! conftool-core against a real, throwaway etcd: the store's paged reads and its batched,
//! guarded writes; its watch; the one write path.

mod coordination;
mod labels;
mod migrate;
mod node;
mod store;
mod thresholds;
mod watch;
mod writer;
