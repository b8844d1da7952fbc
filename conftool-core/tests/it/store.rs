//! [`Store`] against a real etcd: reads pinned to one revision across pages, writes batched
//! within etcd's limits, and compare-and-swap guards that apply a transaction whole or not
//! at all.

use conftool_core::Classify as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use conftool_core::{BatchLimits, Config, Error, Guard, Snapshot, Store, Write};
use conftool_testkit::{Etcd, EtcdCluster};
use etcd_client::GetOptions;

async fn store(etcd: &EtcdCluster, limits: BatchLimits) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg)
        .await
        .expect("connect")
        .with_limits(limits)
}

fn limits(max_txn_ops: usize, page_size: i64) -> BatchLimits {
    BatchLimits {
        max_txn_ops,
        page_size,
        ..BatchLimits::default()
    }
}

fn put(key: &str, value: &str, guard: Guard) -> Write {
    Write::Put {
        key: key.into(),
        value: value.into(),
        guard,
    }
}

/// key -> (value, mod revision), as one plain range read at `revision` (0: now) sees it.
async fn raw_range(
    etcd: &EtcdCluster,
    prefix: &str,
    revision: i64,
) -> BTreeMap<String, (String, i64)> {
    let mut c = etcd.client().await;
    let mut opts = GetOptions::new().with_prefix();
    if revision > 0 {
        opts = opts.with_revision(revision);
    }
    c.get(prefix, Some(opts))
        .await
        .expect("range")
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().expect("utf-8 key").to_string(),
                (
                    kv.value_str().expect("utf-8 value").to_string(),
                    kv.mod_revision(),
                ),
            )
        })
        .collect()
}

