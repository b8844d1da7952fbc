//! Reliability against a 3-member etcd cluster on loopback: a leader killed in the middle of a
//! large sync, a majority stopped, a member restarted from its data dir, and many concurrent
//! `confctl` writers racing a sync (checked through the audit trail).
//!
//! Every process here is one this test started, stopped by PID; every wait is a bounded poll.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

/// The per-request timeout every tool gets here.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long a tool may take to fail on a 2 s timeout (connect + request, a loaded machine).
const FAIL_WITHIN: Duration = Duration::from_secs(15);
/// Election timings for the clusters here: slower than the harness's default (10 ms
/// heartbeats, 100 ms elections), so that a CPU-starved member on a loaded 2-core machine does
/// not call elections of its own in the middle of a test; a killed leader is still replaced
/// within about a second. (etcd takes the last of repeated flags.)
const CLUSTER_FLAGS: &[&str] = &["--heartbeat-interval", "50", "--election-timeout", "1000"];
/// How long any one tool run may take before the test gives up on it (and kills it).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A command for one of the binaries, pointed at `endpoints` with a 2 s timeout, with no
/// config file and no inherited CONFTOOL_* settings.
fn tool(name: &str, endpoints: &str) -> Command {
    tool_with_timeout(name, endpoints, "2s")
}

/// [`tool`] with another timeout: for runs that must succeed on a loaded machine (a 30,000
/// object sync on 2 cores shared with other tests), where a 2 s request timeout tests nothing.
fn tool_with_timeout(name: &str, endpoints: &str, timeout: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.arg("--endpoints")
        .arg(endpoints)
        .args(["--timeout", timeout])
        .env_remove("CONFTOOL_ENDPOINTS")
        .env_remove("CONFTOOL_CONFIG")
        .env("USER", "tester")
        .env_remove("SUDO_USER")
        .stdin(Stdio::null());
    c
}

/// A started tool whose output is drained by threads (so a large diff never blocks it).
struct Running {
    child: Child,
    started: Instant,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

fn spawn(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    Running {
        child,
        started: Instant::now(),
        out,
        err,
    }
}

impl Running {
    /// Whether it still runs.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for it (at most `limit`, then kill it by PID and fail): its output and wall time.
    #[track_caller]
    fn wait(mut self, limit: Duration) -> (Run, Duration) {
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if self.started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {limit:?}; killed it\n--- stderr\n{}",
                    self.err.join().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = self.started.elapsed();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
        };
        (run, took)
    }
}

/// Run a tool to completion (bounded): its output and wall time.
#[track_caller]
fn run(cmd: Command) -> (Run, Duration) {
    spawn(cmd).wait(RUN_LIMIT)
}

/// A generated data directory: service definitions and, per datacenter,
/// cluster -> node -> services.
#[derive(Debug, Clone, Default)]
struct Layout {
    /// (cluster, service) -> default state.
    services: BTreeMap<(String, String), Value>,
    pools: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<String>>>>,
}

impl Layout {
    fn service(mut self, cluster: &str, service: &str, pooled: &str, weight: u16) -> Self {
        self.services.insert(
            (cluster.into(), service.into()),
            json!({"pooled": pooled, "weight": weight}),
        );
        self
    }

    fn nodes(
        mut self,
        dc: &str,
        cluster: &str,
        nodes: impl IntoIterator<Item = String>,
        services: &[&str],
    ) -> Self {
        let by_node = self
            .pools
            .entry(dc.into())
            .or_default()
            .entry(cluster.into())
            .or_default();
        for n in nodes {
            by_node.insert(n, services.iter().map(|s| s.to_string()).collect());
        }
        self
    }

    /// Write the directory afresh (services.yaml and <dc>/pools.yaml only).
    fn write(&self, dir: &Path) {
        if dir.exists() {
            std::fs::remove_dir_all(dir).expect("rm conf dir");
        }
        std::fs::create_dir_all(dir).expect("mkdir conf dir");
        let mut services = String::new();
        let mut last_cluster = None;
        for ((cluster, service), d) in &self.services {
            if last_cluster != Some(cluster) {
                services.push_str(&format!("{cluster}:\n"));
                last_cluster = Some(cluster);
            }
            services.push_str(&format!(
                "  {service}:\n    port: 80\n    default_values: {{pooled: \"{}\", weight: {}}}\n",
                d["pooled"].as_str().expect("pooled"),
                d["weight"]
            ));
        }
        std::fs::write(dir.join("services.yaml"), services).expect("write services.yaml");
        for (dc, clusters) in &self.pools {
            let mut text = String::new();
            for (cluster, nodes) in clusters {
                text.push_str(&format!("{cluster}:\n"));
                for (node, svcs) in nodes {
                    text.push_str(&format!("  {node}: {{services: [{}]}}\n", svcs.join(", ")));
                }
            }
            std::fs::create_dir_all(dir.join(dc)).expect("mkdir dc");
            std::fs::write(dir.join(dc).join("pools.yaml"), text).expect("write pools.yaml");
        }
    }

