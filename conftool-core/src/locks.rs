//! Leased locks in etcd ([`crate::coordination`]): a holder writes its entry under the
//! lock's prefix on a lease of its own, and holds the lock once its entry is among the
//! first `concurrency` by creation. A holder that dies (SIGKILL, a host that never comes
//! back) stops refreshing its lease, and its entry goes when the lease runs out: no lock is
//! ever stuck. Waiting is polling (a few times a second), with a deadline. A holder whose
//! process ends on purpose with its entry left in place (a node rebooting with its slot)
//! takes it over again in its next process ([`Store::resume_lock`]); [`Lock::refresh`]
//! starts the entry's whole time to live before it goes.
//!
//! ```no_run
//! # async fn demo(store: &conftool_core::Store, actor: &conftool_core::Actor) -> Result<(), conftool_core::Error> {
//! use std::time::Duration;
//! use conftool_core::{LockName, LockRequest};
//! let host: conftool_core::NodeName = "mw1018.eqiad.wmnet".parse()?;
//! let req = LockRequest::new(LockName::host(&host), Duration::from_secs(60), "restart php-fpm");
//! let mut lock = store.lock(actor, &req, Duration::from_secs(30)).await?;
//! lock.keep_alive(); // refreshed while this process runs; expires 60 s after it dies
//! // ... work on the host ...
//! lock.release().await?;
//! # Ok(()) }
//! ```

use std::time::{Duration, SystemTime};

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp};

use crate::audit::{rfc3339, Actor};
use crate::coordination::{holding, LockHolder, LockName};
use crate::error::Error;
use crate::store::{prefix_end, Store};

/// What a holder asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// Which lock.
    pub name: LockName,
    /// How many may hold it at once (1: a mutex).
    pub concurrency: u32,
    /// How long the entry outlives its holder.
    pub ttl: Duration,
    /// Why, as the person said.
    pub reason: Option<String>,
    /// What holds it (a command line, a tool).
    pub command: String,
}

impl LockRequest {
    /// A mutex on `name` for `ttl`, held by `command`.
    pub fn new(name: LockName, ttl: Duration, command: impl Into<String>) -> LockRequest {
        LockRequest {
            name,
            concurrency: 1,
            ttl,
            reason: None,
            command: command.into(),
        }
    }
}

/// A lock as it stands: its entries in order, how many of them hold it, and when each
/// entry expires (seconds left on its lease; `None` when etcd did not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    /// The lock.
    pub name: LockName,
    /// Every entry, oldest first, with its lease's seconds left.
    pub entries: Vec<(LockHolder, Option<i64>)>,
    /// How many of the first entries hold it.
    pub holding: usize,
}

/// A held lock; see the module docs. Dropped without [`Lock::release`], its entry stays
/// until its lease runs out (the keep-alive stops with it).
#[derive(Debug)]
pub struct Lock {
    store: Store,
    name: LockName,
    key: String,
    lease: i64,
    holder: LockHolder,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl Lock {
    /// This holder's entry.
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    /// Refresh the lease (every third of its time to live) for as long as this lock is
    /// held by this process.
    pub fn keep_alive(&mut self) {
        if self.keeper.is_some() {
            return;
        }
        let (store, lease) = (self.store.clone(), self.lease);
        let every = refresh_every(&self.holder);
        self.keeper = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // A failed refresh is tried again at the next tick; the lease has two more.
                let _ = store
                    .members()
                    .run_client(|mut c| async move {
                        let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
                        keeper.keep_alive().await?;
                        stream.message().await.map(drop)
                    })
                    .await;
            }
        }));
    }

    /// Refresh the lease once, now: the entry outlives this process by its whole time to
    /// live from here (a holder about to go away on purpose, e.g. a node rebooting with its
    /// slot, starts the clock this way). [`Error::LockBusy`] if the lease has already run out.
    pub async fn refresh(&self) -> Result<(), Error> {
        refresh_lease(&self.store, self.lease, &self.name, &self.holder).await
    }

    /// Give the lock up: the entry is deleted and its lease revoked.
    pub async fn release(mut self) -> Result<(), Error> {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        release_entry(&self.store, &self.key, self.lease).await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
    }
}

/// How often a lease is refreshed: every third of its time to live (two more refreshes
/// may fail before it runs out), never more often than every 200 ms.
fn refresh_every(holder: &LockHolder) -> Duration {
    Duration::from_millis((holder.ttl_secs.saturating_mul(1000) / 3).max(200))
}

