//! Rounds within the pool's depool threshold: ten nodes all asking to be evacuated are taken
//! out a few at a time, as acknowledged repairs bring others back; at no revision of etcd
//! are more out than the threshold allows.

use std::collections::BTreeSet;
use std::time::Duration;

use conftool_core::{Actor, AuditLog};
use conftool_maintd::records;
use conftool_maintd::{EventState, OperatorAction};
use etcd_client::GetOptions;

use crate::harness::{wait_until, World};

/// Nodes, and how many must stay serving (depool threshold 0.7 of 10: 7).
const NODES: usize = 10;
const THRESHOLD: f64 = 0.7;
const MAX_OUT: usize = 3;

#[test]
fn ten_nodes_asking_to_evacuate_never_have_more_out_than_the_threshold_allows() {
    let w = World::new(NODES, THRESHOLD);
    let d = w.daemon("", "maintd-a");
    let first = w.rt.block_on(w.etcd.revision());
    for n in &w.nodes {
        w.say(n, r#"{"status":"evacuate","details":"firmware"}"#);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let d = d.clone();
        w.rt.spawn(async move {
            d.run(|_| {}, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    // The operator: each ready event's node is repaired (it says ok) and acknowledged.
    let store = w.store();
    let actor = Actor::from_env("confctl", None);
    let mut repaired = BTreeSet::new();
    let took = wait_until(
        "every node evacuated, repaired and back",
        Duration::from_secs(120),
        || {
            for e in w.events() {
                if e.state == EventState::Ready && !e.acked() {
                    w.say(e.node.as_str(), r#"{"status":"ok"}"#);
                    w.rt.block_on(async {
                        let mut wr = store.writer(&actor, &AuditLog::default()).expect("writer");
                        records::operator(&mut wr, &e.id, OperatorAction::Ack, "alice@cumin", None)
                            .await
                    })
                    .expect("ack");
                    repaired.insert(e.node.to_string());
                }
            }
            repaired.len() == NODES
                && w.events().is_empty()
                && w.pooled().values().all(|p| p == "yes")
        },
    );
    let _ = stop.send(());
    w.rt.block_on(running)
        .expect("join")
        .expect("the daemon stopped cleanly");
    // Every revision since the start, replayed: never more than MAX_OUT depooled at once.
    let last = w.rt.block_on(w.etcd.revision());
    let mut most = 0;
    w.rt.block_on(async {
        let mut c = w.etcd.client().await;
        for rev in first..=last {
            let r = c
                .get(
                    "/v1/pools/eqiad/web/http/",
                    Some(GetOptions::new().with_prefix().with_revision(rev)),
                )
                .await
                .expect("get at a revision");
            let out = r
                .kvs()
                .iter()
                .filter(|kv| kv.value_str().unwrap_or("").contains(r#""pooled":"no""#))
                .count();
            most = most.max(out);
        }
    });
    assert!(most <= MAX_OUT, "{most} nodes out at once");
    assert_eq!(
        most, MAX_OUT,
        "the rounds used the room the threshold gives"
    );
    println!(
        "maintd: {NODES} nodes evacuated, repaired and back in {took:?}; at most {most} out at once \
         over {} revisions",
        last - first
    );
}
