//! Depool thresholds under concurrency, through the library alone: many writers started at
//! once on one pool (each its own writer, as separate tools would be) can never together
//! take it below what one writer would be refused, and every writer that the threshold
//! allows gets through (taking turns, not failing on conflicts).

use std::collections::BTreeMap;
use std::sync::Arc;

use conftool_core::{
    Actor, Atomicity, AuditLog, Config, Edit, Error, Guard, HostVerb, ModelError, NodeName,
    Overrides, Pooled, Refusal, Selector, SetFields, Store, Weight, Write,
};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

fn key(pool: &str, n: usize) -> String {
    format!("/v1/pools/eqiad/{pool}/apache/{}", node(pool, n))
}

/// Node names are unique per pool: a host verb acts on every pool a host is in.
fn node(pool: &str, n: usize) -> String {
    format!("{pool}-mw{n}")
}

/// A pool of `n` serving nodes in cluster `pool`, its service's limits as given.
async fn make_pool(s: &Store, pool: &str, n: usize, threshold: f64, min_pooled: Option<u32>) {
    let mut def = serde_json::json!({
        "port": 80, "default_values": {"pooled": "yes", "weight": 1},
        "depool_threshold": threshold,
    });
    if let Some(m) = min_pooled {
        def["min_pooled"] = m.into();
    }
    let mut writes: Vec<Write> = vec![Write::Put {
        key: format!("/v1/services/{pool}/apache"),
        value: def.to_string(),
        guard: Guard::Absent,
    }];
    writes.extend((0..n).map(|i| Write::Put {
        key: key(pool, i),
        value: r#"{"pooled":"yes","weight":1}"#.into(),
        guard: Guard::Absent,
    }));
    s.raw().commit(&writes).await.expect("create");
}

/// Every node of the pool back to `pooled: yes`, weight 1.
async fn repool_all(s: &Store, pool: &str, n: usize) {
    let snap = s
        .read_prefix(&format!("/v1/pools/eqiad/{pool}/"))
        .await
        .expect("read");
    let revs: BTreeMap<String, i64> = snap
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.mod_revision))
        .collect();
    let writes: Vec<Write> = (0..n)
        .map(|i| Write::Put {
            key: key(pool, i),
            value: r#"{"pooled":"yes","weight":1}"#.into(),
            guard: Guard::Unchanged(revs[&key(pool, i)]),
        })
        .collect();
    let report = s.raw().commit(&writes).await.expect("repool");
    assert!(report.conflicted.is_empty());
}

/// Serving nodes (pooled yes, weight above 0) of the pool.
async fn serving(s: &Store, pool: &str) -> usize {
    let sel: Selector = format!("cluster={pool}").parse().expect("selector");
    let sel = s.select(&sel).await.expect("select");
    sel.objects.iter().filter(|o| o.state.serving()).count()
}

/// What one concurrent writer did.
#[derive(Debug, PartialEq, Eq, Clone, Copy, PartialOrd, Ord)]
enum Outcome {
    Landed,
    Refused,
    NothingToDo,
}

fn outcome(r: Result<usize, Error>) -> Outcome {
    match r {
        Ok(0) => Outcome::NothingToDo,
        Ok(_) => Outcome::Landed,
        Err(Error::Model(ModelError::Refused(Refusal::BelowThreshold(_)))) => Outcome::Refused,
        Err(e) => panic!("a writer failed otherwise than by the threshold: {e}"),
    }
}

