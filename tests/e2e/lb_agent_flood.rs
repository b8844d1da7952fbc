//! The agent's status API flooded by a local user (issue 16): connections that each send
//! half a request header and hold. Real etcd, real HAProxy, real HTTP backends; the agent
//! runs under a low open-files limit (`prlimit`), so the flood really drives it to its
//! limits: its connection cap, or (the limit lowered under it) its last descriptor.
//!
//! The one timed assertion is the correctness bound: a depool reaches HAProxy
//! within 2 s during the flood. CPU is measured and printed, and checked only against what
//! a spinning loop would use (all of the window).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::lb_agent::{
    events, get, metric, share, start_lb, sync_pool, until_all_serve, wait_for, AgentProc, BACKEND,
};
use crate::util::Ctx;
use conftool_lb::limits::descriptors_besides;

/// Connections in the flood.
const FLOOD: usize = 2000;
/// The agent's open-files limit (soft and hard).
const AGENT_NOFILE: u64 = 256;
/// What each flooding connection sends before it holds: half a request header.
const HALF: &[u8] = b"GET /pools HTTP/1.1\r\nHost: x\r\nX-Slow: ";
/// The bound on a depool reaching HAProxy during the flood.
const DEPOOL_BOUND: Duration = Duration::from_secs(2);
/// Timeouts far off: only the bounds under test stand between the flood and the agent.
const NO_TIMEOUTS: &str = "status_limits: {header_timeout: 120s, idle_timeout: 120s}\n";

/// Raise this process's soft open-files limit so that it can hold the flood itself.
fn raise_own_nofile(need: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft >= need {
        return;
    }
    assert!(
        hard >= need,
        "this test opens {FLOOD} connections: it needs an open-files hard limit of {need}, not {hard}"
    );
    setrlimit(Resource::RLIMIT_NOFILE, need, hard).expect("setrlimit");
}

/// A process's CPU time (user + system) so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    let hz: u64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

/// A process's open descriptors: (number, what it is).
fn fds(pid: u32) -> Vec<(u64, String)> {
    let dir = format!("/proc/{pid}/fd");
    let mut out: Vec<(u64, String)> = std::fs::read_dir(&dir)
        .expect("fd dir")
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((n, target.display().to_string()))
        })
        .collect();
    out.sort();
    out
}

/// The lowest descriptor number a process has free.
fn lowest_free(pid: u32) -> u64 {
    let used: Vec<u64> = fds(pid).into_iter().map(|(n, _)| n).collect();
    (0..).find(|n| !used.contains(n)).expect("a free number")
}

/// Open `n` connections to `addr`, each sending half a header, and hold them.
fn flood(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.write_all(HALF).expect("half a header");
            s
        })
        .collect()
}

/// One value of the agent's `/metrics`.
/// Depool mw1002 and wait until HAProxy drains it; how long it took from starting confctl.
fn depool_delay(ctx: &Ctx, agent: &AgentProc, ha: &conftool_testkit::haproxy::HaProxy) -> Duration {
    let t0 = Instant::now();
    ctx.run("confctl", &["depool", "--hostname", "mw1002"])
        .expect_code(0);
    wait_for(
        "mw1002 drained in HAProxy",
        Duration::from_secs(30),
        agent,
        || ha.server_state(BACKEND, "mw1002")["srv_admin_state"] == "12",
    );
    t0.elapsed()
}

