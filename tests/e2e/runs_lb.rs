//! `confctl run` and `confctl rolling` with `--verify`, against the real agent in front of a
//! real HAProxy with real backends: while the command runs, no request reaches the host
//! (counted by the backend); a rolling run over twenty hosts never has more out of
//! HAProxy's rotation than the threshold allows (sampled from HAProxy itself); a load
//! balancer that is down makes the run fail closed, the command never run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conftool_testkit::haproxy::{send, BackendSpec, Backends, HaProxy, ServerSpec};

use crate::lb_agent::{share, start_lb, sync_pool, until_all_serve, wait_for, AgentProc, BACKEND};
use crate::util::Ctx;

fn lb_config(ctx: &Ctx, url: &str) -> String {
    ctx.write(
        "confctl.yaml",
        &format!("load_balancers:\n  eqiad/web/http: [{url}]\n"),
    )
    .display()
    .to_string()
}

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
fn a_verified_run_keeps_every_request_off_the_host_while_its_command_runs() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let cfg = lb_config(&ctx, &format!("http://{}/pools/{BACKEND}", agent.status));
    let (started, go) = (ctx.path("started"), ctx.path("go"));
    let cmd = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
        started.display(),
        go.display()
    );
    let t0 = Instant::now();
    let child = ctx
        .cmd("confctl")
        .args([
            "--config",
            &cfg,
            "--debug",
            "run",
            "--hostname",
            "mw1002",
            "--verify",
            "--",
            "sh",
            "-c",
            &cmd,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let mut child = child;
    // Each line confctl says on stderr, with when it came: where a cycle's time goes.
    let lines = {
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(err)
                .lines()
                .map_while(Result::ok)
                .map(|l| (t0.elapsed(), l))
                .collect::<Vec<_>>()
        })
    };
    wait_file(&started);
    let to_command = t0.elapsed();
    // The command runs: real traffic through HAProxy, counted by the backends.
    b.reset();
    let t = share(&ha, 60);
    assert_eq!(b.hits("mw1002"), 0, "{t:?}");
    assert!(
        !t.keys().any(|k| k.starts_with("error:")),
        "every request answered: {t:?}"
    );
    let released = t0.elapsed();
    std::fs::write(&go, "").expect("go");
    let out = child.wait_with_output().expect("wait");
    let took = t0.elapsed();
    let timed = lines.join().expect("stderr reader");
    let stderr: String = timed.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("Verified: mw1002 out of rotation"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Verified: mw1002 back as it was"),
        "{stderr}"
    );
    // Back in: traffic reaches it again, at once.
    b.reset();
    let t = share(&ha, 60);
    assert!(b.hits("mw1002") > 0, "{t:?}");
    println!(
        "confctl run --verify: depooled and verified in {to_command:?}, whole cycle {took:?} \
         (of which the command, held by the test while it sent traffic: {:?})",
        released - to_command
    );
    println!("  {to_command:>10.1?}  the command started");
    println!("  {released:>10.1?}  the command let go");
    for (at, line) in &timed {
        println!("  {at:>10.1?}  {line}");
    }
}

#[test]
fn a_run_whose_load_balancer_is_down_fails_closed_and_never_runs_the_command() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let port = conftool_testkit::free_port();
    let cfg = lb_config(&ctx, &format!("http://127.0.0.1:{port}/pools/{BACKEND}"));
    let before = ctx.dump_prefix("/v1/pools/");
    let ran = ctx.path("ran");
    let t0 = Instant::now();
    let run = ctx
        .run(
            "confctl",
            &[
                "--config",
                &cfg,
                "run",
                "--hostname",
                "mw1002",
                "--verify",
                "--verify-timeout",
                "2s",
                "--",
                "touch",
                ran.to_str().expect("utf-8"),
            ],
        )
        .expect_code(1);
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the command was not run"),
        "{}",
        run.stderr
    );
    assert!(
        !ran.exists(),
        "the command ran on a host not known to be out"
    );
    // Put back: the keyspace is as before.
    assert_eq!(ctx.dump_prefix("/v1/pools/"), before);
}

#[test]
fn a_rolling_run_never_has_more_out_of_haproxy_than_the_threshold_allows() {
    let ctx = Ctx::new();
    let names: Vec<String> = (1..=20).map(|i| format!("mw{:04}", 1000 + i)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // 20 nodes at 0.85: 17 must serve, 3 may be out at once.
    ctx.write(
        "data/services.yaml",
        "web:\n  http:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 10}\n    depool_threshold: 0.85\n",
    );
    let mut pools = "web:\n".to_string();
    for n in &names {
        pools.push_str(&format!("  {n}: {{services: [http]}}\n"));
    }
    ctx.write("data/eqiad/pools.yaml", &pools);
    ctx.sync(&ctx.path("data"), &[]).expect_code(0);
    let b = Backends::start(&refs);
    let ha = HaProxy::start(&[BackendSpec {
        name: BACKEND.into(),
        servers: refs
            .iter()
            .map(|n| ServerSpec {
                name: n.to_string(),
                addr: b.addr(n),
                weight: 1,
                maint: true,
            })
            .collect(),
    }]);
    let agent = AgentProc::start_with(&ctx, &ha, "");
    wait_for(
        "all twenty in rotation",
        Duration::from_secs(30),
        &agent,
        || {
            let t = send(ha.frontend(BACKEND), 200);
            t.len() == 20 && !t.keys().any(|k| k.starts_with("error:"))
        },
    );
    let cfg = lb_config(&ctx, &format!("http://{}/pools/{BACKEND}", agent.status));
    // A sampler asks HAProxy itself how many servers are out of rotation, and sends traffic.
    let stop = Arc::new(AtomicBool::new(false));
    let (most, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sampler = {
        let (stop, most, failed) = (stop.clone(), most.clone(), failed.clone());
        let socket = ha.socket().to_path_buf();
        let frontend = ha.frontend(BACKEND);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let out =
                    conftool_testkit::haproxy::command_at(&socket, "show servers state be_http");
                let states = conftool_testkit::haproxy::parse_servers_state(&out);
                // Out of rotation: in maintenance or draining (HAProxy's admin bits, as the
                // agent reads them; CMAINT alone, left from the config, is not).
                let n = states
                    .iter()
                    .filter(|s| {
                        s.get("srv_admin_state")
                            .and_then(|a| a.parse::<u32>().ok())
                            .is_some_and(|a| a & (0x01 | 0x02 | 0x08 | 0x10 | 0x20 | 0x40) != 0)
                    })
                    .count();
                most.fetch_max(n, Ordering::SeqCst);
                let errors: usize = send(frontend, 5)
                    .iter()
                    .filter(|(k, _)| k.starts_with("error:"))
                    .map(|(_, n)| n)
                    .sum();
                failed.fetch_add(errors, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let started = Instant::now();
    let run = ctx
        .run(
            "confctl",
            &[
                "--config",
                &cfg,
                "rolling",
                "cluster=web",
                "--batch",
                "25%",
                "--verify",
                "--",
                "sh",
                "-c",
                "sleep 0.3",
            ],
        )
        .expect_code(0);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler");
    assert!(
        run.stdout.contains("summary: 20 of 20 hosts done"),
        "{}",
        run.stdout
    );
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "HAProxy had {most} out at once");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during the roll"
    );
    println!("rolling --verify over 20 hosts, batch 25%, 3 out at most: {took:?}");
}
