//! One poll of the leader: ask the nodes, record and forget events, and start a round when
//! none runs.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conftool_core::audit::{rfc3339, utc_compact};

use super::{
    by_node, clusters, pools, startable, stopped_clusters, Daemon, DaemonEvent, Label, Leading,
    Repools,
};
use crate::diagnose::Observation;
use crate::error::Error;
use crate::event::{EventId, EventRecord, EventState, Kind};
use crate::reconcile::reconcile;
use crate::records;
use crate::round::{plan, RoundInput};
use crate::status::with;

impl Daemon {
    /// One poll; see the module docs.
    pub(super) async fn tick(
        &self,
        st: &mut Leading,
        on_event: &mut impl FnMut(DaemonEvent),
    ) -> Result<(), Error> {
        let store = &self.ctx.store;
        st.lead.check(store).await?;
        let objects = by_node(store.select(&self.ctx.cfg.nodes).await?.objects);
        let t0 = Instant::now();
        let reports = self.poll(objects.keys().cloned().collect()).await;
        let problems = reports
            .values()
            .filter(|o| matches!(o, Observation::Problem { .. }))
            .count();
        let malformed = reports.values().filter(|o| !o.well_formed()).count();
        with(&self.status, |s| {
            s.polls += 1;
            s.malformed += malformed as u64;
            s.last_poll = Some(rfc3339(SystemTime::now()));
            s.nodes = reports
                .iter()
                .map(|(n, o)| (n.to_string(), o.to_string()))
                .collect();
        });
        on_event(DaemonEvent::Polled {
            nodes: reports.len(),
            problems,
            malformed,
            took: t0.elapsed(),
        });

        let stops = store.stops().await?;
        let paused = stops
            .iter()
            .find(|s| s.scope == conftool_core::StopScope::All)
            .map(ToString::to_string);
        if paused.is_some() != st.paused {
            st.paused = paused.is_some();
            match &paused {
                Some(why) => on_event(DaemonEvent::Paused { why: why.clone() }),
                None => on_event(DaemonEvent::Resumed),
            }
        }
        with(&self.status, |s| s.paused.clone_from(&paused));

        let (stored, bad) = records::list(store).await?;
        for (key, reason) in bad {
            if st.unreadable.insert(key.clone()) {
                on_event(DaemonEvent::Unreadable { key, reason });
            }
        }
        let records: Vec<EventRecord> = stored.iter().map(|s| s.record.clone()).collect();
        let seen = reconcile(&records, &reports);
        for (node, obs) in &seen.create {
            let r = self.create(node, obs).await?;
            on_event(DaemonEvent::Created {
                id: r.id,
                node: r.node,
                kind: r.kind,
            });
        }
        let mut repools: Repools = BTreeMap::new();
        for f in seen.forget {
            match f.end_operation {
                Some(op) => repools
                    .entry(op)
                    .or_insert_with(|| (f.node.clone(), Vec::new()))
                    .1
                    .push((f.id, f.why)),
                None => {
                    let Some(s) = stored.iter().find(|s| s.record.id == f.id) else {
                        continue;
                    };
                    let mut w =
                        self.writer(format!("maintd event {}: forgotten: {}", f.id, f.why))?;
                    if records::delete(&mut w, s).await? {
                        on_event(DaemonEvent::Forgotten {
                            id: f.id,
                            node: f.node,
                            why: f.why,
                        });
                    }
                }
            }
        }

        // In progress, but not here: a dead leader's. Its evacuation is resumed (the node's
        // operation makes that safe); a repair's outcome is unknown: failed.
        let (stored, _) = records::list(store).await?;
        let mut orphans = Vec::new();
        for s in &stored {
            let r = &s.record;
            if r.state != EventState::InProgress || st.running.contains_key(&r.id) {
                continue;
            }
            if r.kind.evacuates() {
                orphans.push(r.clone());
                continue;
            }
            let by = self.ctx.by.clone();
            let mut w = self.writer(format!("maintd event {}: interrupted", r.id))?;
            records::update(&mut w, &r.id, |r| {
                if r.state != EventState::InProgress {
                    return Ok(false);
                }
                let what = "interrupted: the instance running its repair stopped, so its \
                            outcome is unknown (forget the event to run it again)";
                r.to(EventState::Failed, &by, &now(), what);
                Ok(true)
            })
            .await?;
            on_event(DaemonEvent::Interrupted { id: r.id.clone() });
        }

        let result = if paused.is_some() {
            Ok(())
        } else {
            self.round(st, &objects, repools, orphans, on_event).await
        };
        self.show_events().await?;
        result
    }

