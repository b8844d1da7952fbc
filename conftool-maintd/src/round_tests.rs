use conftool_core::{DepoolThreshold, ObjectKey, PoolLimits, PoolState, Pooled, Selected, Weight};
use conftool_core::{Member, PoolMembers};

use super::*;
use crate::event::tests::record;

fn node(n: &str) -> NodeName {
    n.parse().unwrap()
}

fn key(n: &str) -> ObjectKey {
    ObjectKey::new(
        "eqiad".parse().unwrap(),
        "web".parse().unwrap(),
        "nginx".parse().unwrap(),
        node(n),
    )
}

/// `n` nodes `mw0..`, all serving one pool with depool threshold `share`.
fn fleet(
    n: usize,
    share: f64,
) -> (
    BTreeMap<NodeName, Vec<Selected>>,
    BTreeMap<PoolKey, PoolMembers>,
) {
    let mut objects = BTreeMap::new();
    let mut members = BTreeMap::new();
    for i in 0..n {
        let name = format!("mw{i}");
        let state = PoolState::new(Pooled::Yes, Weight(10));
        members.insert(node(&name), Member::from(&state));
        objects.insert(
            node(&name),
            vec![Selected {
                key: key(&name),
                state,
                mod_revision: 1,
            }],
        );
    }
    let pool = PoolMembers {
        limits: PoolLimits {
            threshold: DepoolThreshold::new(share).unwrap(),
            min_pooled: 0,
        },
        members,
        revision: 1,
    };
    (objects, [(key("mw0").pool, pool)].into_iter().collect())
}

fn event(i: usize, n: &str, kind: Kind, state: EventState) -> EventRecord {
    let mut r = record(state, kind);
    r.id = format!("ev-20260101-120000-{i:06x}").parse().unwrap();
    r.node = node(n);
    r
}

fn why<'a>(p: &'a RoundPlan, id: &EventId) -> &'a str {
    p.hold
        .iter()
        .find(|(h, _)| h == id)
        .map_or("", |(_, w)| w.as_str())
}

#[test]
fn a_round_never_takes_out_more_than_the_threshold_allows() {
    // 10 nodes at 0.7: 7 must serve, 3 may go.
    let (objects, pools) = fleet(10, 0.7);
    let events: Vec<EventRecord> = (0..10)
        .map(|i| event(i, &format!("mw{i}"), Kind::Evacuate, EventState::Observed))
        .collect();
    let none = BTreeMap::new();
    let stopped = BTreeSet::new();
    let p = plan(&RoundInput {
        events: &events,
        objects: &objects,
        pools: &pools,
        running: &none,
        stopped: &stopped,
    });
    assert_eq!(p.start.len(), 3, "{p:?}");
    assert_eq!(p.hold.len(), 7);
    assert!(
        why(&p, &events[9].id).starts_with("waiting for capacity: eqiad/web/nginx: "),
        "{p:?}"
    );
    // Nodes already out count: with 2 depooled now, 1 more may go.
    let mut fewer = pools.clone();
    for n in ["mw8", "mw9"] {
        fewer.values_mut().for_each(|m| {
            m.members.insert(
                node(n),
                Member {
                    pooled: Pooled::No,
                    weight: Weight(10),
                },
            );
        });
    }
    let p = plan(&RoundInput {
        events: &events[..8],
        objects: &objects,
        pools: &fewer,
        running: &none,
        stopped: &stopped,
    });
    assert_eq!(p.start.len(), 1, "{p:?}");
}

#[test]
fn per_node_the_most_invasive_request_wins_and_a_running_round_is_waited_for() {
    let (objects, pools) = fleet(10, 0.0);
    let events = vec![
        event(1, "mw1", Kind::LiveRepair, EventState::Observed),
        event(2, "mw1", Kind::EvacuateFailover, EventState::Observed),
        event(3, "mw2", Kind::Evacuate, EventState::Observed),
    ];
    let none = BTreeMap::new();
    let stopped = BTreeSet::new();
    let p = plan(&RoundInput {
        events: &events,
        objects: &objects,
        pools: &pools,
        running: &none,
        stopped: &stopped,
    });
    assert_eq!(p.start, vec![events[1].id.clone(), events[2].id.clone()]);
    assert!(why(&p, &events[0].id)
        .starts_with("superseded on its node by event ev-20260101-120000-000002"));
    // A live repair runs on mw1: the failover supersedes it; mw2 waits for the round.
    let running: BTreeMap<EventId, (NodeName, Kind)> =
        [(events[0].id.clone(), (node("mw1"), Kind::LiveRepair))]
            .into_iter()
            .collect();
    let p = plan(&RoundInput {
        events: &events,
        objects: &objects,
        pools: &pools,
        running: &running,
        stopped: &stopped,
    });
    assert_eq!(p.start, vec![events[1].id.clone()]);
    assert_eq!(
        why(&p, &events[2].id),
        "waiting for the current round to end"
    );
    // An evacuation running on mw1: an evacuate there waits for it.
    let running: BTreeMap<EventId, (NodeName, Kind)> =
        [(events[1].id.clone(), (node("mw1"), Kind::EvacuateFailover))]
            .into_iter()
            .collect();
    let later = vec![event(4, "mw1", Kind::Evacuate, EventState::Pending)];
    let p = plan(&RoundInput {
        events: &later,
        objects: &objects,
        pools: &pools,
        running: &running,
        stopped: &stopped,
    });
    assert!(p.start.is_empty());
    assert!(
        why(&p, &later[0].id).starts_with("waiting for event ev-20260101-120000-000002's action"),
        "{p:?}"
    );
}

#[test]
fn failed_events_and_stop_switches_hold_their_nodes() {
    let (objects, pools) = fleet(4, 0.0);
    let events = vec![
        event(1, "mw1", Kind::LiveRepair, EventState::Failed),
        event(2, "mw1", Kind::Evacuate, EventState::Observed),
        event(3, "mw2", Kind::Evacuate, EventState::Observed),
        event(4, "mw3", Kind::Malformed, EventState::Observed),
    ];
    let none = BTreeMap::new();
    let stopped = BTreeSet::new();
    let p = plan(&RoundInput {
        events: &events,
        objects: &objects,
        pools: &pools,
        running: &none,
        stopped: &stopped,
    });
    assert_eq!(p.start, vec![events[2].id.clone()]);
    assert!(
        why(&p, &events[1].id).starts_with("its node has failed event ev-20260101-120000-000001")
    );
    assert!(
        !p.hold.iter().any(|(id, _)| id == &events[3].id),
        "malformed is never acted on"
    );
    let stopped: BTreeSet<Cluster> = ["web".parse().unwrap()].into_iter().collect();
    let p = plan(&RoundInput {
        events: &events,
        objects: &objects,
        pools: &pools,
        running: &none,
        stopped: &stopped,
    });
    assert!(p.start.is_empty());
    assert_eq!(
        why(&p, &events[2].id),
        "the stop switch of cluster web is set"
    );
}
