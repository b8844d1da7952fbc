//! The v2-to-v3 migration's apply through the library, against a real etcd: a plan gone
//! stale (someone wrote to v3 after it was made) is re-planned after the lost
//! compare-and-swap race, never written over blindly.

use conftool_core::Classify as _;
use conftool_core::{Actor, AuditLog, Config, Guard, Store, Write};
use conftool_migrate::migrate::{self, Overwrite};
use conftool_migrate::v2::{V2Entry, V2Kind, V2Read};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

fn key(i: usize) -> String {
    format!("/conftool/v1/pools/eqiad/appservers/apache/mw{i:03}")
}

fn value(i: usize) -> String {
    format!("{{\"pooled\": \"yes\", \"weight\": {}}}", i % 7)
}

/// A v2 read of `n` objects.
fn source(n: usize) -> V2Read {
    V2Read {
        index: 1,
        entries: (0..n)
            .map(|i| V2Entry {
                key: key(i),
                kind: V2Kind::Value {
                    value: value(i),
                    modified_index: 1,
                },
            })
            .collect(),
        ..V2Read::default()
    }
}

async fn put(s: &Store, k: String, v: String) {
    let w = Write::Put {
        key: k,
        value: v,
        guard: Guard::Absent,
    };
    s.raw().commit(&[w]).await.expect("put");
}

#[tokio::test]
async fn a_stale_plan_is_replanned_after_a_lost_race() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let src = source(300);
    let plan = migrate::plan(&src, &s.read_prefix("/conftool/").await.expect("read"));
    assert_eq!(plan.create.len(), 300);
    // After the plan: the same value written by someone else (its batch loses the race).
    put(&s, key(5), value(5)).await;
    let actor = Actor::from_env("test", None);
    let mut w = s
        .writer(&actor, &AuditLog::from_config(None))
        .expect("writer");
    let done = migrate::apply(&mut w, "/conftool", &src, plan, Overwrite::Refuse)
        .await
        .expect("apply");
    assert_eq!((done.created, done.overwritten, done.rounds), (299, 0, 2));
    let v = migrate::verify(&src, &s.read_prefix("/conftool/").await.expect("read"));
    assert!(v.is_ok(), "{v:?}");
}

#[tokio::test]
async fn a_key_that_turns_differing_meanwhile_is_not_overwritten_unless_asked() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let src = source(300);
    let plan = migrate::plan(&src, &s.read_prefix("/conftool/").await.expect("read"));
    let theirs = r#"{"pooled":"no","weight":0}"#.to_string();
    put(&s, key(5), theirs.clone()).await;
    let actor = Actor::from_env("test", None);
    let mut w = s
        .writer(&actor, &AuditLog::from_config(None))
        .expect("writer");
    let err = migrate::apply(&mut w, "/conftool", &src, plan, Overwrite::Refuse)
        .await
        .expect_err("a differing key");
    assert!(err.is_bad_input(), "{err}");
    let snap = s.read_prefix("/conftool/").await.expect("read");
    let kept = snap.kvs.iter().find(|kv| kv.key == key(5)).expect("key 5");
    assert_eq!(
        kept.value,
        theirs.as_bytes(),
        "overwritten without being asked"
    );

    // Asked: v2 wins, guarded on the value just read.
    let plan = migrate::plan(&src, &snap);
    assert_eq!(plan.differing.len(), 1);
    let done = migrate::apply(&mut w, "/conftool", &src, plan, Overwrite::Differing)
        .await
        .expect("apply");
    assert_eq!(done.overwritten, 1);
    let v = migrate::verify(&src, &s.read_prefix("/conftool/").await.expect("read"));
    assert!(v.is_ok(), "{v:?}");
}