/// Refresh a lease once; a lease that ran out (etcd answers a time to live of 0 or less)
/// means the entry is gone.
async fn refresh_lease(
    store: &Store,
    lease: i64,
    name: &LockName,
    holder: &LockHolder,
) -> Result<(), Error> {
    let ttl = store
        .members()
        .run_client(|mut c| async move {
            let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await?
        .map_or(0, |r| r.ttl());
    if ttl > 0 {
        return Ok(());
    }
    Err(Error::LockBusy {
        name: name.clone(),
        holders: Vec::new(),
        why: format!("the entry {} expired: its lease ran out", holder.id),
    })
}

/// Delete an entry and revoke its lease (revoking deletes every key on it anyway; the
/// delete makes it immediate even if the revoke fails).
async fn release_entry(store: &Store, key: &str, lease: i64) -> Result<(), Error> {
    let key = key.to_string();
    store
        .members()
        .run(|mut kv| {
            let key = key.clone();
            async move { kv.delete(key, None).await.map(drop) }
        })
        .await?;
    let _ = store
        .members()
        .run_client(|mut c| async move { c.lease_revoke(lease).await.map(drop) })
        .await;
    Ok(())
}

impl Store {
    /// Ask for a slot of `req.name` as `actor`: write this holder's entry on a lease of
    /// `req.ttl`, then wait (up to `wait`, polling) until it is among the holders. Not in
    /// time: the entry is withdrawn and [`Error::LockBusy`] names who holds the lock.
    pub async fn lock(
        &self,
        actor: &Actor,
        req: &LockRequest,
        wait: Duration,
    ) -> Result<Lock, Error> {
        let ttl = i64::try_from(req.ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let lease = self
            .members()
            .run_client(|mut c| async move { c.lease_grant(ttl, None).await })
            .await?
            .id();
        let pid = std::process::id();
        let id = format!("{}-{pid}-{:x}", actor.host, lease);
        let holder = LockHolder {
            id: id.clone(),
            user: actor.user.clone(),
            host: actor.host.clone(),
            pid,
            command: req.command.clone(),
            reason: req.reason.clone(),
            since: rfc3339(SystemTime::now()),
            ttl_secs: req.ttl.as_secs().max(1),
            concurrency: req.concurrency.max(1),
            extra: serde_json::Map::new(),
        };
        let key = format!("{}{id}", self.keyspace().lock_prefix(&req.name));
        // The holder's record is plain strings and numbers: serializing cannot fail.
        let value = serde_json::to_string(&holder).unwrap_or_default();
        let put = {
            let key = key.clone();
            Txn::new()
                .when(vec![Compare::version(key.as_str(), CompareOp::Equal, 0)])
                .and_then(vec![TxnOp::put(
                    key.as_str(),
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )])
        };
        self.run_txn(put).await?;
        let lock = Lock {
            store: self.clone(),
            name: req.name.clone(),
            key: key.clone(),
            lease,
            holder,
            keeper: None,
        };
        let deadline = tokio::time::Instant::now() + wait;
        // While it waits, the entry is refreshed as a held one would be: a wait longer
        // than the time to live must not lose its place in the queue.
        let every = refresh_every(&lock.holder);
        let mut refreshed = tokio::time::Instant::now();
        loop {
            if refreshed.elapsed() >= every {
                // A failed refresh is tried again next round; a lease that ran out shows
                // below as the entry gone.
                let _ = lock.refresh().await;
                refreshed = tokio::time::Instant::now();
            }
            let state = self.lock_state_with(&req.name, false).await?;
            let mine = state.entries.iter().position(|(h, _)| h.id == id);
            match mine {
                Some(i) if i < state.holding => return Ok(lock),
                // Our entry vanished: its lease ran out while we waited (a stalled
                // process). Withdraw and say so rather than hold nothing.
                None => {
                    return Err(Error::LockBusy {
                        name: req.name.clone(),
                        holders: Vec::new(),
                        why: "this holder's entry expired while it waited".into(),
                    })
                }
                Some(_) if tokio::time::Instant::now() >= deadline => {
                    let holders = state
                        .entries
                        .iter()
                        .take(state.holding)
                        .map(|(h, _)| h.clone())
                        .collect();
                    let _ = lock.release().await;
                    return Err(Error::LockBusy {
                        name: req.name.clone(),
                        holders,
                        why: format!("not free within {}s", wait.as_secs()),
                    });
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Take over the entry `id` of lock `name` that an earlier process of this holder left
    /// behind holding it (a node that rebooted with its slot, a run that resumes): its lease
    /// is refreshed now, and the [`Lock`] returned is kept alive and released like one just
    /// taken. `None` if the entry is gone (its lease ran out, or someone released it).
    pub async fn resume_lock(&self, name: &LockName, id: &str) -> Result<Option<Lock>, Error> {
        let state = self.lock_state(name).await?;
        let Some((holder, _)) = state.entries.into_iter().find(|(h, _)| h.id == id) else {
            return Ok(None);
        };
        let key = format!("{}{}", self.keyspace().lock_prefix(name), holder.id);
        let lease = self.lease_of(&key).await?;
        if lease == 0 {
            return Ok(None);
        }
        match refresh_lease(self, lease, name, &holder).await {
            Ok(()) => {}
            Err(Error::LockBusy { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Some(Lock {
            store: self.clone(),
            name: name.clone(),
            key,
            lease,
            holder,
            keeper: None,
        }))
    }

    /// One lock's entries, oldest first, with their leases' seconds left.
    pub async fn lock_state(&self, name: &LockName) -> Result<LockState, Error> {
        self.lock_state_with(name, true).await
    }

    /// [`Store::lock_state`]; without `ttl`, the entries' time left is not asked (one
    /// round trip instead of one more per entry: a waiter only needs its place).
    async fn lock_state_with(&self, name: &LockName, ttl: bool) -> Result<LockState, Error> {
        let prefix = self.keyspace().lock_prefix(name);
        let mut states = self.lock_states(&prefix, ttl).await?;
        Ok(states.pop().unwrap_or(LockState {
            name: name.clone(),
            entries: Vec::new(),
            holding: 0,
        }))
    }

    /// Every lock with entries, by name.
    pub async fn locks(&self) -> Result<Vec<LockState>, Error> {
        self.lock_states(&self.keyspace().locks_prefix(), true)
            .await
    }

    /// Remove one entry of a lock (someone else's too: `confctl lock release --id`).
    /// Returns whether it existed.
    pub async fn release_lock(&self, name: &LockName, id: &str) -> Result<bool, Error> {
        let state = self.lock_state(name).await?;
        let Some((holder, _)) = state.entries.iter().find(|(h, _)| h.id == id) else {
            return Ok(false);
        };
        let key = format!("{}{}", self.keyspace().lock_prefix(name), holder.id);
        let lease = self.lease_of(&key).await?;
        release_entry(self, &key, lease).await?;
        Ok(true)
    }

    /// The lease a key is on (0: none or gone).
    async fn lease_of(&self, key: &str) -> Result<i64, Error> {
        let key = key.to_string();
        let resp = self
            .members()
            .run(|mut kv| {
                let key = key.clone();
                async move { kv.get(key, None).await }
            })
            .await?;
        Ok(resp.kvs().first().map_or(0, |kv| kv.lease()))
    }

    /// The locks under `prefix`, each with its entries by creation and their leases' time
    /// left. Entries that do not parse are skipped (a newer tool's, or damaged: they still
    /// count for nothing).
    async fn lock_states(&self, prefix: &str, ttl: bool) -> Result<Vec<LockState>, Error> {
        let opts = GetOptions::new()
            .with_range(prefix_end(prefix.as_bytes()))
            .with_sort(SortTarget::Create, SortOrder::Ascend);
        let prefix_owned = prefix.to_string();
        let resp = self
            .members()
            .run(|mut kv| {
                let (p, o) = (prefix_owned.clone(), opts.clone());
                async move { kv.get(p, Some(o)).await }
            })
            .await?;
        let locks_prefix = self.keyspace().locks_prefix();
        let mut out: Vec<LockState> = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let Some((name, _)) = key
                .strip_prefix(&locks_prefix)
                .and_then(|rest| rest.rsplit_once('/'))
            else {
                continue;
            };
            let (Ok(name), Ok(holder)) = (
                name.parse::<LockName>(),
                serde_json::from_slice::<LockHolder>(kv.value()),
            ) else {
                continue;
            };
            let lease = kv.lease();
            let left = if ttl {
                self.members()
                    .run_client(|mut c| async move { c.lease_time_to_live(lease, None).await })
                    .await
                    .ok()
                    .map(|r| r.ttl())
            } else {
                None
            };
            match out.iter_mut().find(|s| s.name == name) {
                Some(s) => s.entries.push((holder, left)),
                None => out.push(LockState {
                    name,
                    entries: vec![(holder, left)],
                    holding: 0,
                }),
            }
        }
        for s in &mut out {
            let entries: Vec<LockHolder> = s.entries.iter().map(|(h, _)| h.clone()).collect();
            s.holding = holding(&entries);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
