//! `confctl maint`: the maintenance daemon's events as operators see and act on them. The
//! life cycle is the daemon library's (tested there against etcd, with the daemon running);
//! here, the CLI: what it prints, what it writes, its exit codes, and refusals that leave
//! etcd unchanged.

use crate::util::Ctx;

const ID: &str = "ev-20261204-120000-00abcd";

/// An event of mw1 in `state`, as the daemon stores it.
fn seed(ctx: &Ctx, state: &str) {
    let record = format!(
        r#"{{"id":"{ID}","node":"mw1","state":"{state}","kind":"evacuate","fingerprint":"0123456789abcdef","output":{{"status":"evacuate","details":"disk"}},"observed":"2026-12-04T12:00:00.000Z","history":[{{"at":"2026-12-04T12:00:00.000Z","by":"conftool-maintd@lb1 pid 7","state":"observed","what":"observed: mw1 reports evacuate"}}]}}"#
    );
    ctx.put(&format!("/v1/maint/events/{ID}"), &record);
}

#[test]
fn list_and_show_print_the_events_and_their_history() {
    let ctx = Ctx::new();
    let empty = ctx.run("confctl", &["maint", "list"]).expect_code(0);
    assert!(
        empty.stderr.contains("No maintenance events."),
        "{}",
        empty.stderr
    );
    seed(&ctx, "ready");
    let list = ctx.run("confctl", &["maint", "list"]).expect_code(0);
    assert_eq!(list.stdout.trim(), format!("{ID}  ready  mw1  evacuate"));
    let show = ctx.run("confctl", &["maint", "show", ID]).expect_code(0);
    assert!(
        show.stdout
            .contains("conftool-maintd@lb1 pid 7 [observed] observed: mw1 reports evacuate"),
        "{}",
        show.stdout
    );
    let json = ctx
        .run("confctl", &["--json", "maint", "list"])
        .expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v[0]["state"], "ready");
}

#[test]
fn refusals_and_bad_ids_exit_2_and_write_nothing() {
    let ctx = Ctx::new();
    seed(&ctx, "in_progress");
    let before = ctx.dump();
    let ack = ctx.run("confctl", &["maint", "ack", ID]).expect_code(2);
    assert!(
        ack.stderr.contains(&format!(
            "event {ID} is in_progress: cannot ack it: only a ready event can be acknowledged; nothing written"
        )),
        "{}",
        ack.stderr
    );
    let forget = ctx.run("confctl", &["maint", "forget", ID]).expect_code(2);
    assert!(
        forget.stderr.contains("cancel it first"),
        "{}",
        forget.stderr
    );
    let bad = ctx
        .run("confctl", &["maint", "cancel", "../etc"])
        .expect_code(2);
    assert!(
        bad.stderr.contains("invalid event id \"../etc\""),
        "{}",
        bad.stderr
    );
    let ghost = ctx
        .run("confctl", &["maint", "show", "ev-20260101-000000-000000"])
        .expect_code(2);
    assert!(
        ghost
            .stderr
            .contains("no maintenance event ev-20260101-000000-000000"),
        "{}",
        ghost.stderr
    );
    assert_eq!(ctx.dump(), before, "etcd unchanged");
}

#[test]
fn cancel_and_forget_are_recorded_with_who_and_why() {
    let ctx = Ctx::new();
    seed(&ctx, "pending");
    let c = ctx
        .run(
            "confctl",
            &["maint", "cancel", ID, "--reason", "T42 wrong host"],
        )
        .expect_code(0);
    assert!(
        c.stderr
            .contains(&format!("Event {ID}: cancel recorded (cancelled).")),
        "{}",
        c.stderr
    );
    let again = ctx.run("confctl", &["maint", "cancel", ID]).expect_code(0);
    assert!(
        again
            .stderr
            .contains("already so (cancelled); nothing written"),
        "{}",
        again.stderr
    );
    ctx.run("confctl", &["maint", "forget", ID]).expect_code(0);
    let show = ctx
        .run("confctl", &["--json", "maint", "show", ID])
        .expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["mark"]["action"], "forget");
    let last = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["what"].as_str().unwrap_or(""))
        .collect::<Vec<_>>();
    assert!(
        last.iter()
            .any(|w| w.starts_with("cancelled by ") && w.ends_with(": T42 wrong host")),
        "{last:?}"
    );
}