#[test]
fn a_flood_of_half_sent_headers_stops_neither_a_depool_nor_the_status_api_and_spins_nothing() {
    raise_own_nofile(FLOOD as u64 + 2048);
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_limited(&ctx, &ha, NO_TIMEOUTS, Some(AGENT_NOFILE));
    until_all_serve(&agent, &ha);
    let pid = agent.pid();
    // The default 256 connections do not fit in 256 descriptors: fewer, and said.
    let cap = AGENT_NOFILE - descriptors_besides(1);
    let clamped = events(&agent, "status_connections_clamped");
    assert_eq!(clamped.len(), 1, "{}", agent.log());
    assert_eq!(clamped[0]["max_connections"], cap, "{}", agent.log());
    assert_eq!(clamped[0]["open_files_limit"], AGENT_NOFILE);

    let (cpu0, t0) = (cpu(pid), Instant::now());
    let held = flood(agent.status, FLOOD);
    // Answered only once every connection before it was accepted (the backlog is FIFO):
    // the agent has seen the whole flood.
    let (code, metrics) = get(agent.status, "/metrics", false);
    let (flood_cpu, flood_wall) = (cpu(pid) - cpu0, t0.elapsed());
    assert_eq!(code, 200);
    let open = fds(pid).len();
    println!(
        "{FLOOD} half-sent headers: the agent holds {} connections ({open} descriptors of its \
         {AGENT_NOFILE}), closed {} to make room; CPU {flood_cpu:?} over {flood_wall:?}",
        metric(&metrics, "conftool_lb_status_connections"),
        metric(&metrics, "conftool_lb_status_evicted_total"),
    );
    assert_eq!(metric(&metrics, "conftool_lb_status_max_connections"), cap);
    assert!(
        metric(&metrics, "conftool_lb_status_evicted_total") >= FLOOD as u64 - cap,
        "{metrics}"
    );
    assert!((open as u64) < AGENT_NOFILE, "{open} descriptors");
    assert_eq!(
        metric(&metrics, "conftool_lb_status_accept_errors_total"),
        0
    );
    assert_eq!(metric(&metrics, "conftool_lb_status_timeouts_total"), 0);

    // During the flood: a depool reaches HAProxy in time, the status API answers a client
    // that sends its request, and real traffic follows.
    let delay = depool_delay(&ctx, &agent, &ha);
    println!("during the flood: confctl depool → HAProxy drains mw1002 in {delay:?}");
    assert!(delay < DEPOOL_BOUND, "{delay:?}\n{}", agent.log());
    assert_eq!(
        get(agent.status, &format!("/pools/{BACKEND}"), false),
        (
            200,
            "mw1001:\tenabled/up/pooled\nmw1002:\tdisabled/up/not pooled\nmw1003:\tenabled/up/pooled\n"
                .into()
        )
    );
    assert!(!share(&ha, 10).contains_key("mw1002"));

    // Held, the flood costs the agent nothing: a spinning loop would use the whole window.
    let window = Duration::from_secs(2);
    let before = cpu(pid);
    std::thread::sleep(window);
    let held_cpu = cpu(pid) - before;
    println!("flood held for {window:?}: agent CPU {held_cpu:?}");
    assert!(held_cpu < window / 4, "{held_cpu:?} of CPU in {window:?}");
    let (_, metrics) = get(agent.status, "/metrics", false);
    assert!(
        metric(&metrics, "conftool_lb_status_connections") >= cap - 2,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "conftool_lb_status_accept_errors_total"),
        0
    );
    drop(held);
}

#[test]
fn out_of_descriptors_a_depool_still_reaches_haproxy_and_accept_errors_do_not_spin() {
    raise_own_nofile(4096);
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_limited(&ctx, &ha, NO_TIMEOUTS, Some(AGENT_NOFILE));
    until_all_serve(&agent, &ha);
    let pid = agent.pid();
    // The reserved descriptor: `/dev/null`, besides standard input.
    let open = fds(pid);
    let reserve = open
        .iter()
        .filter(|(n, what)| *n > 0 && what == "/dev/null")
        .map(|(n, _)| *n)
        .max()
        .unwrap_or_else(|| panic!("no reserved descriptor in {open:?}"));
    // Something else has used up the agent's descriptors: its limit is lowered under it to
    // just above the reserve, and half-sent headers fill whatever numbers were free below.
    let limit = reserve + 1;
    let lowered = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{AGENT_NOFILE}"),
        ])
        .status()
        .expect("prlimit");
    assert!(lowered.success());
    let flooded = Instant::now();
    // Fewer than the listen backlog (1,024): the rest of a bigger flood would wait for the
    // agent to accept, which it cannot.
    let held = flood(agent.status, 500);
    wait_for(
        "every descriptor number below the limit in use",
        Duration::from_secs(20),
        &agent,
        || lowest_free(pid) >= limit,
    );
    let (cpu0, t0) = (cpu(pid), Instant::now());

    let delay = depool_delay(&ctx, &agent, &ha);
    println!("out of descriptors: confctl depool → HAProxy drains mw1002 in {delay:?}");
    assert!(delay < DEPOOL_BOUND, "{delay:?}\n{}", agent.log());
    assert!(!share(&ha, 10).contains_key("mw1002"));
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let (spent, wall) = (cpu(pid) - cpu0, t0.elapsed());
    println!("out of descriptors, accept failing: agent CPU {spent:?} over {wall:?}");
    assert!(spent < wall / 4, "{spent:?} of CPU in {wall:?}");
    assert!(lowest_free(pid) >= limit, "still out of descriptors");

    // The limit back: the status API serves again, and says what happened.
    let raised = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={AGENT_NOFILE}:{AGENT_NOFILE}"),
        ])
        .status()
        .expect("prlimit");
    assert!(raised.success());
    let (code, metrics) = get(agent.status, "/metrics", false);
    assert_eq!(code, 200);
    let out = flooded.elapsed();
    let errors = metric(&metrics, "conftool_lb_status_accept_errors_total");
    let reserve_used = metric(&metrics, "conftool_lb_haproxy_reserve_used_total");
    println!(
        "accept errors while out of descriptors: {errors} in {out:?}; \
         reserved descriptor used {reserve_used} times"
    );
    // Paused from 10 ms doubling to 1 s: 7 in the first 1.3 s, then one a second, where a
    // loop makes millions.
    assert!(errors >= 1, "accept failed: {metrics}");
    assert!(
        errors <= 8 + out.as_secs(),
        "{errors} accept errors in {out:?}"
    );
    // `show servers state` and `set server ... state drain`, at least.
    assert!(reserve_used >= 2, "{metrics}");
    drop(held);
}
