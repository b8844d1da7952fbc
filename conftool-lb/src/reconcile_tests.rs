use conftool_core::watch::ObjectChange;
use conftool_core::{DepoolThreshold, Kv, PoolState, Pooled, Selected, Snapshot, Weight};

use super::*;
use crate::haproxy::AdminState;

const PREFIX: &str = "/v1/pools/eqiad/web/http/";

fn ks() -> Keyspace {
    Keyspace::default()
}

/// A snapshot of the pool as etcd would give it: (node, stored value) pairs.
fn snapshot(revision: i64, values: &[(&str, &str)]) -> WatchEvent {
    let sel = "dc=eqiad,cluster=web,service=http"
        .parse()
        .expect("selector");
    let snap = Snapshot {
        revision,
        kvs: values
            .iter()
            .map(|(node, value)| Kv {
                key: format!("{PREFIX}{node}"),
                value: value.as_bytes().to_vec(),
                mod_revision: revision,
            })
            .collect(),
    };
    WatchEvent::Snapshot(Selection::from_snapshot(&ks(), &sel, &snap))
}

fn put(revision: i64, node: &str, pooled: Pooled, weight: u16) -> ObjectChange {
    let key = ks()
        .parse_object_key(&format!("{PREFIX}{node}"))
        .expect("object key");
    ObjectChange::Put(Selected {
        key,
        state: PoolState::new(pooled, Weight(weight)),
        mod_revision: revision,
    })
}

fn server(name: &str, admin_bits: u32, weight: u16) -> ServerState {
    ServerState {
        backend: "be".into(),
        name: name.into(),
        addr: "127.0.0.1".into(),
        op_state: 2,
        admin_bits,
        weight,
    }
}