    /// Every object key, with the state a sync creates it with.
    fn objects(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for (dc, clusters) in &self.pools {
            for (cluster, nodes) in clusters {
                for (node, svcs) in nodes {
                    for s in svcs {
                        let d = &self.services[&(cluster.clone(), s.clone())];
                        out.insert(format!("/v1/pools/{dc}/{cluster}/{s}/{node}"), d.clone());
                    }
                }
            }
        }
        out
    }

    /// The whole keyspace a sync of this directory leaves: objects and service definitions.
    fn expected_keys(&self) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.objects().into_keys().collect();
        for (cluster, service) in self.services.keys() {
            keys.insert(format!("/v1/services/{cluster}/{service}"));
        }
        keys.insert("/v1/meta/sync".to_string()); // the sync record
        keys
    }
}

/// The whole keyspace through member `i` only: key -> (value, mod revision).
#[track_caller]
fn dump_via(etcd: &EtcdCluster, i: usize) -> BTreeMap<String, (String, i64)> {
    block_on(etcd.dump_via(i, Duration::from_secs(20)))
        .unwrap_or_else(|| panic!("no answer from member {i} to a range read"))
}

/// etcd's revision as member `i` reports it (a linearizable read), if it answers quickly.
async fn revision_via(c: &mut etcd_client::Client) -> Option<i64> {
    let read = c.get("revision-probe", None);
    let resp = tokio::time::timeout(Duration::from_millis(500), read)
        .await
        .ok()?
        .ok()?;
    Some(resp.header()?.revision())
}

/// etcd's revision through member `i` only.
#[track_caller]
fn revision_of(etcd: &EtcdCluster, i: usize) -> i64 {
    block_on(async {
        let mut c = etcd.member_client(i).await.expect("client");
        revision_via(&mut c).await
    })
    .unwrap_or_else(|| panic!("no revision from member {i}"))
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Objects must end up with exactly the keys of `layout`, the values in `set` where confctl
/// changed them, the service defaults elsewhere.
#[track_caller]
fn assert_converged(
    dump: &BTreeMap<String, (String, i64)>,
    layout: &Layout,
    set: &BTreeMap<String, Value>,
) {
    let keys: BTreeSet<String> = dump.keys().cloned().collect();
    let want = layout.expected_keys();
    let missing: Vec<_> = want.difference(&keys).take(5).collect();
    let extra: Vec<_> = keys.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "keyspace differs: {} missing (e.g. {missing:?}), {} extra (e.g. {extra:?})",
        want.difference(&keys).count(),
        keys.difference(&want).count()
    );
    for (key, default) in layout.objects() {
        let got = parse(&dump[&key].0);
        let want = set.get(&key).unwrap_or(&default);
        assert_eq!(&got, want, "value of {key}");
    }
}

/// Whether a failure message says what went wrong with etcd in words a person understands.
fn clear_etcd_failure(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("etcd")
        && [
            "unreachable",
            "no answer",
            "timed out",
            "timeout",
            "quorum",
            "no leader",
        ]
        .iter()
        .any(|w| s.contains(w))
}

fn names(prefix: &str, n: usize, width: usize) -> impl Iterator<Item = String> + '_ {
    (0..n).map(move |i| format!("{prefix}{i:0width$}"))
}

