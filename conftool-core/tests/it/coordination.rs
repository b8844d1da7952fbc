//! Leased locks and the stop switch against a real etcd: a mutex and a semaphore, waiting
//! and giving up, a holder that dies frees its slot when its lease runs out (and not before
//! while it is kept alive), and the stop switch's scopes.

use std::time::{Duration, Instant};

use conftool_core::{Actor, AuditLog, Cluster, Config, Error, LockRequest, StopScope, Store};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

fn actor(user: &str) -> Actor {
    Actor {
        user: user.into(),
        etcd_user: None,
        account: None,
        host: "test-host".into(),
        tool: "test".into(),
    }
}

fn req(name: &str, concurrency: u32, ttl_secs: u64) -> LockRequest {
    LockRequest {
        concurrency,
        reason: Some("testing".into()),
        ..LockRequest::new(
            name.parse().expect("name"),
            Duration::from_secs(ttl_secs),
            "coordination test",
        )
    }
}

#[tokio::test]
async fn a_mutex_makes_the_second_holder_wait_then_gives_it_the_lock() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let a = s
        .lock(&actor("alice"), &req("host:mw1", 1, 30), Duration::ZERO)
        .await
        .expect("alice gets it");
    // Bob cannot have it now: he is told who holds it, and his entry is withdrawn.
    let e = s
        .lock(
            &actor("bob"),
            &req("host:mw1", 1, 30),
            Duration::from_millis(300),
        )
        .await
        .expect_err("busy");
    let text = e.to_string();
    assert!(matches!(e, Error::LockBusy { .. }), "{e:?}");
    assert!(
        text.starts_with("lock host:mw1 is busy: not free within 0s (held by alice@test-host pid ")
            && text.ends_with(" for `coordination test`: testing)"),
        "{text}"
    );
    let state = s
        .lock_state(&"host:mw1".parse().unwrap())
        .await
        .expect("state");
    assert_eq!((state.entries.len(), state.holding), (1, 1));
    // Bob waits; Alice releases; Bob has it.
    let bob = {
        let s = s.clone();
        tokio::spawn(async move {
            s.lock(
                &actor("bob"),
                &req("host:mw1", 1, 30),
                Duration::from_secs(20),
            )
            .await
        })
    };
    // Bob's entry is there, waiting behind Alice's.
    let waiting = Instant::now();
    loop {
        let st = s
            .lock_state(&"host:mw1".parse().unwrap())
            .await
            .expect("state");
        if st.entries.len() == 2 {
            assert_eq!(st.holding, 1);
            assert_eq!(st.entries[0].0.user, "alice");
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "bob never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.release().await.expect("release");
    let b = bob
        .await
        .expect("task")
        .expect("bob gets it once alice released");
    assert_eq!(b.holder().user, "bob");
    // Lists show it, with its lease's time left.
    let locks = s.locks().await.expect("list");
    assert_eq!(locks.len(), 1);
    let (h, left) = &locks[0].entries[0];
    assert_eq!(h.user, "bob");
    assert!(left.is_some_and(|l| l > 0 && l <= 30), "{left:?}");
    // Anyone may remove an entry by its id (a person clearing a stuck run by hand).
    assert!(s
        .release_lock(&"host:mw1".parse().unwrap(), &h.id)
        .await
        .expect("release by id"));
    assert!(s.locks().await.expect("list").is_empty());
    assert!(!s
        .release_lock(&"host:mw1".parse().unwrap(), "nobody")
        .await
        .expect("nothing"));
}

#[tokio::test]
async fn a_semaphore_lets_as_many_as_its_concurrency_through() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let one = s
        .lock(
            &actor("a"),
            &req("pool:eqiad:app:apache", 2, 30),
            Duration::ZERO,
        )
        .await
        .expect("first");
    let two = s
        .lock(
            &actor("b"),
            &req("pool:eqiad:app:apache", 2, 30),
            Duration::ZERO,
        )
        .await
        .expect("second");
    let third = s
        .lock(
            &actor("c"),
            &req("pool:eqiad:app:apache", 2, 30),
            Duration::from_millis(300),
        )
        .await;
    assert!(matches!(third, Err(Error::LockBusy { ref holders, .. }) if holders.len() == 2));
    one.release().await.expect("release");
    let three = s
        .lock(
            &actor("c"),
            &req("pool:eqiad:app:apache", 2, 30),
            Duration::ZERO,
        )
        .await
        .expect("a slot is free");
    drop((two, three));
}

#[tokio::test]
async fn a_dead_holders_slot_frees_when_its_lease_runs_out_and_a_live_one_keeps_it() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    // Kept alive: still held well past its time to live.
    let mut kept = s
        .lock(&actor("alive"), &req("host:kept", 1, 2), Duration::ZERO)
        .await
        .expect("lock");
    kept.keep_alive();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let busy = s
        .lock(&actor("other"), &req("host:kept", 1, 2), Duration::ZERO)
        .await;
    assert!(matches!(busy, Err(Error::LockBusy { .. })), "{busy:?}");
    // Its holder "dies": the keep-alive stops, nothing releases it. The lease runs out.
    drop(kept);
    let t = Instant::now();
    let other = s
        .lock(
            &actor("other"),
            &req("host:kept", 1, 2),
            Duration::from_secs(20),
        )
        .await
        .expect("free once the lease ran out");
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    other.release().await.expect("release");
}

