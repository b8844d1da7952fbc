use super::*;
use crate::event::tests::record;
use crate::event::{Kind, Mark, OperatorAction};

fn node(n: &str) -> NodeName {
    n.parse().unwrap()
}

fn said(s: &str) -> Observation {
    Observation::parse(s.as_bytes())
}

/// An event of `mw1` for what `obs` says, in `state`.
fn event_for(id: &str, obs: &Observation, state: EventState) -> EventRecord {
    let mut r = record(state, obs.kind().unwrap());
    r.id = id.parse().unwrap();
    r.fingerprint = obs.fingerprint("mw1");
    r.output = obs.value();
    r
}

fn reports(obs: &Observation) -> BTreeMap<NodeName, Observation> {
    [(node("mw1"), obs.clone())].into_iter().collect()
}

const EVAC: &str = r#"{"status":"evacuate","details":"disk"}"#;

#[test]
fn a_new_output_is_a_new_event_and_the_same_output_is_not() {
    let evac = said(EVAC);
    let out = reconcile(&[], &reports(&evac));
    assert_eq!(out.create, vec![(node("mw1"), evac.clone())]);
    assert!(out.forget.is_empty());
    // Already an event for it: nothing new.
    let known = event_for("ev-1", &evac, EventState::Pending);
    assert_eq!(
        reconcile(std::slice::from_ref(&known), &reports(&evac)),
        Reconciled::default()
    );
    // Other details: a new event (the old one, pending, is forgotten: not said any more).
    let other = said(r#"{"status":"evacuate","details":"nic"}"#);
    let out = reconcile(&[known], &reports(&other));
    assert_eq!(out.create, vec![(node("mw1"), other)]);
    assert_eq!(out.forget.len(), 1);
    assert_eq!(out.forget[0].why, "no longer reported before any action");
    // ok makes none; a node not heard from keeps its events.
    assert_eq!(
        reconcile(&[], &reports(&Observation::Ok)),
        Reconciled::default()
    );
    let elsewhere = event_for("ev-2", &evac, EventState::Pending);
    assert_eq!(
        reconcile(&[elsewhere], &BTreeMap::new()),
        Reconciled::default()
    );
}

#[test]
fn a_ready_event_goes_with_its_operation_only_when_acked_and_no_longer_reported() {
    let evac = said(EVAC);
    let mut ready = event_for("ev-1", &evac, EventState::Ready);
    let op: OperationId = "op-20260101-120000-000001".parse().unwrap();
    ready.operation = Some(op.clone());
    // Not acked: stays, whatever the node says.
    assert!(
        reconcile(std::slice::from_ref(&ready), &reports(&Observation::Ok))
            .forget
            .is_empty()
    );
    ready.mark = Some(Mark {
        action: OperatorAction::Ack,
        by: "alice@cumin".into(),
        at: "t".into(),
    });
    // Acked but still reported: stays.
    assert!(reconcile(std::slice::from_ref(&ready), &reports(&evac))
        .forget
        .is_empty());
    // Acked, and the node says something malformed: it waits for a readable diagnosis.
    let bad = said("garbage");
    let out = reconcile(std::slice::from_ref(&ready), &reports(&bad));
    assert!(out.forget.is_empty(), "{out:?}");
    // Acked, and the node is ok: forgotten, its operation ended (the node goes back).
    let out = reconcile(std::slice::from_ref(&ready), &reports(&Observation::Ok));
    assert_eq!(out.forget.len(), 1);
    assert_eq!(out.forget[0].end_operation, Some(op.clone()));
    assert_eq!(
        out.forget[0].why,
        "acknowledged, and the node now reports ok"
    );
    // Acked, but the node now asks for another evacuation: forgotten, the node stays out.
    let other = said(r#"{"status":"evacuate-failover"}"#);
    let out = reconcile(&[ready], &reports(&other));
    assert_eq!(out.forget.len(), 1);
    assert_eq!(out.forget[0].end_operation, None, "{out:?}");
    assert_eq!(out.create.len(), 1);
}

#[test]
fn cancelled_events_never_put_a_node_back_and_forget_restarts_the_flow() {
    let evac = said(EVAC);
    let mut cancelled = event_for("ev-1", &evac, EventState::Cancelled);
    cancelled.operation = Some("op-20260101-120000-000001".parse().unwrap());
    // Still reported: stays; gone: forgotten, hands off the operation.
    assert!(reconcile(std::slice::from_ref(&cancelled), &reports(&evac))
        .forget
        .is_empty());
    let out = reconcile(&[cancelled], &reports(&Observation::Ok));
    assert_eq!(out.forget.len(), 1);
    assert_eq!(out.forget[0].end_operation, None);
    // A failed event an operator asked to forget goes even while still reported, and
    // the problem, still reported, is a new event.
    let mut failed = event_for("ev-2", &evac, EventState::Failed);
    assert!(reconcile(std::slice::from_ref(&failed), &reports(&evac)) == Reconciled::default());
    failed.mark = Some(Mark {
        action: OperatorAction::Forget,
        by: "bob@cumin".into(),
        at: "t".into(),
    });
    let out = reconcile(&[failed], &reports(&evac));
    assert_eq!(out.forget.len(), 1);
    assert_eq!(out.forget[0].why, "forgotten as bob@cumin asked");
    assert_eq!(out.create, vec![(node("mw1"), evac)]);
}

#[test]
fn a_malformed_output_is_an_event_and_kind_malformed() {
    let bad = said("{not json");
    let out = reconcile(&[], &reports(&bad));
    assert_eq!(out.create.len(), 1);
    assert_eq!(out.create[0].1.kind(), Some(Kind::Malformed));
}
