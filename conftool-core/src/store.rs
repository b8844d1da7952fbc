//! The etcd v3 store: connection, paginated range reads pinned to one revision, and
//! compare-and-swap writes batched into transactions within etcd's limits.
//!
//! This is the only module that talks to the network. Everything above it (selection,
//! planning, rendering) works on the plain data it returns: [`Snapshot`] in, [`Write`]s out.

use std::sync::Arc;

use etcd_client::{
    Certificate, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp,
    TxnResponse,
};
use futures::stream::{self, StreamExt};

use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::error::Error;
use crate::keys::Keyspace;
use crate::write::{batch, BatchLimits, Guard, Kv, Snapshot, Write};

/// What happened to a list of writes (`Raw::commit`, [`PlannedWrites::commit`](crate::PlannedWrites::commit)).
#[derive(Debug, Default)]
pub struct CommitReport {
    /// Indexes (into the input) of the writes that were applied, with the revision of the
    /// transaction that applied them.
    pub applied: Vec<(usize, i64)>,
    /// Indexes of the writes that were not applied because a guard in their transaction
    /// failed: someone changed those keys concurrently. Re-read and re-plan them.
    pub conflicted: Vec<usize>,
    /// Indexes of the writes whose transaction failed (etcd unreachable, refused, ...):
    /// they may or may not have landed; [`CommitReport::error`] says why.
    pub failed: Vec<usize>,
    /// The first transaction error, if any (from the partial commits).
    pub error: Option<Error>,
}

/// A connection to etcd, under one namespace.
#[derive(Clone)]
pub struct Store {
    eps: Arc<Endpoints>,
    keyspace: Keyspace,
    endpoints: String,
    limits: BatchLimits,
    pub(crate) read_only: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("endpoints", &self.endpoints)
            .field("keyspace", &self.keyspace)
            .finish()
    }
}

impl Store {
    /// Connect to a member that answers (and authenticate, if the configuration has a user)
    /// within the timeout. Members that do not answer are skipped, with a short head start
    /// each (see the README's failover section); fails with [`Error::Unavailable`] when none
    /// answers.
    pub async fn connect(cfg: &Config) -> Result<Store, Error> {
        // Every URL checked before the first request (and the password never sent in clear).
        cfg.validate(std::path::Path::new("configuration"))?;
        let endpoints = cfg.endpoints.join(",");
        let mut opts = ConnectOptions::new()
            .with_timeout(cfg.timeout)
            .with_connect_timeout(cfg.timeout)
            .with_auto_token_refresh(true);
        if let Some(user) = &cfg.username {
            // validate() saw to it that a user comes with a password file.
            if let Some(password) = cfg.password()? {
                opts = opts.with_user(user.clone(), password);
            }
        }
        if let Some(tls) = &cfg.tls {
            opts = opts.with_tls(tls_options(tls)?);
        }
        let eps = Endpoints::connect(cfg.endpoints.clone(), opts, cfg.timeout).await?;
        Ok(Store {
            eps: Arc::new(eps),
            keyspace: cfg.keyspace(),
            endpoints,
            limits: BatchLimits::default(),
            read_only: cfg.read_only,
        })
    }

    /// Use other batching limits (e.g. an etcd started with a lower `--max-txn-ops`).
    pub fn with_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The batching limits in use.
    pub fn limits(&self) -> &BatchLimits {
        &self.limits
    }

