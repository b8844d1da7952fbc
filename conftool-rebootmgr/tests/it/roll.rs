//! Every node triggered: they reboot one at a time, each exactly once, and the group ends
//! as it started (all pooled, no slot held, no record, no open operation, triggers gone).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::sim::{events, ts_ms, Line, Sim};

/// Nodes in the roll: modest by default (CI has 2 cores); `REBOOTMGR_SIM_NODES=10` for the
/// figure in the README.
pub fn node_count() -> usize {
    std::env::var("REBOOTMGR_SIM_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_triggered_nodes_reboot_one_at_a_time() {
    let n = node_count();
    let mut sim = Sim::start(n, "").await;
    let before = Before::take(&sim).await;
    let (lines, elapsed) = roll(&mut sim);
    eprintln!(
        "rolled {n} nodes in {:.1}s ({:.2}s a node)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / n as f64
    );
    let spans = one_at_a_time(&sim, &lines);
    breakdown(&lines, &spans);
    before.assert_ends_as_it_started(&sim).await;
}

/// Trigger every node and run their timers (every 300 ms) until each has rebooted: every
/// line written, and how long the roll took.
pub fn roll(sim: &mut Sim) -> (Vec<Line>, Duration) {
    let n = sim.nodes.len();
    for node in &sim.nodes {
        sim.trigger(node);
    }
    let start = Instant::now();
    let nodes = sim.nodes.clone();
    sim.start_timers(&nodes, Duration::from_millis(300));
    sim.wait_lines(
        "every node done",
        Duration::from_secs(60 + 15 * n as u64),
        |l| events(l, "done").len() >= n,
    );
    let elapsed = start.elapsed();
    sim.stop_timers();
    let lines = sim.lines.lock().unwrap().clone();
    (lines, elapsed)
}

/// Asserts each node was out of its pools once, from its depool to its repool, rebooted
/// once, and no two at once: the spans (depooled ms, repooled ms, node), in order.
pub fn one_at_a_time(sim: &Sim, lines: &[Line]) -> Vec<(u64, u64, String)> {
    let mut spans: Vec<(u64, u64, String)> = Vec::new();
    for node in &sim.nodes {
        let mine = of_node(lines, node);
        let depooled = events(&mine, "depooled");
        let repooled = events(&mine, "repooled");
        assert_eq!(
            (depooled.len(), repooled.len()),
            (1, 1),
            "{node}: {mine:#?}"
        );
        assert_eq!(events(&mine, "done").len(), 1, "{node} rebooted once");
        spans.push((ts_ms(depooled[0]), ts_ms(repooled[0]), node.clone()));
    }
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "{} and {} were out at once: {spans:?}",
            w[0].2,
            w[1].2
        );
    }
    spans
}

/// The lines `node`'s runs wrote.
pub fn of_node(lines: &[Line], node: &str) -> Vec<Line> {
    lines
        .iter()
        .filter(|l| l["node"] == node)
        .cloned()
        .collect()
}

/// The group before a roll: its pool and each node's boot id.
pub struct Before {
    pool: BTreeMap<String, String>,
    boots: Vec<String>,
}

impl Before {
    pub async fn take(sim: &Sim) -> Before {
        Before {
            pool: sim.pool().await,
            boots: sim.nodes.iter().map(|n| sim.boot_id(n)).collect(),
        }
    }

    /// Every node rebooted (a new boot id, its trigger cleared), and the group as it
    /// started: all pooled, no slot held, no record, no open operation; the next run has
    /// nothing to do.
    pub async fn assert_ends_as_it_started(&self, sim: &Sim) {
        for (node, old) in sim.nodes.iter().zip(&self.boots) {
            assert_ne!(&sim.boot_id(node), old, "{node} rebooted");
            assert!(!sim.triggered(node), "{node}'s trigger file cleared");
        }
        assert_eq!(sim.pool().await, self.pool, "every node pooled again");
        assert!(sim.keys_under("v1/locks/").await.is_empty());
        assert!(sim
            .keys_under("v1/rebootmgr/groups/web/reboots/")
            .await
            .is_empty());
        assert!(sim.open_operations().await.is_empty());
        let (code, lines, _) = sim.run("node1", &["run"]);
        assert_eq!(code, 0);
        assert_eq!(events(&lines, "not_triggered").len(), 1, "{lines:#?}");
    }
}

/// Where a roll's time goes, averaged over the nodes (printed, not asserted): preparing
/// (depool to reboot command: settle, checks), away (reboot command to the first run after
/// the boot: the timer's interval and a process start), returning (back to repooled), and
/// the hand-over (one node repooled to the next depooled: slot release, the next node's
/// timer, its checks and constraints).
pub fn breakdown(lines: &[Line], spans: &[(u64, u64, String)]) {
    let at = |node: &str, event: &str| {
        lines
            .iter()
            .find(|l| l["node"] == node && l["event"] == event)
            .map(ts_ms)
            .unwrap_or_default()
    };
    let (mut prepare, mut away, mut back) = (0, 0, 0);
    for (depooled, repooled, node) in spans {
        let (rebooting, returned) = (at(node, "rebooting"), at(node, "back"));
        prepare += rebooting.saturating_sub(*depooled);
        away += returned.saturating_sub(rebooting);
        back += repooled.saturating_sub(returned);
    }
    let handover: u64 = spans
        .windows(2)
        .map(|w| w[1].0.saturating_sub(w[0].1))
        .sum();
    let n = spans.len().max(1) as u64;
    eprintln!(
        "per node: preparing {} ms, away {} ms, returning {} ms; hand-over {} ms",
        prepare / n,
        away / n,
        back / n,
        handover / (n - 1).max(1)
    );
}
