//! The one write path, through the library alone (no CLI): a lost race is re-applied to fresh
//! state, a write that stops part-way says exactly what landed, the rules refuse without
//! being asked, and every landed write is in the audit trail without being asked for.

use conftool_core::Classify as _;
use std::collections::BTreeMap;

use conftool_core::{
    Actor, ApplyError, Atomicity, AuditLog, BatchLimits, Config, Edit, Error, Guard, HostVerb,
    ModelError, Overrides, PoolState, Pooled, Refusal, Selector, SetFields, Store, Write,
};
use conftool_testkit::Etcd;

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

const YES: &str = r#"{"pooled":"yes","weight":1}"#;

fn key(n: u32) -> String {
    format!("/v1/pools/eqiad/appservers/apache/mw{n}")
}

/// `n` pooled objects mw0..mw{n-1} in eqiad/appservers/apache.
async fn fleet(s: &Store, n: u32) {
    let writes: Vec<Write> = (0..n)
        .map(|i| Write::Put {
            key: key(i),
            value: YES.into(),
            guard: Guard::Absent,
        })
        .collect();
    s.raw().commit(&writes).await.expect("create");
}

fn audit(dir: &std::path::Path) -> (AuditLog, std::path::PathBuf) {
    let path = dir.join("audit.jsonl");
    (AuditLog::from_config(Some(&path)), path)
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

async fn states(s: &Store) -> BTreeMap<String, PoolState> {
    let sel: Selector = "name=.*".parse().expect("selector");
    s.select(&sel)
        .await
        .expect("select")
        .objects
        .into_iter()
        .map(|o| (s.keyspace().object_key(&o.key), o.state))
        .collect()
}

fn set(pooled: Option<Pooled>, weight: Option<u16>) -> Edit {
    Edit::Set(SetFields {
        pooled,
        weight: weight.map(conftool_core::Weight),
    })
}

#[tokio::test]
async fn a_lost_race_is_reapplied_to_fresh_state_and_everything_is_audited() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    fleet(&s, 4).await;
    let dir = conftool_testkit::temp_dir("writer-");
    let (log, path) = audit(dir.path());
    let actor = Actor::from_env("library-test", None);
    let mut w = s.writer(&actor, &log).expect("writer");
    // Select, then someone else changes mw1's weight before the write lands.
    let sel: Selector = "dc=eqiad,name=mw[01]".parse().expect("selector");
    let selection = s.select(&sel).await.expect("select");
    let edit = set(Some(Pooled::No), None);
    let changes = selection.changes(|_| Some(edit));
    let mut etcd_client = etcd.client().await;
    etcd_client
        .put(
            key(1),
            r#"{"pooled":"yes","weight":9,"note":"theirs"}"#,
            None,
        )
        .await
        .expect("their write");
    let applied = w
        .apply(&sel, changes, |_| Some(edit), Atomicity::Batched)
        .await
        .expect("apply");
    assert_eq!(applied.len(), 2);
    let now = states(&s).await;
    // Their weight and field are kept: the edit was applied to the fresh state.
    let mw1: serde_json::Value = serde_json::to_value(&now[&key(1)]).expect("json");
    assert_eq!(
        mw1,
        serde_json::json!({"pooled": "no", "weight": 9, "note": "theirs"})
    );
    assert_eq!(now[&key(0)].pooled, Pooled::No);
    // Every landed write is audited (the library did it, nobody asked): intents, the writes
    // at their revisions, one end line; the re-applied one with its fresh before-value.
    let recs = lines(&path);
    let applied_lines: Vec<&serde_json::Value> =
        recs.iter().filter(|r| r["event"] == "applied").collect();
    assert_eq!(applied_lines.len(), 2, "{recs:?}");
    let mw1_line = applied_lines
        .iter()
        .find(|r| r["key"] == key(1))
        .expect("mw1 audited");
    assert_eq!(mw1_line["before"]["weight"], 9);
    assert_eq!(mw1_line["tool"], "library-test");
    assert_eq!(recs.iter().filter(|r| r["event"] == "end").count(), 1);
    assert_eq!(recs.last().expect("end")["applied"], 2);
}