    /// Run one transaction (with failover; see [`Endpoints`]).
    pub(crate) async fn run_txn(&self, txn: Txn) -> Result<TxnResponse, Error> {
        self.eps
            .run(|mut kv| {
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await
    }

    /// The members and their failover, for the watch's own connections.
    pub(crate) fn members(&self) -> &Endpoints {
        &self.eps
    }

    /// The keyspace this store reads and writes.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// The endpoints, comma-separated, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// Read every key under `prefix` at one revision: one range request for small ranges,
    /// pages of [`BatchLimits::page_size`] keys pinned to the first page's revision for big
    /// ones.
    pub async fn read_prefix(&self, prefix: &str) -> Result<Snapshot, Error> {
        let mut kvs: Vec<Kv> = Vec::new();
        let revision = self
            .read_prefix_pages(prefix, |page| {
                if kvs.is_empty() {
                    // The first page (often the only one) is kept as it is, not copied.
                    kvs = page;
                    return;
                }
                // Exactly: the last page of a 100,001-key read would otherwise double the
                // vector (a million-key snapshot would hold room for two million).
                kvs.reserve_exact(page.len());
                kvs.extend(page);
            })
            .await?;
        Ok(Snapshot { revision, kvs })
    }

    /// [`Store::read_prefix`] a page at a time: `page` is given each page's keys in key
    /// order, all read at the revision returned, and nothing of a page is kept once it has
    /// been given, so a caller that keeps less than the keys themselves (the sync's decoded
    /// view of a million objects) never holds the whole read at once.
    pub async fn read_prefix_pages(
        &self,
        prefix: &str,
        mut page: impl FnMut(Vec<Kv>),
    ) -> Result<i64, Error> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut revision = 0;
        loop {
            let mut opts = GetOptions::new()
                .with_range(end.clone())
                .with_limit(self.limits.page_size);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let resp = self
                .eps
                .run(|mut kv| {
                    let (start, opts) = (start.clone(), opts.clone());
                    async move { kv.get(start, Some(opts)).await }
                })
                .await?;
            if revision == 0 {
                revision = resp.header().map(|h| h.revision()).unwrap_or_default();
            }
            let more = resp.more();
            let mut resp = resp;
            // Move keys and values out of the response instead of copying them.
            let kvs: Vec<Kv> = resp
                .take_kvs()
                .into_iter()
                .map(|item| {
                    let mod_revision = item.mod_revision();
                    let (key, value) = item.into_key_value();
                    let key = String::from_utf8(key)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    Kv {
                        key,
                        value,
                        mod_revision,
                    }
                })
                .collect();
            let next = match kvs.last() {
                Some(last) if more => {
                    let mut next = last.key.as_bytes().to_vec();
                    next.push(0);
                    Some(next)
                }
                _ => None,
            };
            page(kvs);
            match next {
                Some(next) => start = next,
                None => return Ok(revision),
            }
        }
    }

    /// Apply guarded writes in transactions of at most [`BatchLimits::max_txn_ops`]
    /// operations and [`BatchLimits::max_txn_bytes`] bytes, several in flight. A transaction
    /// whose guards fail applies none of its writes; they are reported as conflicted, and
    /// the caller decides whether to re-read and retry. Writes to the same key must not be
    /// repeated in one call. Fails if any transaction failed; [`Store::commit_partial`]
    /// says what landed even then.
    pub(crate) async fn commit(&self, writes: &[Write]) -> Result<CommitReport, Error> {
        let mut report = self.commit_partial(writes).await;
        match report.error.take() {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Like [`Store::commit`], but a failed transaction does not hide the ones that landed:
    /// the report lists applied, conflicted and failed writes, and the first error.
    pub(crate) async fn commit_partial<W: HoldsWrite + Sync>(&self, writes: &[W]) -> CommitReport {
        let batches = batch(writes.iter().map(W::write), &self.limits);
        // Per transaction: the input indexes it carried, and its outcome.
        type TxnResult = (Vec<usize>, Result<Option<i64>, Error>);
        let results: Vec<TxnResult> = stream::iter(batches)
            .map(|idx| async move {
                let txn = Txn::new()
                    .when(
                        idx.iter()
                            .map(|&i| compare(writes[i].write()))
                            .collect::<Vec<_>>(),
                    )
                    .and_then(
                        idx.iter()
                            .map(|&i| op(writes[i].write()))
                            .collect::<Vec<_>>(),
                    );
                let resp = self.run_txn(txn).await;
                let outcome = resp.map(|r| {
                    let rev = r.header().map(|h| h.revision()).unwrap_or_default();
                    r.succeeded().then_some(rev)
                });
                (idx, outcome)
            })
            .buffer_unordered(self.limits.in_flight.max(1))
            .collect()
            .await;
        let mut report = CommitReport::default();
        for (idx, outcome) in results {
            match outcome {
                Ok(Some(rev)) => report.applied.extend(idx.into_iter().map(|i| (i, rev))),
                Ok(None) => report.conflicted.extend(idx),
                Err(e) => {
                    report.failed.extend(idx);
                    report.error.get_or_insert(e);
                }
            }
        }
        report.applied.sort_unstable();
        report.conflicted.sort_unstable();
        report.failed.sort_unstable();
        report
    }

    /// Apply all `writes` in one transaction: all or nothing. Fails with a bad-input error
    /// when they do not fit in one transaction.
    pub(crate) async fn commit_atomic(&self, writes: &[Write]) -> Result<CommitReport, Error> {
        let bytes: usize = writes.iter().map(Write::size).sum();
        if writes.len() > self.limits.max_txn_ops || bytes > self.limits.max_txn_bytes {
            return Err(Error::TooLarge {
                writes: writes.len(),
                limit: self.limits.max_txn_ops,
            });
        }
        let limits = BatchLimits {
            max_txn_ops: usize::MAX,
            max_txn_bytes: usize::MAX,
            ..self.limits
        };
        let this = Store {
            limits,
            ..self.clone()
        };
        this.commit(writes).await
    }

    /// [`Store::commit_atomic`] with the partial report of [`Store::commit_partial`].
    pub(crate) async fn commit_atomic_partial(&self, writes: &[Write]) -> CommitReport {
        match self.commit_atomic(writes).await {
            Ok(r) => r,
            Err(e) => CommitReport {
                failed: (0..writes.len()).collect(),
                error: Some(e),
                ..CommitReport::default()
            },
        }
    }
}

/// An item that carries one write: the writer's writes come with the values they replace
/// (for the audit trail), and are committed as they are, not copied out first.
pub(crate) trait HoldsWrite {
    /// The write.
    fn write(&self) -> &Write;
}

impl HoldsWrite for Write {
    fn write(&self) -> &Write {
        self
    }
}

impl HoldsWrite for (Write, Option<&str>) {
    fn write(&self) -> &Write {
        &self.0
    }
}

/// The etcd compare of a write's guard.
pub(crate) fn compare(w: &Write) -> Compare {
    match w.guard() {
        Guard::Absent => Compare::version(w.key(), CompareOp::Equal, 0),
        Guard::Unchanged(rev) => Compare::mod_revision(w.key(), CompareOp::Equal, rev),
    }
}

/// The etcd operation of a write.
pub(crate) fn op(w: &Write) -> TxnOp {
    match w {
        Write::Put { key, value, .. } => TxnOp::put(key.as_str(), value.as_str(), None),
        Write::Delete { key, .. } => TxnOp::delete(key.as_str(), None),
    }
}

/// Writes that bypass the audit trail and the rules, for tests, benchmarks and repair
/// tools that must: only with the crate's `raw` feature, so a tool built on the library
/// cannot reach it by accident. Everything else writes through [`Store::writer`]. Each
/// write is still compare-and-swap guarded.
#[cfg(feature = "raw")]
#[derive(Debug, Clone, Copy)]
pub struct Raw<'s>(&'s Store);

#[cfg(feature = "raw")]
impl Store {
    /// Unaudited writes; see [`Raw`] (feature `raw`).
    pub fn raw(&self) -> Raw<'_> {
        Raw(self)
    }
}

#[cfg(feature = "raw")]
impl Raw<'_> {
    /// Apply guarded writes in transactions within the batch limits; a transaction whose
    /// guards fail applies none of its writes (reported as conflicted). Fails if any
    /// transaction failed.
    pub async fn commit(&self, writes: &[Write]) -> Result<CommitReport, Error> {
        self.0.commit(writes).await
    }

    /// Like [`Raw::commit`], but a failed transaction does not hide the ones that landed.
    pub async fn commit_partial(&self, writes: &[Write]) -> CommitReport {
        self.0.commit_partial(writes).await
    }

    /// All `writes` in one transaction, or none; [`Error::TooLarge`] if they do not fit.
    pub async fn commit_atomic(&self, writes: &[Write]) -> Result<CommitReport, Error> {
        self.0.commit_atomic(writes).await
    }
}

fn tls_options(tls: &crate::config::TlsConfig) -> Result<TlsOptions, Error> {
    let read = |p: &std::path::PathBuf| {
        conftool_trust::read_bounded(p, crate::config::MAX_TLS_BYTES, "TLS file").map_err(|e| {
            Error::Config {
                path: p.clone(),
                reason: format!("cannot read TLS file: {e}"),
            }
        })
    };
    let mut opts = TlsOptions::new();
    if let Some(ca) = &tls.ca {
        opts = opts.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            opts = opts.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        (Some(p), None) | (None, Some(p)) => {
            return Err(Error::Config {
                path: p.clone(),
                reason: "tls needs both cert and key for a client certificate".into(),
            })
        }
    }
    Ok(opts)
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // all keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"/v1/"), b"/v10".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
