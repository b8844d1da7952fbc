//! `confctl depool|pool ... --verify` against the real agent in front of a real HAProxy
//! with real backends: the command returns only once HAProxy has the host out (or back
//! in), waits for requests in flight with `--wait-sessions`, and fails closed (exit 1,
//! naming the load balancer, the pool and the host) when the load balancer is down,
//! answers nonsense, does not list the host, or keeps it in rotation by its depool
//! threshold. Settings that cannot be verified are bad input, nothing written.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use conftool_testkit::haproxy::get as get_through;
use serde_json::Value;

use crate::lb_agent::{
    get, share, start_lb, sync_pool, until_all_serve, wait_for, AgentProc, BACKEND,
};
use crate::util::{Ctx, Run};

/// A configuration whose `load_balancers` give eqiad/web/http these status URLs.
fn lb_config(ctx: &Ctx, urls: &[String]) -> String {
    let path = ctx.write(
        "confctl.yaml",
        &format!("load_balancers:\n  eqiad/web/http: [{}]\n", urls.join(", ")),
    );
    path.display().to_string()
}

/// The agent's PyBal-style URL of the pool.
fn pool_url(agent: &AgentProc) -> String {
    format!("http://{}/pools/{BACKEND}", agent.status)
}

fn pooled_value(ctx: &Ctx, node: &str) -> String {
    ctx.dump()
        .get(&format!("/v1/pools/eqiad/web/http/{node}"))
        .cloned()
        .unwrap_or_default()
}

/// The agent's JSON about one server.
fn server_json(agent: &AgentProc, node: &str) -> Value {
    let (code, body) = get(agent.status, &format!("/pools/{BACKEND}/{node}"), true);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[test]
fn a_verified_depool_returns_once_haproxy_has_the_host_out_and_a_repool_once_it_is_back() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let cfg = lb_config(&ctx, &[pool_url(&agent)]);

    let t0 = Instant::now();
    let run = ctx
        .run(
            "confctl",
            &[
                "--config",
                &cfg,
                "depool",
                "--hostname",
                "mw1002",
                "--verify",
            ],
        )
        .expect_code(0);
    let took = t0.elapsed();
    // From the moment it returns, no request reaches mw1002: no waiting here.
    b.reset();
    let t = share(&ha, 30);
    assert_eq!(b.hits("mw1002"), 0, "{t:?}\n{}", run.stderr);
    assert_eq!(b.hits("mw1001") + b.hits("mw1003"), 30, "{t:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("Verified: "))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.starts_with("Verified: eqiad/web/http: mw1002 out of rotation on 1 load balancer ("),
        "{line}"
    );
    assert!(run.stdout.contains("pooled changed yes => no"), "{run:?}");
    println!("confctl depool --verify, from start to verified: {took:?} ({line})");

    let t0 = Instant::now();
    let run = ctx
        .run(
            "confctl",
            &["--config", &cfg, "pool", "--hostname", "mw1002", "--verify"],
        )
        .expect_code(0);
    let took = t0.elapsed();
    b.reset();
    let t = share(&ha, 30);
    assert!(b.hits("mw1002") > 0, "{t:?}\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("Verified: eqiad/web/http: mw1002 in rotation on 1 load balancer"),
        "{}",
        run.stderr
    );
    println!("confctl pool --verify, from start to verified: {took:?}");
}

#[test]
fn wait_sessions_waits_for_the_request_in_flight() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let cfg = lb_config(&ctx, &[pool_url(&agent)]);

    // A request held open on mw1002, through HAProxy (the others' answer at once).
    b.release("mw1001");
    b.release("mw1003");
    let front = ha.frontend(BACKEND);
    let mut held = None;
    for _ in 0..6 {
        let h = std::thread::spawn(move || get_through(front, "/hold"));
        wait_for(
            "a request held or answered",
            Duration::from_secs(10),
            &agent,
            || b.held("mw1002") == 1 || h.is_finished(),
        );
        if b.held("mw1002") == 1 {
            held = Some(h);
            break;
        }
        assert_ne!(h.join().expect("request"), "mw1002");
    }
    let held = held.expect("roundrobin brings a request to mw1002");
    wait_for(
        "HAProxy counts the session",
        Duration::from_secs(10),
        &agent,
        || server_json(&agent, "mw1002")["sessions"] == 1,
    );

    // Drained, its request still in flight: not out of rotation for --wait-sessions.
    let depool = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            &cfg,
            "depool",
            "--hostname",
            "mw1002",
            "--verify",
        ];
        args.extend_from_slice(extra);
        ctx.run("confctl", &args)
    };
    let run = depool(&["--wait-sessions", "--verify-timeout", "1s"]).expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "written, but not verified: load balancer {} (pool eqiad/web/http): host mw1002 \
             not out of rotation within 1s; last seen: not pooled, disabled, up, weight 10, \
             1 session",
            pool_url(&agent)
        )),
        "{}",
        run.stderr
    );
    assert!(pooled_value(&ctx, "mw1002").contains("\"no\""));
    // Without it, out of rotation is enough (the positive control).
    depool(&[]).expect_code(0);
    assert_eq!(b.held("mw1002"), 1, "the request is still in flight");

    // Once the request ends, the verification passes; the request itself ended well.
    let child = ctx
        .cmd("confctl")
        .args([
            "--config",
            &cfg,
            "depool",
            "--hostname",
            "mw1002",
            "--verify",
            "--wait-sessions",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn confctl");
    b.release("mw1002");
    assert_eq!(held.join().expect("request"), "mw1002");
    let run = Run::from(child.wait_with_output().expect("wait")).expect_code(0);
    assert!(
        run.stderr
            .contains("Verified: eqiad/web/http: mw1002 out of rotation on 1 load balancer"),
        "{}",
        run.stderr
    );
    assert_eq!(server_json(&agent, "mw1002")["sessions"], 0);
}

#[test]
fn an_agent_that_is_down_fails_the_verification_within_its_timeout() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let url = pool_url(&agent);
    let cfg = lb_config(&ctx, std::slice::from_ref(&url));
    drop(agent); // killed: nothing listens on its status port any more

    let t0 = Instant::now();
    let run = ctx
        .run(
            "confctl",
            &[
                "--config",
                &cfg,
                "depool",
                "--hostname",
                "mw1002",
                "--verify",
                "--verify-timeout",
                "2s",
            ],
        )
        .expect_code(1);
    println!(
        "verification against a dead agent failed after {:?}",
        t0.elapsed()
    );
    assert!(
        run.stderr.contains(&format!(
            "written, but not verified: load balancer {url} (pool eqiad/web/http, host \
             mw1002): unreachable: cannot connect: Connection refused"
        )),
        "{}",
        run.stderr
    );
    // The change stays written, and says so.
    assert!(run.stdout.contains("pooled changed yes => no"), "{run:?}");
    assert!(pooled_value(&ctx, "mw1002").contains("\"no\""));
}