    /// Start the next round if none runs (repools first: nodes come back before others go
    /// out), or only what supersedes a running action if one does.
    async fn round(
        &self,
        st: &mut Leading,
        objects: &BTreeMap<conftool_core::NodeName, Vec<conftool_core::Selected>>,
        repools: Repools,
        orphans: Vec<EventRecord>,
        on_event: &mut impl FnMut(DaemonEvent),
    ) -> Result<(), Error> {
        let store = &self.ctx.store;
        if st.running.is_empty() {
            if !repools.is_empty() {
                for (op, (node, events)) in repools {
                    let Some((first, _)) = events.first().cloned() else {
                        continue;
                    };
                    let ctx = self.ctx.clone();
                    let n = node.clone();
                    self.spawn(
                        st,
                        first,
                        node,
                        Label::Repool,
                        async move { ctx.repool(&n, &op, &events).await },
                        on_event,
                    );
                }
                return Ok(());
            }
            for r in orphans {
                let ctx = self.ctx.clone();
                let cl = clusters(objects.get(&r.node));
                let (id, node, label) = (r.id.clone(), r.node.clone(), Label::of(r.kind));
                self.spawn(
                    st,
                    id,
                    node,
                    label,
                    async move { ctx.evacuate(&r, &cl).await },
                    on_event,
                );
            }
        }
        let (stored, _) = records::list(store).await?;
        let events: Vec<EventRecord> = stored.into_iter().map(|s| s.record).collect();
        let members = store.pool_members(&pools(objects)).await?;
        let stopped = stopped_clusters(&store.stops().await?);
        let running: BTreeMap<EventId, (conftool_core::NodeName, Kind)> = st
            .running
            .iter()
            .map(|(id, r)| (id.clone(), (r.node.clone(), r.label.kind())))
            .collect();
        let planned = plan(&RoundInput {
            events: &events,
            objects,
            pools: &members,
            running: &running,
            stopped: &stopped,
        });
        for (id, why) in planned.hold {
            let Some(r) = events.iter().find(|e| e.id == id) else {
                continue;
            };
            if r.state == EventState::Pending && r.waiting.as_deref() == Some(why.as_str()) {
                continue;
            }
            let by = self.ctx.by.clone();
            let mut w = self.writer(format!("maintd event {id}: waits"))?;
            records::update(&mut w, &id, |r| {
                if !startable(r) {
                    return Ok(false);
                }
                if r.state != EventState::Pending {
                    r.to(EventState::Pending, &by, &now(), format!("waits: {why}"));
                }
                r.waiting = Some(why.clone());
                Ok(true)
            })
            .await?;
            on_event(DaemonEvent::Held { id, why });
        }
        for id in planned.start {
            // The leadership again, right before acting.
            st.lead.check(store).await?;
            let by = self.ctx.by.clone();
            let mut started = false;
            let mut w = self.writer(format!("maintd event {id}: action starts"))?;
            let r = records::update(&mut w, &id, |r| {
                started = startable(r);
                if started {
                    r.waiting = None;
                    let what = format!("{} starts", Label::of(r.kind).as_str());
                    r.to(EventState::InProgress, &by, &now(), what);
                }
                Ok(started)
            })
            .await?;
            if !started {
                continue;
            }
            let ctx = self.ctx.clone();
            let cl = clusters(objects.get(&r.node));
            let (node, label) = (r.node.clone(), Label::of(r.kind));
            if r.kind == Kind::LiveRepair {
                self.spawn(
                    st,
                    id,
                    node,
                    label,
                    async move { ctx.live_repair(&r, &cl).await },
                    on_event,
                );
            } else {
                self.spawn(
                    st,
                    id,
                    node,
                    label,
                    async move { ctx.evacuate(&r, &cl).await },
                    on_event,
                );
            }
        }
        Ok(())
    }

    /// Record a new event for what `node` said.
    async fn create(
        &self,
        node: &conftool_core::NodeName,
        obs: &Observation,
    ) -> Result<EventRecord, Error> {
        let fingerprint = obs.fingerprint(node.as_str());
        let kind = obs.kind().unwrap_or(Kind::Malformed);
        let mut attempt = 0u32;
        loop {
            let now = SystemTime::now();
            let id = EventId::new(&utc_compact(now), random(&fingerprint, attempt))?;
            let command = match obs {
                Observation::Problem { command, .. } => command.clone(),
                _ => None,
            };
            let mut r = EventRecord {
                id: id.clone(),
                node: node.clone(),
                state: EventState::Observed,
                kind,
                fingerprint: fingerprint.clone(),
                output: obs.value(),
                command,
                observed: rfc3339(now),
                operation: None,
                waiting: None,
                mark: None,
                history: Vec::new(),
                extra: serde_json::Map::new(),
            };
            r.note(
                &self.ctx.by,
                &rfc3339(now),
                format!("observed: {node} reports {obs}"),
            );
            let mut w = self.writer(format!("maintd event {id}: observed on {node}"))?;
            if records::create(&mut w, &r).await? {
                return Ok(r);
            }
            // The id is taken (two events in the same second drew the same number).
            attempt += 1;
            if attempt == 8 {
                return Err(Error::Conflict(id));
            }
        }
    }

    fn writer(&self, reason: String) -> Result<conftool_core::Writer<'_>, Error> {
        Ok(self
            .ctx
            .store
            .writer(&self.ctx.actor, &self.ctx.audit)?
            .with_reason(reason))
    }
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

/// A random number for an id (std's randomly keyed hasher, fed the time, the fingerprint and
/// the attempt): ids of events created in the same second differ.
fn random(fingerprint: &str, attempt: u32) -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(fingerprint.as_bytes());
    h.write_u32(attempt);
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() & 0xffff_ffff) as u32
}