fn pool() -> PoolCore {
    PoolCore::new("be".into(), PREFIX.into())
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn text(commands: &[Command]) -> Vec<String> {
    commands.iter().map(Command::to_string).collect()
}

const YES: &str = r#"{"pooled":"yes","weight":10}"#;
const NO: &str = r#"{"pooled":"no","weight":10}"#;
/// Limits that require no node to serve.
fn no_threshold() -> PoolLimits {
    PoolLimits {
        threshold: DepoolThreshold::new(0.0).expect("share"),
        min_pooled: 0,
    }
}

const MIN: Duration = Duration::from_secs(60);

#[test]
fn before_the_first_snapshot_the_backend_is_left_alone() {
    let mut p = pool();
    assert_eq!(p.backend(), "be");
    assert!(!p.has_view());
    assert_eq!(p.revision(), None);
    assert_eq!(p.reconcile(&[server("a", 1, 0)], Instant::now(), MIN), None);
    p.take_in(&ks(), &snapshot(3, &[]));
    assert!(p.has_view());
    assert_eq!(p.revision(), Some(3));
    // An empty pool and an empty backend: nothing to send, nothing to say.
    let r = p.reconcile(&[], Instant::now(), MIN).expect("planned");
    assert_eq!((r.findings, r.commands, r.revision), (vec![], vec![], 3));
}

#[test]
fn a_snapshot_and_changes_are_said_with_their_revision_and_size() {
    let mut p = pool();
    assert_eq!(
        p.take_in(&ks(), &snapshot(5, &[("a", YES), ("b", NO)])),
        [AgentEvent::Snapshot {
            backend: "be".into(),
            revision: 5,
            objects: 2,
        }]
    );
    let changes = WatchEvent::Changes {
        revision: 9,
        changes: vec![put(9, "a", Pooled::No, 10), put(9, "c", Pooled::Yes, 1)],
    };
    assert_eq!(
        p.take_in(&ks(), &changes),
        [AgentEvent::Changes {
            backend: "be".into(),
            revision: 9,
            objects: 2,
        }]
    );
    assert_eq!(p.revision(), Some(9));
    // The view took the changes in: a is depooled, c is new (no depool threshold here).
    p.set_limits(no_threshold());
    let have = [server("a", 0, 10), server("b", 8, 10), server("c", 0, 1)];
    let r = p.reconcile(&have, Instant::now(), MIN).expect("planned");
    assert_eq!(text(&r.commands), ["set server be/a state drain"]);
    assert_eq!(r.revision, 9);
}

#[test]
fn unreadable_values_are_said_once_before_the_event() {
    let mut p = pool();
    let said = p.take_in(&ks(), &snapshot(5, &[("a", YES), ("b", "{oops")]));
    assert_eq!(said.len(), 2, "{said:?}");
    let AgentEvent::Unreadable {
        backend,
        key,
        reason,
    } = &said[0]
    else {
        panic!("{said:?}")
    };
    assert_eq!(
        (backend.as_str(), key.as_str()),
        ("be", "/v1/pools/eqiad/web/http/b")
    );
    assert!(reason.contains("malformed"), "{reason}");
    assert!(matches!(said[1], AgentEvent::Snapshot { objects: 1, .. }));
    // The next event, with b still unreadable: only the event.
    let changes = WatchEvent::Changes {
        revision: 6,
        changes: vec![put(6, "a", Pooled::No, 10)],
    };
    let said = p.take_in(&ks(), &changes);
    assert!(
        matches!(said[..], [AgentEvent::Changes { revision: 6, .. }]),
        "{said:?}"
    );
}

#[test]
fn findings_are_said_when_their_servers_change_and_not_at_each_recheck() {
    let mut p = pool();
    p.take_in(&ks(), &snapshot(5, &[("a", YES), ("ghost", YES)]));
    let t = Instant::now();
    let have = [server("a", 0, 10), server("extra", 0, 10)];
    let r = p.reconcile(&have, t, MIN).expect("planned");
    // None kept by the threshold: an empty list at first is not said.
    assert_eq!(
        r.findings,
        [
            AgentEvent::MissingInBackend {
                backend: "be".into(),
                servers: names(&["ghost"]),
            },
            AgentEvent::UnknownToEtcd {
                backend: "be".into(),
                servers: names(&["extra"]),
            },
        ]
    );
    assert!(r.commands.is_empty(), "{:?}", r.commands);
    // A recheck that finds the same says nothing.
    assert_eq!(p.reconcile(&have, t, MIN).expect("planned").findings, []);
    // ghost gets its server: the end of that finding is said, the other one is not again.
    let have = [
        server("a", 0, 10),
        server("extra", 0, 10),
        server("ghost", 0, 10),
    ];
    assert_eq!(
        p.reconcile(&have, t, MIN).expect("planned").findings,
        [AgentEvent::MissingInBackend {
            backend: "be".into(),
            servers: vec![],
        }]
    );
    // extra is named in etcd now (depooled), a is gone: unknown_to_etcd changes to a.
    let changes = WatchEvent::Changes {
        revision: 6,
        changes: vec![put(6, "extra", Pooled::No, 10)],
    };
    p.take_in(&ks(), &changes);
    let deleted = WatchEvent::Changes {
        revision: 7,
        changes: vec![ObjectChange::Deleted(
            ks().parse_object_key(&format!("{PREFIX}a")).expect("key"),
        )],
    };
    p.take_in(&ks(), &deleted);
    let r = p.reconcile(&have, t, MIN).expect("planned");
    assert_eq!(
        r.findings,
        [AgentEvent::UnknownToEtcd {
            backend: "be".into(),
            servers: names(&["a"]),
        }]
    );
    assert_eq!(text(&r.commands), ["set server be/extra state drain"]);
}

#[test]
fn the_threshold_is_said_with_what_it_requires_and_kept_for_alerts() {
    let mut p = pool();
    p.take_in(&ks(), &snapshot(5, &[("a", NO), ("b", NO), ("c", YES)]));
    let have = [server("a", 0, 10), server("b", 0, 10), server("c", 0, 10)];
    let t = Instant::now();
    // The default limits (half of 3 → 2 serving): a is kept.
    let r = p.reconcile(&have, t, MIN).expect("planned");
    assert_eq!(
        r.findings,
        [AgentEvent::KeptByThreshold {
            backend: "be".into(),
            servers: names(&["a"]),
            required: 2,
            pooled: 1,
        }]
    );
    assert_eq!(r.kept, ["a"]);
    assert_eq!(text(&r.commands), ["set server be/b state drain"]);
    // Limits read from the service definition: none required, so a drains too and the
    // finding ends.
    p.set_limits(no_threshold());
    let r = p.reconcile(&have, t, MIN).expect("planned");
    assert_eq!(
        r.findings,
        [AgentEvent::KeptByThreshold {
            backend: "be".into(),
            servers: vec![],
            required: 0,
            pooled: 1,
        }]
    );
    assert!(r.kept.is_empty());
    assert_eq!(
        text(&r.commands),
        ["set server be/a state drain", "set server be/b state drain"]
    );
}

#[test]
fn drained_servers_lose_their_sessions_once_after_the_drain_timeout() {
    let mut p = pool();
    p.take_in(&ks(), &snapshot(5, &[("a", NO), ("b", YES), ("c", YES)]));
    let t0 = Instant::now();
    let have = [server("a", 0, 10), server("b", 0, 10), server("c", 0, 10)];
    let r = p.reconcile(&have, t0, MIN).expect("planned");
    assert_eq!(text(&r.commands), ["set server be/a state drain"]);
    // Drained since t0: at the timeout its sessions are ended, after the plan's commands.
    let have = [server("a", 8, 10), server("b", 0, 1), server("c", 0, 10)];
    let r = p.reconcile(&have, t0 + MIN, MIN).expect("planned");
    assert_eq!(
        text(&r.commands),
        ["set server be/b weight 10", "shutdown sessions server be/a"]
    );
    assert_eq!(
        r.applied(&r.commands[1]),
        AgentEvent::Applied {
            backend: "be".into(),
            server: "a".into(),
            command: "shutdown sessions server be/a".into(),
            revision: 5,
        }
    );
    // Once.
    let have = [server("a", 8, 10), server("b", 0, 10), server("c", 0, 10)];
    assert_eq!(
        p.reconcile(&have, t0 + 2 * MIN, MIN)
            .expect("planned")
            .commands,
        []
    );
}

#[test]
fn a_command_applied_is_said_with_its_server_and_the_view_revision() {
    let mut p = pool();
    p.take_in(&ks(), &snapshot(41, &[("a", YES)]));
    let r = p
        .reconcile(&[server("a", 1, 3)], Instant::now(), MIN)
        .expect("planned");
    let said: Vec<AgentEvent> = r.commands.iter().map(|c| r.applied(c)).collect();
    assert_eq!(
        said,
        [
            AgentEvent::Applied {
                backend: "be".into(),
                server: "a".into(),
                command: "set server be/a weight 10".into(),
                revision: 41,
            },
            AgentEvent::Applied {
                backend: "be".into(),
                server: "a".into(),
                command: format!("set server be/a state {}", AdminState::Ready),
                revision: 41,
            },
        ]
    );
}
