//! conftool-core against a real, throwaway etcd: the store's paged reads and its batched,
//! guarded writes.

mod node;
mod store;