#[tokio::test]
async fn the_rules_refuse_without_being_asked_and_overrides_lift_them() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    fleet(&s, 4).await;
    let actor = Actor::from_env("library-test", None);
    let before = states(&s).await;
    let mut w = s.writer(&actor, &AuditLog::default()).expect("writer");
    let all: Selector = "name=.*".parse().expect("selector");
    let err = w
        .edit(&all, set(Some(Pooled::No), None))
        .await
        .expect_err("below the threshold");
    assert!(err.applied.is_empty());
    assert!(
        matches!(
            err.error,
            Error::Model(ModelError::Refused(Refusal::BelowThreshold(ref v))) if v.len() == 1
        ),
        "{err}"
    );
    assert!(err.error.is_bad_input());
    assert_eq!(states(&s).await, before, "nothing written");
    // A host verb is refused the same way once the pool is thin.
    let mut w = s
        .writer(&actor, &AuditLog::default())
        .expect("writer")
        .with_overrides(Overrides {
            allow_below_threshold: true,
            ..Overrides::default()
        });
    let landed = w
        .edit(&all, set(Some(Pooled::No), None))
        .await
        .expect("lifted");
    assert_eq!(landed.len(), 4);
    let host = "mw0".parse().expect("name");
    let done = w
        .host(HostVerb::Pool, std::slice::from_ref(&host), None)
        .await
        .expect("pool");
    assert_eq!(done.applied.len(), 1);
    let missing = "mw99".parse().expect("name");
    let err = w
        .host(HostVerb::Depool, &[missing], None)
        .await
        .expect_err("not found");
    assert!(
        matches!(&err.error, Error::NotFound { nodes, service: None } if nodes.len() == 1),
        "{err}"
    );
    assert_eq!(err.error.to_string(), "node mw99 is not in any pool");
}

#[tokio::test]
async fn a_write_that_stops_part_way_says_exactly_what_landed() {
    // etcd refuses requests over 4 KiB; the writer sends batches of 3 objects, and the third
    // batch holds two objects of 2.5 KiB each: too large together, fine one at a time.
    let etcd = Etcd::start_with(1, &["--max-request-bytes", "4096"]);
    let s = store(&etcd).await.with_limits(BatchLimits {
        max_txn_ops: 3,
        in_flight: 1,
        ..BatchLimits::default()
    });
    fleet(&s, 8).await;
    let blob = serde_json::Value::String("x".repeat(2500));
    let big = format!(r#"{{"pooled":"yes","weight":1,"blob":{blob}}}"#);
    let mut c = etcd.client().await;
    for n in [6, 7] {
        c.put(key(n), big.as_str(), None)
            .await
            .expect("a big value alone fits");
    }
    let dir = conftool_testkit::temp_dir("writer-");
    let (log, path) = audit(dir.path());
    let actor = Actor::from_env("library-test", None);
    let mut w = s
        .writer(&actor, &log)
        .expect("writer")
        .with_overrides(Overrides {
            allow_below_threshold: true,
            ..Overrides::default()
        });
    let all: Selector = "name=.*".parse().expect("selector");
    let result = w.edit(&all, set(None, Some(5))).await;
    let ApplyError { applied, error } = match result {
        Err(e) => e,
        Ok(a) => panic!("expected a failure, {} landed", a.len()),
    };
    let landed: Vec<String> = applied
        .iter()
        .map(|a| s.keyspace().object_key(&a.change.key))
        .collect();
    let now = states(&s).await;
    let really: Vec<String> = now
        .iter()
        .filter(|(_, st)| st.weight.get() == 5)
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!landed.is_empty(), "{error}");
    assert_eq!(landed, really, "the report is exactly what etcd holds");
    let recs = lines(&path);
    let audited: Vec<String> = recs
        .iter()
        .filter(|r| r["event"] == "applied")
        .map(|r| r["key"].as_str().expect("key").to_string())
        .collect();
    assert_eq!(audited, landed, "every landed write is audited, no other");
    let end = recs.last().expect("end line");
    assert_eq!(end["event"], "end");
    assert!(end["error"].is_string(), "{end}");
}

#[tokio::test]
async fn a_selection_with_a_malformed_value_is_refused_whole_for_every_caller() {
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    fleet(&s, 3).await;
    // A hand-written value without a weight among the selected objects.
    let mut c = etcd.client().await;
    c.put(key(1), r#"{"pooled":"yes"}"#, None)
        .await
        .expect("put");
    let before = states(&s).await;
    let actor = Actor::from_env("library-test", None);
    let mut w = s.writer(&actor, &AuditLog::default()).expect("writer");
    let all: Selector = "name=.*".parse().expect("selector");
    let err = w
        .edit(&all, set(None, Some(5)))
        .await
        .expect_err("refused, as confctl refuses it");
    assert!(err.applied.is_empty());
    match &err.error {
        Error::Malformed { values } => {
            assert_eq!(values.len(), 1);
            assert_eq!(values[0].0, key(1));
        }
        other => panic!("{other:?}"),
    }
    assert!(err
        .error
        .to_string()
        .starts_with("1 selected keys hold malformed values"));
    assert!(
        !err.error.is_bad_input(),
        "a stored value, not the caller's input"
    );
    assert_eq!(
        states(&s).await,
        before,
        "nothing written, not even the good ones"
    );
}
