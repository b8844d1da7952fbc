//! Safe with many writers and many hosts (issue 17): real `confctl`/`conftool` processes
//! started at once never take a pool below its depool threshold or `min_pooled`; a rack of
//! hosts is one plan (dry run, refusal, `--partial`), recorded as an operation that `confctl
//! operation end` undoes exactly; bad groups and policies are refused with nothing written.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::Instant;

use crate::util::*;

/// `n` nodes `{pool}-mw{i}` in cluster `pool` (service apache), each pool with its limits.
fn data(ctx: &Ctx, pools: &[(&str, usize, f64, Option<u32>)]) -> std::path::PathBuf {
    let mut services = String::new();
    let mut nodes = String::new();
    for (pool, n, threshold, min) in pools {
        services.push_str(&format!(
            "{pool}:\n  apache:\n    port: 80\n    default_values: {{pooled: \"yes\", weight: 1}}\n    depool_threshold: {threshold}\n"
        ));
        if let Some(m) = min {
            services.push_str(&format!("    min_pooled: {m}\n"));
        }
        nodes.push_str(&format!("{pool}:\n"));
        for i in 0..*n {
            nodes.push_str(&format!("  {pool}-mw{i}: {{services: [apache]}}\n"));
        }
    }
    ctx.write("data/services.yaml", &services);
    ctx.write("data/eqiad/pools.yaml", &nodes);
    let dir = ctx.path("data");
    ctx.sync(&dir, &[]).expect_code(0);
    dir
}

/// Serving objects (pooled yes, weight above 0) of cluster `pool`.
fn serving(ctx: &Ctx, pool: &str) -> usize {
    ctx.dump_prefix(&format!("/v1/pools/eqiad/{pool}/"))
        .values()
        .filter(|v| {
            let v: serde_json::Value = serde_json::from_str(v).expect("JSON");
            v["pooled"] == "yes" && v["weight"].as_u64().unwrap_or(0) > 0
        })
        .count()
}

