//! The agent's loop: reconcile, then watch, then apply, for every pool served.
//!
//! - One [`Store::watch`] per pool: a snapshot at one revision (reconcile the whole pool
//!   with it), then every change after exactly that revision, across failovers; after
//!   compaction a new snapshot. Each event brings the agent's view of the pool up to date
//!   and the pool is reconciled: HAProxy's state is read (`show servers state <backend>`),
//!   planned against the view ([`plan_pool`](crate::plan::plan_pool)) and the commands are
//!   sent.
//! - Events already queued are taken in together, and each pool they touched is reconciled
//!   once (at most 1,024 events): a stream of changes costs one read of HAProxy's
//!   state per pool and batch, not per event.
//! - Every `recheck_interval` every pool is reconciled again against the last view. That is
//!   how a restarted HAProxy (back with its configuration's states) or a hand-made change is
//!   corrected, and how a command that failed is retried.
//! - A watch error (etcd unreachable, its leader lost, ...) changes nothing in HAProxy: the
//!   last applied state stays, the error is reported and the watch retries on its own.
//!   Until a pool's first snapshot arrives its backend is left untouched.
//! - A depooled server drains; after `drain_timeout` (noticed at a recheck) what is still
//!   in flight on it is ended, once ([`DrainClock`](crate::plan::DrainClock)).
//! - The service's depool threshold is read with each snapshot (from its service
//!   definition in etcd, the one the CLI's rules use).
//! - Keys under a pool that are not object keys, and values that are not valid states, are
//!   skipped and reported, each once ([`AgentEvent::Unreadable`]).
//! - HAProxy's socket has a descriptor kept in reserve ([`Runtime::with_reserve`]): a
//!   process out of descriptors still gets its commands to HAProxy.
//!
//! What happens is handed to the caller as [`AgentEvent`]s, one per action or finding; the
//! library never prints. What to do and say is decided in `reconcile` (pure, unit-tested);
//! this file reads etcd and HAProxy, keeps the counters, and carries the decisions out.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conftool_core::watch::WatchEvent;
use conftool_core::{Selector, Store};
use tokio::sync::mpsc;

use crate::config::AgentConfig;
use crate::error::Error;
pub use crate::event::{AgentEvent, Metrics};
use crate::reconcile::PoolCore;
use crate::runtime::Runtime;

/// The most watch events taken in before the pools they touched are reconciled.
const MAX_BATCH: usize = 1024;

/// The agent.
#[derive(Debug)]
pub struct Agent {
    cfg: AgentConfig,
    metrics: Arc<Metrics>,
}

impl Agent {
    /// An agent for this configuration.
    pub fn new(cfg: AgentConfig) -> Agent {
        Agent {
            cfg,
            metrics: Arc::default(),
        }
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Run until `shutdown` completes. Only a bad configuration ends it with an error;
    /// etcd and HAProxy trouble is reported through `on_event` and ridden out.
    pub async fn run(
        self,
        mut on_event: impl FnMut(AgentEvent),
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let store = tokio::select! {
            () = &mut shutdown => return Ok(()),
            store = connect(&self.cfg, &mut on_event) => store,
        };
        on_event(AgentEvent::Connected {
            endpoints: store.endpoints().to_string(),
        });
        let runtime = Runtime::with_reserve(&self.cfg.haproxy_socket);
        let (tx, mut rx) = mpsc::channel(64);
        let mut pools = Vec::new();
        let mut tasks = Vec::new();
        for (i, spec) in self.cfg.pools.iter().enumerate() {
            let sel = spec.selector()?;
            pools.push(PoolCore::new(
                spec.backend.as_str().into(),
                store.keyspace().pools_prefix_for(
                    Some(&spec.dc),
                    Some(&spec.cluster),
                    Some(&spec.service),
                ),
            ));
            tasks.push(spawn_watch(
                store.clone(),
                sel,
                i,
                spec.backend.clone(),
                tx.clone(),
                self.metrics.clone(),
            ));
        }
        drop(tx);
        let _abort = AbortOnDrop(tasks);
        let mut recheck = tokio::time::interval(self.cfg.recheck_interval);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                got = rx.recv() => {
                    let Some(first) = got else { return Ok(()) };
                    let oldest = first.1;
                    let touched = self
                        .take_batch(&store, &mut pools, first, &mut rx, &mut on_event)
                        .await;
                    for i in touched {
                        self.reconcile(&runtime, &mut pools[i], &mut on_event).await;
                    }
                    let lag = u64::try_from(oldest.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.metrics.watch_lag_us.store(lag, Ordering::Relaxed);
                    self.metrics
                        .watch_backlog
                        .store(rx.len() as u64, Ordering::Relaxed);
                }
                _ = recheck.tick() => {
                    for pool in &mut pools {
                        self.reconcile(&runtime, pool, &mut on_event).await;
                    }
                }
            }
        }
    }