/// `writers` tasks at once, each depooling (or draining) one node of the pool through its
/// own writer; returns the outcomes.
async fn depool_at_once(
    s: &Store,
    pool: &str,
    writers: usize,
    verb: HostVerb,
    overrides: Overrides,
) -> Vec<Outcome> {
    let start = Arc::new(tokio::sync::Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let (s, start, pool) = (s.clone(), start.clone(), pool.to_string());
            tokio::spawn(async move {
                let actor = Actor::from_env("threshold-test", None);
                let mut w = s
                    .writer(&actor, &AuditLog::default())
                    .expect("writer")
                    .with_overrides(overrides);
                let host: NodeName = node(&pool, i).parse().expect("name");
                start.wait().await;
                let done = w.host(verb, &[host], None).await;
                done.map(|d| d.applied.len()).map_err(|e| e.error)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(outcome(t.await.expect("task")));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_depools_never_take_a_pool_below_its_threshold() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // 5 nodes at 0.5: 3 must stay serving, so exactly 2 depools land per round.
    make_pool(&s, "small", 5, 0.5, None).await;
    let rounds = 200;
    let mut landed = 0;
    for round in 0..rounds {
        let out = depool_at_once(&s, "small", 5, HostVerb::Depool, Overrides::default()).await;
        let n = serving(&s, "small").await;
        assert!(n >= 3, "round {round}: {n} serving after {out:?}");
        let ok = out.iter().filter(|o| **o == Outcome::Landed).count();
        assert_eq!((ok, n), (2, 3), "round {round}: {out:?}");
        landed += ok;
        repool_all(&s, "small", 5).await;
    }
    assert_eq!(landed, 2 * rounds);
    // The positive control: with the threshold lifted, the same writers empty the pool, so
    // the rounds above would have seen a breach had the check and the write been apart.
    let lifted = Overrides {
        allow_below_threshold: true,
        ..Overrides::default()
    };
    let out = depool_at_once(&s, "small", 5, HostVerb::Depool, lifted).await;
    assert_eq!(out, vec![Outcome::Landed; 5]);
    assert_eq!(serving(&s, "small").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_writers_on_one_pool_take_turns_and_stop_at_the_threshold() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // 200 nodes at 0.7: 140 must stay serving; 60 depools land, 140 are refused.
    make_pool(&s, "big", 200, 0.7, None).await;
    for round in 0..2 {
        let out = depool_at_once(&s, "big", 200, HostVerb::Depool, Overrides::default()).await;
        let landed = out.iter().filter(|o| **o == Outcome::Landed).count();
        assert_eq!(
            (landed, serving(&s, "big").await),
            (60, 140),
            "round {round}"
        );
        repool_all(&s, "big", 200).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drains_count_as_leaving_and_min_pooled_is_a_floor() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // Draining (weight 0) every node of a pool at once: 3 of 5 stay serving.
    make_pool(&s, "drained", 5, 0.5, None).await;
    let out = depool_at_once(&s, "drained", 5, HostVerb::Drain, Overrides::default()).await;
    assert_eq!(
        out.iter().filter(|o| **o == Outcome::Landed).count(),
        2,
        "{out:?}"
    );
    assert_eq!(serving(&s, "drained").await, 3);
    // min_pooled: 1 on a one-node pool refuses its depool, whatever the share.
    make_pool(&s, "single", 1, 0.0, Some(1)).await;
    let out = depool_at_once(&s, "single", 1, HostVerb::Depool, Overrides::default()).await;
    assert_eq!(out, [Outcome::Refused]);
    // min_pooled 4 of 5 at share 0: one depool at a time, and only one.
    make_pool(&s, "floor", 5, 0.0, Some(4)).await;
    let out = depool_at_once(&s, "floor", 5, HostVerb::Depool, Overrides::default()).await;
    assert_eq!(
        out.iter().filter(|o| **o == Outcome::Landed).count(),
        1,
        "{out:?}"
    );
    assert_eq!(serving(&s, "floor").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn selector_writes_and_one_transaction_writes_hold_the_threshold_together() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    make_pool(&s, "mixed", 8, 0.5, None).await;
    let depool = Edit::Set(SetFields {
        pooled: Some(Pooled::No),
        weight: None,
    });
    let drain = Edit::Set(SetFields {
        pooled: None,
        weight: Some(Weight(0)),
    });
    for round in 0..100 {
        // Each writer takes two nodes: a pattern depool, a pattern drain, an atomic
        // (conftool-style) depool, and a depool checked before the others start (as confctl
        // checks before asking) and written after; with 8 nodes at 0.5, at most 4 may leave.
        let jobs = [
            ("name=mixed-mw[01]", depool, Atomicity::Batched, false),
            ("name=mixed-mw[23]", drain, Atomicity::Batched, false),
            ("name=mixed-mw[45]", depool, Atomicity::All, false),
            ("name=mixed-mw[67]", depool, Atomicity::Batched, true),
        ];
        let start = Arc::new(tokio::sync::Barrier::new(jobs.len()));
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(sel, edit, atomicity, checked)| {
                let (s, start) = (s.clone(), start.clone());
                tokio::spawn(async move {
                    let actor = Actor::from_env("threshold-test", None);
                    let mut w = s.writer(&actor, &AuditLog::default()).expect("writer");
                    let sel: Selector = format!("cluster=mixed,{sel}").parse().expect("sel");
                    let selection = s.select(&sel).await.expect("select");
                    let changes = selection.changes(|_| Some(edit));
                    let written = if checked {
                        // Judged by the pool as it was before anyone started.
                        let checked = w.check(&changes).await.expect("2 of 8 may leave");
                        start.wait().await;
                        w.apply_checked(&sel, changes, |_| Some(edit), atomicity, checked)
                            .await
                    } else {
                        start.wait().await;
                        w.apply(&sel, changes, |_| Some(edit), atomicity).await
                    };
                    written.map(|a| a.len()).map_err(|e| e.error)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(outcome(t.await.expect("task")));
        }
        let n = serving(&s, "mixed").await;
        assert!(n >= 4, "round {round}: {n} serving after {out:?}");
        assert!(out.contains(&Outcome::Landed), "round {round}: {out:?}");
        repool_all(&s, "mixed", 8).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_pool_selection_is_judged_by_its_own_read_and_its_revision_guards_the_write() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // At least 3 of 4 must serve (the service's own threshold, not the default 0.5).
    make_pool(&s, "whole", 4, 0.75, None).await;
    let depool = Edit::Set(SetFields {
        pooled: Some(Pooled::No),
        weight: None,
    });
    let actor = Actor::from_env("threshold-test", None);
    // No name term: the selection holds the whole pool; the edit depools `n` of its nodes.
    let sel: Selector = "cluster=whole".parse().expect("sel");
    assert!(sel.selects_whole_pools());
    let edit = move |n: usize| {
        let names: Vec<String> = (0..n).map(|i| node("whole", i)).collect();
        move |o: &conftool_core::Selected| names.contains(&o.key.node.to_string()).then_some(depool)
    };
    let w = s.writer(&actor, &AuditLog::default()).expect("writer");

    // Judged with the service's limits: 2 of 4 may not leave, 1 may.
    let selection = s.select(&sel).await.expect("select");
    let changes = selection.changes(edit(2));
    let e = w
        .check_selected(&sel, &selection, &changes)
        .await
        .expect_err("2 of 4 would leave 2 serving, under 3");
    assert_eq!(outcome(Err(e)), Outcome::Refused);

    // Checked by a read that another depool then overtakes (before the check, even): the
    // check passes on what was read, and the write, guarded at that read's revision, is
    // judged again and refused; nothing of it is written.
    let selection = s.select(&sel).await.expect("select");
    let mut other = s.writer(&actor, &AuditLog::default()).expect("writer");
    let host: NodeName = node("whole", 3).parse().expect("name");
    other
        .host(HostVerb::Depool, &[host], None)
        .await
        .expect("3 of 4 stay");
    let changes = selection.changes(edit(1));
    let checked = w
        .check_selected(&sel, &selection, &changes)
        .await
        .expect("1 of 4 may leave, as read");
    let mut w = s.writer(&actor, &AuditLog::default()).expect("writer");
    let refused = w
        .apply_checked(&sel, changes, edit(1), Atomicity::Batched, checked)
        .await
        .expect_err("judged against the pool as it is now");
    assert!(refused.applied.is_empty(), "{:?}", refused.applied);
    assert_eq!(outcome(Err(refused.error)), Outcome::Refused);
    assert_eq!(serving(&s, "whole").await, 3);

    // Unchanged since the read: it lands.
    repool_all(&s, "whole", 4).await;
    let selection = s.select(&sel).await.expect("select");
    let changes = selection.changes(edit(1));
    let checked = w
        .check_selected(&sel, &selection, &changes)
        .await
        .expect("1 of 4 may leave");
    let landed = w
        .apply_checked(&sel, changes, edit(1), Atomicity::Batched, checked)
        .await
        .expect("the pool is as read");
    assert_eq!(landed.len(), 1);
    assert_eq!(serving(&s, "whole").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checked_write_is_judged_again_when_its_pool_changed_since_the_check() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    make_pool(&s, "asked", 4, 0.5, None).await;
    let depool = Edit::Set(SetFields {
        pooled: Some(Pooled::No),
        weight: None,
    });
    let actor = Actor::from_env("threshold-test", None);
    let sel: Selector = "cluster=asked,name=asked-mw[01]".parse().expect("sel");
    let plan = || async {
        let w = s.writer(&actor, &AuditLog::default()).expect("writer");
        let changes = s
            .select(&sel)
            .await
            .expect("select")
            .changes(|_| Some(depool));
        let checked = w.check(&changes).await.expect("2 of 4 may leave");
        (w, changes, checked)
    };

    // While a person is asked, another host of the pool is depooled: the checked write
    // would now leave 1 of 4 serving, and is refused, nothing of it written.
    let (mut w, changes, checked) = plan().await;
    let mut other = s.writer(&actor, &AuditLog::default()).expect("writer");
    let host: NodeName = node("asked", 2).parse().expect("name");
    other
        .host(HostVerb::Depool, &[host], None)
        .await
        .expect("3 of 4 stay");
    let refused = w
        .apply_checked(&sel, changes, |_| Some(depool), Atomicity::Batched, checked)
        .await
        .expect_err("judged against the pool as it is now");
    assert!(refused.applied.is_empty(), "{:?}", refused.applied);
    assert_eq!(outcome(Err(refused.error)), Outcome::Refused);
    assert_eq!(serving(&s, "asked").await, 3);

    // Unchanged since the check: it lands.
    repool_all(&s, "asked", 4).await;
    let (mut w, changes, checked) = plan().await;
    let landed = w
        .apply_checked(&sel, changes, |_| Some(depool), Atomicity::Batched, checked)
        .await
        .expect("the pool is as checked");
    assert_eq!(landed.len(), 2);
    assert_eq!(serving(&s, "asked").await, 2);
}
