//! Operators' actions through the library `confctl maint` uses: ack, cancel, forget, and
//! refusals that write nothing; the stop switch pausing the daemon.

use conftool_core::Classify as _;
use conftool_core::StopScope;
use conftool_core::{Actor, AuditLog};
use conftool_maintd::records;
use conftool_maintd::{Error, EventId, EventState, OperatorAction, Verdict};

use crate::harness::World;

const EVAC: &str = r#"{"status":"evacuate","details":"disk sdb"}"#;

fn operate(w: &World, id: &EventId, action: OperatorAction) -> Result<Verdict, Error> {
    let store = w.store();
    let actor = Actor::from_env("confctl", None);
    w.rt.block_on(async {
        let mut wr = store
            .writer(&actor, &AuditLog::default())?
            .with_reason(format!("maint {action} {id}"));
        records::operator(&mut wr, id, action, "alice@cumin", Some("T42"))
            .await
            .map(|o| o.verdict)
    })
}

#[test]
fn ack_puts_the_node_back_once_it_no_longer_reports_the_problem() {
    let w = World::new(3, 0.5);
    let d = w.daemon("", "maintd-a");
    w.say("mw1", EVAC);
    w.once(&d);
    let e = w.events_of("mw1").remove(0);
    assert_eq!(e.state, EventState::Ready);
    let op = e.operation.clone().expect("operation");
    assert_eq!(
        operate(&w, &e.id, OperatorAction::Ack).expect("ack"),
        Verdict::Done
    );
    assert_eq!(
        operate(&w, &e.id, OperatorAction::Ack).expect("ack"),
        Verdict::Already
    );
    // Still reported: it stays out.
    w.once(&d);
    assert_eq!(w.pooled()["mw1"], "no");
    assert_eq!(w.events_of("mw1").len(), 1);
    // Repaired: back in, the operation ended, the event gone.
    w.say("mw1", r#"{"status":"ok"}"#);
    w.once(&d);
    assert_eq!(w.pooled()["mw1"], "yes");
    assert!(w.events().is_empty(), "{:?}", w.events());
    let store = w.store();
    let rec =
        w.rt.block_on(store.operation(&op))
            .expect("read")
            .expect("kept");
    assert_eq!(rec.state, conftool_core::OperationState::Ended);
}

#[test]
fn refusals_write_nothing_and_forget_restarts_a_failed_flow() {
    let w = World::new(2, 0.0);
    let d = w.daemon("", "maintd-a");
    w.repair_exits("mw1", 1);
    w.say("mw1", r#"{"status":"live-repair","command":"fix-nic"}"#);
    w.once(&d);
    let failed = w.events_of("mw1").remove(0);
    assert_eq!(failed.state, EventState::Failed);
    // Ack of a failed event, cancel of a failed event, an unknown id: refused, nothing written.
    let before = w.dump();
    let e = operate(&w, &failed.id, OperatorAction::Ack).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Refused {
                action: OperatorAction::Ack,
                state: EventState::Failed,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_bad_input());
    let e = operate(&w, &failed.id, OperatorAction::Cancel).unwrap_err();
    assert!(e.to_string().contains("forget it to start over"), "{e}");
    let ghost: EventId = "ev-20260101-000000-000000".parse().expect("id");
    let e = operate(&w, &ghost, OperatorAction::Cancel).unwrap_err();
    assert!(matches!(&e, Error::NoEvent(id) if id == &ghost), "{e}");
    assert_eq!(w.dump(), before, "etcd unchanged");
    // Forget: the failed event goes; the problem, still reported, starts over (and now the
    // repair succeeds).
    assert_eq!(
        operate(&w, &failed.id, OperatorAction::Forget).expect("forget"),
        Verdict::Done
    );
    w.repair_exits("mw1", 0);
    w.once(&d);
    let now = w.events_of("mw1");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, failed.id);
    assert_eq!(now[0].state, EventState::Ready);
    assert_eq!(w.repair_inputs("mw1").len(), 2);
}

#[test]
fn the_stop_switch_pauses_it_and_a_cancelled_event_is_never_acted_on() {
    let w = World::new(3, 0.0);
    let d = w.daemon("", "maintd-a");
    let store = w.store();
    let actor = Actor::from_env("confctl", None);
    w.rt.block_on(async {
        let mut wr = store.writer(&actor, &AuditLog::default()).expect("writer");
        wr.set_stop(&StopScope::All, "incident 4711")
            .await
            .expect("stop");
    });
    w.say("mw1", EVAC);
    w.say("mw2", EVAC);
    let said = w.once(&d);
    assert!(said.iter().any(|e| matches!(e, conftool_maintd::DaemonEvent::Paused { why } if why.contains("incident 4711"))), "{said:?}");
    // Observed, not acted on.
    assert!(
        w.events().iter().all(|e| e.state == EventState::Observed),
        "{:?}",
        w.events()
    );
    assert_eq!(w.pooled()["mw1"], "yes");
    let e1 = w.events_of("mw1").remove(0);
    assert_eq!(
        operate(&w, &e1.id, OperatorAction::Cancel).expect("cancel"),
        Verdict::Done
    );
    w.rt.block_on(async {
        let mut wr = store.writer(&actor, &AuditLog::default()).expect("writer");
        wr.clear_stop(&StopScope::All).await.expect("clear");
    });
    w.once(&d);
    assert_eq!(w.pooled()["mw1"], "yes", "cancelled: never acted on");
    assert_eq!(w.events_of("mw1")[0].state, EventState::Cancelled);
    assert_eq!(w.pooled()["mw2"], "no", "resumed: mw2 evacuated");
    assert_eq!(w.events_of("mw2")[0].state, EventState::Ready);
}
