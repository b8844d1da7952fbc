//! conftool-sync's library against a real, throwaway etcd: what `apply` does when the keys it
//! planned against change before its writes land.

mod props;

use conftool_core::Classify as _;
use std::collections::BTreeMap;

use conftool_core::{Actor, AuditLog, BatchLimits, Config, Store};
use conftool_sync::{apply, load, Desired, Files, Limits};
use conftool_testkit::Etcd;

const SERVICES: &str =
    "cache_text:\n  nginx:\n    port: 443\n    default_values: {pooled: \"no\", weight: 10}\n";
const NO10: &str = r#"{"pooled":"no","weight":10}"#;
const SERVICE: &str = "/v1/services/cache_text/nginx";
const SERVICE_DEF: &str = r#"{"port":443,"default_values":{"pooled":"no","weight":10}}"#;

/// A writer without an audit log (these tests look at etcd; the CLI tests look at the trail).
fn unaudited(s: &Store) -> conftool_core::Writer<'_> {
    s.writer(&Actor::from_env("test", None), &AuditLog::default())
        .expect("writer")
}

fn key(node: &str) -> String {
    format!("/v1/pools/eqiad/cache_text/nginx/{node}")
}

/// A data directory declaring `nodes` in eqiad's cache_text/nginx pool.
/// The sync record after a working-tree sync of eqiad objects.
const META: &str = "/v1/meta/sync";
const EQIAD_RECORD: &str = r#"{"datacenters":["eqiad"],"git_rev":null}"#;

fn desired(nodes: &[&str]) -> Desired {
    let mut pools = String::from("cache_text:\n");
    for n in nodes {
        pools.push_str(&format!("  {n}: {{services: [nginx]}}\n"));
    }
    if nodes.is_empty() {
        pools = "{}\n".into();
    }
    load(&Files::in_memory(
        "conf",
        [
            ("services.yaml".to_string(), SERVICES.to_string()),
            ("eqiad/pools.yaml".to_string(), pools),
        ],
    ))
    .expect("valid data")
}

async fn store(etcd: &Etcd, namespace: &str, max_txn_ops: usize) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        namespace: namespace.into(),
        ..Config::default()
    };
    Store::connect(&cfg)
        .await
        .expect("connect")
        .with_limits(BatchLimits {
            max_txn_ops,
            ..BatchLimits::default()
        })
}

async fn put(etcd: &Etcd, k: &str, v: &str) {
    etcd.client().await.put(k, v, None).await.expect("put");
}

/// Sync `nodes` with default limits and return the keyspace.
async fn sync(etcd: &Etcd, nodes: &[&str]) -> BTreeMap<String, String> {
    let s = store(etcd, "", 128).await;
    let d = desired(nodes);
    let plan = apply::plan_against(&s, &d).await.expect("plan");
    apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .expect("apply");
    etcd.dump().await
}

#[tokio::test]
async fn a_concurrent_create_is_kept_and_the_rest_replanned() {
    let etcd = Etcd::start();
    let s = store(&etcd, "", 1).await; // one write per transaction
    let d = desired(&["n1", "n2", "n3", "n4", "n5"]);
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert_eq!(plan.create.len(), 5);
    // Between the plan and its writes, someone else creates n3 with their own state.
    let theirs = r#"{"pooled":"yes","weight":99}"#;
    put(&etcd, &key("n3"), theirs).await;

    let outcome = apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap();
    assert_eq!(outcome.rounds, 2, "{outcome:?}");
    assert_eq!((outcome.created, outcome.services), (4, 1), "{outcome:?}");
    let mut want: BTreeMap<String, String> = ["n1", "n2", "n4", "n5"]
        .iter()
        .map(|n| (key(n), NO10.to_string()))
        .collect();
    want.insert(key("n3"), theirs.into());
    want.insert(SERVICE.into(), SERVICE_DEF.into());
    want.insert(META.into(), EQIAD_RECORD.into());
    assert_eq!(etcd.dump().await, want);
}