/// A tiny HTTP server answering every request with `200` and `body`; its URL.
fn garbage_server(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/pools/{BACKEND}")
}

#[test]
fn an_answer_that_is_not_a_state_or_a_host_not_listed_fails_at_once() {
    let ctx = Ctx::new();
    // mw1004 is in etcd but not in HAProxy's backend: the agent answers 404 for it.
    ctx.write(
        "data/services.yaml",
        "web:\n  http:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 10}\n",
    );
    ctx.write(
        "data/eqiad/pools.yaml",
        "web:\n  mw1001: {services: [http]}\n  mw1002: {services: [http]}\n  \
         mw1003: {services: [http]}\n  mw1004: {services: [http]}\n",
    );
    ctx.sync(&ctx.path("data"), &[]).expect_code(0);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);

    let garbage = garbage_server("<html><body>It works!</body></html>");
    let cfg = lb_config(&ctx, &[pool_url(&agent), garbage.clone()]);
    let verify = |cfg: &str, host: &str| {
        ctx.run(
            "confctl",
            &[
                "--config",
                cfg,
                "depool",
                "--hostname",
                host,
                "--verify",
                "--verify-timeout",
                "60s",
            ],
        )
    };
    // Both fail long before the timeout: waiting would not change either answer (a
    // verification that waited would end in a timeout, with another message).
    let run = verify(&cfg, "mw1001").expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "written, but not verified: load balancer {garbage} (pool eqiad/web/http, host \
             mw1001): unparsable answer: neither JSON nor PyBal's text"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("It works!"), "{}", run.stderr);

    let cfg = lb_config(&ctx, &[pool_url(&agent)]);
    let run = verify(&cfg, "mw1004").expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "written, but not verified: load balancer {url} (pool eqiad/web/http): host \
             mw1004 is not listed (404 Not Found at {url}/mw1004)",
            url = pool_url(&agent)
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_depool_the_agent_keeps_in_rotation_by_its_threshold_fails_at_once() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "");
    until_all_serve(&agent, &ha);
    let cfg = lb_config(&ctx, &[pool_url(&agent)]);

    // Two of three, past the threshold (0.5: two must serve) on purpose: the agent keeps
    // one of them (both serving: the first by name).
    let run = ctx
        .run(
            "confctl",
            &[
                "--config",
                &cfg,
                "depool",
                "--hostname",
                "mw1001",
                "--hostname",
                "mw1002",
                "--allow-below-threshold",
                "--verify",
                "--verify-timeout",
                "60s",
            ],
        )
        .expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "written, but not verified: load balancer {} (pool eqiad/web/http): host mw1001 \
             is kept in rotation by the pool's depool threshold",
            pool_url(&agent)
        )),
        "{}",
        run.stderr
    );
    // It is: real traffic still reaches it; mw1002 is out.
    b.reset();
    let t = share(&ha, 20);
    assert!(b.hits("mw1001") > 0 && b.hits("mw1002") == 0, "{t:?}");
    assert_eq!(server_json(&agent, "mw1001")["kept_by_threshold"], true);
}

