//! Safe runs (issue 20): `confctl run` depools what is pooled into an operation, runs the
//! command with the host out, puts back exactly that; a failing command leaves the host out
//! and the operation open; two runs on one host cannot overlap; a killed run's locks expire;
//! the stop switch halts runs; `confctl rolling` goes through a cluster in batches within
//! the depool threshold, stops after failures, and a killed rolling run can be ended.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Cluster `web` (service http, threshold as given) of `n` nodes web00.., all pooled.
fn web(ctx: &Ctx, n: usize, threshold: f64) {
    ctx.write(
        "data/services.yaml",
        &format!(
            "web:\n  http:\n    port: 80\n    default_values: {{pooled: \"yes\", weight: 10}}\n    depool_threshold: {threshold}\n"
        ),
    );
    let mut nodes = "web:\n".to_string();
    for i in 0..n {
        nodes.push_str(&format!("  web{i:02}: {{services: [http]}}\n"));
    }
    ctx.write("data/eqiad/pools.yaml", &nodes);
    ctx.sync(&ctx.path("data"), &[]).expect_code(0);
}

fn pooled(ctx: &Ctx, node: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ctx.dump()[&format!("/v1/pools/eqiad/web/http/{node}")])
            .expect("JSON");
    v["pooled"].as_str().unwrap_or("?").to_string()
}

/// Nodes of `web` that are depooled now.
fn out(ctx: &Ctx) -> usize {
    ctx.dump_prefix("/v1/pools/eqiad/web/")
        .values()
        .filter(|v| v.contains("\"no\""))
        .count()
}

/// A shell command that records the node's pooled state while it runs (via confctl).
fn probe(ctx: &Ctx, node: &str, file: &str) -> String {
    format!(
        "CONFTOOL_ENDPOINTS={} {} select 'name={node}' get > {}",
        ctx.etcd.endpoints_arg(),
        bin("confctl").display(),
        ctx.path(file).display()
    )
}

fn open_operations(ctx: &Ctx) -> Vec<serde_json::Value> {
    ctx.dump_prefix("/v1/operations/")
        .values()
        .map(|v| serde_json::from_str::<serde_json::Value>(v).expect("JSON"))
        .filter(|v| v["state"] == "open")
        .collect()
}