/// Case 1: The leader is killed while a 30,000-object sync is writing. The sync either finishes
/// through the other members or fails with exit 1 and a clear message; either way a re-run
/// through the survivors converges exactly, and the dynamic state set before the kill stays.
#[test]
fn leader_killed_during_large_sync_then_rerun_converges() {
    let t0 = Instant::now();
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let all = etcd.endpoints_arg();

    // A first, small sync, and dynamic state set with confctl on top of it.
    let services = Layout::default()
        .service("big", "s0", "no", 10)
        .service("big", "s1", "no", 10)
        .service("big", "s2", "yes", 1);
    let small = services
        .clone()
        .nodes("eqiad", "big", names("n", 100, 5), &["s0", "s1", "s2"])
        .nodes("eqiad", "big", names("gone", 10, 2), &["s0"]);
    small.write(&conf);
    let (r, _) = run({
        let mut c = tool("conftool-sync", &all);
        c.arg("--directory").arg(&conf).arg("--quiet");
        c
    });
    r.expect_code(0);
    let mut set: BTreeMap<String, Value> = BTreeMap::new();
    for (sel, action, value) in [
        (
            "dc=eqiad,cluster=big,name=n0000[0-9]",
            "set/pooled=yes:weight=4242",
            json!({"pooled": "yes", "weight": 4242}),
        ),
        (
            "dc=eqiad,service=s1,name=n0005.*",
            "set/pooled=inactive:weight=7",
            json!({"pooled": "inactive", "weight": 7}),
        ),
    ] {
        let (r, _) = run({
            let mut c = tool("confctl", &all);
            c.args(["--yes", "--json", "select", sel, action]);
            c
        });
        let r = r.expect_code(0);
        let out = parse(r.stdout.trim());
        for ch in out["changed"].as_array().expect("changed") {
            let key = format!("/v1/pools/{}", ch["key"].as_str().expect("key"));
            set.insert(key, value.clone());
        }
    }
    assert_eq!(set.len(), 30 + 10, "confctl changed what it selected");

    // The large sync: 30,000 objects in two datacenters; the `gone` nodes are dropped.
    let big = services
        .nodes("eqiad", "big", names("n", 5000, 5), &["s0", "s1", "s2"])
        .nodes("codfw", "big", names("n", 5000, 5), &["s0", "s1", "s2"]);
    assert_eq!(big.objects().len(), 30_000);
    big.write(&conf);

    let leader = etcd.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (leader + 1) % 3;
    let survivors = [follower, (leader + 2) % 3];
    let survivors_arg = survivors
        .iter()
        .map(|&i| etcd.member_endpoint(i))
        .collect::<Vec<_>>()
        .join(",");
    let base = revision_of(&etcd, follower);
    let mut sync = spawn({
        let mut c = tool("conftool-sync", &all);
        c.arg("--directory").arg(&conf).arg("--quiet");
        c
    });
    // Kill the leader once a few transactions of 128 writes have landed, while the sync runs.
    let seen = block_on(async {
        let mut c = etcd.member_client(follower).await.expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && sync.running() {
            if let Some(rev) = revision_via(&mut c).await {
                if rev >= base + 8 {
                    return Some(rev);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    });
    let still_running = sync.running();
    etcd.kill_member(leader);
    let rev_at_kill = seen.unwrap_or_else(|| {
        panic!("the sync ended (or never wrote) before the leader could be killed")
    });
    assert!(
        still_running,
        "the sync finished before the leader was killed; nothing was tested"
    );
    let (first, took) = sync.wait(RUN_LIMIT);
    eprintln!(
        "leader m{leader} killed at revision {rev_at_kill} (base {base}); the sync exited {} \
         after {took:?}; stderr: {}",
        first.code,
        first.stderr.trim()
    );
    match first.code {
        0 => {}
        1 => {
            // Losing the member a request was in flight on shows as a transport failure.
            let transport = [
                "leader",
                "connection reset",
                "connection refused",
                "transport",
            ]
            .iter()
            .any(|w| first.stderr.contains(w));
            assert!(
                clear_etcd_failure(&first.stderr) || (first.stderr.contains("etcd") && transport),
                "unclear failure message: {}",
                first.stderr
            );
            assert!(!first.stderr.contains("Synced"), "{}", first.stderr);
        }
        other => panic!("exit {other}: {first:?}"),
    }

    // A re-run through the survivors converges exactly; a check afterwards writes nothing.
    let (rerun, took) = run({
        let mut c = tool_with_timeout("conftool-sync", &survivors_arg, "10s");
        c.arg("--directory").arg(&conf).arg("--quiet");
        c
    });
    rerun.expect_code(0);
    eprintln!("re-run through the survivors took {took:?}");
    let dump = dump_via(&etcd, follower);
    assert_converged(&dump, &big, &set);
    let rev = revision_of(&etcd, follower);
    let (check, _) = run({
        let mut c = tool("conftool-sync", &survivors_arg);
        c.arg("--directory")
            .arg(&conf)
            .arg("--check")
            .arg("--quiet");
        c
    });
    check.expect_code(0);
    assert_eq!(dump_via(&etcd, follower), dump, "--check wrote");

    // The killed leader comes back from its data dir and catches up.
    etcd.restart_member(leader);
    etcd.wait_member_serving(leader, Duration::from_secs(30))
        .expect("old leader rejoins");
    assert_eq!(dump_via(&etcd, leader), dump);
    let rev_after = revision_of(&etcd, leader);
    assert_eq!(rev_after, rev, "nothing was written after convergence");
    eprintln!("leader_killed_during_large_sync: {:?}", t0.elapsed());
}

/// Case 2: With 2 of 3 members stopped, reads, writes and syncs fail within their timeout with
/// exit 1 and a clear message, report nothing as done, and change nothing.
#[test]
fn majority_down_fails_fast_and_clearly_and_writes_nothing() {
    let t0 = Instant::now();
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let conf2 = dir.path().join("conf2");
    let all = etcd.endpoints_arg();
    let layout = Layout::default()
        .service("web", "a", "yes", 1)
        .service("web", "b", "no", 10)
        .nodes("eqiad", "web", names("w", 10, 2), &["a", "b"]);
    layout.write(&conf);
    layout
        .clone()
        .nodes("eqiad", "web", names("x", 5, 2), &["a"])
        .write(&conf2);
    let (r, _) = run({
        let mut c = tool("conftool-sync", &all);
        c.arg("--directory").arg(&conf);
        c
    });
    r.expect_code(0);
    let (r, _) = run({
        let mut c = tool("confctl", &all);
        c.args(["--yes", "select", "name=w0[0-4]", "set/pooled=no:weight=3"]);
        c
    });
    r.expect_code(0);

    let leader = etcd.leader(Duration::from_secs(10)).expect("a leader");
    let survivor = (leader + 1) % 3;
    let before = dump_via(&etcd, survivor);
    let rev_before = revision_of(&etcd, survivor);
    etcd.kill_member(leader);
    etcd.kill_member((leader + 2) % 3);
    let dead = etcd.member_endpoint(leader);
    let only = etcd.member_endpoint(survivor);

    let conf_s = conf2.to_str().expect("utf-8");
    let cases: Vec<(&str, &str, String, Vec<&str>)> = vec![
        (
            "get",
            "confctl",
            all.clone(),
            vec!["select", "name=.*", "get"],
        ),
        (
            "get --json, survivor only",
            "confctl",
            only.clone(),
            vec!["--json", "select", "name=.*", "get"],
        ),
        (
            "get, dead member only",
            "confctl",
            dead.clone(),
            vec!["select", "name=.*", "get"],
        ),
        (
            "set",
            "confctl",
            all.clone(),
            vec!["--yes", "select", "name=w0.*", "set/pooled=no:weight=5"],
        ),
        (
            "set, survivor only",
            "confctl",
            only.clone(),
            vec!["--yes", "select", "name=w01", "set/weight=9"],
        ),
        (
            "depool",
            "confctl",
            all.clone(),
            vec!["depool", "--hostname", "w07"],
        ),
        (
            "conftool",
            "conftool",
            all.clone(),
            vec!["-d", "eqiad", "-c", "web", "-s", "a", "w08 pool=no"],
        ),
        (
            "sync",
            "conftool-sync",
            all.clone(),
            vec!["--directory", conf_s],
        ),
        (
            "sync, survivor only",
            "conftool-sync",
            only.clone(),
            vec!["--directory", conf_s],
        ),
        (
            "sync --check, survivor only",
            "conftool-sync",
            only.clone(),
            vec!["--directory", conf_s, "--check"],
        ),
    ];
    // All at once: each must fail on its own timeout, whatever the others do.
    let running: Vec<_> = cases
        .iter()
        .map(|(what, bin, ep, args)| {
            let mut c = tool(bin, ep);
            c.args(args);
            (*what, spawn(c))
        })
        .collect();
    let mut problems = Vec::new();
    for (what, r) in running {
        let (r, took) = r.wait(RUN_LIMIT);
        eprintln!(
            "majority down, {what}: exit {} after {took:?}: {}",
            r.code,
            r.stderr.trim()
        );
        if r.code != 1 {
            problems.push(format!("{what}: exit {} (want 1)", r.code));
        }
        if took > FAIL_WITHIN {
            problems.push(format!(
                "{what}: took {took:?} (timeout {TIMEOUT:?}, allowed {FAIL_WITHIN:?})"
            ));
        }
        if !clear_etcd_failure(&r.stderr) {
            problems.push(format!("{what}: unclear message: {:?}", r.stderr.trim()));
        }
        for done in ["changed", "Synced", "pooled in", "depooled from", "Plan:"] {
            if r.stdout.contains(done) || r.stderr.contains(done) {
                problems.push(format!(
                    "{what}: reports {done:?} although nothing was written"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Back to full strength: nothing changed, not even the revision.
    etcd.restart_member(leader);
    etcd.restart_member((leader + 2) % 3);
    for i in 0..3 {
        etcd.wait_member_serving(i, Duration::from_secs(30))
            .expect("member serves again");
    }
    let after = dump_via(&etcd, leader);
    assert_eq!(
        after, before,
        "the keyspace changed while there was no quorum"
    );
    assert_eq!(
        revision_of(&etcd, survivor),
        rev_before,
        "the revision moved"
    );
    eprintln!("majority_down: {:?}", t0.elapsed());
}

/// Case 2b: With one member of three down (quorum intact), every tool given all three endpoints,
/// as a real configuration lists them, still works: the live members serve it.
#[test]
fn one_member_down_tools_given_all_endpoints_still_work() {
    let t0 = Instant::now();
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let all = etcd.endpoints_arg();
    let layout = Layout::default().service("web", "a", "yes", 1).nodes(
        "eqiad",
        "web",
        names("w", 10, 2),
        &["a"],
    );
    layout.write(&conf);
    let sync = |extra: &[&str]| {
        let mut c = tool("conftool-sync", &all);
        c.arg("--directory").arg(&conf).arg("--quiet").args(extra);
        c
    };
    run(sync(&[])).0.expect_code(0);
    // A follower: no election, so any failure is the client's routing.
    let leader = etcd.leader(Duration::from_secs(10)).expect("a leader");
    etcd.kill_member((leader + 1) % 3);

    let mut failures = Vec::new();
    let mut runs = 0;
    for round in 0..8 {
        let weight = format!("set/weight={}", 100 + round);
        let cmds = [
            ("get", {
                let mut c = tool("confctl", &all);
                c.args(["select", "name=.*", "get"]);
                c
            }),
            ("set", {
                let mut c = tool("confctl", &all);
                c.args(["--yes", "select", "name=w0[0-4]", &weight]);
                c
            }),
            ("sync --check", sync(&["--check"])),
        ];
        for (what, cmd) in cmds {
            runs += 1;
            let (r, took) = run(cmd);
            if r.code != 0 {
                failures.push(format!(
                    "{what}: exit {} after {took:?}: {}",
                    r.code,
                    r.stderr.trim()
                ));
            }
        }
    }
    eprintln!(
        "one member down: {} of {runs} runs failed; {:?}",
        failures.len(),
        t0.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Case 3: A member killed and restarted with its data dir catches up on what happened meanwhile,
/// and a sync through that member alone afterwards converges.
#[test]
fn restarted_member_alone_serves_a_converging_sync() {
    let t0 = Instant::now();
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let all = etcd.endpoints_arg();
    let base = Layout::default()
        .service("web", "a", "yes", 1)
        .service("web", "b", "no", 10);
    let a = base
        .clone()
        .nodes("eqiad", "web", names("w", 200, 3), &["a", "b"]);
    a.write(&conf);
    let sync = |endpoints: &str, extra: &[&str]| {
        let mut c = tool("conftool-sync", endpoints);
        c.arg("--directory").arg(&conf).arg("--quiet").args(extra);
        run(c).0
    };
    sync(&all, &[]).expect_code(0);

    // Restart the leader: the hardest member to lose.
    let r = etcd.leader(Duration::from_secs(10)).expect("a leader");
    etcd.kill_member(r);
    // Wait for the survivors to elect a new leader: a request in the moment of the election
    // fails ("leader changed"), which is a runtime failure, not what this test is about.
    let new_leader = etcd.leader(Duration::from_secs(10)).expect("a new leader");
    assert_ne!(new_leader, r);
    let survivors = [(r + 1) % 3, (r + 2) % 3]
        .iter()
        .map(|&i| etcd.member_endpoint(i))
        .collect::<Vec<_>>()
        .join(",");
    // Meanwhile: dynamic state changes and a sync that adds and removes objects.
    let mut set = BTreeMap::new();
    let (out, _) = run({
        let mut c = tool("confctl", &survivors);
        c.args([
            "--yes",
            "--json",
            "select",
            "name=w01.*",
            "set/pooled=inactive:weight=11",
        ]);
        c
    });
    let out = parse(out.expect_code(0).stdout.trim());
    for ch in out["changed"].as_array().expect("changed") {
        set.insert(
            format!("/v1/pools/{}", ch["key"].as_str().expect("key")),
            json!({"pooled": "inactive", "weight": 11}),
        );
    }
    assert_eq!(set.len(), 20);
    let b = base
        .clone()
        .nodes("eqiad", "web", names("w", 180, 3), &["a", "b"])
        .nodes("codfw", "web", names("v", 100, 3), &["a"]);
    b.write(&conf);
    sync(&survivors, &["--allow-delete-pooled"]).expect_code(0);

    etcd.restart_member(r);
    etcd.wait_member_serving(r, Duration::from_secs(30))
        .expect("restarted member serves");
    let only = etcd.member_endpoint(r);
    let c = base
        .clone()
        .nodes("eqiad", "web", names("w", 180, 3), &["a", "b"])
        .nodes("codfw", "web", names("v", 150, 3), &["a", "b"]);
    c.write(&conf);
    let done = sync(&only, &[]).expect_code(0);
    // --quiet silences progress, not the diff of what was written.
    assert!(done.stdout.starts_with("--- etcd "), "{}", done.stdout);
    sync(&only, &["--check"]).expect_code(0);
    let via_other = dump_via(&etcd, (r + 1) % 3);
    assert_converged(&via_other, &c, &set);
    assert_eq!(dump_via(&etcd, r), via_other);
    eprintln!("restarted_member: {:?}", t0.elapsed());
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq)]
struct Audit {
    key: String,
    before: Value,
    after: Value,
    revision: i64,
}

/// Case 4: Eight concurrent `confctl` writers over overlapping selections of at most 128 objects
/// (one transaction each), while a sync adds objects: no update is lost. Checked through the
/// audit trail: per key, each record's `before` is the previous record's `after`, the last
/// `after` is the value in etcd, and there is exactly one record per change the writers
/// reported.
#[test]
fn concurrent_writers_lose_no_update() {
    concurrent_writers(&[
        "dc=eqiad,name=w0[0-4].*",
        "dc=eqiad,service=a,name=w(0[5-9]|1[0-1]).*",
        "dc=eqiad,name=w.*[05]",
        "dc=eqiad,service=b,name=w1.*",
        "dc=eqiad,cluster=web,name=w0[3-8].*",
        "dc=eqiad,name=w(00|01|10|15).*",
    ]);
}

/// Case 4b: The same with selections larger than one transaction (up to 400 objects, so each
/// change lands in several transactions).
#[test]
fn concurrent_writers_over_large_selections_lose_no_update() {
    concurrent_writers(&[
        "name=w0[0-4].*",
        "service=a,cluster=web",
        "dc=eqiad,name=w.*[05]",
        "name=w1.*,service=b",
        "cluster=web,name=w0[3-8].*",
        "dc=eqiad,cluster=web",
        "name=w(00|01|02|10|11|12).*",
    ]);
}

fn concurrent_writers(selectors: &'static [&'static str]) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 6;
    let t0 = Instant::now();
    let etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let audit = dir.path().join("audit.jsonl");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoints: [{}]\ntimeout: 5s\naudit_log: {}\n",
            etcd.endpoints_arg(),
            audit.display()
        ),
    )
    .expect("write config");
    let base = Layout::default()
        .service("web", "a", "yes", 1)
        .service("web", "b", "no", 10)
        .service("extra", "x", "no", 0)
        .nodes("eqiad", "web", names("w", 150, 3), &["a", "b"]);
    base.write(&conf);
    let (r, _) = run({
        let mut c = tool("conftool-sync", &etcd.endpoints_arg());
        c.arg("--directory").arg(&conf).arg("--quiet");
        c
    });
    r.expect_code(0);
    let initial = dump_via(&etcd, 0);
    // The concurrent sync adds objects, some of which the writers' selectors match too.
    let more = base
        .clone()
        .nodes(
            "eqiad",
            "web",
            (150..200).map(|i| format!("w{i:03}")),
            &["a", "b"],
        )
        .nodes("codfw", "web", names("w", 150, 3), &["a", "b"])
        .nodes("eqiad", "extra", names("e", 3000, 4), &["x"]);
    more.write(&conf);

    let writer = |w: usize| {
        let config = config.clone();
        std::thread::spawn(move || {
            let mut reports = Vec::new();
            for round in 0..ROUNDS {
                let sel = selectors[(w + round * 3) % selectors.len()];
                let weight = 1000 + w * 100 + round;
                let action = match round % 3 {
                    0 | 1 => format!("set/weight={weight}"),
                    _ => format!("set/pooled=no:weight={weight}"),
                };
                let mut c = Command::new(bin("confctl"));
                c.arg("--config")
                    .arg(&config)
                    // Depool thresholds are not what this test is about.
                    .args([
                        "--json",
                        "--yes",
                        "select",
                        "--allow-below-threshold",
                        sel,
                        &action,
                    ])
                    .env_remove("CONFTOOL_ENDPOINTS")
                    .env_remove("CONFTOOL_CONFIG")
                    .env("USER", format!("writer{w}"))
                    .env_remove("SUDO_USER")
                    .stdin(Stdio::null());
                let (r, _) = run(c);
                reports.push((w, round, sel, action, r));
            }
            reports
        })
    };
    let threads: Vec<_> = (0..WRITERS).map(writer).collect();
    // Start the sync once the writers are writing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&audit).map_or(0, |m| m.len()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let sync = spawn({
        let mut c = tool_with_timeout("conftool-sync", &etcd.endpoints_arg(), "10s");
        c.arg("--directory").arg(&conf).arg("--quiet");
        c
    });
    let reports: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("writer thread"))
        .collect();
    let (synced, _) = sync.wait(RUN_LIMIT);
    synced.expect_code(0);

    // What the writers say they changed.
    let mut reported: BTreeMap<(String, i64), Audit> = BTreeMap::new();
    let mut conflicts = 0;
    let mut etcd_failures = 0;
    // A run's --json document lists every change that landed, also when the run then gave
    // up (what landed before a failure is reported, and audited, all the same).
    let mut record = |stdout: &str| {
        let out = parse(stdout.trim());
        let changed = out["changed"].as_array().expect("changed").clone();
        for ch in &changed {
            let a = Audit {
                key: format!("/v1/pools/{}", ch["key"].as_str().expect("key")),
                before: ch["before"].clone(),
                after: ch["after"].clone(),
                revision: ch["revision"].as_i64().expect("revision"),
            };
            let dup = reported.insert((a.key.clone(), a.revision), a);
            assert!(
                dup.is_none(),
                "two changes reported for one key and revision"
            );
        }
        changed.len()
    };
    for (w, round, sel, action, r) in &reports {
        match r.code {
            0 => {
                let n = record(&r.stdout);
                assert!(n > 0, "writer {w} round {round}: {sel} {action}");
            }
            // Giving up is allowed (on conflicts, or on an election under load); what such a
            // run wrote before giving up is in its JSON and must be in the audit trail.
            1 if r.stderr.contains("conflict") => {
                conflicts += 1;
                if !r.stdout.trim().is_empty() {
                    record(&r.stdout);
                }
            }
            1 if clear_etcd_failure(&r.stderr)
                || r.stderr.contains("leader changed")
                || r.stderr.contains("no stable leader") =>
            {
                etcd_failures += 1;
                if !r.stdout.trim().is_empty() {
                    record(&r.stdout);
                }
            }
            _ => panic!("writer {w} round {round} ({sel} {action}): {r:?}"),
        }
    }
    assert!(
        (conflicts + etcd_failures) * 2 <= reports.len(),
        "{conflicts} of {} runs gave up on conflicts, {etcd_failures} on etcd errors: too few \
         changes to check anything",
        reports.len()
    );

    // The audit trail: one whole JSON line per applied change, each announced by an intent
    // line of the same operation before it, and every operation closed by an end line.
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let mut chains: BTreeMap<String, Vec<Audit>> = BTreeMap::new();
    let mut lines = 0;
    let mut intents: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ops: BTreeMap<String, (usize, Option<usize>)> = BTreeMap::new();
    for line in text.lines() {
        let rec = parse(line);
        let op = rec["op"].as_str().expect("op").to_string();
        match rec["event"].as_str() {
            Some("intent") => {
                assert!(
                    rec["revision"].is_null(),
                    "an intent has no revision: {line}"
                );
                intents.insert((op, rec["key"].as_str().expect("key").to_string()));
                continue;
            }
            Some("end") => {
                let end = rec["applied"].as_u64().expect("applied") as usize;
                let prev = ops.entry(op).or_default().1.replace(end);
                assert!(prev.is_none(), "two end lines for one operation: {line}");
                continue;
            }
            Some("applied") => {}
            other => panic!("unknown audit event {other:?}: {line}"),
        }
        lines += 1;
        ops.entry(op.clone()).or_default().0 += 1;
        assert!(
            intents.contains(&(op, rec["key"].as_str().expect("key").to_string())),
            "applied without an intent before it: {line}"
        );
        for field in ["time", "user", "host", "tool", "key", "revision"] {
            assert!(!rec[field].is_null(), "audit line without {field}: {line}");
        }
        assert_eq!(rec["tool"], "confctl");
        let a = Audit {
            key: rec["key"].as_str().expect("key").to_string(),
            before: rec["before"].clone(),
            after: rec["after"].clone(),
            revision: rec["revision"].as_i64().expect("revision"),
        };
        assert_eq!(
            reported.get(&(a.key.clone(), a.revision)),
            Some(&a),
            "an audit record no writer reported"
        );
        chains.entry(a.key.clone()).or_default().push(a);
    }
    assert_eq!(
        lines,
        reported.len(),
        "audit lines vs changes the writers reported"
    );
    for (op, (applied, end)) in &ops {
        assert_eq!(
            Some(*applied),
            *end,
            "operation {op}: applied lines vs its end line"
        );
    }

    // The final state: exactly the synced keys, every value well-formed, and per key an
    // unbroken chain of audited changes from the initial value to the final one.
    let fin = dump_via(&etcd, 1);
    assert_eq!(
        fin.keys().cloned().collect::<BTreeSet<_>>(),
        more.expected_keys()
    );
    let defaults = more.objects();
    let mut changed_keys = 0;
    for (key, default) in &defaults {
        let (value, mod_rev) = &fin[key];
        let v = parse(value);
        let obj = v.as_object().expect("object value");
        assert!(
            matches!(
                obj.get("pooled").and_then(Value::as_str),
                Some("yes" | "no" | "inactive")
            ),
            "{key}: {value}"
        );
        assert!(
            obj.get("weight")
                .and_then(Value::as_u64)
                .is_some_and(|w| w <= 65535),
            "{key}: {value}"
        );
        let start = initial
            .get(key)
            .map_or_else(|| default.clone(), |(v, _)| parse(v));
        let Some(chain) = chains.get_mut(key) else {
            assert_eq!(v, start, "{key} changed without an audit record");
            continue;
        };
        changed_keys += 1;
        let start_dbg = start.clone();
        chain.sort_by_key(|a| a.revision);
        let mut prev = start;
        let mut prev_rev = 0;
        for a in chain.iter() {
            assert!(a.revision > prev_rev, "{key}: two records at one revision");
            if a.before != prev {
                eprintln!("chain of {key} from {start_dbg}:");
                for a in chain.iter() {
                    eprintln!("  {} {} -> {}", a.revision, a.before, a.after);
                }
                for (w, round, sel, action, r) in &reports {
                    if r.code != 0 {
                        eprintln!("writer {w} round {round} {sel} {action}: {}", r.stderr);
                    }
                }
            }
            assert_eq!(
                a.before, prev,
                "{key}: lost update: the change at revision {} replaced a value no audited \
                 change wrote",
                a.revision
            );
            prev = a.after.clone();
            prev_rev = a.revision;
        }
        assert_eq!(v, prev, "{key}: final value is not the last audited one");
        assert_eq!(
            *mod_rev, prev_rev,
            "{key}: changed after the last audited write"
        );
    }
    assert_eq!(chains.len(), changed_keys, "audit records for unknown keys");
    // The sync really raced the writers: audited writes before and after its first create
    // (the `extra` objects are the sync's alone, so their mod revision is their creation).
    let first_sync_create = fin
        .iter()
        .filter(|(k, _)| k.starts_with("/v1/pools/eqiad/extra/"))
        .map(|(_, (_, r))| *r)
        .min()
        .expect("the sync created objects");
    let revs: Vec<i64> = reported.keys().map(|(_, r)| *r).collect();
    let (first_audit, last_audit) = (
        revs.iter().copied().min().unwrap_or_default(),
        revs.iter().copied().max().unwrap_or_default(),
    );
    eprintln!(
        "concurrent writers: {} runs, {conflicts} gave up on conflicts, {etcd_failures} on etcd \
         errors, {lines} audited changes \
         on {changed_keys} keys, revisions {first_audit}..={last_audit}; the sync's first create \
         at {first_sync_create}; {:?}",
        reports.len(),
        t0.elapsed()
    );
    assert!(
        first_audit < first_sync_create && first_sync_create < last_audit,
        "the sync did not run while the writers wrote"
    );
}
