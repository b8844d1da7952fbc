//! How much a sync reads and holds: the data files' bytes, all files together, and the
//! objects they declare.
//!
//! A merge request controls the data directory, and CI syncs it, often as root, on a runner
//! with other jobs. Where the memory went (a 60 MiB `pools.yaml`: 1.7 GB before etcd was
//! contacted; four 30 MiB files: 2.7 GB): the YAML library (`yaml_serde`) turns a whole file
//! into a list of parse events before the typed read sees the first one, about 100 bytes
//! per event, ~20 times the text for data shaped like `pools.yaml` and up to ~115 times for
//! the costliest shape (`{a,a,a,...}`: two events per two bytes); then every object costs
//! ~260 bytes in the desired state (its key's four names) and ~2 KB while an initial sync
//! writes it. The events are dropped after their file's parse and the text after the load;
//! duplicate keys are found with maps and sets as the typed read goes (no second tree, no
//! quadratic scan).
//!
//! So bytes are capped *before* parsing: each file's size is added up as the files are
//! read, and the file that would pass [`Caps::max_bytes`] is refused before it is read.
//! Objects are counted while the typed read builds them, and the read stops at the first
//! one past [`Caps::max_objects`], which bounds everything after it (the desired state, the
//! plan, the writes and their audit trail).
//!
//! The defaults keep a sync under 500 MB of peak memory whatever the shape of its input
//! (the costliest YAML at the byte cap: ~370 MB while parsed; an initial sync of as many
//! objects as the cap allows into an empty etcd: ~310 MB; measured in
//! `tests/e2e/sync_memory.rs` and BENCHMARKS.md). Real data directories are a few hundred
//! KiB and a few tens of thousands of objects. Raising them is a flag (`--max-input-bytes`,
//! `--max-objects`); the benchmark of a million objects does.

use std::cell::Cell;

/// The caps of one sync; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The most bytes of data files read, all of them together.
    pub max_bytes: u64,
    /// The most objects declared: pool objects and objects of schema-declared types.
    pub max_objects: usize,
}

impl Caps {
    /// [`Caps::max_bytes`] by default: 3 MiB (the costliest YAML of that size peaks at
    /// ~370 MB while parsed; ~150,000 objects shaped like `pools.yaml`).
    pub const DEFAULT_MAX_BYTES: u64 = 3 << 20;
    /// [`Caps::max_objects`] by default: 150,000.
    pub const DEFAULT_MAX_OBJECTS: usize = 150_000;
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_objects: Self::DEFAULT_MAX_OBJECTS,
        }
    }
}

/// What a cap stopped, for [`crate::Error::OverCap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cap {
    /// The data files add up to more than [`Caps::max_bytes`]: `total` bytes with the file
    /// named (when its size was known before reading it).
    Bytes {
        /// The cap.
        limit: u64,
        /// The files read so far and this one, where known.
        total: Option<u64>,
    },
    /// More objects than [`Caps::max_objects`].
    Objects {
        /// The cap.
        limit: usize,
    },
}

/// The objects read so far, across files, against [`Caps::max_objects`]. Shared by the seeds
/// of one load (a `Cell`: the seeds only hold shared references).
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: Cell<usize>,
    over: Cell<bool>,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: Cell::new(0),
            over: Cell::new(false),
        }
    }

    /// Count one more object; an error (for the YAML reader, which then adds the place)
    /// once the cap is passed. [`Budget::is_over`] tells that error from the others.
    pub(crate) fn take_one(&self) -> Result<(), String> {
        let used = self.used.get().saturating_add(1);
        self.used.set(used);
        if used > self.limit {
            self.over.set(true);
            return Err(format!("more than {} objects", self.limit));
        }
        Ok(())
    }

    /// Whether the cap was passed.
    pub(crate) fn is_over(&self) -> bool {
        self.over.get()
    }

    /// The cap.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_the_first_object_past_the_cap_and_remembers() {
        let b = Budget::new(2);
        assert_eq!((b.take_one(), b.take_one()), (Ok(()), Ok(())));
        assert!(!b.is_over());
        assert_eq!(b.take_one(), Err("more than 2 objects".to_string()));
        assert!(b.is_over());
        assert_eq!(b.limit(), 2);
    }
}
