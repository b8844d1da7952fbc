use super::*;
use conftool_core::Classify as _;

pub(crate) fn record(state: EventState, kind: Kind) -> EventRecord {
    EventRecord {
        id: "ev-20260101-120000-00abcd".parse().unwrap(),
        node: "mw1".parse().unwrap(),
        state,
        kind,
        fingerprint: "0123456789abcdef".into(),
        output: serde_json::json!({"status": kind.as_str()}),
        command: None,
        observed: "2026-01-01T12:00:00Z".into(),
        operation: None,
        waiting: None,
        mark: None,
        history: Vec::new(),
        extra: serde_json::Map::new(),
    }
}

#[test]
fn ids_are_made_from_time_and_a_random_number_and_are_path_safe() {
    let id = EventId::new("20260101-120000", 0x3456_789a).unwrap();
    assert_eq!(id.as_str(), "ev-20260101-120000-56789a");
    for bad in [
        "",
        "op-1",
        "ev-a/b",
        "ev-..x/",
        &format!("ev-{}", "x".repeat(62)),
        "ev-é",
    ] {
        let e = bad.parse::<EventId>().unwrap_err().to_string();
        assert!(e.starts_with("invalid event id"), "{bad}: {e}");
    }
}

#[test]
fn a_record_round_trips_and_keeps_fields_it_does_not_know() {
    let mut r = record(EventState::Ready, Kind::Evacuate);
    r.operation = Some("op-20260101-120000-000001".parse().unwrap());
    let text = serde_json::to_string(&r).unwrap();
    assert!(text.contains(r#""state":"ready""#), "{text}");
    assert!(text.contains(r#""kind":"evacuate""#), "{text}");
    assert!(
        !text.contains("mark"),
        "absent marks are not written: {text}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["ticket"] = "T1".into();
    let back: EventRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back.extra["ticket"], "T1");
    assert_eq!(back.operation, r.operation);
    let in_progress = serde_json::to_string(&EventState::InProgress).unwrap();
    assert_eq!(in_progress, r#""in_progress""#);
    assert_eq!(
        serde_json::to_string(&Kind::EvacuateFailover).unwrap(),
        r#""evacuate-failover""#
    );
}

#[test]
fn invasiveness_orders_kinds() {
    assert!(Kind::EvacuateFailover > Kind::Evacuate);
    assert!(Kind::Evacuate > Kind::LiveRepair);
    assert!(Kind::LiveRepair > Kind::Malformed);
    assert!(Kind::Evacuate.evacuates() && !Kind::LiveRepair.evacuates());
    assert!(!Kind::Malformed.acts());
}

#[test]
fn history_keeps_the_first_entry_and_the_latest() {
    let mut r = record(EventState::Observed, Kind::Evacuate);
    r.note("a", "t0", "first");
    for i in 0..200 {
        r.note("a", "t", format!("n{i}"));
    }
    assert_eq!(r.history.len(), HISTORY_KEEP);
    assert_eq!(r.history[0].what, "first");
    assert_eq!(r.history.last().unwrap().what, "n199");
    assert_eq!(r.history[1].what, format!("n{}", 200 - HISTORY_KEEP + 1));
}

/// Every (action, state) pair: what it does, or the refusal's words.
#[test]
fn operators_act_only_where_the_state_allows() {
    use EventState::*;
    use OperatorAction::*;
    let run = |action, state, kind| {
        let mut r = record(state, kind);
        let out = r.operator(action, "alice@cumin", "t1", Some("T42"));
        (r, out)
    };
    // Cancel.
    for state in [Observed, Pending, InProgress, Ready] {
        let (r, out) = run(Cancel, state, Kind::Evacuate);
        assert_eq!(out.unwrap(), Verdict::Done, "{state}");
        assert_eq!(r.state, Cancelled);
        let last = r.history.last().unwrap();
        assert_eq!((last.by.as_str(), last.state), ("alice@cumin", Cancelled));
        assert!(last.what.ends_with(": T42"), "{}", last.what);
    }
    assert!(run(Cancel, InProgress, Kind::LiveRepair).0.history[0]
        .what
        .contains("the running action finishes"));
    assert_eq!(
        run(Cancel, Cancelled, Kind::Evacuate).1.unwrap(),
        Verdict::Already
    );
    let e = run(Cancel, Failed, Kind::Evacuate).1.unwrap_err();
    assert_eq!(
        e.to_string(),
        "event ev-20260101-120000-00abcd is failed: cannot cancel it: nothing more is done for \
         a failed event anyway (forget it to start over); nothing written"
    );
    // Ack.
    let (r, out) = run(Ack, Ready, Kind::Evacuate);
    assert_eq!(out.unwrap(), Verdict::Done);
    assert!(r.acked() && r.state == Ready);
    let mut again = r.clone();
    assert_eq!(
        again.operator(Ack, "bob@x", "t2", None).unwrap(),
        Verdict::Already
    );
    assert_eq!(again, r, "an ack twice changes nothing");
    for state in [Observed, Pending, InProgress, Failed, Cancelled] {
        let e = run(Ack, state, Kind::Evacuate).1.unwrap_err();
        assert!(matches!(e, Error::Refused { action: Ack, .. }), "{state}");
        assert!(
            e.to_string()
                .contains("only a ready event can be acknowledged"),
            "{e}"
        );
    }
    // Forget.
    for state in [Failed, Cancelled] {
        let (r, out) = run(Forget, state, Kind::LiveRepair);
        assert_eq!(out.unwrap(), Verdict::Done);
        assert!(
            r.forget_requested() && r.state == state,
            "the state stays until the daemon acts"
        );
    }
    assert!(run(Forget, Observed, Kind::Malformed).0.forget_requested());
    let e = run(Forget, Ready, Kind::Evacuate).1.unwrap_err();
    assert!(e.to_string().contains("is acknowledged (ack)"), "{e}");
    for state in [Observed, Pending, InProgress] {
        let e = run(Forget, state, Kind::Evacuate).1.unwrap_err();
        assert!(
            e.to_string()
                .contains("it is being handled (cancel it first"),
            "{state}: {e}"
        );
        assert!(e.is_bad_input());
    }
}