fn as_map(snap: &Snapshot) -> BTreeMap<String, (String, i64)> {
    snap.kvs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                (
                    String::from_utf8(kv.value.clone()).expect("utf-8 value"),
                    kv.mod_revision,
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn paged_read_returns_every_key_of_the_prefix_once_in_order() {
    let etcd = Etcd::start();
    let mut c = etcd.client().await;
    // Neighbours that share the prefix's bytes but are outside it.
    for k in ["/t", "/t0", "/s/x", "/t.", "/u"] {
        c.put(k, "outside", None).await.unwrap();
    }
    let mut want = BTreeMap::new();
    for i in 0..70 {
        let k = format!("/t/{i:03}");
        let resp = c.put(k.as_str(), format!("v{i}"), None).await.unwrap();
        want.insert(k, (format!("v{i}"), resp.header().unwrap().revision()));
    }
    let now = etcd.revision().await;
    // Page sizes that divide the count exactly, do not, and exceed it.
    for page in [1, 7, 10, 70, 1000] {
        let s = store(&etcd, limits(128, page)).await;
        let snap = s.read_prefix("/t/").await.unwrap();
        assert_eq!(snap.revision, now, "page {page}");
        let keys: Vec<&str> = snap.kvs.iter().map(|kv| kv.key.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(keys, sorted, "page {page}: sorted, no repeats");
        assert_eq!(as_map(&snap), want, "page {page}");
    }
    // An empty prefix range: nothing, at the current revision.
    let s = store(&etcd, limits(128, 3)).await;
    let snap = s.read_prefix("/nothing/").await.unwrap();
    assert!(snap.kvs.is_empty());
    assert_eq!(snap.revision, now);
}

#[tokio::test]
async fn paged_read_is_pinned_to_one_revision_while_keys_change() {
    let etcd = Etcd::start();
    let mut c = etcd.client().await;
    for i in 0..300 {
        c.put(format!("/p/{i:03}"), "0", None).await.unwrap();
    }
    let s = store(&etcd, limits(128, 5)).await;
    let stop = AtomicBool::new(false);
    // A writer churns the whole range (updates, deletes, creates at both ends) while the
    // store reads it five keys at a time.
    let writer = async {
        let mut c = etcd.client().await;
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let i = (n * 37) % 300;
            c.put(format!("/p/{i:03}"), n.to_string(), None)
                .await
                .unwrap();
            c.put(format!("/p/{:03}", 300 + n), "new", None)
                .await
                .unwrap();
            c.put(format!("/p/!{n:05}"), "new-first", None)
                .await
                .unwrap();
            c.delete(format!("/p/{:03}", (n * 11) % 300), None)
                .await
                .unwrap();
            tokio::task::yield_now().await;
        }
        n
    };
    let reader = async {
        // Let the writer start first.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let snap = s.read_prefix("/p/").await.unwrap();
        stop.store(true, Ordering::SeqCst);
        snap
    };
    let (writes, snap) = tokio::join!(writer, reader);
    assert!(writes > 10, "the writer hardly ran ({writes} rounds)");
    let at_revision = raw_range(&etcd, "/p/", snap.revision).await;
    assert_eq!(
        as_map(&snap),
        at_revision,
        "the pages together must be exactly the range at revision {}",
        snap.revision
    );
    assert_ne!(
        raw_range(&etcd, "/p/", 0).await,
        at_revision,
        "the range changed during the read (else this test shows nothing)"
    );
}

#[tokio::test]
async fn commit_batches_within_etcds_max_txn_ops() {
    let etcd = EtcdCluster::start_with(1, &["--max-txn-ops", "16"]);
    let writes: Vec<Write> = (0..100)
        .map(|i| put(&format!("/b/{i:03}"), &format!("v{i}"), Guard::Absent))
        .collect();

    // One more op per transaction than etcd allows: refused by etcd, nothing written.
    let too_big = store(&etcd, limits(17, 1000)).await;
    let before = etcd.revision().await;
    let err = too_big.raw().commit(&writes[..17]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("too many operations in txn request"),
        "{err}"
    );
    assert!(!err.is_bad_input());
    assert_eq!(etcd.revision().await, before);
    assert!(etcd.dump().await.is_empty());

    // Within the limit: 100 writes in 7 transactions of at most 16.
    let s = store(&etcd, limits(16, 1000)).await;
    let report = s.raw().commit(&writes).await.unwrap();
    assert!(report.conflicted.is_empty());
    assert_eq!(
        report.applied.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    let mut per_txn: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, rev) in &report.applied {
        *per_txn.entry(*rev).or_default() += 1;
    }
    assert_eq!(per_txn.len(), 7, "{per_txn:?}");
    assert!(per_txn.values().all(|&n| n <= 16), "{per_txn:?}");
    assert_eq!(etcd.revision().await, before + 7);
    // Each write landed at the revision it was reported with.
    let stored = raw_range(&etcd, "/b/", 0).await;
    for (i, rev) in &report.applied {
        let (v, mod_rev) = &stored[&format!("/b/{i:03}")];
        assert_eq!((v.as_str(), *mod_rev), (format!("v{i}").as_str(), *rev));
    }
}

#[tokio::test]
async fn commit_batches_within_etcds_request_size() {
    let etcd = EtcdCluster::start_with(1, &["--max-request-bytes", "20000"]);
    let value = "x".repeat(1000);
    let writes: Vec<Write> = (0..60)
        .map(|i| put(&format!("/big/{i:02}"), &value, Guard::Absent))
        .collect();
    // The default byte budget (1 MiB) is far over this etcd's 20 kB: refused.
    let s = store(&etcd, limits(128, 1000)).await;
    assert!(s.raw().commit(&writes).await.is_err());
    assert!(etcd.dump().await.is_empty());
    // A budget under the server's limit: several transactions, all applied.
    let small = BatchLimits {
        max_txn_bytes: 15_000,
        ..limits(128, 1000)
    };
    let s = store(&etcd, small).await;
    let report = s.raw().commit(&writes).await.unwrap();
    assert_eq!(report.applied.len(), 60);
    let txns: std::collections::BTreeSet<i64> = report.applied.iter().map(|(_, r)| *r).collect();
    assert!(txns.len() >= 4, "{} transactions", txns.len());
    assert_eq!(etcd.dump().await.len(), 60);
}

#[tokio::test]
async fn absent_guard_conflict_applies_nothing_of_its_transaction() {
    let etcd = Etcd::start();
    let mut c = etcd.client().await;
    c.put("/g/b", "someone else's", None).await.unwrap();
    let writes = vec![
        put("/g/a", "1", Guard::Absent),
        put("/g/b", "2", Guard::Absent),
        put("/g/c", "3", Guard::Absent),
    ];
    // All three in one transaction: /g/b exists, so none of them is written.
    let s = store(&etcd, limits(128, 1000)).await;
    let before = (etcd.dump().await, etcd.revision().await);
    let report = s.raw().commit(&writes).await.unwrap();
    assert_eq!(report.conflicted, vec![0, 1, 2]);
    assert!(report.applied.is_empty());
    assert_eq!((etcd.dump().await, etcd.revision().await), before);

    // One write per transaction: only the write on /g/b is refused.
    let s = store(&etcd, limits(1, 1000)).await;
    let report = s.raw().commit(&writes).await.unwrap();
    assert_eq!(report.conflicted, vec![1]);
    assert_eq!(
        report.applied.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 2]
    );
    let dump = etcd.dump().await;
    assert_eq!(dump["/g/a"], "1");
    assert_eq!(dump["/g/b"], "someone else's");
    assert_eq!(dump["/g/c"], "3");
}

#[tokio::test]
async fn unchanged_guard_conflict_applies_nothing_of_its_transaction() {
    let etcd = Etcd::start();
    let mut c = etcd.client().await;
    c.put("/u/x", "x0", None).await.unwrap();
    c.put("/u/y", "y0", None).await.unwrap();
    let s = store(&etcd, limits(128, 1000)).await;
    let snap = s.read_prefix("/u/").await.unwrap();
    let rev = |k: &str| snap.kvs.iter().find(|kv| kv.key == k).unwrap().mod_revision;
    let writes = vec![
        put("/u/x", "x1", Guard::Unchanged(rev("/u/x"))),
        Write::Delete {
            key: "/u/y".into(),
            guard: Guard::Unchanged(rev("/u/y")),
        },
    ];

    // Someone changes /u/x after the read: neither the put nor the delete happens.
    c.put("/u/x", "changed", None).await.unwrap();
    let before = (etcd.dump().await, etcd.revision().await);
    let report = s.raw().commit(&writes).await.unwrap();
    assert_eq!(report.conflicted, vec![0, 1]);
    assert!(report.applied.is_empty());
    assert_eq!((etcd.dump().await, etcd.revision().await), before);

    // Re-read: the same writes with fresh guards apply.
    let snap = s.read_prefix("/u/").await.unwrap();
    let fresh = |k: &str| snap.kvs.iter().find(|kv| kv.key == k).unwrap().mod_revision;
    let writes = vec![
        put("/u/x", "x1", Guard::Unchanged(fresh("/u/x"))),
        Write::Delete {
            key: "/u/y".into(),
            guard: Guard::Unchanged(fresh("/u/y")),
        },
    ];
    let report = s.raw().commit(&writes).await.unwrap();
    assert!(report.conflicted.is_empty());
    assert_eq!(report.applied.len(), 2);
    let dump = etcd.dump().await;
    assert_eq!(dump.get("/u/x").map(String::as_str), Some("x1"));
    assert!(!dump.contains_key("/u/y"));

    // A delete guarded by a revision of a key that is gone: a conflict, not an error.
    let report = s
        .raw()
        .commit(&[Write::Delete {
            key: "/u/y".into(),
            guard: Guard::Unchanged(fresh("/u/y")),
        }])
        .await
        .unwrap();
    assert_eq!(report.conflicted, vec![0]);
}

#[tokio::test]
async fn commit_atomic_refuses_more_than_one_transaction() {
    let etcd = Etcd::start();
    let s = store(&etcd, limits(4, 1000)).await;
    let writes: Vec<Write> = (0..5)
        .map(|i| put(&format!("/a/{i}"), "v", Guard::Absent))
        .collect();
    let before = etcd.revision().await;
    let err = s.raw().commit_atomic(&writes).await.unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    assert!(
        matches!(
            err,
            Error::TooLarge {
                writes: 5,
                limit: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "5 changes are too many to apply atomically (at most 4 per transaction)"
    );
    assert_eq!(etcd.revision().await, before);
    let report = s.raw().commit_atomic(&writes[..4]).await.unwrap();
    assert_eq!(report.applied.len(), 4);
    assert_eq!(etcd.revision().await, before + 1, "one transaction");
}

#[tokio::test]
async fn unreachable_etcd_is_a_runtime_error() {
    let port = conftool_testkit::free_port();
    let cfg = Config {
        endpoints: vec![format!("http://127.0.0.1:{port}")],
        timeout: std::time::Duration::from_millis(500),
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let err = match Store::connect(&cfg).await {
        Err(e) => e,
        Ok(s) => s.read_prefix("/").await.unwrap_err(),
    };
    assert!(!err.is_bad_input(), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
