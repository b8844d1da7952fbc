//! The daemon: stand by until this instance leads, then at every poll interval: ask every
//! node, turn what they say into events ([`crate::reconcile`]), and when the previous
//! round's actions have all finished, start the next round ([`crate::round`]). Actions run
//! as tasks ([`crate::actions`]); what happens is handed to the caller as [`DaemonEvent`]s
//! (the library never prints), and kept in the shared [`Status`](crate::status::Status).
//!
//! A stop switch set for everything pauses it: nodes are still asked and events recorded,
//! but nothing is acted on (nor put back) until it is cleared.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conftool_core::StopScope;
use conftool_core::{Cluster, NodeName, OperationId, PoolKey, Selected};
use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::actions::{Ctx, Done};
use crate::command;
use crate::diagnose::{Observation, Ran};
use crate::error::Error;
use crate::event::{EventId, EventRecord, EventState, Kind};
use crate::leader::{describe, try_lead, Leadership};
use crate::status::{with, Shared};

mod tick;

/// What the daemon does, for its log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DaemonEvent {
    /// Another instance leads; this one waits.
    Standby {
        /// Who leads.
        leader: String,
    },
    /// This instance leads now.
    Leading,
    /// Every node was asked.
    Polled {
        /// How many nodes.
        nodes: usize,
        /// How many asked for something.
        problems: usize,
        /// How many said something malformed.
        malformed: usize,
        /// How long it took.
        took: Duration,
    },
    /// A new event.
    Created {
        /// The event.
        id: EventId,
        /// Its node.
        node: NodeName,
        /// What the node asked for.
        kind: Kind,
    },
    /// An event was forgotten.
    Forgotten {
        /// The event.
        id: EventId,
        /// Its node.
        node: NodeName,
        /// Why.
        why: String,
    },
    /// An event waits (said when the reason changes).
    Held {
        /// The event.
        id: EventId,
        /// Why.
        why: String,
    },
    /// An action started.
    Started {
        /// The event.
        id: EventId,
        /// Its node.
        node: NodeName,
        /// Which action.
        action: &'static str,
    },
    /// An action ended.
    Ended {
        /// The event.
        id: EventId,
        /// Its node.
        node: NodeName,
        /// Which action.
        action: &'static str,
        /// How it ended (`ok`, `held`, `failed`, `unverified`, `error`).
        outcome: &'static str,
        /// What happened.
        detail: String,
    },
    /// A live repair a dead leader was running: failed, since its outcome is unknown.
    Interrupted {
        /// The event.
        id: EventId,
    },
    /// A round started.
    RoundStarted {
        /// Its number.
        number: u64,
    },
    /// A round's actions have all ended.
    RoundEnded {
        /// Its number.
        number: u64,
        /// How long it took.
        took: Duration,
    },
    /// A stop switch pauses the daemon.
    Paused {
        /// Which, by whom, why.
        why: String,
    },
    /// The stop switch was cleared.
    Resumed,
    /// An event record that does not parse (said once).
    Unreadable {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A poll failed (etcd unreachable, say); the next one tries again.
    Error {
        /// What failed.
        error: String,
    },
}

/// Which action a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Evacuate,
    EvacuateFailover,
    LiveRepair,
    Repool,
}

impl Label {
    fn as_str(self) -> &'static str {
        match self {
            Label::Evacuate => "evacuate",
            Label::EvacuateFailover => "evacuate-failover",
            Label::LiveRepair => "live-repair",
            Label::Repool => "repool",
        }
    }

    fn of(kind: Kind) -> Label {
        match kind {
            Kind::EvacuateFailover => Label::EvacuateFailover,
            Kind::LiveRepair => Label::LiveRepair,
            _ => Label::Evacuate,
        }
    }

    /// How the round planner counts it: a repool holds its node like the most invasive
    /// action (nothing supersedes it).
    fn kind(self) -> Kind {
        match self {
            Label::LiveRepair => Kind::LiveRepair,
            Label::Evacuate => Kind::Evacuate,
            Label::EvacuateFailover | Label::Repool => Kind::EvacuateFailover,
        }
    }
}

/// A running action.
struct Run {
    node: NodeName,
    label: Label,
    task: JoinHandle<()>,
}

/// A finished action, as its task reports it.
struct Finished {
    id: EventId,
    node: NodeName,
    label: Label,
    result: Result<Done, Error>,
}

/// The leader's state between polls.
struct Leading {
    lead: Leadership,
    running: BTreeMap<EventId, Run>,
    round: Option<(u64, Instant)>,
    tx: mpsc::Sender<Finished>,
    rx: mpsc::Receiver<Finished>,
    paused: bool,
    unreadable: BTreeSet<String>,
}