    /// Take in `first` and everything already queued behind it (at most [`MAX_BATCH`]
    /// events), bringing each pool's view up to date; returns the pools touched, to be
    /// reconciled once each: under a stream of changes, one read of HAProxy's state per
    /// pool and batch rather than per event.
    async fn take_batch(
        &self,
        store: &Store,
        pools: &mut [PoolCore],
        first: Received,
        rx: &mut mpsc::Receiver<Received>,
        on_event: &mut impl FnMut(AgentEvent),
    ) -> BTreeSet<usize> {
        let mut touched = BTreeSet::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some((i, _, ev)) = next.take() {
            let pool = &mut pools[i];
            match ev {
                Ok(ev) => {
                    self.event(store, i, pool, &ev, on_event).await;
                    touched.insert(i);
                }
                Err(e) => {
                    self.metrics.watch_errors.fetch_add(1, Ordering::Relaxed);
                    on_event(AgentEvent::WatchError {
                        backend: pool.backend().to_string(),
                        error: e.to_string(),
                    });
                }
            }
            taken += 1;
            if taken < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        touched
    }

    /// Bring a pool's view up to date with a watch event; with a snapshot, read the
    /// service's depool threshold again.
    async fn event(
        &self,
        store: &Store,
        i: usize,
        pool: &mut PoolCore,
        ev: &WatchEvent,
        on_event: &mut impl FnMut(AgentEvent),
    ) {
        for said in pool.take_in(store.keyspace(), ev) {
            on_event(said);
        }
        let revision = pool.revision().unwrap_or(0);
        self.metrics
            .revision
            .store(u64::try_from(revision).unwrap_or(0), Ordering::Relaxed);
        if !matches!(ev, WatchEvent::Snapshot(_)) {
            return;
        }
        // The threshold, from the service definition; on failure the last one stays.
        let key = self.cfg.pools[i].pool();
        let one = BTreeSet::from([key.clone()]);
        match store.pool_members(&one).await {
            Ok(m) => {
                if let Some(m) = m.get(&key) {
                    pool.set_limits(m.limits);
                    let mut map = self
                        .metrics
                        .thresholds
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    map.insert(pool.backend().to_string(), m.limits);
                }
            }
            Err(e) => on_event(AgentEvent::WatchError {
                backend: pool.backend().to_string(),
                error: format!("reading the depool threshold: {e}"),
            }),
        }
    }

    /// Read HAProxy's state of one pool's backend, plan, apply.
    async fn reconcile(
        &self,
        runtime: &Runtime,
        pool: &mut PoolCore,
        on_event: &mut impl FnMut(AgentEvent),
    ) {
        if !pool.has_view() {
            return;
        }
        self.metrics.reconciles.fetch_add(1, Ordering::Relaxed);
        let backend = pool.backend().to_string();
        let fail = |e: Error| AgentEvent::HaProxyError {
            backend: backend.clone(),
            error: e.to_string(),
        };
        let current = runtime.servers(&backend).await;
        let outcome = match current {
            Ok(current) => pool.reconcile(&current, Instant::now(), self.cfg.drain_timeout),
            Err(e) => {
                self.metrics.haproxy_errors.fetch_add(1, Ordering::Relaxed);
                on_event(fail(e));
                None
            }
        };
        if let Some(r) = outcome {
            self.metrics
                .kept
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(backend.clone(), r.kept.clone());
            for finding in r.findings.iter().cloned() {
                on_event(finding);
            }
            for command in &r.commands {
                match runtime.apply(command).await {
                    Ok(()) => {
                        self.metrics.commands.fetch_add(1, Ordering::Relaxed);
                        on_event(r.applied(command));
                    }
                    Err(e) => {
                        self.metrics.haproxy_errors.fetch_add(1, Ordering::Relaxed);
                        on_event(fail(e));
                    }
                }
            }
        }
        self.metrics
            .haproxy_reserve_used
            .store(runtime.reserve_used(), Ordering::Relaxed);
    }
}

/// What a pool's watch task hands the loop: the pool's index, when it arrived, and the event
/// (or the watch's error).
type Received = (usize, Instant, Result<WatchEvent, conftool_core::Error>);

/// Watch pool `i` (`sel`, HAProxy's `backend`) until the loop stops listening: each event
/// is sent on `tx` with its arrival time, the watch's restarts counted in `metrics`; a watch
/// that ends or cannot start is started again a second later.
fn spawn_watch(
    store: Store,
    sel: Selector,
    i: usize,
    backend: String,
    tx: mpsc::Sender<Received>,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.watch(&sel).await {
                Ok(mut w) => {
                    while let Some(ev) = w.next().await {
                        let st = w.status();
                        metrics
                            .watch_restarts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(backend.clone(), (st.resumed, st.relists));
                        if tx.send((i, Instant::now(), ev)).await.is_err() {
                            return;
                        }
                    }
                    // Ended (an error retrying cannot fix, such as a permission
                    // refused): start over, without spinning.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    if tx.send((i, Instant::now(), Err(e))).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}

/// Connect to etcd, trying again every second until it answers.
async fn connect(cfg: &AgentConfig, on_event: &mut impl FnMut(AgentEvent)) -> Store {
    loop {
        match Store::connect(&cfg.etcd).await {
            Ok(s) => return s,
            Err(e) => {
                on_event(AgentEvent::ConnectFailed {
                    error: e.to_string(),
                });
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The watch tasks end with the agent.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
