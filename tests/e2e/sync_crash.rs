//! conftool-sync under stress: killed mid-run, and racing a concurrent writer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

const POOLS: &str = "/v1/pools/";

/// 2 datacenters x 4,000 nodes x 5 services = 40,000 objects.
fn big_fleet() -> Fleet {
    Fleet {
        dcs: vec!["eqiad".into(), "codfw".into()],
        nodes: 4_000,
    }
}

#[test]
fn a_killed_sync_converges_on_rerun_and_keeps_values_set_meanwhile() {
    let ctx = Ctx::new();
    let fleet = big_fleet();
    let conf = ctx.path("fleet");
    fleet.write(&conf);
    let expected = fleet.expected();
    let objects = fleet.objects();
    assert_eq!(objects, 40_000);

    let mut child = ctx.spawn_sync(&conf, &["--quiet"], "killed.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before any write was seen: {}",
            std::fs::read_to_string(ctx.path("killed.log")).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "no write within 60 s");
        seen = ctx.count(POOLS);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let partial = ctx.dump_prefix("/");
    let created: Vec<&String> = partial.keys().filter(|k| k.starts_with(POOLS)).collect();
    assert!(
        !created.is_empty() && created.len() < objects,
        "killed after {} of {objects} objects: the kill must land mid-run",
        created.len()
    );
    // What did land is correct.
    for (k, v) in &partial {
        assert_eq!(Some(v), expected.get(k), "{k}");
    }

    // confctl changes some of the objects that exist, before the re-run.
    let mut want = expected.clone();
    for (i, k) in created.iter().step_by(7).take(50).enumerate() {
        let v = format!(r#"{{"pooled":"yes","weight":{}}}"#, 1000 + i);
        ctx.put(k, &v);
        want.insert(k.to_string(), v);
    }

    ctx.sync(&conf, &["--quiet"]).expect_code(0);
    assert_keyspace(&ctx.dump_prefix("/"), &want);
}

#[test]
fn concurrent_changes_during_a_sync_are_never_overwritten() {
    let ctx = Ctx::new();
    // First half: eqiad only.
    let half = Fleet {
        dcs: vec!["eqiad".into()],
        nodes: 4_000,
    };
    let full = big_fleet();
    let conf = ctx.path("fleet");
    half.write(&conf);
    ctx.sync(&conf, &["--quiet"]).expect_code(0);
    assert_keyspace(&ctx.dump_prefix("/"), &half.expected());
    full.write(&conf);

    // Existing objects a confctl-like writer keeps changing while the sync runs.
    let targets: Vec<String> = half
        .expected()
        .into_keys()
        .filter(|k| k.starts_with(POOLS))
        .step_by(97)
        .collect();
    assert!(targets.len() > 100);

    let mut child = ctx.spawn_sync(&conf, &["--quiet"], "race.log");
    let done = AtomicBool::new(false);
    let (last, put_revisions) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            block_on(async {
                let mut c = ctx.etcd.client().await;
                let mut last = std::collections::BTreeMap::new();
                let mut revisions = Vec::new();
                let mut n = 0u32;
                // Until the sync has ended: whatever the sync does afterwards cannot hide
                // behind a later write.
                'writing: loop {
                    for k in &targets {
                        if done.load(Ordering::SeqCst) {
                            break 'writing;
                        }
                        n += 1;
                        let v = format!(r#"{{"pooled":"no","weight":{}}}"#, n % 65_536);
                        let resp = c.put(k.as_str(), v.as_str(), None).await.expect("put");
                        revisions.push(resp.header().expect("header").revision());
                        last.insert(k.clone(), v);
                    }
                }
                (last, revisions)
            })
        });
        let status = child.wait().unwrap();
        done.store(true, Ordering::SeqCst);
        assert!(
            status.success(),
            "sync failed: {}",
            std::fs::read_to_string(ctx.path("race.log")).unwrap_or_default()
        );
        writer.join().unwrap()
    });

    // The writer really raced the sync's writes: some of its puts landed between the
    // sync's first and last created object (all at their creation revision still).
    let created = block_on(async {
        let store = ctx.store().await;
        store.read_prefix("/v1/pools/codfw/").await.expect("read")
    });
    assert_eq!(created.kvs.len(), 20_000);
    let first = created.kvs.iter().map(|kv| kv.mod_revision).min().unwrap();
    let last_created = created.kvs.iter().map(|kv| kv.mod_revision).max().unwrap();
    let interleaved = put_revisions
        .iter()
        .filter(|&&r| r > first && r < last_created)
        .count();
    assert!(
        interleaved > 0,
        "no concurrent put landed while the sync wrote (its writes: revisions {first}..{last_created}, \
         {} puts at {:?}..{:?})",
        put_revisions.len(),
        put_revisions.first(),
        put_revisions.last()
    );

    let after = ctx.dump_prefix("/");
    for (k, v) in &last {
        assert_eq!(after.get(k), Some(v), "{k}: the concurrent change was lost");
    }
    let mut want = full.expected();
    want.extend(last);
    assert_keyspace(&after, &want);
}
