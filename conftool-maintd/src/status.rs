//! What the daemon shows: its status (JSON) and Prometheus metrics, rendered (pure) from
//! the [`Status`] the daemon keeps up to date; the HTTP server is in `http`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::event::{EventRecord, EventState};

/// The daemon's state, for people and for Prometheus.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Whether this instance leads.
    pub leader: bool,
    /// Who leads, as a standby sees it.
    pub standby: Option<String>,
    /// The stop switch that pauses it, if set.
    pub paused: Option<String>,
    /// Polls done (every node asked once).
    pub polls: u64,
    /// When the last poll ended.
    pub last_poll: Option<String>,
    /// What each node said last.
    pub nodes: BTreeMap<String, String>,
    /// Every event, as of the last poll.
    pub events: Vec<EventRecord>,
    /// Rounds started.
    pub rounds: u64,
    /// The actions of the running round: event, node, action.
    pub running: Vec<(String, String, String)>,
    /// How long the last round took, in seconds.
    pub last_round_seconds: Option<f64>,
    /// All rounds' durations added up, in seconds.
    pub round_seconds_sum: f64,
    /// Actions ended, by action and outcome.
    pub actions: BTreeMap<(String, String), u64>,
    /// Malformed diagnoses seen.
    pub malformed: u64,
}

/// The status, shared between the daemon and the status page.
pub type Shared = Arc<Mutex<Status>>;

/// Read the shared status (a poisoned lock still holds the last status written).
pub fn snapshot(shared: &Shared) -> Status {
    shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Change the shared status.
pub fn with(shared: &Shared, f: impl FnOnce(&mut Status)) {
    f(&mut shared.lock().unwrap_or_else(|e| e.into_inner()));
}

/// The status page: `{"leader": ..., "events": [...], ...}`.
pub fn render_json(s: &Status) -> String {
    let events: Vec<Value> = s
        .events
        .iter()
        .map(|e| {
            json!({
                "id": e.id.as_str(),
                "node": e.node.as_str(),
                "state": e.state,
                "kind": e.kind,
                "command": e.command,
                "observed": e.observed,
                "operation": e.operation.as_ref().map(ToString::to_string),
                "waiting": e.waiting,
                "mark": e.mark.as_ref().map(|m| m.action),
            })
        })
        .collect();
    let running: Vec<Value> = s
        .running
        .iter()
        .map(|(id, node, action)| json!({"event": id, "node": node, "action": action}))
        .collect();
    json!({
        "leader": s.leader,
        "standby": s.standby,
        "paused": s.paused,
        "polls": s.polls,
        "last_poll": s.last_poll,
        "nodes": s.nodes,
        "events": events,
        "round": {
            "number": s.rounds,
            "running": running,
            "last_seconds": s.last_round_seconds,
        },
    })
    .to_string()
}

/// Prometheus metrics (text format 0.0.4).
pub fn render_metrics(s: &Status) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        &mut out,
        "conftool_maintd_leader",
        "Whether this instance leads (1) or stands by (0).",
        f64::from(u8::from(s.leader)),
    );
    gauge(
        &mut out,
        "conftool_maintd_paused",
        "Whether a stop switch pauses the daemon.",
        f64::from(u8::from(s.paused.is_some())),
    );
    let _ = writeln!(
        out,
        "# HELP conftool_maintd_events Events by state.\n# TYPE conftool_maintd_events gauge"
    );
    for state in EventState::ALL {
        let n = s.events.iter().filter(|e| e.state == state).count();
        let _ = writeln!(out, "conftool_maintd_events{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP conftool_maintd_actions_total Actions ended, by action and outcome.\n# TYPE conftool_maintd_actions_total counter");
    for ((action, outcome), n) in &s.actions {
        let _ = writeln!(
            out,
            "conftool_maintd_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(out, "# HELP conftool_maintd_round_duration_seconds Rounds, from their first action's start to their last action's end.\n# TYPE conftool_maintd_round_duration_seconds summary");
    let done = s.rounds.saturating_sub(u64::from(!s.running.is_empty()));
    let _ = writeln!(
        out,
        "conftool_maintd_round_duration_seconds_sum {}",
        s.round_seconds_sum
    );
    let _ = writeln!(out, "conftool_maintd_round_duration_seconds_count {done}");
    gauge(
        &mut out,
        "conftool_maintd_last_round_duration_seconds",
        "How long the last round took.",
        s.last_round_seconds.unwrap_or(0.0),
    );
    gauge(
        &mut out,
        "conftool_maintd_round_actions_running",
        "Actions of the running round.",
        s.running.len() as f64,
    );
    let _ = writeln!(out, "# HELP conftool_maintd_polls_total Polls (every node asked once).\n# TYPE conftool_maintd_polls_total counter\nconftool_maintd_polls_total {}", s.polls);
    let _ = writeln!(out, "# HELP conftool_maintd_malformed_total Malformed diagnoses seen.\n# TYPE conftool_maintd_malformed_total counter\nconftool_maintd_malformed_total {}", s.malformed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    #[test]
    fn metrics_count_events_by_state_and_actions_by_outcome() {
        let mut s = Status {
            leader: true,
            rounds: 3,
            round_seconds_sum: 1.5,
            last_round_seconds: Some(0.5),
            ..Status::default()
        };
        let rec = crate::event::tests::record;
        s.events = vec![
            rec(EventState::Ready, Kind::Evacuate),
            rec(EventState::Ready, Kind::Evacuate),
            rec(EventState::Failed, Kind::LiveRepair),
        ];
        s.actions.insert(("evacuate".into(), "ok".into()), 2);
        let m = render_metrics(&s);
        for line in [
            "conftool_maintd_leader 1",
            "conftool_maintd_paused 0",
            "conftool_maintd_events{state=\"ready\"} 2",
            "conftool_maintd_events{state=\"failed\"} 1",
            "conftool_maintd_events{state=\"in_progress\"} 0",
            "conftool_maintd_actions_total{action=\"evacuate\",outcome=\"ok\"} 2",
            "conftool_maintd_round_duration_seconds_count 3",
            "conftool_maintd_round_duration_seconds_sum 1.5",
        ] {
            assert!(m.lines().any(|l| l == line), "no {line:?} in\n{m}");
        }
        let v: Value = serde_json::from_str(&render_json(&s)).unwrap();
        assert_eq!(v["leader"], true);
        assert_eq!(v["events"][2]["state"], "failed");
        assert_eq!(v["events"][0]["kind"], "evacuate");
        assert_eq!(v["round"]["number"], 3);
    }
}
