//! Members that accept connections and then say nothing: a black-hole listener, and a real
//! member frozen with SIGSTOP. Every binary must get past such a member to a live one, a sync
//! whose member freezes part-way must still finish, and when no member answers, the error says
//! what happened to each member that was tried, and names no other.
//!
//! Runs use `--timeout 20s`, so that waiting out the whole timeout on the first member (the
//! behaviour these tests guard against) is a failure, not a slow success. No test asserts a
//! duration: the proof is exit codes, output and the keyspace.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conftool_testkit::BlackHole;

use crate::util::*;

/// Election timings slower than the harness default, as in `reliability`: a CPU-starved member
/// on a loaded 2-core machine must not call elections of its own.
const CLUSTER_FLAGS: &[&str] = &["--heartbeat-interval", "50", "--election-timeout", "1000"];
/// A long timeout, so that the old behaviour (the first member gets all of it) fails.
const TIMEOUT: &str = "20s";
/// How long any one run may take before the test gives up on it (and kills it).
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// A command for one of the binaries, pointed at `endpoints` with `timeout`, with no config
/// file and no inherited CONFTOOL_* settings.
fn tool(name: &str, endpoints: &str, timeout: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.arg("--endpoints")
        .arg(endpoints)
        .args(["--timeout", timeout])
        .env_remove("CONFTOOL_ENDPOINTS")
        .env_remove("CONFTOOL_CONFIG")
        .env("USER", "tester")
        .env_remove("SUDO_USER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Wait for a started tool (at most [`RUN_LIMIT`], then kill it by PID and fail).
#[track_caller]
fn finish(mut child: Child) -> Run {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return Run::from(child.wait_with_output().expect("output"));
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {RUN_LIMIT:?}; killed it\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run a tool to completion (bounded).
#[track_caller]
fn run(mut cmd: Command) -> Run {
    finish(cmd.spawn().expect("spawn binary"))
}

/// The keyspace as member `i` alone sees it (never through a frozen member).
#[track_caller]
fn dump_via(etcd: &EtcdCluster, i: usize) -> Keyspace {
    block_on(etcd.dump_via(i, Duration::from_secs(30)))
        .unwrap_or_else(|| panic!("no answer from member {i} to a range read"))
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect()
}

/// Every binary and mode that talks to etcd, in turn, through `endpoints`: each must succeed,
/// and the keyspace (read by `dump`) must then hold exactly what it wrote.
fn every_tool_works(endpoints: &str, dump: impl Fn() -> Keyspace) {
    let conf = example_conf();
    let conf = conf.to_str().expect("utf-8 path");
    let step = |what: &str, name: &str, args: &[&str]| -> Run {
        let t = Instant::now();
        let mut c = tool(name, endpoints, TIMEOUT);
        c.args(args);
        let r = run(c);
        eprintln!("{what}: exit {} after {:?}", r.code, t.elapsed());
        assert_eq!(
            r.code, 0,
            "{what} through {endpoints}\n--- stdout\n{}\n--- stderr\n{}",
            r.stdout, r.stderr
        );
        r
    };

    step("sync", "conftool-sync", &["--directory", conf, "--quiet"]);
    let mut want = read_keyspace(&fixtures().join("example-keyspace.txt"));
    assert_keyspace(&dump(), &want);
    step(
        "sync --check",
        "conftool-sync",
        &["--directory", conf, "--check"],
    );

    let got = step(
        "confctl get",
        "confctl",
        &["select", "dc=eqiad,name=mw1018", "get"],
    );
    assert_eq!(got.stdout.lines().count(), 2, "{}", got.stdout);
    assert!(
        got.stdout.lines().all(|l| l.contains("mw1018")),
        "{}",
        got.stdout
    );

    step(
        "confctl set",
        "confctl",
        &[
            "--yes",
            "select",
            "dc=eqiad,cluster=cache_text,name=cp1052",
            "set/pooled=yes:weight=7",
        ],
    );
    for s in ["nginx", "varnish-fe", "varnish-be"] {
        want.insert(
            format!("/v1/pools/eqiad/cache_text/{s}/cp1052"),
            r#"{"pooled":"yes","weight":7}"#.into(),
        );
    }
    step(
        "confctl depool",
        "confctl",
        &["depool", "--hostname", "mw1018"],
    );
    for s in ["apache", "nginx"] {
        want.insert(
            format!("/v1/pools/eqiad/appservers/{s}/mw1018"),
            r#"{"pooled":"no","weight":1}"#.into(),
        );
    }
    let said = step(
        "conftool",
        "conftool",
        &[
            "-d",
            "eqiad",
            "-c",
            "appservers",
            "-s",
            "apache",
            "mw1019 pool=no",
        ],
    );
    assert_eq!(said.stdout, "Node mw1019 depooled from service apache\n");
    want.insert(
        "/v1/pools/eqiad/appservers/apache/mw1019".into(),
        r#"{"pooled":"no","weight":1}"#.into(),
    );
    assert_keyspace(&dump(), &want);
}

#[test]
fn every_tool_gets_past_a_black_hole_listed_first() {
    let ctx = Ctx::new();
    let hole = BlackHole::start();
    let endpoints = format!("{},{}", hole.url(), ctx.etcd.endpoint());
    every_tool_works(&endpoints, || ctx.dump());
}

#[test]
fn every_tool_gets_past_a_frozen_first_member() {
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let frozen = etcd.pause_member(0);
    every_tool_works(&etcd.endpoints_arg(), || dump_via(&etcd, 1));
    frozen.resume();
    etcd.wait_member_serving(0, Duration::from_secs(30))
        .expect("the resumed member serves again");
}

#[test]
fn sync_finishes_when_its_member_freezes_part_way() {
    let mut etcd = EtcdCluster::start_with(3, CLUSTER_FLAGS);
    let dir = conftool_testkit::temp_dir("test-");
    let conf = dir.path().join("conf");
    let fleet = Fleet {
        dcs: vec!["eqiad".into(), "codfw".into()],
        nodes: 3000,
    };
    assert_eq!(fleet.objects(), 30_000);
    fleet.write(&conf);
    let base = revision_via(&etcd, 1).expect("revision");

    // The first endpoint is the member in use.
    // Its diff (30,000 lines) goes nowhere: nobody reads a pipe while the sync runs.
    let mut sync = tool("conftool-sync", &etcd.endpoints_arg(), TIMEOUT)
        .arg("--directory")
        .arg(&conf)
        .arg("--quiet")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn conftool-sync");
    // Freeze it once a few transactions of 128 writes have landed, while the sync runs.
    let landed = block_on(async {
        let mut c = etcd.member_client(1).await.expect("client");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && sync.try_wait().expect("try_wait").is_none() {
            let read = tokio::time::timeout(Duration::from_secs(1), c.get("probe", None));
            if let Ok(Ok(resp)) = read.await {
                let rev = resp.header().map_or(0, |h| h.revision());
                if rev >= base + 4 {
                    return Some(rev);
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    });
    let frozen = etcd.pause_member(0);
    let still_running = sync.try_wait().expect("try_wait").is_none();
    let rev = landed.expect("the sync never wrote");
    assert!(
        still_running,
        "the sync finished before its member was frozen; nothing was tested"
    );
    eprintln!("member 0 frozen at revision {rev} (base {base})");
    let t = Instant::now();
    let done = finish(sync);
    eprintln!("the sync exited {} {:?} later", done.code, t.elapsed());
    done.expect_code(0);
    assert_keyspace(&dump_via(&etcd, 1), &fleet.expected());

    // Back to full strength: the frozen member catches up, and nothing is pending.
    frozen.resume();
    etcd.wait_member_serving(0, Duration::from_secs(30))
        .expect("the resumed member serves again");
    assert_keyspace(&dump_via(&etcd, 0), &fleet.expected());
    let mut check = tool("conftool-sync", &etcd.endpoints_arg(), TIMEOUT);
    check
        .arg("--directory")
        .arg(&conf)
        .args(["--check", "--quiet"]);
    run(check).expect_code(0);
}

/// etcd's revision through member `i` only, if it answers within a second.
fn revision_via(etcd: &EtcdCluster, i: usize) -> Option<i64> {
    block_on(async {
        let read = async {
            let mut c = etcd.member_client(i).await.ok()?;
            let resp = c.get("revision-probe", None).await.ok()?;
            Some(resp.header()?.revision())
        };
        tokio::time::timeout(Duration::from_secs(1), read)
            .await
            .ok()
            .flatten()
    })
}

#[test]
fn no_member_answering_fails_naming_each_member_and_what_happened() {
    let dir = conftool_testkit::temp_dir("test-");
    let holes = [BlackHole::start(), BlackHole::start(), BlackHole::start()];
    let refused = format!("http://127.0.0.1:{}", conftool_testkit::free_port());
    let silent = |url: &str| format!("{url}: no answer within");
    // Every member a black hole; and two black holes and a port nobody listens on.
    let sets: [Vec<(String, String)>; 2] = [
        holes.iter().map(|h| (h.url(), silent(&h.url()))).collect(),
        vec![
            (holes[0].url(), silent(&holes[0].url())),
            (holes[1].url(), silent(&holes[1].url())),
            (
                refused.clone(),
                format!("{refused}: unreachable: tcp connect error: Connection refused"),
            ),
        ],
    ];
    let conf = example_conf();
    let conf = conf.to_str().expect("utf-8 path");
    let cases: [(&str, Vec<&str>); 4] = [
        ("confctl", vec!["select", "name=.*", "get"]),
        ("confctl", vec!["depool", "--hostname", "mw1018"]),
        ("conftool-sync", vec!["--directory", conf]),
        (
            "conftool",
            vec![
                "-d",
                "eqiad",
                "-c",
                "appservers",
                "-s",
                "apache",
                "mw1019 pool=no",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for members in &sets {
        let endpoints: Vec<&str> = members.iter().map(|(url, _)| url.as_str()).collect();
        let endpoints = endpoints.join(",");
        for (name, args) in &cases {
            let mut c = tool(name, &endpoints, "2s");
            c.args(args).current_dir(dir.path());
            let r = run(c);
            eprintln!("{name} {args:?}: exit {}: {}", r.code, r.stderr.trim());
            if r.code != 1 {
                problems.push(format!("{name} {args:?}: exit {} (want 1)", r.code));
            }
            for (_, said) in members {
                if !r.stderr.contains(said.as_str()) {
                    problems.push(format!("{name} {args:?}: does not say {said:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_error_names_only_the_members_that_were_tried() {
    // etcd refuses the sync's transactions of 128 writes: a definite answer from the first
    // member, so the second one (a black hole) is never tried and must not be named.
    let etcd = EtcdCluster::start_with(1, &["--max-txn-ops", "16"]);
    let hole = BlackHole::start();
    let good = etcd.endpoint();
    let conf = example_conf();
    let mut c = tool("conftool-sync", &format!("{good},{}", hole.url()), TIMEOUT);
    c.arg("--directory").arg(&conf).arg("--quiet");
    let r = run(c);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("too many operations"), "{}", r.stderr);
    assert!(r.stderr.contains(&good), "{}", r.stderr);
    assert!(!r.stderr.contains(&hole.url()), "{}", r.stderr);
}
