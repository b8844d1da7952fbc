//! Events against a real etcd: identity, evacuate, live repair, failure, malformed output.

use conftool_maintd::{EventState, Kind};

use crate::harness::World;

const EVAC: &str = r#"{"status": "evacuate", "details": {"disk": "sdb"}}"#;

#[test]
fn an_evacuation_is_depooled_into_an_operation_that_names_the_event_and_is_ready() {
    let w = World::new(3, 0.5);
    let d = w.daemon("", "maintd-a");
    w.say("mw1", EVAC);
    w.once(&d);
    let ev = w.events_of("mw1");
    assert_eq!(ev.len(), 1, "{ev:?}");
    let e = &ev[0];
    assert_eq!(
        (e.state, e.kind),
        (EventState::Ready, Kind::Evacuate),
        "{e:?}"
    );
    assert_eq!(w.pooled()["mw1"], "no");
    assert_eq!(
        (w.pooled()["mw2"].as_str(), w.pooled()["mw3"].as_str()),
        ("yes", "yes")
    );
    // The operation holds the depool, and its reason and step name the event.
    let op = e.operation.clone().expect("an operation");
    let store = w.store();
    let rec =
        w.rt.block_on(store.operation(&op))
            .expect("read")
            .expect("the operation");
    let reason = rec.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("maintd event {}", e.id)),
        "{reason}"
    );
    assert_eq!(rec.objects.len(), 1);
    assert!(
        rec.steps
            .iter()
            .any(|s| s.detail.starts_with(&format!("event {}: evacuate", e.id))),
        "{rec:?}"
    );
    // The history: observed, the action starting, ready.
    let states: Vec<EventState> = e.history.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [
            EventState::Observed,
            EventState::InProgress,
            EventState::Ready
        ]
    );
    assert!(e.history.iter().all(|h| h.by == "maintd-a"));

    // The same output (spelt differently) is the same event: nothing new, nothing done.
    w.say("mw1", r#"{"details":{"disk":"sdb"},"status":"evacuate"}"#);
    let before = w.dump_but_locks();
    w.once(&d);
    assert_eq!(w.events_of("mw1"), ev, "the same event, untouched");
    assert_eq!(
        w.dump_but_locks(),
        before,
        "nothing written but the leader's lock"
    );
    // Other details: another event.
    w.say(
        "mw1",
        r#"{"status": "evacuate", "details": {"disk": "sdc"}}"#,
    );
    w.once(&d);
    let now = w.events_of("mw1");
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.iter().any(|x| x.id == e.id),
        "the first one stays (not acknowledged)"
    );
}

#[test]
fn a_live_repair_gets_the_diagnosis_on_stdin_and_a_failure_stops_its_event() {
    // Threshold 0: a live repair counts as taking its node out (see the round planner).
    let w = World::new(3, 0.0);
    let d = w.daemon("", "maintd-a");
    let diag = r#"{"status":"live-repair","command":"fix-nic","details":{"nic":"eno1"}}"#;
    w.say("mw2", diag);
    w.repair_exits("mw3", 3);
    w.say("mw3", diag);
    w.once(&d);
    // The repair command read the diagnosis, as a JSON value.
    let got = w.repair_inputs("mw2");
    assert_eq!(got.len(), 1, "{got:?}");
    let v: serde_json::Value = serde_json::from_str(&got[0]).expect("JSON on stdin");
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(diag).expect("json")
    );
    let ok = &w.events_of("mw2")[0];
    assert_eq!(ok.state, EventState::Ready, "{ok:?}");
    assert_eq!(w.pooled()["mw2"], "yes", "a live repair does not depool");
    // The failed one: failed, with why, and never run again.
    let failed = &w.events_of("mw3")[0];
    assert_eq!(failed.state, EventState::Failed, "{failed:?}");
    let last = &failed.history.last().expect("history").what;
    assert!(
        last.starts_with("repair command fix-nic exited 3"),
        "{last}"
    );
    w.once(&d);
    w.once(&d);
    assert_eq!(
        w.repair_inputs("mw3").len(),
        1,
        "nothing more is done for a failed event"
    );
    assert_eq!(w.events_of("mw3")[0].state, EventState::Failed);
}

#[test]
fn a_repair_that_is_not_whitelisted_fails_without_running() {
    let w = World::new(2, 0.0);
    let d = w.daemon("", "maintd-a");
    w.say("mw1", r#"{"status":"live-repair","command":"rm-rf"}"#);
    w.once(&d);
    let e = &w.events_of("mw1")[0];
    assert_eq!(e.state, EventState::Failed);
    let last = &e.history.last().expect("history").what;
    assert_eq!(
        last,
        "repair command \"rm-rf\" is not whitelisted (repair_commands: fix-nic)"
    );
    assert!(w.repair_inputs("mw1").is_empty());
}

#[test]
fn malformed_output_is_an_event_of_its_own_and_never_acted_on() {
    let w = World::new(2, 0.0);
    let d = w.daemon("", "maintd-a");
    w.say("mw1", "Traceback (most recent call last):");
    std::fs::remove_file(w.path("mw2.json")).expect("rm");
    w.once(&d);
    w.once(&d);
    let one = w.events_of("mw1");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(
        (one[0].kind, one[0].state),
        (Kind::Malformed, EventState::Observed)
    );
    assert!(
        one[0].output["malformed"]
            .as_str()
            .unwrap_or("")
            .starts_with("not JSON"),
        "{one:?}"
    );
    // A diagnose command that fails is malformed too.
    let two = &w.events_of("mw2")[0];
    assert_eq!(two.output["malformed"], "the diagnose command exited 1");
    assert_eq!(
        (w.pooled()["mw1"].as_str(), w.pooled()["mw2"].as_str()),
        ("yes", "yes")
    );
    // Fixed: the malformed events go (nothing was done).
    w.say("mw1", r#"{"status":"ok"}"#);
    w.say("mw2", r#"{"status":"ok"}"#);
    w.once(&d);
    assert!(w.events().is_empty(), "{:?}", w.events());
}