#[tokio::test]
async fn a_waiter_keeps_its_place_for_longer_than_its_time_to_live() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let mut first = s
        .lock(&actor("first"), &req("host:queue", 1, 30), Duration::ZERO)
        .await
        .expect("lock");
    first.keep_alive();
    // The second waits with a 1 s lease; the first lets go after 4 s.
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move {
            s.lock(
                &actor("second"),
                &req("host:queue", 1, 1),
                Duration::from_secs(30),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    let state = s
        .lock_state(&"host:queue".parse().unwrap())
        .await
        .expect("state");
    assert_eq!(
        (state.entries.len(), state.holding),
        (2, 1),
        "the waiter's entry is still queued: {state:?}"
    );
    first.release().await.expect("release");
    let second = waiter
        .await
        .expect("join")
        .expect("the waiter gets the lock");
    assert_eq!(second.holder().user, "second");
    second.release().await.expect("release");
}

#[tokio::test]
async fn the_stop_switch_says_who_and_why_and_applies_to_its_scope() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let app: Cluster = "appservers".parse().unwrap();
    let cache: Cluster = "cache_text".parse().unwrap();
    assert!(s
        .stopped(std::slice::from_ref(&app))
        .await
        .expect("read")
        .is_none());
    let mut w = s
        .writer(&actor("alice"), &AuditLog::default())
        .expect("writer");
    w.set_stop(&StopScope::Cluster(app.clone()), "incident 42")
        .await
        .expect("set");
    let stop = s
        .stopped(std::slice::from_ref(&app))
        .await
        .expect("read")
        .expect("stopped");
    assert_eq!(stop.scope, StopScope::Cluster(app.clone()));
    let rec = stop.record.expect("record");
    assert_eq!(
        (rec.by.as_str(), rec.reason.as_str()),
        ("alice", "incident 42")
    );
    assert!(s
        .stopped(std::slice::from_ref(&cache))
        .await
        .expect("read")
        .is_none());
    // The global switch stops everything, and is named first.
    w.set_stop(&StopScope::All, "freeze").await.expect("set");
    let stop = s
        .stopped(std::slice::from_ref(&cache))
        .await
        .expect("read")
        .expect("stopped");
    assert_eq!(stop.scope, StopScope::All);
    assert_eq!(s.stops().await.expect("all").len(), 2);
    // Anything at the key stops, even what this version cannot read.
    assert!(w.clear_stop(&StopScope::All).await.expect("clear"));
    assert!(!w.clear_stop(&StopScope::All).await.expect("clear again"));
    let mut c = etcd.client().await;
    c.put("/v1/stop/cache_text", "garbage", None)
        .await
        .expect("put");
    let stop = s.stopped(&[cache]).await.expect("read").expect("stopped");
    assert!(stop.record.is_none());
    assert_eq!(
        stop.to_string(),
        "stop switch set for cluster cache_text (unreadable record)"
    );
    // A key that only starts like a stop switch is not one.
    c.put("/v1/stopper", "x", None).await.expect("put");
    assert_eq!(s.stops().await.expect("all").len(), 2);
}

#[tokio::test]
async fn an_entry_left_by_an_ended_process_is_taken_over_and_released_by_the_next() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let name: conftool_core::LockName = "rebootmgr:web".parse().unwrap();
    let first = s
        .lock(
            &actor("node1"),
            &req("rebootmgr:web", 1, 30),
            Duration::ZERO,
        )
        .await
        .expect("lock");
    let id = first.holder().id.clone();
    // The process ends holding it (a reboot): nothing releases it.
    drop(first);
    let resumed = s
        .resume_lock(&name, &id)
        .await
        .expect("read")
        .expect("the entry is still there");
    assert_eq!(resumed.holder().id, id);
    assert_eq!(resumed.holder().user, "node1");
    let busy = s
        .lock(
            &actor("node2"),
            &req("rebootmgr:web", 1, 30),
            Duration::ZERO,
        )
        .await;
    assert!(matches!(busy, Err(Error::LockBusy { .. })), "{busy:?}");
    resumed.release().await.expect("release");
    assert!(s.lock_state(&name).await.expect("state").entries.is_empty());
    // Released (or never there): nothing to take over.
    assert!(s.resume_lock(&name, &id).await.expect("read").is_none());
}

#[tokio::test]
async fn an_entry_whose_lease_ran_out_cannot_be_taken_over() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let name: conftool_core::LockName = "rebootmgr:gone".parse().unwrap();
    let l = s
        .lock(
            &actor("node1"),
            &req("rebootmgr:gone", 1, 1),
            Duration::ZERO,
        )
        .await
        .expect("lock");
    let id = l.holder().id.clone();
    drop(l);
    let t = Instant::now();
    while !s.lock_state(&name).await.expect("state").entries.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.resume_lock(&name, &id).await.expect("read").is_none());
}

#[tokio::test]
async fn a_refresh_starts_the_whole_time_to_live_again() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let name: conftool_core::LockName = "rebootmgr:ttl".parse().unwrap();
    let l = s
        .lock(
            &actor("node1"),
            &req("rebootmgr:ttl", 1, 20),
            Duration::ZERO,
        )
        .await
        .expect("lock");
    let left = |st: conftool_core::LockState| st.entries[0].1.expect("a time to live");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = left(s.lock_state(&name).await.expect("state"));
    assert!(before <= 18, "{before}");
    l.refresh().await.expect("refresh");
    let after = left(s.lock_state(&name).await.expect("state"));
    assert!(after >= 19, "{after}");
    l.release().await.expect("release");
}
