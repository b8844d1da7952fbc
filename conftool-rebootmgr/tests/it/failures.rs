//! What goes wrong: a pre-boot task that fails, a node that never comes back, a run killed
//! at each step. In every case no node is left depooled without an open operation that
//! says why, and no slot is held by nobody for longer than its lease.

use std::time::{Duration, Instant};

use crate::sim::{events, Sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pre_boot_task_marks_the_node_repools_it_and_frees_the_slot() {
    let sim = Sim::start(3, "").await;
    sim.task(
        "node1",
        "pre_boot_tasks",
        "10-drain",
        "echo cannot drain >&2; exit 1",
    );
    sim.task("node1", "pre_boot_tasks", "20-never", "touch ran-20");
    sim.trigger("node1");
    let (code, lines, _) = sim.run("node1", &["run"]);
    assert_eq!(code, 4, "{lines:#?}");
    let task = events(&lines, "task");
    assert_eq!(
        task.len(),
        1,
        "the tasks after a failed one do not run: {lines:#?}"
    );
    assert_eq!(task[0]["outcome"], "exit 1: cannot drain");
    for e in ["repooled", "slot_released", "aborted", "marked"] {
        assert_eq!(events(&lines, e).len(), 1, "{e}: {lines:#?}");
    }
    assert!(sim.pool().await.values().all(|p| p == "yes"), "repooled");
    assert!(sim.keys_under("v1/locks/").await.is_empty(), "slot free");
    let mark = sim
        .keys_under("v1/rebootmgr/nodes/node1/needs_person")
        .await;
    let mark = mark.values().next().expect("marked");
    assert!(
        mark.contains("pre-boot task 10-drain: exit 1: cannot drain"),
        "{mark}"
    );
    // Marked, it does nothing more until a person says so; the others go on.
    let (code, lines, _) = sim.run("node1", &["run"]);
    assert_eq!(
        (code, events(&lines, "needs_person").len()),
        (4, 1),
        "{lines:#?}"
    );
    sim.trigger("node2");
    assert_eq!(sim.run("node2", &["run"]).0, -1, "node2 reboots");
    assert_eq!(sim.run("node2", &["run"]).0, 0);
    std::fs::remove_file(sim.node_dir("node1").join("tasks/pre_boot_tasks/10-drain")).unwrap();
    assert_eq!(sim.run("node3", &["clear-mark", "--node", "node1"]).0, 0);
    assert_eq!(
        sim.run("node1", &["run"]).0,
        -1,
        "node1 reboots once cleared"
    );
    let (code, lines, _) = sim.run("node1", &["run"]);
    assert_eq!((code, events(&lines, "done").len()), (0, 1), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_returns_holds_the_slot_only_until_its_lease_runs_out() {
    let sim = Sim::start(4, "slot: {concurrency: 1, ttl: 2s}\n").await;
    sim.trigger("node1");
    assert_eq!(
        sim.run("node1", &["run"]).0,
        -1,
        "node1 goes down, and stays down"
    );
    sim.trigger("node2");
    let (code, lines, _) = sim.run("node2", &["run"]);
    assert_eq!(code, 3, "{lines:#?}");
    let held = events(&lines, "held_back")[0]["reasons"].to_string();
    assert!(
        held.contains("every reboot slot of the group is taken (node1 since"),
        "{held}"
    );
    // The positive signal: the slot entry is gone from etcd.
    let start = Instant::now();
    while !sim.keys_under("v1/locks/").await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the lease never ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.assert_no_unexplained_depool().await;
    assert_eq!(sim.run("node2", &["run"]).0, -1, "node2 goes ahead");
    let lost: Vec<_> = sim
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["event"] == "slot_expired")
        .cloned()
        .collect();
    assert!(
        !lost.is_empty()
            && lost[0]["member"] == "node1"
            && lost[0]["node"] == "node2"
            && lost[0]["level"] == "error",
        "{lost:#?}"
    );
    assert_eq!(
        lost[0]["slot"].as_str().map(|s| s.starts_with("node1-")),
        Some(true)
    );
    let rec = sim
        .keys_under("v1/rebootmgr/groups/web/reboots/node1")
        .await;
    assert!(
        rec.values()
            .next()
            .unwrap()
            .contains(r#""slot_lost":{"noticed_by":"node2""#),
        "{rec:?}"
    );
    let (code, lines, _) = sim.run("node2", &["run"]);
    assert_eq!((code, events(&lines, "done").len()), (0, 1), "{lines:#?}");
    // node1 comes back at last: its slot is gone, and it finishes all the same.
    let (code, lines, _) = sim.run("node1", &["run"]);
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(events(&lines, "slot_resumed")[0]["held"], false);
    assert_eq!(events(&lines, "done").len(), 1);
    assert!(sim.pool().await.values().all(|p| p == "yes"));
    assert!(sim.open_operations().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_each_step_is_cleaned_up_or_resumed_by_the_next() {
    let sim = Sim::start(3, "").await;
    let slow = sim.dir.path().join("slow");
    let wait = format!("while [ -e {} ]; do sleep 0.1; done", slow.display());
    sim.task("node1", "pre_boot_tasks", "10-wait", &wait);
    sim.task("node1", "post_boot_tasks", "10-wait", &wait);
    for (step, settle) in [
        ("slot_taken", "200ms"),
        ("depooled", "200ms"),
        ("settling", "30s"),
    ] {
        // Held in the pre-boot task until the kill, or in a long settle.
        sim.write_config("node1", &format!("settle: {settle}\n"));
        std::fs::write(&slow, "").unwrap();
        if step == "settling" {
            std::fs::remove_file(&slow).unwrap();
        }
        sim.trigger("node1");
        let run = sim.spawn("node1");
        run.until(step, Duration::from_secs(20));
        run.kill();
        sim.assert_no_unexplained_depool().await;
        let _ = std::fs::remove_file(&slow);
        sim.write_config("node1", "");
        // The next run finds what the killed one left, puts it back, and starts over.
        let before = sim.boot_id("node1");
        let (code, lines, _) = sim.run("node1", &["run"]);
        assert_eq!(code, -1, "{step}: {lines:#?}");
        assert!(
            !events(&lines, "cleaned_up").is_empty(),
            "{step}: {lines:#?}"
        );
        assert_ne!(sim.boot_id("node1"), before);
        // Killed after the boot, in a post-boot task: the next run resumes.
        std::fs::write(&slow, "").unwrap();
        let run = sim.spawn("node1");
        run.until("slot_resumed", Duration::from_secs(20));
        run.kill();
        sim.assert_no_unexplained_depool().await;
        std::fs::remove_file(&slow).unwrap();
        let (code, lines, _) = sim.run("node1", &["run"]);
        assert_eq!(
            (code, events(&lines, "done").len()),
            (0, 1),
            "{step}: {lines:#?}"
        );
        assert!(events(&lines, "cleaned_up").is_empty());
        assert!(sim.pool().await.values().all(|p| p == "yes"), "{step}");
        assert!(sim.keys_under("v1/locks/").await.is_empty(), "{step}");
        assert!(sim.open_operations().await.is_empty(), "{step}");
    }
}