/// The maintenance daemon; see the module docs.
#[derive(Debug, Clone)]
pub struct Daemon {
    ctx: Arc<Ctx>,
    status: Shared,
}

impl Daemon {
    /// A daemon acting through `ctx`, keeping `status` up to date.
    pub fn new(ctx: Ctx, status: Shared) -> Daemon {
        Daemon {
            ctx: Arc::new(ctx),
            status,
        }
    }

    /// Run until `shutdown` completes: stand by, lead, poll and act. On shutdown the
    /// running actions finish and the leadership is given up (the next instance takes
    /// over at once). [`Error::LostLeadership`] if the lease ran out under it.
    pub async fn run(
        &self,
        mut on_event: impl FnMut(DaemonEvent),
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let ttl = self.ctx.cfg.lease_ttl;
        // Waiting in line outlasting the entry's own lease would lose the place: ask again.
        let wait = (ttl / 2).max(Duration::from_secs(1));
        let mut said = String::new();
        let lead = loop {
            let attempt = tokio::select! {
                () = &mut shutdown => return Ok(()),
                r = try_lead(&self.ctx.store, &self.ctx.actor, ttl, wait) => r,
            };
            match attempt {
                Ok(Ok(lead)) => break lead,
                Ok(Err(holders)) => {
                    let leader = describe(&holders);
                    if leader != said {
                        said.clone_from(&leader);
                        with(&self.status, |s| s.standby = Some(leader.clone()));
                        on_event(DaemonEvent::Standby { leader });
                    }
                }
                Err(e) => {
                    on_event(DaemonEvent::Error {
                        error: e.to_string(),
                    });
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(self.ctx.cfg.poll_interval.min(wait)) => {}
                    }
                }
            }
        };
        let mut st = self.leading(lead, &mut on_event);
        let mut tick = tokio::time::interval(self.ctx.cfg.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = tick.tick() => match self.tick(&mut st, &mut on_event).await {
                    Err(Error::LostLeadership) => {
                        for (_, run) in std::mem::take(&mut st.running) {
                            run.task.abort();
                        }
                        with(&self.status, |s| s.leader = false);
                        return Err(Error::LostLeadership);
                    }
                    Err(e) => on_event(DaemonEvent::Error { error: e.to_string() }),
                    Ok(()) => {}
                },
                Some(done) = st.rx.recv() => {
                    self.ended(&mut st, done, &mut on_event);
                    if let Err(e) = self.show_events().await {
                        on_event(DaemonEvent::Error { error: e.to_string() });
                    }
                }
            }
        }
        self.finish(st, &mut on_event).await
    }

    /// One poll and its round, if this instance can lead now ([`Error::NotLeader`] if
    /// another does): for cron, or a person.
    pub async fn once(&self, mut on_event: impl FnMut(DaemonEvent)) -> Result<(), Error> {
        let ttl = self.ctx.cfg.lease_ttl;
        let lead = try_lead(&self.ctx.store, &self.ctx.actor, ttl, Duration::ZERO)
            .await?
            .map_err(|holders| Error::NotLeader(describe(&holders)))?;
        let mut st = self.leading(lead, &mut on_event);
        let result = self.tick(&mut st, &mut on_event).await;
        let finished = self.finish(st, &mut on_event).await;
        result.and(finished)
    }

    fn leading(&self, lead: Leadership, on_event: &mut impl FnMut(DaemonEvent)) -> Leading {
        with(&self.status, |s| {
            s.leader = true;
            s.standby = None;
        });
        on_event(DaemonEvent::Leading);
        let (tx, rx) = mpsc::channel(256);
        Leading {
            lead,
            running: BTreeMap::new(),
            round: None,
            tx,
            rx,
            paused: false,
            unreadable: BTreeSet::new(),
        }
    }

    /// Let the running actions finish, then give the leadership up.
    async fn finish(
        &self,
        mut st: Leading,
        on_event: &mut impl FnMut(DaemonEvent),
    ) -> Result<(), Error> {
        while !st.running.is_empty() {
            match st.rx.recv().await {
                Some(done) => self.ended(&mut st, done, on_event),
                None => break,
            }
        }
        with(&self.status, |s| s.leader = false);
        let shown = self.show_events().await;
        st.lead.release().await.and(shown)
    }

    /// The events as they stand now, for the status page (an action that ended changed
    /// its event).
    async fn show_events(&self) -> Result<(), Error> {
        let (stored, _) = crate::records::list(&self.ctx.store).await?;
        with(&self.status, |s| {
            s.events = stored.into_iter().map(|s| s.record).collect();
        });
        Ok(())
    }

    /// An action ended: its metrics, and the round's end when it was the last.
    fn ended(&self, st: &mut Leading, f: Finished, on_event: &mut impl FnMut(DaemonEvent)) {
        st.running.remove(&f.id);
        let (outcome, detail) = match f.result {
            Ok(done) => (done.outcome.as_str(), done.detail),
            Err(e) => ("error", e.to_string()),
        };
        let action = f.label.as_str();
        with(&self.status, |s| {
            *s.actions
                .entry((action.to_string(), outcome.to_string()))
                .or_default() += 1;
        });
        on_event(DaemonEvent::Ended {
            id: f.id,
            node: f.node,
            action,
            outcome,
            detail,
        });
        if st.running.is_empty() {
            if let Some((number, t0)) = st.round.take() {
                let took = t0.elapsed();
                with(&self.status, |s| {
                    s.last_round_seconds = Some(took.as_secs_f64());
                    s.round_seconds_sum += took.as_secs_f64();
                });
                on_event(DaemonEvent::RoundEnded { number, took });
            }
        }
        self.show_running(st);
    }

    fn show_running(&self, st: &Leading) {
        let running = st
            .running
            .iter()
            .map(|(id, r)| {
                (
                    id.to_string(),
                    r.node.to_string(),
                    r.label.as_str().to_string(),
                )
            })
            .collect();
        with(&self.status, |s| s.running = running);
    }

    /// Start an action as a task of the current round (a new round if none runs).
    fn spawn(
        &self,
        st: &mut Leading,
        id: EventId,
        node: NodeName,
        label: Label,
        work: impl Future<Output = Result<Done, Error>> + Send + 'static,
        on_event: &mut impl FnMut(DaemonEvent),
    ) {
        if st.running.is_empty() && st.round.is_none() {
            let number = {
                let mut n = 0;
                with(&self.status, |s| {
                    s.rounds += 1;
                    n = s.rounds;
                });
                n
            };
            st.round = Some((number, Instant::now()));
            on_event(DaemonEvent::RoundStarted { number });
        }
        let tx = st.tx.clone();
        let (tid, tnode) = (id.clone(), node.clone());
        let task = tokio::spawn(async move {
            let result = work.await;
            let _ = tx
                .send(Finished {
                    id: tid,
                    node: tnode,
                    label,
                    result,
                })
                .await;
        });
        on_event(DaemonEvent::Started {
            id: id.clone(),
            node: node.clone(),
            action: label.as_str(),
        });
        st.running.insert(id, Run { node, label, task });
        self.show_running(st);
    }

    /// Ask every node, at most `diagnose_parallel` at once.
    async fn poll(&self, nodes: Vec<NodeName>) -> BTreeMap<NodeName, Observation> {
        let cfg = &self.ctx.cfg;
        stream::iter(nodes)
            .map(|n| async move {
                let argv = cfg.diagnose_for(&n);
                let out = command::run(&argv, None, cfg.diagnose_timeout, 64 << 10).await;
                let ran = match out.ended {
                    command::Ended::Exited(code) => Ran::Exited {
                        code,
                        stdout: out.stdout,
                    },
                    other => Ran::Failed(other.to_string()),
                };
                (n, Observation::from_run(&ran))
            })
            .buffer_unordered(cfg.diagnose_parallel)
            .collect()
            .await
    }
}

