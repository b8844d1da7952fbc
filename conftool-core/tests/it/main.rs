//! conftool-core against a real, throwaway etcd: the store's paged reads and its batched,
//! guarded writes; its watch.

mod node;
mod store;
mod watch;