#[test]
fn settings_that_cannot_be_verified_are_bad_input_and_nothing_is_written() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let before = ctx.state();
    let depool = |cfg: &str, extra: &[&str]| {
        let mut args = vec!["--config", cfg, "depool", "--hostname", "mw1002"];
        args.extend_from_slice(extra);
        ctx.run("confctl", &args).expect_code(2)
    };
    let cfg = |name: &str, text: &str| ctx.write(name, text).display().to_string();

    let not_http = cfg(
        "not-http.yaml",
        "load_balancers:\n  eqiad/web/http: ['http://127.0.0.1:9/p', 'file:///etc/passwd']\n",
    );
    let run = depool(&not_http, &[]);
    assert!(
        run.stderr
            .contains(&format!("configuration file {not_http}"))
            && run.stderr.contains(
                "load_balancers: pool eqiad/web/http: load balancer 2 is not an http:// or \
                 https:// URL"
            )
            && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );
    let bad_key = cfg(
        "bad-key.yaml",
        "load_balancers:\n  eqiad/web: ['http://127.0.0.1:9/p']\n",
    );
    let run = depool(&bad_key, &["--verify"]);
    assert!(
        run.stderr
            .contains("invalid pool name \"eqiad/web\": is not dc/cluster/service"),
        "{}",
        run.stderr
    );
    let elsewhere = cfg(
        "elsewhere.yaml",
        "load_balancers:\n  codfw/web/http: ['http://127.0.0.1:9/p']\n",
    );
    let run = depool(&elsewhere, &["--verify"]);
    assert!(
        run.stderr.contains(
            "--verify: no load balancer is configured for pool eqiad/web/http (the \
             configuration's load_balancers has no entry for it); nothing written"
        ),
        "{}",
        run.stderr
    );
    let misspelt = cfg(
        "misspelt.yaml",
        "load_balancers:\n  eqiad/web/htp: ['http://127.0.0.1:9/p']\n",
    );
    let run = depool(&misspelt, &["--verify"]);
    assert!(
        run.stderr.contains(
            "--verify: the configuration's load_balancers names pool eqiad/web/htp, which has \
             no object in etcd (a misspelt pool?); nothing written"
        ),
        "{}",
        run.stderr
    );
    // A dry run checks the same, and a flag of --verify needs it.
    depool(&misspelt, &["--verify", "--dry-run"]);
    let run = depool(&elsewhere, &["--verify-timeout", "5s"]);
    assert!(run.stderr.contains("--verify"), "{}", run.stderr);
    let run = depool(&elsewhere, &["--verify", "--verify-timeout", "0s"]);
    assert!(run.stderr.contains("must be positive"), "{}", run.stderr);
    assert_eq!(ctx.state(), before, "nothing written");
}