#[tokio::test]
async fn a_concurrently_changed_object_is_still_deleted_if_undeclared() {
    let etcd = Etcd::start();
    let nodes: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    sync(&etcd, &names).await;

    let s = store(&etcd, "", 128).await;
    let d = desired(&names[..9]);
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert_eq!(plan.delete.len(), 1);
    // Depooled further meanwhile (still not serving): the stale delete is refused by its
    // guard, the re-plan deletes it.
    put(&etcd, &key("n9"), r#"{"pooled":"inactive","weight":0}"#).await;
    let outcome = apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap();
    assert_eq!((outcome.rounds, outcome.deleted), (2, 1), "{outcome:?}");
    let dump = etcd.dump().await;
    assert!(!dump.contains_key(&key("n9")));
    assert_eq!(dump.len(), 9 + 1 + 1, "9 objects, the service, the record");
}

#[tokio::test]
async fn an_object_pooled_meanwhile_is_not_deleted() {
    let etcd = Etcd::start();
    let nodes: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    sync(&etcd, &names).await;

    // The plan: create n10, delete n9. Everything in one transaction.
    let mut next: Vec<&str> = names[..9].to_vec();
    next.push("n10");
    let d = desired(&next);
    let s = store(&etcd, "", 128).await;
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert_eq!((plan.create.len(), plan.delete.len()), (1, 1));
    put(&etcd, &key("n9"), r#"{"pooled":"yes","weight":10}"#).await;
    let before = (etcd.dump().await, etcd.revision().await);
    let err = apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap_err();
    // Nothing landed (the transaction failed whole): a refusal, "bad input, nothing written".
    assert!(err.is_bad_input(), "{err}");
    assert!(err.to_string().contains("pooled=yes"), "{err}");
    assert_eq!((etcd.dump().await, etcd.revision().await), before);

    // One write per transaction: the create lands before the refusal, so the error must not
    // claim that nothing was written.
    put(&etcd, &key("n9"), NO10).await;
    let s = store(&etcd, "", 1).await;
    let plan = apply::plan_against(&s, &d).await.unwrap();
    put(&etcd, &key("n9"), r#"{"pooled":"yes","weight":10}"#).await;
    let err = apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap_err();
    assert!(!err.is_bad_input(), "{err}");
    assert!(
        err.to_string()
            .contains("kept: created 1 object, deleted 0 objects"),
        "{err}"
    );
    let dump = etcd.dump().await;
    assert_eq!(dump[&key("n10")], NO10);
    assert_eq!(dump[&key("n9")], r#"{"pooled":"yes","weight":10}"#);
}

#[tokio::test]
async fn unreadable_values_are_not_deleted_without_permission() {
    let etcd = Etcd::start();
    let nodes: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    sync(&etcd, &names).await;
    // A value this version cannot read; it might well be serving.
    put(&etcd, &key("n9"), r#"{"pooled":"yes","weight":"10"}"#).await;
    let before = etcd.dump().await;

    let s = store(&etcd, "", 128).await;
    let d = desired(&names[..9]);
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert!(plan.guard(&Limits::default()).is_err());
    assert!(
        apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
            .await
            .is_err()
    );
    assert_eq!(etcd.dump().await, before);
    let allow = Limits {
        allow_delete_pooled: true,
        ..Limits::default()
    };
    let plan = apply::plan_against(&s, &d).await.unwrap();
    apply::apply(&mut unaudited(&s), &d, plan, &allow)
        .await
        .unwrap();
    assert!(!etcd.dump().await.contains_key(&key("n9")));
}

#[tokio::test]
async fn a_namespace_confines_the_sync() {
    let etcd = Etcd::start();
    // Keys of the unnamespaced tree and of another namespace: not this sync's business.
    let others = [
        (key("old"), NO10.to_string()),
        (
            "/other/v1/pools/eqiad/cache_text/nginx/x".to_string(),
            NO10.to_string(),
        ),
    ];
    for (k, v) in &others {
        put(&etcd, k, v).await;
    }
    let s = store(&etcd, "/conftool", 128).await;
    let d = desired(&["n1"]);
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert_eq!((plan.create.len(), plan.delete.len()), (1, 0));
    apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap();
    let mut want: BTreeMap<String, String> = others.into_iter().collect();
    want.insert(
        "/conftool/v1/pools/eqiad/cache_text/nginx/n1".into(),
        NO10.into(),
    );
    want.insert(
        "/conftool/v1/services/cache_text/nginx".into(),
        SERVICE_DEF.into(),
    );
    want.insert("/conftool/v1/meta/sync".into(), EQIAD_RECORD.into());
    assert_eq!(etcd.dump().await, want);
}

#[tokio::test]
async fn sync_record_is_written_only_when_it_changes() {
    let etcd = Etcd::start();
    let s = store(&etcd, "", 128).await;
    let mut d = desired(&["n1"]);
    d.git_rev = Some("0123abcd".into());
    let plan = apply::plan_against(&s, &d).await.unwrap();
    let outcome = apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap();
    assert!(outcome.meta);
    assert_eq!(
        etcd.dump().await["/v1/meta/sync"],
        r#"{"datacenters":["eqiad"],"git_rev":"0123abcd"}"#
    );
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert!(plan.writes_nothing(), "{plan:?}");
    // Another commit with the same content: only the record changes.
    d.git_rev = Some("4567ef".into());
    let plan = apply::plan_against(&s, &d).await.unwrap();
    assert!(plan.is_empty() && plan.meta.is_some(), "{plan:?}");
    let rev = etcd.revision().await;
    apply::apply(&mut unaudited(&s), &d, plan, &Limits::default())
        .await
        .unwrap();
    assert_eq!(etcd.revision().await, rev + 1);
    assert_eq!(
        etcd.dump().await["/v1/meta/sync"],
        r#"{"datacenters":["eqiad"],"git_rev":"4567ef"}"#
    );
}