#[test]
fn run_depools_runs_the_command_with_the_host_out_and_puts_back_exactly_that() {
    let ctx = Ctx::new();
    web(&ctx, 4, 0.5);
    let before = ctx.dump_prefix("/v1/pools/");
    let cmd = probe(&ctx, "web01", "during.json");
    let run = ctx
        .run(
            "confctl",
            &[
                "run",
                "--hostname",
                "web01",
                "-r",
                "restart",
                "--",
                "sh",
                "-c",
                &cmd,
            ],
        )
        .expect_code(0);
    let during = std::fs::read_to_string(ctx.path("during.json")).expect("probe ran");
    assert!(during.contains("\"pooled\": \"no\""), "{during}");
    assert!(
        run.stdout
            .contains("eqiad/web/http/web01: pooled changed yes => no"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("eqiad/web/http/web01: pooled changed no => yes"),
        "{}",
        run.stdout
    );
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
    assert!(open_operations(&ctx).is_empty());
    assert!(ctx.dump_prefix("/v1/locks/").is_empty(), "locks released");
    // A host already out stays out: only what was pooled is depooled and put back.
    ctx.run("confctl", &["depool", "--hostname", "web02"])
        .expect_code(0);
    ctx.run("confctl", &["run", "--hostname", "web02", "--", "true"])
        .expect_code(0);
    assert_eq!(pooled(&ctx, "web02"), "no");
}

#[test]
fn a_failing_or_slow_command_leaves_the_host_out_and_the_operation_open() {
    let ctx = Ctx::new();
    web(&ctx, 4, 0.5);
    let run = ctx
        .run(
            "confctl",
            &["run", "--hostname", "web01", "--", "sh", "-c", "exit 3"],
        )
        .expect_code(4);
    assert!(
        run.stderr
            .contains("the command failed (exit 3): web01 stays depooled"),
        "{}",
        run.stderr
    );
    assert_eq!(pooled(&ctx, "web01"), "no");
    let ops = open_operations(&ctx);
    assert_eq!(ops.len(), 1);
    let id = ops[0]["id"].as_str().expect("id").to_string();
    assert!(
        run.stderr.contains(&format!("confctl operation end {id}")),
        "{}",
        run.stderr
    );
    ctx.run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert_eq!(pooled(&ctx, "web01"), "yes");
    // Timed out: killed (with what it started), exit 5, host out.
    let started = Instant::now();
    ctx.run(
        "confctl",
        &[
            "run",
            "--hostname",
            "web02",
            "--timeout",
            "1s",
            "--",
            "sh",
            "-c",
            "sleep 30",
        ],
    )
    .expect_code(5);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(pooled(&ctx, "web02"), "no");
    // --repool-on-failure puts it back anyway, keeping the exit code.
    ctx.run(
        "confctl",
        &[
            "operation",
            "end",
            open_operations(&ctx)[0]["id"].as_str().expect("id"),
        ],
    )
    .expect_code(0);
    ctx.run(
        "confctl",
        &[
            "run",
            "--hostname",
            "web03",
            "--repool-on-failure",
            "--",
            "false",
        ],
    )
    .expect_code(4);
    assert_eq!(pooled(&ctx, "web03"), "yes");
    assert!(open_operations(&ctx).is_empty());
}

fn spawn(ctx: &Ctx, args: &[&str]) -> Child {
    ctx.cmd("confctl")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start confctl")
}

/// Wait (bounded) until `path` exists.
fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_runs_on_one_host_do_not_overlap_and_a_killed_runs_lock_expires() {
    let ctx = Ctx::new();
    web(&ctx, 4, 0.5);
    let started = ctx.path("started");
    let hold = format!("touch {}; sleep 30", started.display());
    let mut first = spawn(
        &ctx,
        &[
            "run",
            "--hostname",
            "web01",
            "--lock-ttl",
            "3s",
            "--",
            "sh",
            "-c",
            &hold,
        ],
    );
    wait_file(&started);
    // The second is told who holds the host, and changes nothing (its lock entry came and
    // went: the revision moves, the keyspace does not).
    let before = ctx.dump();
    let second = ctx
        .run(
            "confctl",
            &[
                "run",
                "--hostname",
                "web01",
                "--lock-wait",
                "1s",
                "--",
                "true",
            ],
        )
        .expect_code(1);
    assert!(
        second
            .stderr
            .contains("lock host:web01 is busy: not free within 1s (held by ")
            && second.stderr.contains(" for `confctl run web01`)"),
        "{}",
        second.stderr
    );
    assert_eq!(ctx.dump(), before);
    // The first is killed (SIGKILL): its lock is not released, but expires with its lease.
    first.kill().expect("kill");
    first.wait().expect("wait");
    let t = Instant::now();
    let third = ctx
        .run(
            "confctl",
            &[
                "run",
                "--hostname",
                "web01",
                "--lock-wait",
                "20s",
                "--",
                "true",
            ],
        )
        .expect_code(0);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // The killed run's operation is resumed by the next run on that host and ended by it.
    assert!(third.stdout.contains("(resumed)"), "{}", third.stdout);
    assert_eq!(pooled(&ctx, "web01"), "yes");
    assert!(open_operations(&ctx).is_empty());
}

#[test]
fn the_stop_switch_keeps_runs_from_starting_and_says_who_set_it() {
    let ctx = Ctx::new();
    web(&ctx, 4, 0.5);
    ctx.run("confctl", &["stop", "set", "--reason", "incident 42"])
        .expect_code(0);
    let status = ctx.run("confctl", &["stop", "status"]).expect_code(0);
    assert!(
        status.stdout.contains("stop switch set for everything by "),
        "{}",
        status.stdout
    );
    let before = ctx.state();
    let run = ctx
        .run("confctl", &["run", "--hostname", "web01", "--", "true"])
        .expect_code(1);
    assert!(
        run.stderr.contains("stop switch set for everything by "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("incident 42"), "{}", run.stderr);
    assert_eq!(ctx.state(), before);
    ctx.run("confctl", &["stop", "clear"]).expect_code(0);
    // A cluster's switch stops that cluster's runs only.
    ctx.run(
        "confctl",
        &["stop", "set", "--cluster", "web", "-r", "freeze"],
    )
    .expect_code(0);
    ctx.run("confctl", &["run", "--hostname", "web01", "--", "true"])
        .expect_code(1);
    ctx.run("confctl", &["stop", "clear", "--cluster", "web"])
        .expect_code(0);
    ctx.run("confctl", &["run", "--hostname", "web01", "--", "true"])
        .expect_code(0);
    // Setting it needs a reason.
    ctx.expect_bad_input("confctl", &[(&["stop", "set"], "needs --reason")]);
}

#[test]
fn rolling_goes_through_a_cluster_in_batches_within_the_threshold() {
    let ctx = Ctx::new();
    // 20 nodes at 0.85: 17 must stay, so at most 3 are out at once, whatever the batch.
    web(&ctx, 20, 0.85);
    let before = ctx.dump_prefix("/v1/pools/");
    // A sampler counts what is out while the run goes (etcd's view; the agent's view is
    // tested with the load balancer).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        let endpoints = ctx.etcd.endpoints();
        std::thread::spawn(move || {
            block_on(async move {
                let mut c = etcd_client::Client::connect(endpoints, None)
                    .await
                    .expect("connect");
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let r = c
                        .get(
                            "/v1/pools/eqiad/web/",
                            Some(etcd_client::GetOptions::new().with_prefix()),
                        )
                        .await
                        .expect("get");
                    let n = r
                        .kvs()
                        .iter()
                        .filter(|kv| kv.value().windows(4).any(|w| w == b"\"no\""))
                        .count();
                    most.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
    };
    let marks = ctx.path("marks");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let cmd = format!("sleep 0.2; touch {}/{{host}}", marks.display());
    let run = ctx
        .run(
            "confctl",
            &[
                "rolling",
                "cluster=web",
                "--batch",
                "25%",
                "--",
                "sh",
                "-c",
                &cmd,
            ],
        )
        .expect_code(0);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sampler.join().expect("sampler");
    assert!(
        run.stdout.contains("20 hosts, 5 at a time"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("summary: 20 of 20 hosts done"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_dir(&marks).expect("marks").count(),
        20,
        "every host's command ran"
    );
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=3).contains(&most), "at most 3 out at once, saw {most}");
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
    assert!(open_operations(&ctx).is_empty());
}

#[test]
fn a_rolling_run_stops_after_failures_says_what_is_left_and_can_be_ended() {
    let ctx = Ctx::new();
    web(&ctx, 6, 0.5);
    let before = ctx.dump_prefix("/v1/pools/");
    // web01 and web02 fail; with --max-failed 2 the run stops after their batch.
    let cmd = "case {host} in web01|web02) exit 1;; esac";
    let run = ctx
        .run(
            "confctl",
            &[
                "rolling",
                "cluster=web",
                "--batch",
                "1",
                "--max-failed",
                "2",
                "--",
                "sh",
                "-c",
                cmd,
            ],
        )
        .expect_code(1);
    assert!(run.stdout.contains("web00: done"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("web01: FAILED: the command failed (exit 1); it stays depooled"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("summary: 1 of 6 hosts done; stopped: 2 hosts failed (--max-failed 2)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  web05: not started: 2 hosts failed"),
        "{}",
        run.stdout
    );
    assert_eq!(
        (
            pooled(&ctx, "web01"),
            pooled(&ctx, "web02"),
            pooled(&ctx, "web03")
        ),
        ("no".into(), "no".into(), "yes".into())
    );
    let id = open_operations(&ctx)[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    ctx.run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
}

#[test]
fn a_killed_rolling_run_is_ended_or_resumed() {
    let ctx = Ctx::new();
    web(&ctx, 8, 0.5);
    let before = ctx.dump_prefix("/v1/pools/");
    let started = ctx.path("started");
    let cmd = format!("touch {}; sleep 30", started.display());
    let mut child = spawn(
        &ctx,
        &[
            "rolling",
            "cluster=web",
            "--batch",
            "2",
            "--lock-ttl",
            "2s",
            "--",
            "sh",
            "-c",
            &cmd,
        ],
    );
    // The command runs only once its hosts are out.
    wait_file(&started);
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert!(out(&ctx) >= 1, "a host was out when it died");
    let ops = open_operations(&ctx);
    assert_eq!(ops.len(), 1);
    let id = ops[0]["id"].as_str().expect("id").to_string();
    // operation end puts back everything it depooled.
    ctx.run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
}

#[test]
fn bad_rolling_input_is_refused_with_nothing_written() {
    let ctx = Ctx::new();
    web(&ctx, 4, 0.5);
    let before = ctx.state();
    ctx.expect_bad_input(
        "confctl",
        &[
            (
                &["rolling", "cluster=web", "--batch", "0", "--", "true"],
                "--batch \"0\"",
            ),
            (
                &["rolling", "cluster=web", "--batch", "150%", "--", "true"],
                "--batch \"150%\"",
            ),
            (
                &["rolling", "cluster=nosuch", "--batch", "1", "--", "true"],
                "selects no host",
            ),
            (
                &["run", "--hostname", "nosuch", "--", "true"],
                "node nosuch is not in any pool",
            ),
            (&["run", "--hostname", "web01"], "COMMAND"),
            (&["lock", "acquire", "a/b"], "invalid lock name"),
        ],
    );
    assert_eq!(ctx.state(), before);
}

#[test]
fn the_stop_switch_halts_a_rolling_run_within_one_step() {
    let ctx = Ctx::new();
    web(&ctx, 6, 0.5);
    let before = ctx.dump_prefix("/v1/pools/");
    // The second host's command sets the cluster's stop switch: the run stops after it.
    let set = format!(
        "if [ {{host}} = web01 ]; then CONFTOOL_ENDPOINTS={} {} stop set --cluster web -r 'pager went off'; fi",
        ctx.etcd.endpoints_arg(),
        bin("confctl").display()
    );
    let run = ctx
        .run(
            "confctl",
            &[
                "rolling",
                "cluster=web",
                "--batch",
                "1",
                "--",
                "sh",
                "-c",
                &set,
            ],
        )
        .expect_code(1);
    assert!(
        run.stdout.contains("web00: done") && run.stdout.contains("web01: done"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("summary: 2 of 6 hosts done; stopped: stop switch set for cluster web by ")
            && run.stdout.contains("pager went off"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  web02: not started: stop switch"),
        "{}",
        run.stdout
    );
    // Nothing is left out: the hosts done are back, the others were never touched.
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
    // While it is set, a new run does not start at all (no operation opened).
    let ops = ctx.dump_prefix("/v1/operations/").len();
    let again = ctx
        .run(
            "confctl",
            &["rolling", "cluster=web", "--batch", "1", "--", "true"],
        )
        .expect_code(1);
    assert!(
        again.stderr.contains("stop switch set for cluster web"),
        "{}",
        again.stderr
    );
    assert_eq!(ctx.dump_prefix("/v1/operations/").len(), ops);
}

#[test]
fn locks_by_hand_are_taken_listed_refused_when_busy_and_released() {
    let ctx = Ctx::new();
    let acquire = |extra: &[&str]| {
        let mut args = vec!["lock", "acquire", "maint:db1", "--ttl", "60s"];
        args.extend_from_slice(extra);
        ctx.run("confctl", &args)
    };
    // Who the holder is: the person running confctl, on this host.
    let me = conftool_core::Actor::from_env("t", None);
    let who = format!("{}@{}", me.user, me.host);
    let first = acquire(&[]).expect_code(0);
    let id = first.stdout.trim().to_string();
    assert!(
        id.starts_with(&format!(
            "{}-",
            conftool_core::Actor::from_env("t", None).host
        )),
        "{first:?}"
    );
    // Busy: exit 1, the holder named, and the waiter's own entry withdrawn.
    let busy = acquire(&[]).expect_code(1);
    assert!(busy.stderr.contains("maint:db1"), "{busy:?}");
    assert!(busy.stderr.contains(&format!("held by {who} ")), "{busy:?}");
    let list = ctx.run("confctl", &["lock", "list"]).expect_code(0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{list:?}");
    assert!(
        lines[0].starts_with(&format!("maint:db1  held  {who}  ")),
        "{list:?}"
    );
    assert!(lines[0].contains("expires in"), "{list:?}");
    let json = ctx
        .run("confctl", &["--json", "lock", "list"])
        .expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc[0]["name"], "maint:db1");
    assert_eq!(doc[0]["holding"], 1);
    assert_eq!(doc[0]["entries"][0]["holder"]["id"], id.as_str());
    let left = doc[0]["entries"][0]["expires_in_secs"]
        .as_i64()
        .expect("ttl");
    assert!((1..=60).contains(&left), "{left}");
    // Releasing someone else's id that is not there: bad input, nothing changed.
    let before = ctx.state();
    let wrong = ctx
        .run(
            "confctl",
            &["lock", "release", "maint:db1", "--id", "nosuch"],
        )
        .expect_code(2);
    assert!(
        wrong
            .stderr
            .contains("no entry of lock maint:db1 to release with id nosuch; nothing written"),
        "{wrong:?}"
    );
    assert_eq!(ctx.state(), before);
    // The caller's own entry, released: the lock is free at once.
    let released = ctx
        .run("confctl", &["lock", "release", "maint:db1"])
        .expect_code(0);
    assert!(
        released
            .stderr
            .contains(&format!("released maint:db1 ({id})")),
        "{released:?}"
    );
    let empty = ctx.run("confctl", &["lock", "list"]).expect_code(0);
    assert_eq!(empty.stdout, "", "{empty:?}");
    // A semaphore: as many holders as its concurrency, then busy.
    acquire(&["--concurrency", "2"]).expect_code(0);
    acquire(&["--concurrency", "2"]).expect_code(0);
    acquire(&["--concurrency", "2"]).expect_code(1);
    let list = ctx.run("confctl", &["lock", "list"]).expect_code(0);
    assert_eq!(list.stdout.matches("  held  ").count(), 2, "{list:?}");
    assert_eq!(
        list.stdout.lines().count(),
        2,
        "the refused one left no entry: {list:?}"
    );
}

#[test]
fn a_rolling_run_without_capacity_gives_up_after_capacity_wait_and_touches_nothing() {
    let ctx = Ctx::new();
    // 4 nodes at 0.5: 2 must serve; two are already out, so there is no room for a third.
    web(&ctx, 4, 0.5);
    for n in ["web02", "web03"] {
        ctx.run("confctl", &["depool", "--hostname", n])
            .expect_code(0);
    }
    let before = ctx.dump_prefix("/v1/pools/");
    let ran = ctx.path("ran");
    let t0 = Instant::now();
    let run = ctx.run(
        "confctl",
        &[
            "rolling",
            "name=web0[01]",
            "--batch",
            "1",
            "--capacity-wait",
            "1s",
            "--",
            "touch",
            ran.to_str().expect("utf-8"),
        ],
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("web00: FAILED: no capacity within 1s"),
        "{run:?}"
    );
    // The summary says where each host was left: web00 was never depooled.
    assert!(
        run.stdout
            .contains("  web00: not depooled: no capacity within 1s"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("still depooled:"), "{run:?}");
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "it waited for capacity"
    );
    assert!(!ran.exists(), "the command never ran");
    assert_eq!(ctx.dump_prefix("/v1/pools/"), before);
}