/// Each node's objects.
fn by_node(objects: Vec<Selected>) -> BTreeMap<NodeName, Vec<Selected>> {
    let mut out: BTreeMap<NodeName, Vec<Selected>> = BTreeMap::new();
    for o in objects {
        out.entry(o.key.node.clone()).or_default().push(o);
    }
    out
}

/// The clusters of a node's objects.
fn clusters(objects: Option<&Vec<Selected>>) -> Vec<Cluster> {
    let set: BTreeSet<Cluster> = objects
        .into_iter()
        .flatten()
        .map(|o| o.key.pool.cluster.clone())
        .collect();
    set.into_iter().collect()
}

/// The pools of all these objects.
fn pools(objects: &BTreeMap<NodeName, Vec<Selected>>) -> BTreeSet<PoolKey> {
    objects
        .values()
        .flatten()
        .map(|o| o.key.pool.clone())
        .collect()
}

/// The clusters whose own stop switch is set.
fn stopped_clusters(stops: &[conftool_core::Stop]) -> BTreeSet<Cluster> {
    stops
        .iter()
        .filter_map(|s| match &s.scope {
            StopScope::Cluster(c) => Some(c.clone()),
            StopScope::All => None,
        })
        .collect()
}

/// Repools to start: per operation, its node and the events it ends.
type Repools = BTreeMap<OperationId, (NodeName, Vec<(EventId, String)>)>;

/// Whether an event's state lets a round start its action.
fn startable(r: &EventRecord) -> bool {
    matches!(r.state, EventState::Observed | EventState::Pending)
}
