//! Transactions that carry more than their own writes' guards: a compare over each pool
//! whose threshold judged the change ([`RangeGuard`]), and the record of the operation the
//! change belongs to ([`OpHandle`]), written in the same transaction.
//!
//! Why: a writer reads a pool, checks that its change leaves enough nodes serving, and
//! writes. Comparing only the objects it changes lets two writers each pass the check on the
//! same read and together empty the pool. With one compare over the pool's key range
//! ("nothing in it was written after the revision I judged"), the second writer's
//! transaction fails, and it re-reads and re-checks.
//!
//! Changes too many for one transaction go in a chain: each transaction compares a pool
//! against the revision of the previous transaction of the chain that wrote into it (so our
//! own writes do not fail us, and anyone else's still do), and carries the operation record
//! as it stands after its writes. A conflict stops the chain; the caller re-reads and
//! re-plans what did not land.

use std::collections::BTreeMap;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::error::Error;
use crate::operation::OperationRecord;
use crate::select::Atomicity;
use crate::selection::Change;
use crate::store::{compare, op as txn_op, prefix_end, CommitReport, Store};
use crate::write::{batch_guarded, Guard, RangeGuard, Write};

/// The open operation a writer records its changes in: the record as last written and the
/// revision of that write (its compare-and-swap guard).
#[derive(Debug, Clone)]
pub(crate) struct OpHandle {
    /// The record's key.
    pub key: String,
    /// The record as stored.
    pub record: OperationRecord,
    /// The mod revision of the stored record.
    pub mod_revision: i64,
}

impl Store {
    /// Commit `writes` (made from `changes`, index for index) with `ranges` compared and the
    /// operation record (if any) updated in the same transactions; see the module docs.
    /// With [`Atomicity::All`] it is one transaction, or [`Error::TooLarge`].
    pub(crate) async fn commit_guarded(
        &self,
        writes: &[Write],
        changes: &[Change],
        ranges: &[RangeGuard],
        mut op: Option<&mut OpHandle>,
        atomicity: Atomicity,
    ) -> CommitReport {
        let prefixes: Vec<&str> = ranges.iter().map(|r| r.prefix.as_str()).collect();
        let extra = usize::from(op.is_some());
        let record_bytes = op
            .as_ref()
            .and_then(|h| h.record.with_changes(changes).to_json().ok())
            .map_or(0, |t| t.len() + h_key_len(&op));
        let mut report = CommitReport::default();
        let batches = match atomicity {
            Atomicity::All => {
                let compares = writes.len() + ranges.len() + extra;
                let bytes: usize = writes.iter().map(Write::size).sum::<usize>() + record_bytes;
                if compares.max(writes.len() + extra) > self.limits().max_txn_ops
                    || bytes > self.limits().max_txn_bytes
                {
                    report.failed = (0..writes.len()).collect();
                    report.error = Some(Error::TooLarge {
                        writes: writes.len(),
                        limit: self
                            .limits()
                            .max_txn_ops
                            .saturating_sub(ranges.len() + extra),
                    });
                    return report;
                }
                vec![(0..writes.len()).collect::<Vec<_>>()]
            }
            Atomicity::Batched => {
                batch_guarded(writes, &prefixes, extra, record_bytes, self.limits())
            }
        };
        let mut chain: BTreeMap<&str, i64> = ranges
            .iter()
            .map(|r| (r.prefix.as_str(), r.revision))
            .collect();
        let mut batches = batches.into_iter();
        while let Some(idx) = batches.next() {
            let mut compares: Vec<Compare> = idx.iter().map(|&i| compare(&writes[i])).collect();
            let mut ops: Vec<TxnOp> = idx.iter().map(|&i| txn_op(&writes[i])).collect();
            let touched: Vec<&str> = chain
                .keys()
                .copied()
                .filter(|p| idx.iter().any(|&i| writes[i].key().starts_with(p)))
                .collect();
            for p in &touched {
                compares.push(range_unchanged(p, chain[p]));
            }
            let mut next_record = None;
            if let Some(h) = op.as_deref() {
                let mine: Vec<Change> = idx.iter().map(|&i| changes[i].clone()).collect();
                let record = h.record.with_changes(&mine);
                let text = match record.to_json() {
                    Ok(t) => t,
                    Err(e) => {
                        report.failed.extend(idx);
                        report.error = Some(e.into());
                        break;
                    }
                };
                compares.push(compare(&Write::Put {
                    key: h.key.clone(),
                    value: String::new(),
                    guard: Guard::Unchanged(h.mod_revision),
                }));
                ops.push(TxnOp::put(h.key.as_str(), text, None));
                next_record = Some(record);
            }
            let txn = Txn::new().when(compares).and_then(ops);
            match self.run_txn(txn).await {
                Ok(resp) if resp.succeeded() => {
                    let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                    report.applied.extend(idx.iter().map(|&i| (i, rev)));
                    for p in touched {
                        chain.insert(p, rev);
                    }
                    if let (Some(h), Some(record)) = (op.as_deref_mut(), next_record) {
                        h.record = record;
                        h.mod_revision = rev;
                    }
                }
                Ok(_) => {
                    // Someone changed a pool, an object or the record: this and everything
                    // after it is re-read and re-planned by the caller.
                    report.conflicted.extend(idx);
                    report.conflicted.extend(batches.by_ref().flatten());
                }
                Err(e) => {
                    report.failed.extend(idx);
                    report.error = Some(e);
                    break;
                }
            }
        }
        report
    }
}

/// The record key's length, for the byte budget.
fn h_key_len(op: &Option<&mut OpHandle>) -> usize {
    op.as_ref().map_or(0, |h| 2 * h.key.len() + 32)
}

/// "No key under `prefix` was written after `revision`".
fn range_unchanged(prefix: &str, revision: i64) -> Compare {
    Compare::mod_revision(prefix, CompareOp::Less, revision.saturating_add(1))
        .with_range(prefix_end(prefix.as_bytes()))
}
