//! Objects of schema-defined types through the round loop every write shares: many writers
//! changing one object at once each land their own change, re-applied to the state the
//! others left (no update lost), or give up cleanly with the contention error, having
//! written nothing; the audit trail says which.

use std::sync::Arc;

use conftool_core::schema::{Field, FieldType, ObjectType, TypeSelector, TypedEdit, Validation};
use conftool_core::{Actor, AuditLog, Config, Contention, Error, Guard, Store, Write};
use conftool_testkit::Etcd;
use serde_json::{json, Value};

async fn store(etcd: &Etcd) -> Store {
    let cfg = Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    };
    Store::connect(&cfg).await.expect("connect")
}

/// A type with one int field per writer: `f0`, `f1`, ...
fn counters(writers: usize) -> ObjectType {
    ObjectType {
        name: "counters".into(),
        path: "counters".into(),
        tags: vec!["dc".into()],
        fields: (0..writers)
            .map(|i| Field {
                name: format!("f{i}"),
                ty: FieldType::Int,
                default: json!(0),
            })
            .collect(),
        validation: Validation::Fields,
        depends: Vec::new(),
    }
}

const KEY: &str = "/v1/counters/eqiad/one";

/// How one writer ended.
#[derive(Debug)]
enum Outcome {
    Landed,
    Contended,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_typed_writers_on_one_object_all_land_and_lose_no_update() {
    const WRITERS: usize = 40;
    let etcd = Etcd::start();
    let s = store(&etcd).await;
    let ty = Arc::new(counters(WRITERS));
    let zero: serde_json::Map<String, Value> =
        (0..WRITERS).map(|i| (format!("f{i}"), json!(0))).collect();
    s.raw()
        .commit(&[Write::Put {
            key: KEY.into(),
            value: Value::Object(zero).to_string(),
            guard: Guard::Absent,
        }])
        .await
        .expect("create");
    let dir = conftool_testkit::temp_dir("typed-");
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::from_config(Some(&path));
    // Every writer reads the object before any writes it: all but one lose the first race.
    let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (s, ty, start, log) = (s.clone(), ty.clone(), start.clone(), log.clone());
            tokio::spawn(async move {
                let actor = Actor::from_env("typed-test", None);
                let mut w = s.writer(&actor, &log).expect("writer");
                let sel = TypeSelector::any();
                let edit = TypedEdit::Set(vec![(format!("f{i}"), json!(i + 1))]);
                let selection = s.select_typed(&ty, &sel).await.expect("select");
                let changes = selection.changes(&ty, &edit).expect("changes");
                assert_eq!(changes.len(), 1);
                start.wait().await;
                match w.apply_typed(&ty, &sel, changes, &edit).await {
                    Ok(applied) => {
                        assert_eq!(applied.len(), 1, "writer {i}");
                        Outcome::Landed
                    }
                    Err(e) => {
                        assert!(e.applied.is_empty(), "writer {i}: {e}");
                        assert!(
                            matches!(
                                e.error,
                                Error::Conflict(Contention::Objects { count: 1, .. })
                            ),
                            "writer {i} failed otherwise than by contention: {e}"
                        );
                        Outcome::Contended
                    }
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    // No update lost: every field a writer says it set is set, on the state the others left;
    // none of a writer that gave up is.
    let selection = s
        .select_typed(&ty, &TypeSelector::any())
        .await
        .expect("select");
    let stored = &selection.objects[0].stored;
    for (i, o) in outcomes.iter().enumerate() {
        let want = match o {
            Outcome::Landed => json!(i + 1),
            Outcome::Contended => json!(0),
        };
        assert_eq!(stored[&format!("f{i}")], want, "writer {i}: {o:?}");
    }
    // The trail: one end line per writer; an applied line for each landing, intents
    // for every round tried (the lost ones without an applied line).
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let count = |event: &str| lines.iter().filter(|r| r["event"] == event).count();
    let landed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Landed))
        .count();
    let ends: Vec<&Value> = lines.iter().filter(|r| r["event"] == "end").collect();
    assert_eq!(ends.len(), WRITERS);
    // Each writer's operation has an id of its own, also when writers of one process start
    // in the same millisecond; each has its own end line.
    let ops: std::collections::BTreeSet<&str> =
        ends.iter().filter_map(|e| e["op"].as_str()).collect();
    assert_eq!(ops.len(), WRITERS, "one op id per writer");
    assert_eq!(count("applied"), landed);
    assert!(
        count("intent") >= WRITERS + (WRITERS - 1),
        "every loser re-planned"
    );
    let ended_ok = ends.iter().filter(|e| e["error"].is_null()).count();
    assert_eq!(ended_ok, landed);
    eprintln!(
        "{WRITERS} typed writers on one object: {landed} landed, {} gave up, {} commits tried",
        WRITERS - landed,
        count("intent")
    );
    // With the loop's contention budget (not a fixed 8 attempts), every writer gets its turn.
    assert_eq!(landed, WRITERS, "{outcomes:?}");
}
