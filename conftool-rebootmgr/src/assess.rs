//! What a run judges by: this node's health checks (run every time, all at once, and
//! published to the group), the trigger, and every constraint that may hold the reboot
//! back, read fresh from etcd and the load balancers.

use std::collections::{BTreeMap, BTreeSet};

use conftool_core::verify::{observe, Target, Want};
use conftool_core::Guard;
use conftool_core::{Cluster, NodeName, PoolKey, Pooled};

use crate::constraints::{self, HeldBack, Members};
use crate::error::Error;
use crate::local;
use crate::node::Node;
use crate::records::{self, CheckResult, Report, Stamp, Trigger, TriggerKind};
use crate::view::{self, View};
use crate::window;

impl Node {
    /// Run every configured check on this node, all at once, each within its timeout.
    pub(crate) async fn run_checks(&self) -> Vec<CheckResult> {
        let env = self.env();
        let runs = self.cfg.checks.iter().map(|c| {
            let env = env.clone();
            async move {
                let out = local::run(&c.command, true, &env, c.timeout).await;
                CheckResult {
                    name: c.name.clone(),
                    passing: out.ok(),
                    detail: if out.ok() {
                        String::new()
                    } else {
                        out.describe()
                    },
                }
            }
        });
        futures::future::join_all(runs).await
    }

    /// What asks for a reboot, if anything: the trigger file, the node's key, `--now`.
    pub(crate) fn trigger(&self, view: &View, now: bool) -> Result<Option<Trigger>, Error> {
        let file = local::trigger_file(&self.cfg.trigger_file)?;
        let by = match (now, file, view.trigger_key) {
            (true, _, _) => TriggerKind::Now,
            (_, Some(_), _) => TriggerKind::File,
            (_, None, Some(_)) => TriggerKind::Key,
            (false, None, None) => return Ok(None),
        };
        Ok(Some(Trigger {
            by,
            file_mtime_ns: file,
            key_revision: view.trigger_key,
        }))
    }

    /// Tell the group this node is up, in which boot, and how its checks went. Written only
    /// when something changed or the last report is a third of its time to live old (every
    /// write is an audit line).
    pub(crate) async fn publish(
        &self,
        view: &View,
        boot_id: &str,
        triggered: bool,
        checks: &[CheckResult],
    ) -> Result<(), Error> {
        let report = Report {
            node: self.name.clone(),
            at: Stamp::now(),
            boot_id: boot_id.to_string(),
            triggered,
            checks: checks.to_vec(),
            extra: serde_json::Map::new(),
        };
        let guard = match &view.own_report {
            Some(old)
                if old.value.same_news(&report)
                    && report.at.since(old.value.at) < self.cfg.report_max_age / 3 =>
            {
                return Ok(())
            }
            Some(old) => Guard::Unchanged(old.revision),
            None => Guard::Absent,
        };
        let key = self.keys.report(&self.cfg.group, &self.name);
        let mut writer = self.writer("rebootmgr: health report")?;
        // A lost race is another process of ours (status is read-only): the next run writes.
        view::write_key(&mut writer, &key, Some(records::json(&report)), guard, None).await?;
        Ok(())
    }

    /// Everything that holds a reboot back now, apart from a busy slot: stop switches
    /// (ours and conftool's for the clusters of the node's pools), the windows, the pools
    /// (`serving`: where the node serves, or served before it was depooled), the load
    /// balancers' view, the group rules and the health checks.
    pub(crate) async fn hold_backs(
        &self,
        view: &View,
        own: &[CheckResult],
        pools: &BTreeSet<PoolKey>,
        serving: &BTreeSet<PoolKey>,
    ) -> Result<Vec<HeldBack>, Error> {
        let mut held = self.stops(view, pools).await?;
        if !window::open(&self.cfg.windows, Stamp::now().unix_secs()) {
            held.push(HeldBack::OutsideWindow(self.cfg.windows.clone()));
        }
        let members = self.store.pool_members(pools).await?;
        held.extend(constraints::pools(&members, &self.name, serving));
        held.extend(self.lb_view(&members, serving).await);
        let away: BTreeSet<NodeName> = view
            .reboots
            .keys()
            .filter(|n| *n != &self.name)
            .cloned()
            .collect();
        let group = Members {
            me: &self.name,
            own,
            reports: &view.reports,
            away: &away,
            now: Stamp::now(),
            max_age: self.cfg.report_max_age,
        };
        held.extend(group.rules(&self.cfg.rules));
        held.extend(group.checks(&self.cfg.checks));
        Ok(held)
    }

    /// The stop switches that apply: ours (already read with the view) and conftool's.
    pub(crate) async fn stops(
        &self,
        view: &View,
        pools: &BTreeSet<PoolKey>,
    ) -> Result<Vec<HeldBack>, Error> {
        let mut held = view.stops.clone();
        let clusters: Vec<Cluster> = pools
            .iter()
            .map(|p| p.cluster.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if let Some(stop) = self.store.stopped(&clusters).await? {
            held.push(HeldBack::Stopped(stop));
        }
        Ok(held)
    }

    /// Where load balancers are configured for a pool the node serves in, each must have
    /// as many of the pool's other nodes in rotation as the pool requires (asked once each;
    /// a load balancer that cannot be asked holds the reboot back).
    async fn lb_view(
        &self,
        members: &BTreeMap<PoolKey, conftool_core::PoolMembers>,
        serving: &BTreeSet<PoolKey>,
    ) -> Vec<HeldBack> {
        let lbs = &self.conftool.load_balancers;
        let mut held = Vec::new();
        for pool in serving.iter().filter(|p| !lbs.for_pool(p).is_empty()) {
            let Some(m) = members.get(pool) else { continue };
            let targets: Vec<Target> = m
                .members
                .iter()
                .filter(|(n, s)| *n != &self.name && s.pooled != Pooled::Inactive)
                .map(|(n, _)| Target {
                    pool: pool.clone(),
                    host: n.clone(),
                    want: Want::In,
                })
                .collect();
            let required = m.limits.required(m.nodes());
            match observe(lbs, &targets, self.cfg.verify_timeout).await {
                Ok(seen) => held.extend(constraints::load_balancers(
                    pool, &seen, &self.name, required,
                )),
                Err(e) => held.push(HeldBack::LoadBalancerUnreadable(e.to_string())),
            }
        }
        held
    }
}
