//! What holds a reboot back: the stop switches (before a run, and while a node is being
//! prepared), the group rules, group health checks, the pools; `--dry-run` says which and
//! writes nothing; a bad configuration is refused with its file and line.

use std::time::Duration;

use crate::sim::{events, Sim};

fn reasons(lines: &[serde_json::Value]) -> String {
    events(lines, "held_back")
        .iter()
        .map(|l| l["reasons"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_switches_hold_every_run_and_dry_run_says_which() {
    let sim = Sim::start(3, "").await;
    sim.trigger("node2");
    let (code, _, err) = sim.run("node1", &["stop", "--reason", "kernel freeze"]);
    assert_eq!(code, 0, "{err}");
    let before = sim.etcd.dump().await;
    let (code, lines, _) = sim.run("node2", &["run", "--dry-run"]);
    assert_eq!(code, 3, "{lines:#?}");
    let why = reasons(&lines);
    assert!(
        why.contains("rebootmgr stop switch set for every reboot by")
            && why.contains("kernel freeze"),
        "{why}"
    );
    assert_eq!(sim.etcd.dump().await, before, "a dry run writes nothing");
    let (code, lines, _) = sim.run("node2", &["run"]);
    assert_eq!(code, 3, "{lines:#?}");
    assert!(events(&lines, "slot_taken").is_empty());
    assert!(sim.pool().await.values().all(|p| p == "yes"));

    // A node's own switch holds that node only.
    sim.run("node1", &["go"]);
    sim.run(
        "node1",
        &["stop", "--node", "node2", "--reason", "disk swap"],
    );
    let (code, lines, _) = sim.run("node2", &["run", "--dry-run"]);
    assert_eq!(code, 3);
    assert!(
        reasons(&lines).contains("rebootmgr stop switch set for node node2"),
        "{lines:#?}"
    );
    sim.trigger("node3");
    let (code, lines, _) = sim.run("node3", &["run", "--dry-run"]);
    assert_eq!(
        (code, events(&lines, "held_back").len()),
        (0, 0),
        "{lines:#?}"
    );
    let (code, lines, _) = sim.run("node3", &["status"]);
    assert_eq!(code, 0);
    assert!(lines.is_empty(), "status is one JSON document, not lines");
    // A report that cannot be written is not success, and says that what was asked was done.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = std::process::Command::new(crate::sim::BIN)
        .arg("--config")
        .arg(sim.config_path("node3"))
        .args(["stop", "--node", "node3", "--reason", "stdout full"])
        .stdout(full)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("could not be written to stdout (what was asked was done)"),
        "{err}"
    );
    let (code, _, _) = sim.run("node3", &["run", "--dry-run"]);
    assert_eq!(code, 3, "held back by the stop that was set");
    let (code, _, _) = sim.run("node1", &["go", "--node", "node3"]);
    assert_eq!(code, 0);
    let (_, _, _) = sim.run("node1", &["go", "--node", "node2"]);
    // Going ahead: the reboot command ends the run (SIGKILL), the next one finishes.
    let (code, _, _) = sim.run("node2", &["run"]);
    assert_eq!(code, -1, "killed by its reboot");
    let (code, lines, _) = sim.run("node2", &["run"]);
    assert_eq!((code, events(&lines, "done").len()), (0, 1), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_set_while_a_node_is_prepared_puts_it_back_within_one_interval() {
    let sim = Sim::start(3, "").await;
    sim.write_config("node1", "settle: 30s\n");
    sim.trigger("node1");
    let run = sim.spawn("node1");
    run.until("settling", Duration::from_secs(20));
    assert_eq!(sim.pool().await["node1"], "no", "depooled while it settles");
    sim.run("node2", &["stop", "--group", "web", "--reason", "incident"]);
    let held = run.until("held_back", Duration::from_secs(5));
    assert!(held["reasons"].to_string().contains("group web"), "{held}");
    run.until("aborted", Duration::from_secs(10));
    assert_eq!(run.wait(), 3);
    assert!(sim.pool().await.values().all(|p| p == "yes"), "repooled");
    assert!(
        sim.keys_under("v1/locks/").await.is_empty(),
        "slot released"
    );
    assert!(sim
        .keys_under("v1/rebootmgr/groups/web/reboots/")
        .await
        .is_empty());
    assert!(sim.open_operations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_rules_health_checks_and_pools_hold_back_and_dry_run_names_them() {
    let sim = Sim::start(3, "").await;
    let flag = |n: &str| sim.dir.path().join(format!("{n}.unhealthy"));
    let check = format!(
        "rules: {{min_members: 4}}\nchecks:\n  - {{name: app, command: 'test ! -e {}/$REBOOTMGR_NODE.unhealthy', max_failing: 0}}\n",
        sim.dir.path().display()
    );
    for n in &sim.nodes {
        sim.write_config(n, &check);
    }
    std::fs::write(flag("node2"), "").unwrap();
    for n in &sim.nodes {
        // Not triggered: each only reports its health to the group.
        let (code, lines, _) = sim.run(n, &["run"]);
        assert_eq!(code, 0, "{lines:#?}");
    }
    // Two of the three others out of the pool: node1 alone would be left serving.
    let mut client = sim.etcd.client().await;
    for n in ["node2", "node3"] {
        let key = format!("/conftool/v1/pools/dc1/web/http/{n}");
        client
            .put(key, r#"{"pooled":"no","weight":10}"#, None)
            .await
            .unwrap();
    }
    sim.trigger("node1");
    let before = sim.etcd.dump().await;
    let (code, lines, _) = sim.run("node1", &["run", "--dry-run"]);
    assert_eq!(code, 3);
    let why = reasons(&lines);
    for want in [
        "only 3 members of the group are up, fewer than rules.min_members 4",
        "check app: 2 members passing, 1 failing or not reporting (node2); max_failing is 0",
        "pool dc1/web/http: 0 of 3 nodes would stay serving without this one",
    ] {
        assert!(why.contains(want), "{want}\nnot in\n{why}");
    }
    assert_eq!(sim.etcd.dump().await, before, "a dry run writes nothing");
    let (code, lines, _) = sim.run("node1", &["run"]);
    assert_eq!(code, 3, "{lines:#?}");
    assert!(events(&lines, "slot_taken").is_empty());
    assert_eq!(sim.pool().await["node1"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_with_its_line_and_nothing_written() {
    let sim = Sim::start(1, "").await;
    sim.write_config(
        "node1",
        "checks:\n  - {name: app, command: true, timout: 5s}\n",
    );
    let before = sim.etcd.dump().await;
    let (code, lines, err) = sim.run("node1", &["run", "--now"]);
    assert_eq!(code, 2, "{lines:#?}");
    assert!(
        err.contains("config.yaml")
            && err.contains("unknown field `timout`")
            && err.contains("line"),
        "{err}"
    );
    assert_eq!(sim.etcd.dump().await, before);
}
