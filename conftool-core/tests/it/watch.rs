//! [`Store::watch`] against real etcd members: a snapshot, then every change after it once,
//! in revision order, through restarts, failovers, stalls, compaction and slow consumers;
//! and nothing left behind when it is dropped.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conftool_core::watch::{ObjectChange, Watch, WatchConfig, WatchEvent};
use conftool_core::{Config, Keyspace, PoolState, Selection, Selector, Store};
use conftool_testkit::{Etcd, EtcdCluster};
use etcd_client::{Client, EventType, WatchOptions};

/// How long any one event may take to arrive (a bound, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);
/// How often a wait looks again at whether it is over.
const TICK: Duration = Duration::from_millis(100);

async fn store(endpoints: Vec<String>, timeout: Duration) -> Store {
    let cfg = Config {
        endpoints,
        timeout,
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

fn key(dc: &str, cluster: &str, node: &str) -> String {
    format!("/v1/pools/{dc}/{cluster}/apache/{node}")
}

fn state(pooled: &str, weight: u32) -> String {
    format!(r#"{{"pooled":"{pooled}","weight":{weight}}}"#)
}

/// Put through a plain client; the revision it landed at.
async fn put(c: &mut Client, key: &str, value: &str) -> i64 {
    let resp = c.put(key, value, None).await.expect("put");
    resp.header().expect("header").revision()
}

/// What a consumer saw, checked as it goes: revisions only grow, no object twice at one
/// revision, the view follows every event.
#[derive(Debug, Default)]
struct Consumer {
    view: Selection,
    /// The revision of the last event.
    last: i64,
    seen: HashSet<(String, i64)>,
    /// Each `Changes` event as (revision, changes).
    changes: Vec<(i64, Vec<ObjectChange>)>,
    /// (revision of the last event before, revision of the snapshot) of every re-list.
    relists: Vec<(i64, i64)>,
    snapshots: usize,
    errors: Vec<String>,
}

impl Consumer {
    fn take(&mut self, ks: &Keyspace, item: Result<WatchEvent, conftool_core::Error>) {
        let event = match item {
            Ok(event) => event,
            Err(e) => {
                self.errors.push(e.to_string());
                return;
            }
        };
        match &event {
            WatchEvent::Snapshot(s) => {
                assert!(
                    s.revision >= self.last,
                    "snapshot {} after {}",
                    s.revision,
                    self.last
                );
                if self.snapshots > 0 {
                    self.relists.push((self.last, s.revision));
                }
                self.snapshots += 1;
                self.last = s.revision;
            }
            WatchEvent::Changes { revision, changes } => {
                assert!(self.snapshots > 0, "a snapshot comes first");
                assert!(
                    *revision > self.last,
                    "revision {revision} after {}",
                    self.last
                );
                assert!(!changes.is_empty());
                for c in changes {
                    let k = c
                        .key()
                        .map_or_else(|| format!("{c:?}"), |key| ks.object_key(key));
                    assert!(
                        self.seen.insert((k.clone(), *revision)),
                        "{k} twice at {revision}"
                    );
                }
                self.last = *revision;
                self.changes.push((*revision, changes.clone()));
            }
            other => panic!("an event this test does not know: {other:?}"),
        }
        event.apply_to(ks, &mut self.view);
    }

    /// Take events until `done` says so (asked again at least every [`TICK`]); panics if
    /// no event comes for [`PATIENCE`] or the watch ends.
    async fn until(&mut self, w: &mut Watch, ks: &Keyspace, done: impl Fn(&Consumer) -> bool) {
        let mut idle = Duration::ZERO;
        while !done(self) {
            match tokio::time::timeout(TICK, w.next()).await {
                Ok(Some(item)) => {
                    self.take(ks, item);
                    idle = Duration::ZERO;
                }
                Ok(None) => panic!("the watch ended; errors: {:?}", self.errors),
                Err(_) => {
                    idle += TICK;
                    assert!(
                        idle < PATIENCE,
                        "no event within {PATIENCE:?} at revision {}; status {:?}; errors {:?}",
                        self.last,
                        w.status(),
                        self.errors
                    );
                }
            }
        }
    }

    fn change_count(&self) -> usize {
        self.changes.iter().map(|(_, c)| c.len()).sum()
    }
}

/// Wait (bounded) until `f` holds for the watch's status.
async fn status_until(w: &Watch, what: &str, f: impl Fn(&conftool_core::WatchStatus) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f(&w.status()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: status {:?}",
            w.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The view must be what a fresh read shows.
async fn assert_view_is_fresh(s: &Store, sel: &Selector, view: &Selection) {
    let fresh = s.select(sel).await.expect("select");
    assert_eq!(view.objects, fresh.objects);
    assert_eq!(view.malformed, fresh.malformed);
    assert_eq!(view.unreadable, fresh.unreadable);
}

#[tokio::test]
async fn a_snapshot_then_every_change_of_the_selection_once() {
    let etcd = Etcd::start();
    let mut c = etcd.client().await;
    let ks = Keyspace::default();
    put(&mut c, &key("eqiad", "appservers", "mw1"), &state("yes", 1)).await;
    put(&mut c, &key("eqiad", "appservers", "mw2"), "not json").await;
    put(&mut c, &key("eqiad", "api", "mw3"), &state("yes", 1)).await;
    let s = store(etcd.endpoints(), Duration::from_secs(5)).await;
    let sel: Selector = "dc=eqiad,cluster=appservers".parse().unwrap();
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    seen.until(&mut w, &ks, |c| c.snapshots == 1).await;
    assert_eq!(seen.view.objects.len(), 1);
    assert_eq!(seen.view.malformed.len(), 1);
    assert_view_is_fresh(&s, &sel, &seen.view).await;

    // Outside the selection (another cluster): nothing. Under its prefix but not an object
    // key: unreadable.
    put(&mut c, &key("eqiad", "api", "mw3"), &state("no", 1)).await;
    let r0 = put(&mut c, "/v1/pools/eqiad/appservers/apache", "{}").await;
    let r1 = put(&mut c, &key("eqiad", "appservers", "mw1"), &state("no", 5)).await;
    let r2 = put(&mut c, &key("eqiad", "appservers", "mw2"), &state("yes", 2)).await;
    let r3 = put(
        &mut c,
        &key("eqiad", "appservers", "mw1"),
        r#"{"pooled":"maybe"}"#,
    )
    .await;
    let r4 = c
        .delete(key("eqiad", "appservers", "mw2"), None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    // One transaction: one event with both changes.
    let txn = etcd_client::Txn::new().and_then([
        etcd_client::TxnOp::put(key("eqiad", "appservers", "mw4"), state("yes", 4), None),
        etcd_client::TxnOp::put(key("eqiad", "appservers", "mw5"), state("no", 5), None),
        etcd_client::TxnOp::put(key("eqiad", "api", "mw6"), state("no", 5), None),
    ]);
    let r5 = c.txn(txn).await.unwrap().header().unwrap().revision();
    seen.until(&mut w, &ks, |c| c.last >= r5).await;
    let revisions: Vec<i64> = seen.changes.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, vec![r0, r1, r2, r3, r4, r5]);
    let kinds: Vec<String> = seen
        .changes
        .iter()
        .flat_map(|(_, cs)| cs.iter())
        .map(|c| match c {
            ObjectChange::Put(s) => format!("put {} {}", s.key, s.state.to_json()),
            ObjectChange::Deleted(k) => format!("delete {k}"),
            ObjectChange::Malformed { key, .. } => format!("malformed {key}"),
            ObjectChange::Unreadable(key) => format!("unreadable {key}"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "unreadable /v1/pools/eqiad/appservers/apache",
            r#"put eqiad/appservers/apache/mw1 {"pooled":"no","weight":5}"#,
            r#"put eqiad/appservers/apache/mw2 {"pooled":"yes","weight":2}"#,
            "malformed eqiad/appservers/apache/mw1",
            "delete eqiad/appservers/apache/mw2",
            r#"put eqiad/appservers/apache/mw4 {"pooled":"yes","weight":4}"#,
            r#"put eqiad/appservers/apache/mw5 {"pooled":"no","weight":5}"#,
        ]
    );
    assert_view_is_fresh(&s, &sel, &seen.view).await;
    assert_eq!(w.buffered(), 0);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
}

#[tokio::test]
async fn a_single_member_restarted_mid_watch_is_resumed_without_gap_or_duplicate() {
    let mut etcd = Etcd::start();
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    let s = store(etcd.endpoints(), Duration::from_secs(2)).await;
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    let mut expected = Vec::new();
    let mut c = etcd.client().await;
    for i in 0..20 {
        expected.push(
            put(
                &mut c,
                &key("eqiad", "app", &format!("mw{i}")),
                &state("yes", i),
            )
            .await,
        );
    }
    seen.until(&mut w, &ks, |c| c.last >= expected[9]).await;
    status_until(&w, "on the member", |st| st.member.is_some()).await;

    // Killed and restarted on the same data directory, while ten events are still unread.
    etcd.restart_member(0);
    etcd.wait_member_serving(0, PATIENCE).unwrap();
    let mut c = etcd.client().await;
    for i in 20..40 {
        expected.push(
            put(
                &mut c,
                &key("eqiad", "app", &format!("mw{i}")),
                &state("no", i),
            )
            .await,
        );
    }
    let end = *expected.last().unwrap();
    seen.until(&mut w, &ks, |c| c.last >= end).await;
    let revisions: Vec<i64> = seen.changes.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, expected, "every revision once, in order");
    assert!(seen.relists.is_empty());
    assert!(w.status().resumed >= 1, "{:?}", w.status());
    assert_view_is_fresh(&s, &sel, &seen.view).await;
}

#[tokio::test]
async fn a_quiet_watch_is_not_cut_off_by_etcds_ping_policy() {
    // etcd answers a client that pings more often than every 5 s while no data flows with
    // GOAWAY ("too many pings") after three such pings; the store's request connection
    // pings every 1.25 s with the default timeout. The watch's connection must not: with
    // its pings every second instead, this watch was cut off twice in these 12 s.
    let etcd = Etcd::start();
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    let s = store(etcd.endpoints(), Duration::from_secs(5)).await;
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    seen.until(&mut w, &ks, |c| c.snapshots == 1).await;
    status_until(&w, "on the member", |st| st.member.is_some()).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut c = etcd.client().await;
    let rev = put(&mut c, &key("eqiad", "app", "mw1"), "{}").await;
    seen.until(&mut w, &ks, |c| c.last >= rev).await;
    assert_eq!(w.status().resumed, 0, "{:?}", w.status());
}

#[tokio::test]
async fn a_stalled_member_is_left_for_another_one() {
    let mut etcd = EtcdCluster::start_with(3, &[]);
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    // A follower first: the store and the watch start there, and freezing it needs no
    // election before the others accept writes.
    let leader = etcd.leader(PATIENCE).expect("a leader");
    let stalled = (leader + 1) % 3;
    let endpoints = [stalled, leader, (leader + 2) % 3]
        .map(|i| etcd.member_endpoint(i))
        .to_vec();
    let s = store(endpoints, Duration::from_secs(1)).await;
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    seen.until(&mut w, &ks, |c| c.snapshots == 1).await;
    status_until(&w, "on the follower", |st| st.member.is_some()).await;
    assert_eq!(w.status().member, Some(etcd.member_endpoint(stalled)));
    let mut writer = etcd.member_client(leader).await.unwrap();
    let paused = etcd.pause_member(stalled);
    // Written while the follower is frozen (the other two have a quorum).
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(put(&mut writer, &key("eqiad", "app", &format!("mw{i}")), "{}").await);
    }
    seen.until(&mut w, &ks, |c| c.last >= expected[4]).await;
    let st = w.status();
    assert!(st.resumed >= 1, "{st:?}");
    assert_ne!(st.member, Some(etcd.member_endpoint(stalled)));
    drop(paused);
    let revisions: Vec<i64> = seen.changes.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, expected);
}

#[tokio::test]
async fn history_compacted_while_disconnected_is_a_relist() {
    let mut etcd = EtcdCluster::start_with(3, &[]);
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    // The watch knows one follower only: while it is down, the watch cannot follow, and the
    // other two go on without an election.
    let leader = etcd.leader(PATIENCE).expect("a leader");
    let down = (leader + 1) % 3;
    let s = store(vec![etcd.member_endpoint(down)], Duration::from_secs(1)).await;
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    let mut c = etcd.member_client(leader).await.unwrap();
    let before = put(&mut c, &key("eqiad", "app", "mw0"), &state("yes", 1)).await;
    seen.until(&mut w, &ks, |c| c.last >= before).await;

    etcd.kill_member(down);
    for i in 1..10 {
        put(
            &mut c,
            &key("eqiad", "app", &format!("mw{i}")),
            &state("yes", i),
        )
        .await;
    }
    c.delete(key("eqiad", "app", "mw0"), None).await.unwrap();
    let compacted = put(&mut c, &key("eqiad", "app", "mw1"), &state("no", 1)).await;
    c.compact(compacted, None).await.unwrap();
    etcd.restart_member(down);
    etcd.wait_member_serving(down, PATIENCE).unwrap();

    seen.until(&mut w, &ks, |c| c.snapshots == 2).await;
    assert_eq!(seen.relists, vec![(before, seen.last)]);
    assert!(seen.last >= compacted);
    assert_eq!(w.status().relists, 1);
    assert_view_is_fresh(&s, &sel, &seen.view).await;
    // And on from there.
    let after = put(&mut c, &key("eqiad", "app", "mw2"), &state("no", 7)).await;
    seen.until(&mut w, &ks, |c| c.last >= after).await;
    assert_eq!(seen.changes.last().unwrap().0, after);
    assert_view_is_fresh(&s, &sel, &seen.view).await;
    assert!(
        seen.errors.iter().all(|e| e.contains("unavailable")),
        "{:?}",
        seen.errors
    );
}

#[tokio::test]
async fn a_slow_consumer_holds_the_watch_back_in_etcd_not_in_memory() {
    let etcd = Etcd::start();
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    let s = store(etcd.endpoints(), Duration::from_secs(5)).await;
    let mut w = s
        .watch_with(&sel, WatchConfig::default().with_capacity(2))
        .await
        .unwrap();
    assert_eq!(w.capacity(), 2);
    let mut c = etcd.client().await;
    let mut expected = Vec::new();
    for i in 0..300 {
        let k = key("eqiad", "app", &format!("mw{:03}", i % 50));
        expected.push(put(&mut c, &k, &state("yes", i)).await);
    }
    let end = *expected.last().unwrap();
    // Nobody reads: the task stops at a full channel; the rest waits in etcd (and in the
    // connection's flow-control window), not in the channel.
    status_until(&w, "channel full", |_| w.buffered() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = w.status().revision;
    assert!(held < end, "handed over {held} of {end} to a channel of 2");
    assert_eq!(w.buffered(), 2);

    // A consumer that sleeps on every event still gets every one, in order.
    let mut seen = Consumer::default();
    while seen.last < end {
        let item = tokio::time::timeout(PATIENCE, w.next())
            .await
            .unwrap()
            .unwrap();
        seen.take(&ks, item);
        assert!(w.buffered() <= w.capacity());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let revisions: Vec<i64> = seen.changes.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, expected);
    assert_view_is_fresh(&s, &sel, &seen.view).await;
}

#[tokio::test]
async fn compaction_past_a_stalled_consumer_is_a_relist() {
    let etcd = Etcd::start();
    let ks = Keyspace::default();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    let s = store(etcd.endpoints(), Duration::from_secs(5)).await;
    let mut w = s
        .watch_with(&sel, WatchConfig::default().with_capacity(1))
        .await
        .unwrap();
    // ~40 MB of events while nobody reads: more than the connection's window and etcd's
    // own send buffers hold, so the watcher is left behind in etcd's history.
    let mut c = etcd.client().await;
    let pad = "x".repeat(1000);
    let mut last = 0;
    for round in 0..400 {
        let ops: Vec<etcd_client::TxnOp> = (0..100)
            .map(|i| {
                let v = format!(r#"{{"pooled":"yes","weight":{round},"pad":"{pad}"}}"#);
                etcd_client::TxnOp::put(key("eqiad", "app", &format!("mw{i:03}")), v, None)
            })
            .collect();
        let resp = c.txn(etcd_client::Txn::new().and_then(ops)).await.unwrap();
        last = resp.header().unwrap().revision();
    }
    c.compact(last, None).await.unwrap();
    let mut seen = Consumer::default();
    seen.until(&mut w, &ks, |c| c.last >= last).await;
    assert_eq!(seen.relists.len(), 1, "{:?}", seen.relists);
    assert_eq!(w.status().relists, 1);
    assert_eq!(seen.view.objects.len(), 100);
    assert_view_is_fresh(&s, &sel, &seen.view).await;
}

/// A gauge from etcd's `/metrics` (plain HTTP on the client port).
fn metric(endpoint: &str, name: &str) -> f64 {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send the request");
    let mut body = String::new();
    conn.read_to_string(&mut body).expect("read the metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in etcd's metrics"))
}

async fn watchers(endpoint: &str) -> (f64, f64) {
    let e = endpoint.to_string();
    tokio::task::spawn_blocking(move || {
        (
            metric(&e, "etcd_debugging_mvcc_watcher_total"),
            metric(&e, "etcd_debugging_mvcc_watch_stream_total"),
        )
    })
    .await
    .expect("the metrics reader")
}

async fn watchers_until(endpoint: &str, want: (f64, f64)) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = watchers(endpoint).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "etcd's (watchers, watch streams) stay at {now:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn dropping_the_watch_ends_its_stream_in_etcd() {
    let etcd = Etcd::start();
    let ep = etcd.endpoint();
    let sel: Selector = "dc=eqiad".parse().unwrap();
    let s = store(etcd.endpoints(), Duration::from_secs(5)).await;
    watchers_until(&ep, (0.0, 0.0)).await;
    let mut w = s.watch(&sel).await.unwrap();
    watchers_until(&ep, (1.0, 1.0)).await;
    assert!(matches!(w.next().await, Some(Ok(WatchEvent::Snapshot(_)))));
    drop(w);
    watchers_until(&ep, (0.0, 0.0)).await;

    // Also while its task is blocked on a consumer that does not read.
    let w = s
        .watch_with(&sel, WatchConfig::default().with_capacity(1))
        .await
        .unwrap();
    let mut c = etcd.client().await;
    let mut last = 0;
    for i in 0..20 {
        last = put(&mut c, &key("eqiad", "app", &format!("mw{i}")), "{}").await;
    }
    watchers_until(&ep, (1.0, 1.0)).await;
    status_until(&w, "blocked on the full channel", |_| w.buffered() == 1).await;
    assert!(w.status().revision < last);
    drop(w);
    watchers_until(&ep, (0.0, 0.0)).await;
}

/// One event of the reference watch: (revision, key, delete, value).
type RawEvent = (i64, String, bool, Vec<u8>);

/// The reference: a plain etcd-client watch of `/v1/pools/` on one member that is never
/// disturbed, from `start`, until it has seen `stop` (once set).
async fn reference(
    client: Client,
    start: i64,
    stop: Arc<AtomicI64>,
) -> Result<Vec<RawEvent>, String> {
    let opts = WatchOptions::new().with_prefix().with_start_revision(start);
    let mut wc = client.watch_client().max_decoding_message_size(256 << 20);
    let mut stream = wc
        .watch("/v1/pools/", Some(opts))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut idle = Duration::ZERO;
    loop {
        let stop_at = stop.load(Ordering::SeqCst);
        if stop_at > 0 && out.last().is_some_and(|e: &RawEvent| e.0 >= stop_at) {
            return Ok(out);
        }
        let Ok(message) = tokio::time::timeout(TICK, stream.message()).await else {
            idle += TICK;
            if idle >= PATIENCE {
                return Err("the reference watch stalled".to_string());
            }
            continue;
        };
        idle = Duration::ZERO;
        let resp = message
            .map_err(|e| e.to_string())?
            .ok_or("the reference watch ended")?;
        if resp.canceled() || resp.compact_revision() != 0 {
            return Err(format!(
                "the reference watch was cancelled: {} (compacted at {})",
                resp.cancel_reason(),
                resp.compact_revision()
            ));
        }
        for ev in resp.events() {
            let kv = ev.kv().expect("kv");
            out.push((
                kv.mod_revision(),
                String::from_utf8(kv.key().to_vec()).expect("a UTF-8 key"),
                ev.event_type() == EventType::Delete,
                kv.value().to_vec(),
            ));
        }
    }
}

/// What one object's change looks like, for comparing our events with the reference's.
fn describe(ks: &Keyspace, c: &ObjectChange) -> String {
    match c {
        ObjectChange::Put(s) => format!("put {} {:?}", ks.object_key(&s.key), s.state),
        ObjectChange::Deleted(k) => format!("delete {}", ks.object_key(k)),
        ObjectChange::Malformed { key, .. } => format!("malformed {}", ks.object_key(key)),
        other => panic!("{other:?}"),
    }
}

fn describe_raw(key: &str, delete: bool, value: &[u8]) -> String {
    if delete {
        return format!("delete {key}");
    }
    match PoolState::from_json(key, value) {
        Ok(s) => format!("put {key} {s:?}"),
        Err(_) => format!("malformed {key}"),
    }
}

/// One writer of the workload: `count` changes that landed, on its own objects (and a
/// write outside the selection every tenth step, not counted), through the library's
/// guarded writes, riding out failovers: an outcome that is not known is read back.
async fn writer(s: Store, id: usize, count: usize, landed: Arc<AtomicUsize>) {
    use conftool_core::{Guard, Write};
    let objects: Vec<String> = (0..10)
        .map(|i| key("eqiad", "appservers", &format!("mw{id}{i:03}")))
        .collect();
    let outside = key("codfw", "appservers", &format!("mw{id}000"));
    let mut revs: BTreeMap<String, Option<i64>> =
        objects.iter().map(|k| (k.clone(), None)).collect();
    let mut done = 0;
    let mut step = 0usize;
    while done < count {
        step += 1;
        let selected = step % 10 != 0;
        let k = if selected {
            objects[step % objects.len()].clone()
        } else {
            outside.clone()
        };
        let current = revs.get(&k).copied().flatten();
        let value = match (current, step % 13, step % 29) {
            (Some(_), 0, _) => None,
            (_, _, 0) => Some(format!(r#"{{"pooled":"maybe","seq":"{id}-{step}"}}"#)),
            _ => Some(format!(
                r#"{{"pooled":"{}","weight":{},"seq":"{id}-{step}"}}"#,
                if step % 2 == 0 { "yes" } else { "no" },
                step % 1000
            )),
        };
        let guard = match current {
            Some(rev) => Guard::Unchanged(rev),
            None if !selected => {
                // Outside the selection: read what is there first.
                match s.read_prefix(&k).await {
                    Ok(snap) => match snap.kvs.first() {
                        Some(kv) => Guard::Unchanged(kv.mod_revision),
                        None => Guard::Absent,
                    },
                    Err(_) => continue,
                }
            }
            None => Guard::Absent,
        };
        let write = match &value {
            Some(v) => Write::Put {
                key: k.clone(),
                value: v.clone(),
                guard,
            },
            None => Write::Delete {
                key: k.clone(),
                guard,
            },
        };
        let outcome = match s.raw().commit(&[write]).await {
            Ok(report) => report.applied.first().map(|(_, rev)| *rev),
            Err(_) => None,
        };
        let landed_now = match outcome {
            Some(rev) => {
                if selected {
                    revs.insert(k.clone(), value.as_ref().map(|_| rev));
                }
                true
            }
            None => {
                // Lost race or unknown outcome: read it back until the read answers.
                let snap = loop {
                    match s.read_prefix(&k).await {
                        Ok(snap) => break snap,
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                let now = snap.kvs.first();
                let ours = match (&value, now) {
                    (Some(v), Some(kv)) => kv.value == v.as_bytes(),
                    (None, None) => true,
                    _ => false,
                };
                if selected {
                    revs.insert(k.clone(), now.map(|kv| kv.mod_revision));
                }
                ours
            }
        };
        if landed_now && selected {
            done += 1;
            landed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Compact etcd's history up to its current revision, through whichever member answers
/// (elections may be under way): that revision.
async fn compact_now(s: &Store) -> i64 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let attempt = async {
            let mut c = Client::connect(s.endpoints().split(',').collect::<Vec<_>>(), None).await?;
            let rev = c
                .get("compaction-probe", None)
                .await?
                .header()
                .map(|h| h.revision());
            let rev = rev.unwrap_or_default();
            c.compact(rev, None).await?;
            Ok::<i64, etcd_client::Error>(rev)
        };
        match attempt.await {
            Ok(rev) => return rev,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "compaction: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Create `key` through the library, riding out failovers (a create whose answer was lost
/// is found by reading it back): the revision it landed at.
async fn create_once(s: &Store, key: &str, value: &str) -> i64 {
    use conftool_core::{Guard, Write};
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let write = Write::Put {
            key: key.into(),
            value: value.into(),
            guard: Guard::Absent,
        };
        if let Ok(report) = s.raw().commit(&[write]).await {
            if let Some((_, rev)) = report.applied.first() {
                return *rev;
            }
        }
        if let Ok(snap) = s.read_prefix(key).await {
            if let Some(kv) = snap.kvs.first() {
                return kv.mod_revision;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cannot create {key}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_changes_seen_once_in_order_while_the_leader_dies_and_history_is_compacted() {
    const WRITERS: usize = 4;
    const CHANGES: usize = 10_000;
    let mut etcd = EtcdCluster::start_with(3, &[]);
    let ks = Keyspace::default();
    let leader = etcd.leader(PATIENCE).expect("a leader");
    let (f1, f2) = ((leader + 1) % 3, (leader + 2) % 3);
    // The leader first: the store and the watch start on it.
    let endpoints: Vec<String> = [leader, f1, f2]
        .iter()
        .map(|&i| etcd.member_endpoint(i))
        .collect();
    let sel: Selector = "dc=eqiad,cluster=appservers".parse().unwrap();
    let s = store(endpoints.clone(), Duration::from_secs(2)).await;
    let mut w = s.watch(&sel).await.unwrap();
    let mut seen = Consumer::default();
    seen.until(&mut w, &ks, |c| c.snapshots == 1).await;
    let start = seen.last;
    status_until(&w, "on the leader", |st| st.member.is_some()).await;
    assert_eq!(w.status().member, Some(etcd.member_endpoint(leader)));

    // The reference, on a follower that is never disturbed.
    let stop = Arc::new(AtomicI64::new(0));
    let reference = tokio::spawn(reference(
        etcd.member_client(f1).await.unwrap(),
        start + 1,
        stop.clone(),
    ));
    // The consumer, in a task of its own.
    let consumer = {
        let stop = stop.clone();
        let ks = ks.clone();
        tokio::spawn(async move {
            seen.until(&mut w, &ks, |c| {
                let at = stop.load(Ordering::SeqCst);
                at > 0 && c.last >= at
            })
            .await;
            (seen, w)
        })
    };
    let landed = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            let s = s.clone();
            tokio::spawn(writer(s, id, CHANGES / WRITERS, landed.clone()))
        })
        .collect();

    // The chaos, at points of the workload: the leader killed, restarted, history compacted.
    let at = |n: usize| {
        let landed = landed.clone();
        async move {
            while landed.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    at(3_000).await;
    etcd.kill_member(leader);
    at(5_500).await;
    etcd.restart_member(leader);
    at(8_000).await;
    let compacted_at = compact_now(&s).await;
    for wr in writers {
        wr.await.unwrap();
    }
    assert_eq!(landed.load(Ordering::SeqCst), CHANGES);
    // A last change, to know when the consumer has seen everything.
    let end = create_once(&s, &key("eqiad", "appservers", "mw-end"), &state("yes", 1)).await;
    stop.store(end, Ordering::SeqCst);
    let (seen, w) = tokio::time::timeout(PATIENCE * 5, consumer)
        .await
        .expect("the consumer saw the last change")
        .unwrap();
    let reference = reference
        .await
        .unwrap()
        .expect("the reference watch saw everything");

    // The reference, as our events would say it: per revision, the selected objects' changes.
    let mut expected: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (rev, k, delete, value) in &reference {
        let Some(object) = ks.parse_object_key(k) else {
            continue;
        };
        if sel.matches(&object) && *rev <= end {
            expected
                .entry(*rev)
                .or_default()
                .push(describe_raw(k, *delete, value));
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(total, CHANGES + 1, "the workload as etcd recorded it");
    // Revisions a re-list covered are not reported one by one.
    let covered = |rev: i64| seen.relists.iter().any(|&(a, b)| a < rev && rev <= b);
    let got: BTreeMap<i64, Vec<String>> = seen
        .changes
        .iter()
        .map(|(rev, cs)| (*rev, cs.iter().map(|c| describe(&ks, c)).collect()))
        .collect();
    let missing: Vec<i64> = expected
        .keys()
        .filter(|r| !covered(**r) && !got.contains_key(r))
        .copied()
        .collect();
    assert!(missing.is_empty(), "revisions never reported: {missing:?}");
    for (rev, changes) in &got {
        assert_eq!(Some(changes), expected.get(rev), "revision {rev}");
    }
    let relisted: usize = expected
        .iter()
        .filter(|(r, _)| covered(**r))
        .map(|(_, c)| c.len())
        .sum();
    assert_eq!(seen.change_count() + relisted, CHANGES + 1);
    assert_view_is_fresh(&s, &sel, &seen.view).await;
    let st = w.status();
    assert!(st.resumed >= 1, "the watch left the killed leader: {st:?}");
    eprintln!(
        "{CHANGES} changes from revision {start} to {end}: {} seen one by one in {} events, \
         {relisted} covered by {} re-lists, compacted at {compacted_at}; watch status {st:?}; \
         errors reported {:?}",
        seen.change_count(),
        seen.changes.len(),
        seen.relists.len(),
        seen.errors
    );
}
