//! The plain data of reads and writes: a key as read ([`Kv`]), a read at one revision
//! ([`Snapshot`]), and a guarded write ([`Write`], [`Guard`]) with how writes are split into
//! transactions ([`BatchLimits`], [`batch`]). No I/O: the store carries them out.

/// One key as read from etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// The raw value.
    pub value: Vec<u8>,
    /// The revision of the last change to this key (the compare-and-swap guard).
    pub mod_revision: i64,
}

/// A consistent read of a key range at one etcd revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The store revision the read was pinned to.
    pub revision: i64,
    /// The keys in the range, sorted by key.
    pub kvs: Vec<Kv>,
}

/// The condition a write is guarded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The key must not exist (create).
    Absent,
    /// The key must be unchanged since it was read at this mod revision.
    Unchanged(i64),
}

/// One guarded write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Put `value` at `key` if the guard holds.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
        /// The condition.
        guard: Guard,
    },
    /// Delete `key` if the guard holds.
    Delete {
        /// The key.
        key: String,
        /// The condition.
        guard: Guard,
    },
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
        }
    }

    /// The condition the write is guarded by.
    pub fn guard(&self) -> Guard {
        match self {
            Write::Put { guard, .. } | Write::Delete { guard, .. } => *guard,
        }
    }

    /// Approximate bytes on the wire, for batching within etcd's request-size limit.
    pub fn size(&self) -> usize {
        match self {
            Write::Put { key, value, .. } => 2 * key.len() + value.len() + 32,
            Write::Delete { key, .. } => 2 * key.len() + 32,
        }
    }
}

/// A condition on a whole pool (a key range): no key under `prefix` was written after
/// `revision`. etcd compares a range in one comparison whatever its size, so a write judged
/// by a pool's state (the depool threshold) fails if anything in the pool changed since it
/// was read. (A key deleted since is not seen by it; the writer deletes serving objects in
/// two steps for that reason, see `conftool-core`'s writer.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RangeGuard {
    /// The range: every key starting with it.
    pub prefix: String,
    /// The revision the range was read at.
    pub revision: i64,
}

/// How writes are batched. The defaults match etcd's defaults (`--max-txn-ops 128`,
/// `--max-request-bytes` 1.5 MiB) with headroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Operations per transaction.
    pub max_txn_ops: usize,
    /// Approximate bytes per transaction.
    pub max_txn_bytes: usize,
    /// Transactions in flight at once.
    pub in_flight: usize,
    /// Keys per page of a range read.
    pub page_size: i64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_txn_ops: 128,
            max_txn_bytes: 1 << 20,
            in_flight: 8,
            // etcd 3.4 visits the whole rest of the range for every page, so pages are big:
            // 100,000 objects are ~12 MB, well within the 256 MiB the client accepts.
            page_size: 100_000,
        }
    }
}