/// Every object of cluster `pool` back to pooled yes, weight 1.
fn repool_all(ctx: &Ctx, pool: &str) {
    for k in ctx.dump_prefix(&format!("/v1/pools/eqiad/{pool}/")).keys() {
        ctx.put(k, r#"{"pooled":"yes","weight":1}"#);
    }
}

/// How many rounds the stress tests run (`CONFTOOL_FLEET_ROUNDS` overrides).
fn rounds(default: usize) -> usize {
    std::env::var("CONFTOOL_FLEET_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Start a binary without waiting for it.
fn spawn(ctx: &Ctx, bin: &str, args: &[&str]) -> Child {
    ctx.cmd(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start")
}

/// Wait for every process: (exit code, stderr) each.
fn finish(children: Vec<Child>) -> Vec<(i32, String)> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

/// Every writer either landed (0) or was refused by the threshold (2, saying so).
#[track_caller]
fn landed_or_refused(round: usize, outs: &[(i32, String)]) -> usize {
    for (code, err) in outs {
        assert!(
            *code == 0 || (*code == 2 && err.contains("depool threshold")),
            "round {round}: exit {code}: {err}"
        );
    }
    outs.iter().filter(|(c, _)| *c == 0).count()
}

#[test]
fn concurrent_depools_sets_and_conftool_transactions_never_go_below_the_threshold() {
    concurrent_writers(&Ctx::new(), rounds(1000));
}

#[test]
fn the_same_on_a_three_member_cluster() {
    let ctx = Ctx {
        etcd: Etcd::start_with(3, &[]),
        dir: conftool_testkit::temp_dir("test-"),
    };
    concurrent_writers(&ctx, rounds(1000) / 10);
}

/// Rounds of eight writers started at once on two pools.
fn concurrent_writers(ctx: &Ctx, n: usize) {
    // 5 nodes at 0.5 (3 must serve), and 6 nodes with min_pooled 4 at share 0.
    data(ctx, &[("five", 5, 0.5, None), ("six", 6, 0.0, Some(4))]);
    let started = Instant::now();
    let mut landed = [0usize; 2];
    for round in 0..n {
        // Five depools of five hosts at once, plus a pattern drain and a conftool
        // transaction of the other pool, plus a pattern depool of both.
        let mut children: Vec<Child> = (0..5)
            .map(|i| {
                let host = format!("five-mw{i}");
                spawn(ctx, "confctl", &["depool", "--hostname", &host])
            })
            .collect();
        children.push(spawn(
            ctx,
            "confctl",
            &[
                "--yes",
                "select",
                "cluster=six,name=six-mw[01]",
                "set/weight=0",
            ],
        ));
        children.push(spawn(
            ctx,
            "conftool",
            &[
                "-d",
                "eqiad",
                "-c",
                "six",
                "-s",
                "apache",
                "six-mw2 pool=no; six-mw3 pool=no",
            ],
        ));
        children.push(spawn(
            ctx,
            "confctl",
            &["--yes", "select", "name=(five|six)-mw[45]", "set/pooled=no"],
        ));
        let outs = finish(children);
        let (five, six) = (serving(ctx, "five"), serving(ctx, "six"));
        assert!(
            five >= 3 && six >= 4,
            "round {round}: five {five}, six {six}: {outs:?}"
        );
        let ok = landed_or_refused(round, &outs);
        assert!(ok >= 1, "round {round}: no writer landed: {outs:?}");
        landed[0] += usize::from(five == 3);
        landed[1] += usize::from(six == 4);
        repool_all(ctx, "five");
        repool_all(ctx, "six");
    }
    // Every round filled both pools to their limits: writers took turns instead of failing.
    assert_eq!(
        landed,
        [n, n],
        "rounds where each pool reached its limit exactly"
    );
    eprintln!(
        "{n} rounds of 8 concurrent writers: {:.1}s ({:.0} ms per round)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() * 1000.0 / n as f64
    );
}

#[test]
fn two_hundred_depools_at_once_on_a_two_hundred_node_pool() {
    let ctx = Ctx::new();
    data(&ctx, &[("big", 200, 0.7, None)]);
    for round in 0..rounds(2) {
        let started = Instant::now();
        let children: Vec<Child> = (0..200)
            .map(|i| {
                let host = format!("big-mw{i}");
                // 200 processes at once on a shared machine can keep one etcd member from
                // answering within the default 5 s (seen once, with two test suites running):
                // this test is about the threshold, not about etcd's latency.
                let args = ["--timeout", "30s", "depool", "--hostname", &host];
                spawn(&ctx, "confctl", &args)
            })
            .collect();
        let outs = finish(children);
        let ok = landed_or_refused(round, &outs);
        // 0.7 of 200: 140 must serve, so exactly 60 depools land.
        assert_eq!((ok, serving(&ctx, "big")), (60, 140), "round {round}");
        eprintln!(
            "round {round}: 200 confctl depools at once: {:.1}s",
            started.elapsed().as_secs_f64()
        );
        repool_all(&ctx, "big");
    }
}

#[test]
fn a_one_node_pool_with_min_pooled_refuses_its_depool_and_a_drain() {
    let ctx = Ctx::new();
    data(&ctx, &[("solo", 1, 0.0, Some(1))]);
    let before = ctx.state();
    for args in [
        vec!["depool", "--hostname", "solo-mw0"],
        vec!["drain", "--hostname", "solo-mw0"],
    ] {
        let run = ctx.run("confctl", &args).expect_code(2);
        assert!(
            run.stderr.contains(
                "eqiad/solo/apache: 0 of 1 nodes would stay serving (now 1), below its depool \
                 threshold 0 and min_pooled 1 (at least 1)"
            ),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(ctx.state(), before, "{args:?}");
    }
}

/// Forty hosts of a rack over twelve pools (four clusters of three services), one of whose
/// pools would cross its threshold; a host the policy leaves to a person and one depooled by
/// its owner's command.
struct Rack {
    ctx: Ctx,
    hosts_file: std::path::PathBuf,
    policy: std::path::PathBuf,
    marker: std::path::PathBuf,
}

const CLUSTERS: [&str; 4] = ["app", "api", "job", "cache"];
const SERVICES: [&str; 3] = ["apache", "nginx", "envoy"];

impl Rack {
    fn new() -> Rack {
        let ctx = Ctx::new();
        let mut services = String::new();
        let mut nodes = String::new();
        for c in CLUSTERS {
            services.push_str(&format!("{c}:\n"));
            for s in SERVICES {
                // api/envoy must keep 0.75: the rack's ten api hosts would leave 20 of 30.
                let t = if (c, s) == ("api", "envoy") {
                    0.75
                } else {
                    0.5
                };
                services.push_str(&format!(
                    "  {s}:\n    port: 80\n    default_values: {{pooled: \"yes\", weight: 10}}\n    depool_threshold: {t}\n"
                ));
            }
            nodes.push_str(&format!("{c}:\n"));
            for i in 0..30 {
                nodes.push_str(&format!(
                    "  {c}{i:02}: {{services: [apache, nginx, envoy]}}\n"
                ));
            }
        }
        ctx.write("data/services.yaml", &services);
        ctx.write("data/eqiad/pools.yaml", &nodes);
        ctx.sync(&ctx.path("data"), &[]).expect_code(0);
        // The rack: hosts 00-09 of app, api and job, 00-07 of cache, and two hosts that are
        // not conftool's: a database (manual) and a load balancer (its own command).
        let mut rack: Vec<String> = Vec::new();
        for c in ["app", "api", "job"] {
            rack.extend((0..10).map(|i| format!("{c}{i:02}")));
        }
        rack.extend((0..8).map(|i| format!("cache{i:02}")));
        rack.push("db1001".into());
        rack.push("lvs1001".into());
        assert_eq!(rack.len(), 40);
        let hosts_file = ctx.write("rack-b4.txt", &format!("# rack B4\n{}\n", rack.join("\n")));
        let marker = ctx.path("lvs1001.depooled");
        let policy = ctx.write(
            "depool-policy.yaml",
            &format!(
                "- hosts: 'db1.*'\n  manual: \"master DB: needs a manual depool\"\n\
                 - hosts: 'lvs.*'\n  command: \"touch {m}\"\n  repool: \"rm {m}\"\n  timeout: 10s\n",
                m = ctx.path("{host}.depooled").display()
            ),
        );
        Rack {
            ctx,
            hosts_file,
            policy,
            marker,
        }
    }

    fn depool(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "depool",
            "--hosts-file",
            self.hosts_file.to_str().expect("utf-8"),
            "--policy",
            self.policy.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        self.ctx.run("confctl", &args)
    }
}

#[test]
fn a_rack_is_one_plan_shown_refused_or_partial_and_undone_exactly() {
    let rack = Rack::new();
    let ctx = &rack.ctx;
    let original = ctx.dump_prefix("/v1/pools/");
    let before = ctx.state();
    // The dry run: every host with each pool, the crossing pool, who is not conftool's.
    let dry = rack.depool(&["--dry-run"]).expect_code(0);
    assert!(
        dry.stdout
            .starts_with("Dry run: depool of 40 hosts (nothing written)\n"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("app00:\n  eqiad/app/apache: pooled=yes weight=10 -> pooled=no weight=10\n"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("db1001: not depooled by conftool: manual: master DB: needs a manual depool"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("lvs1001: not depooled by conftool: command `touch "),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(
            "Refused: pools that would cross their depool threshold (nothing would be written; \
             --partial writes the hosts that fit):\n  eqiad/api/envoy: 20 of 30 nodes would stay \
             serving (now 30), below its depool threshold 0.75 (at least 23)"
        ),
        "{}",
        dry.stdout
    );
    assert_eq!(ctx.state(), before, "a dry run writes nothing");
    // All or nothing: refused as a whole, nothing written, no command run.
    let refused = rack.depool(&[]).expect_code(2);
    assert!(
        refused.stderr.contains("eqiad/api/envoy: 20 of 30"),
        "{}",
        refused.stderr
    );
    assert_eq!(ctx.state(), before);
    assert!(
        !rack.marker.exists(),
        "the policy's command ran on a refused group"
    );
    // --partial: every host that fits, the three api hosts past 0.75 held back and named.
    let started = Instant::now();
    let run = rack
        .depool(&["--partial", "--reason", "T123 rack B4 switch"])
        .expect_code(0);
    let took = started.elapsed();
    for h in ["api07", "api08", "api09"] {
        assert!(
            run.stdout
                .contains(&format!("{h}: held back (not written): eqiad/api/envoy")),
            "{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("Still needs a person:\n  db1001: master DB: needs a manual depool\n"),
        "{}",
        run.stdout
    );
    assert!(rack.marker.exists(), "lvs1001's own command ran");
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("operation "))
        .and_then(|l| l.split_whitespace().next())
        .expect("operation id")
        .to_string();
    // 35 conftool hosts written, 3 objects each; api at 23 of 30 in every service.
    let after = ctx.dump_prefix("/v1/pools/");
    let depooled: Vec<&String> = after
        .iter()
        .filter(|(_, v)| v.contains("\"no\""))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(depooled.len(), 35 * 3, "{depooled:?}");
    assert_eq!(serving(ctx, "api"), 69, "23 of 30 in each of three pools");
    eprintln!(
        "a 40-host rack depool (--partial, 105 objects, 12 pools): {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
    // The operation says what it did; someone repools one host by hand meanwhile and
    // depools an object the rack did not touch.
    let show = ctx
        .run("confctl", &["operation", "show", &id])
        .expect_code(0);
    assert!(
        show.stdout.contains("reason: T123 rack B4 switch"),
        "{}",
        show.stdout
    );
    assert_eq!(
        show.stdout.matches(" -> pooled=no weight=10").count(),
        105,
        "{}",
        show.stdout
    );
    let list = ctx.run("confctl", &["operation", "list"]).expect_code(0);
    assert!(
        list.stdout.starts_with(&id) && list.stdout.contains("105 objects"),
        "{}",
        list.stdout
    );
    ctx.run("confctl", &["pool", "--hostname", "app00"])
        .expect_code(0);
    ctx.run(
        "confctl",
        &["depool", "--hostname", "app29", "--service", "nginx"],
    )
    .expect_code(0);
    // Ending it: a dry run first, then for real; everything the operation changed is back,
    // the policy's repool command ran, the person is reminded, the others' change stays.
    let dry = ctx
        .run("confctl", &["operation", "end", &id, "--dry-run"])
        .expect_code(0);
    assert_eq!(
        dry.stdout.matches(" -> pooled=yes weight=10").count(),
        102,
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("lvs1001: would run `rm "),
        "{}",
        dry.stdout
    );
    let end = ctx
        .run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert!(
        end.stdout.contains("db1001: needs a person to put it back"),
        "{}",
        end.stdout
    );
    assert!(!rack.marker.exists(), "the repool command ran");
    let mut expected = original.clone();
    expected.insert(
        "/v1/pools/eqiad/app/nginx/app29".into(),
        r#"{"pooled":"no","weight":10}"#.into(),
    );
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &expected);
    let list = ctx.run("confctl", &["operation", "list"]).expect_code(0);
    assert!(!list.stdout.contains(&id), "{}", list.stdout);
    // Ending it again does nothing.
    let again = ctx
        .run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert!(again.stderr.contains("already ended"), "{}", again.stderr);
}

#[test]
fn bad_groups_and_policies_are_refused_with_nothing_written() {
    let rack = Rack::new();
    let ctx = &rack.ctx;
    let before = ctx.state();
    let unknown = ctx.write("unknown.txt", "app00\nnosuch-host\napp01\n");
    let empty = ctx.write("empty.txt", "# nobody\n\n");
    let bad_name = ctx.write("bad.txt", "app00\nbad/name\n");
    let bad_policy = ctx.write(
        "policy.yaml",
        "- hosts: 'db.*'\n  script: \"ssh {host} stop\"\n",
    );
    let none = ctx.write("policy2.yaml", "- hosts: 'db.*'\n");
    let p = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    let (u, e, b, bp, n) = (
        p(&unknown),
        p(&empty),
        p(&bad_name),
        p(&bad_policy),
        p(&none),
    );
    ctx.expect_bad_input(
        "confctl",
        &[
            (
                &["depool", "--hosts-file", &u],
                "node nosuch-host is not in any pool; nothing written",
            ),
            (
                &["depool", "--hosts-file", &e],
                "names no host; nothing written",
            ),
            (
                &["depool", "--hosts-file", &b],
                "bad.txt:2: invalid node name",
            ),
            (
                &["depool", "--hostname", "app00", "--policy", &bp],
                "policy.yaml:2: rule 1: unknown field `script`",
            ),
            (
                &["depool", "--hostname", "app00", "--policy", &n],
                "rule 1: says no mechanism",
            ),
            (
                &["depool", "--hostname", "app00", "--partial"],
                "--partial is for a group of hosts",
            ),
            (&["operation", "end", "not an id"], "invalid operation id"),
            (
                &["operation", "end", "op-20000101-000000-000000"],
                "no operation op-20000101-000000-000000",
            ),
            (&["operation", "show", "../x"], "invalid operation id"),
        ],
    );
    assert_eq!(ctx.state(), before);
}

/// The rack's hosts, for the positive control in the bad-input test.
#[test]
fn a_group_of_named_hosts_depools_together_and_a_single_host_stays_as_it_was() {
    let rack = Rack::new();
    let ctx = &rack.ctx;
    // Several --hostname: one operation; a single host without --operation: none.
    let run = ctx
        .run(
            "confctl",
            &["depool", "--hostname", "app00", "--hostname", "job03"],
        )
        .expect_code(0);
    assert_eq!(
        run.stdout.matches(": pooled changed yes => no").count(),
        6,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("operation op-"), "{}", run.stdout);
    let run = ctx
        .run("confctl", &["depool", "--hostname", "app01"])
        .expect_code(0);
    assert!(!run.stdout.contains("operation"), "{}", run.stdout);
    let run = ctx
        .run("confctl", &["depool", "--hostname", "app02", "--operation"])
        .expect_code(0);
    assert!(run.stdout.contains("operation op-"), "{}", run.stdout);
    let ops: BTreeMap<String, String> = ctx.dump_prefix("/v1/operations/");
    assert_eq!(ops.len(), 2, "{ops:?}");
}

/// The example data directory, synced (with its racks).
fn example() -> Ctx {
    let ctx = Ctx::new();
    let conf = ctx.copy_example("conf");
    ctx.sync(&conf, &[]).expect_code(0);
    ctx
}

#[test]
fn a_rack_by_its_label_is_depooled_as_one_operation_and_put_back() {
    let ctx = example();
    let before = ctx.dump_prefix("/v1/pools/");
    let dry = ctx
        .run(
            "confctl",
            &["depool", "--label", "rack=B4", "--dc", "eqiad", "--dry-run"],
        )
        .expect_code(0);
    assert!(
        dry.stdout
            .starts_with("Dry run: depool of 5 hosts (nothing written)\n"),
        "{}",
        dry.stdout
    );
    for h in ["cp1053", "cp1061", "mw1018", "mw1019", "mw1221"] {
        assert!(
            dry.stdout.contains(&format!("\n{h}:\n")),
            "{h}: {}",
            dry.stdout
        );
    }
    assert!(!dry.stdout.contains("Refused"), "{}", dry.stdout);
    let run = ctx
        .run(
            "confctl",
            &[
                "depool", "--label", "rack=B4", "--dc", "eqiad", "-r", "switch",
            ],
        )
        .expect_code(0);
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("operation "))
        .and_then(|l| l.split_whitespace().next())
        .expect("operation id")
        .to_string();
    let list = ctx.run("confctl", &["operation", "list"]).expect_code(0);
    assert!(
        list.stdout.contains("depool rack=B4@eqiad,cp1053"),
        "{}",
        list.stdout
    );
    assert_ne!(ctx.dump_prefix("/v1/pools/"), before);
    ctx.run("confctl", &["operation", "end", &id])
        .expect_code(0);
    assert_keyspace(&ctx.dump_prefix("/v1/pools/"), &before);
    // codfw's B3 would take api below 0.66: refused whole, nothing written.
    let state = ctx.state();
    let run = ctx
        .run(
            "confctl",
            &["depool", "--label", "rack=B3", "--dc", "codfw"],
        )
        .expect_code(2);
    assert!(
        run.stderr.contains("codfw/api_appserver/apache"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), state);
}

#[test]
fn unknown_labels_and_empty_racks_are_bad_input() {
    let ctx = example();
    let before = ctx.state();
    ctx.expect_bad_input(
        "confctl",
        &[
            (
                &["depool", "--label", "rak=B4", "--dc", "eqiad"],
                "no host in eqiad has a label named rak (labels there: rack, row)",
            ),
            (
                &["depool", "--label", "rack=Z9", "--dc", "eqiad"],
                "no host in eqiad has the labels rack=Z9",
            ),
            (&["depool", "--label", "rack=B4"], "--dc"),
            (&["depool", "--label", "rack", "--dc", "eqiad"], "--label"),
            (
                &["depool", "--label", "rack=B4", "--dc", "nowhere"],
                "no host in nowhere has a label named rack",
            ),
        ],
    );
    assert_eq!(ctx.state(), before);
}