/// Split writes into transactions within the limits; returns input indexes per batch.
pub fn batch<'w>(
    writes: impl IntoIterator<Item = &'w Write>,
    limits: &BatchLimits,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for (i, w) in writes.into_iter().enumerate() {
        let size = w.size();
        if !cur.is_empty()
            && (cur.len() >= limits.max_txn_ops || bytes + size > limits.max_txn_bytes)
        {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(i);
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Split writes into transactions that also carry range compares: a transaction compares
/// each of its writes, each range (by prefix) that one of its writes falls in, and `extra`
/// more keys, and carries its writes plus `extra` more operations; both counts stay within
/// [`BatchLimits::max_txn_ops`], the bytes within [`BatchLimits::max_txn_bytes`] (`extra_bytes`
/// counted in every transaction). Writes keep their order; returns input indexes per batch.
pub fn batch_guarded(
    writes: &[Write],
    ranges: &[&str],
    extra: usize,
    extra_bytes: usize,
    limits: &BatchLimits,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    let mut bytes = extra_bytes;
    for (i, w) in writes.iter().enumerate() {
        let range = ranges.iter().position(|p| w.key().starts_with(p));
        let new_range = range.is_some_and(|r| !touched.contains(&r));
        let compares = cur.len() + 1 + touched.len() + usize::from(new_range) + extra;
        let ops = cur.len() + 1 + extra;
        let full =
            compares.max(ops) > limits.max_txn_ops || bytes + w.size() > limits.max_txn_bytes;
        if !cur.is_empty() && full {
            out.push(std::mem::take(&mut cur));
            touched.clear();
            bytes = extra_bytes;
        }
        if let Some(r) = range {
            if !touched.contains(&r) {
                touched.push(r);
                bytes += ranges[r].len() + 32;
            }
        }
        cur.push(i);
        bytes += w.size();
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_knows_its_key_guard_and_size_on_the_wire() {
        let put = Write::Put {
            key: "/v1/k".into(),
            value: "12345".into(),
            guard: Guard::Unchanged(7),
        };
        let del = Write::Delete {
            key: "/v1/kk".into(),
            guard: Guard::Absent,
        };
        assert_eq!((put.key(), put.guard()), ("/v1/k", Guard::Unchanged(7)));
        assert_eq!((del.key(), del.guard()), ("/v1/kk", Guard::Absent));
        // The key twice (compare and operation), the value, and a fixed overhead.
        assert_eq!(put.size(), 2 * 5 + 5 + 32);
        assert_eq!(del.size(), 2 * 6 + 32);
    }

    #[test]
    fn a_batch_may_reach_the_byte_limit_but_not_pass_it() {
        // Each write is 2*2 + 6 + 32 = 42 bytes; 84 fit exactly in a transaction of 84.
        let w = |k: &str| Write::Put {
            key: k.into(),
            value: "xxxxxx".into(),
            guard: Guard::Absent,
        };
        let writes = [w("k1"), w("k2"), w("k3")];
        let limits = BatchLimits {
            max_txn_ops: 10,
            max_txn_bytes: 84,
            ..BatchLimits::default()
        };
        assert_eq!(batch(&writes, &limits), vec![vec![0, 1], vec![2]]);
        let tighter = BatchLimits {
            max_txn_bytes: 83,
            ..limits
        };
        assert_eq!(batch(&writes, &tighter), vec![vec![0], vec![1], vec![2]]);
        // A write bigger than the limit still goes, alone.
        let tiny = BatchLimits {
            max_txn_bytes: 10,
            ..limits
        };
        assert_eq!(batch(&writes, &tiny).len(), 3);
    }

    #[test]
    fn guarded_batches_count_range_compares_and_extra_operations() {
        let limits = BatchLimits {
            max_txn_ops: 6,
            ..BatchLimits::default()
        };
        let writes: Vec<Write> = ["/p/a/1", "/p/a/2", "/p/b/1", "/p/b/2", "/p/c/1"]
            .iter()
            .map(|k| put(k, 1))
            .collect();
        // Without ranges or extras: 6 per transaction.
        assert_eq!(
            batch_guarded(&writes, &[], 0, 0, &limits),
            vec![vec![0, 1, 2, 3, 4]]
        );
        // Ranges /p/a/ and /p/b/ and one extra (the operation record): writes 0,1 (+1 range
        // +1 extra = 4 compares), write 2 opens range b (6 compares); write 3 would make 7.
        let ranges = ["/p/a/", "/p/b/"];
        assert_eq!(
            batch_guarded(&writes, &ranges, 1, 0, &limits),
            vec![vec![0, 1, 2], vec![3, 4]]
        );
        // Operations bound too: 5 extras leave room for one write per transaction.
        assert_eq!(batch_guarded(&writes, &[], 5, 0, &limits).len(), 5);
        // Extra bytes count in every transaction.
        let tight = BatchLimits {
            max_txn_bytes: 100,
            ..limits
        };
        let one = writes[0].size();
        assert_eq!(batch_guarded(&writes, &[], 0, 100 - one, &tight).len(), 5);
        assert!(batch_guarded(&[], &ranges, 1, 0, &limits).is_empty());
    }

    fn put(k: &str, n: usize) -> Write {
        Write::Put {
            key: k.to_string(),
            value: "x".repeat(n),
            guard: Guard::Absent,
        }
    }

    #[test]
    fn batches_respect_op_and_byte_limits() {
        let limits = BatchLimits::default();
        let writes: Vec<Write> = (0..300).map(|i| put(&format!("k{i}"), 10)).collect();
        let b = batch(&writes, &limits);
        assert_eq!(
            b.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![128, 128, 44]
        );
        assert_eq!(b.concat(), (0..300).collect::<Vec<_>>());

        let big: Vec<Write> = (0..10).map(|i| put(&format!("k{i}"), 300_000)).collect();
        let b = batch(&big, &limits);
        assert!(b.iter().all(|x| x.len() <= 3), "{b:?}");
        assert_eq!(b.concat().len(), 10);
        assert!(batch(&[], &limits).is_empty());
    }
}
