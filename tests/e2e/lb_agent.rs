//! The load-balancer agent (`conftool-lb-agent`) between a real etcd and a real HAProxy
//! with real HTTP backends: pool state written with `confctl` decides where real requests
//! land; the status API says what HAProxy says.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use conftool_testkit::haproxy::{send, BackendSpec, Backends, HaProxy, ServerSpec};
use serde_json::Value;

use crate::util::Ctx;

pub(crate) const NODES: [&str; 3] = ["mw1001", "mw1002", "mw1003"];
pub(crate) const BACKEND: &str = "be_http";

/// One pool (eqiad/web/http) of three nodes, pooled with weight 10 when created.
pub(crate) fn sync_pool(ctx: &Ctx) {
    ctx.write(
        "data/services.yaml",
        "web:\n  http:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 10}\n",
    );
    ctx.write(
        "data/eqiad/pools.yaml",
        "web:\n  mw1001: {services: [http]}\n  mw1002: {services: [http]}\n  mw1003: {services: [http]}\n",
    );
    ctx.sync(&ctx.path("data"), &[]).expect_code(0);
}

/// The backends, and HAProxy with every server starting in maintenance.
pub(crate) fn start_lb() -> (Backends, HaProxy) {
    let b = Backends::start(&NODES);
    let ha = HaProxy::start(&[BackendSpec {
        name: BACKEND.into(),
        servers: NODES
            .iter()
            .map(|n| ServerSpec {
                name: n.to_string(),
                addr: b.addr(n),
                weight: 1,
                maint: true,
            })
            .collect(),
    }]);
    (b, ha)
}

/// A running agent, killed (by PID) when dropped.
pub(crate) struct AgentProc {
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    endpoints: String,
    pub(crate) status: SocketAddr,
    /// Its open-files limit (soft and hard), set by `prlimit` when it starts; none: ours.
    nofile: Option<u64>,
}

impl AgentProc {
    fn start(ctx: &Ctx, ha: &HaProxy) -> AgentProc {
        AgentProc::start_with(ctx, ha, "")
    }

    /// With `extra` YAML lines in its configuration.
    pub(crate) fn start_with(ctx: &Ctx, ha: &HaProxy, extra: &str) -> AgentProc {
        AgentProc::start_limited(ctx, ha, extra, None)
    }

    /// With `extra` YAML lines in its configuration and, if given, an open-files limit
    /// (`prlimit --nofile=N:N`, which then executes the agent: same process).
    pub(crate) fn start_limited(
        ctx: &Ctx,
        ha: &HaProxy,
        extra: &str,
        nofile: Option<u64>,
    ) -> AgentProc {
        let status: SocketAddr = format!("127.0.0.1:{}", conftool_testkit::free_port())
            .parse()
            .expect("addr");
        let config = ctx.write(
            "agent.yaml",
            &format!(
                "haproxy_socket: {}\nstatus_listen: {status}\nrecheck_interval: 300ms\n{extra}pools:\n  - {{dc: eqiad, cluster: web, service: http, backend: {BACKEND}}}\n",
                ha.socket().display()
            ),
        );
        let mut a = AgentProc {
            child: None,
            config,
            log: ctx.path("agent.log"),
            endpoints: ctx.etcd.endpoints_arg(),
            status,
            nofile,
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let agent = env!("CARGO_BIN_EXE_conftool-lb-agent");
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(agent);
                c
            }
            None => std::process::Command::new(agent),
        };
        let child = cmd
            .arg("--agent-config")
            .arg(&self.config)
            .env("CONFTOOL_ENDPOINTS", &self.endpoints)
            .env_remove("CONFTOOL_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn conftool-lb-agent");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        c.wait().expect("wait").code()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `cond` every 20 ms until it holds or `limit` passes; the time it took.
#[track_caller]
pub(crate) fn wait_for(
    what: &str,
    limit: Duration,
    agent: &AgentProc,
    mut cond: impl FnMut() -> bool,
) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "{what}: not within {limit:?}\n--- agent log\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

/// The agent's log lines of one event.
pub(crate) fn events(agent: &AgentProc, event: &str) -> Vec<Value> {
    agent
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

/// Requests through the frontend that `node` answered, out of `n`.
pub(crate) fn share(ha: &HaProxy, n: usize) -> BTreeMap<String, usize> {
    send(ha.frontend(BACKEND), n)
}

/// Wait (at most 20 s) until every node gets traffic; how long it took.
pub(crate) fn until_all_serve(agent: &AgentProc, ha: &HaProxy) -> Duration {
    wait_for(
        "all three nodes get traffic",
        Duration::from_secs(20),
        agent,
        || all_serve(ha),
    )
}

fn all_serve(ha: &HaProxy) -> bool {
    let t = share(ha, 6);
    NODES.iter().all(|n| t.get(*n).copied().unwrap_or(0) > 0)
}

/// A GET to the status API: (status code, body).
/// A counter or gauge's value in the agent's `/metrics` text.
pub(crate) fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

pub(crate) fn get(addr: SocketAddr, path: &str, json: bool) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the status API");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let accept = if json { "application/json" } else { "*/*" };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_string())
}

#[test]
fn depool_takes_a_backend_out_of_real_traffic_and_repool_brings_it_back() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    assert!(
        share(&ha, 3).keys().all(|k| k.starts_with("error:")),
        "servers start in maintenance"
    );
    let agent = AgentProc::start(&ctx, &ha);
    let t = until_all_serve(&agent, &ha);
    println!("agent start → all 3 serving: {t:?}");

    // Depool: within a bounded time no new request reaches mw1002.
    let t0 = Instant::now();
    ctx.run("confctl", &["depool", "--hostname", "mw1002"])
        .expect_code(0);
    wait_for(
        "mw1002 gets no new requests",
        Duration::from_secs(10),
        &agent,
        || !share(&ha, 3).contains_key("mw1002"),
    );
    println!(
        "confctl depool → no new requests to mw1002: {:?}",
        t0.elapsed()
    );
    b.reset();
    let t = share(&ha, 30);
    assert_eq!(b.hits("mw1002"), 0, "{t:?}");
    assert_eq!(
        t.get("mw1001").copied().unwrap_or(0) + t.get("mw1003").copied().unwrap_or(0),
        30,
        "{t:?}"
    );
    assert_eq!(
        ha.server_state(BACKEND, "mw1002")["srv_admin_state"],
        "12",
        "drain (8) over the config's maintenance bit (4)"
    );

    // Repool: traffic again.
    let t0 = Instant::now();
    ctx.run("confctl", &["pool", "--hostname", "mw1002"])
        .expect_code(0);
    wait_for(
        "mw1002 gets traffic again",
        Duration::from_secs(10),
        &agent,
        || share(&ha, 3).contains_key("mw1002"),
    );
    println!("confctl pool → mw1002 serving again: {:?}", t0.elapsed());

    // Weights shift the share: 30 against 10 and 10.
    ctx.run("confctl", &["select", "name=mw1001", "set/weight=30"])
        .expect_code(0);
    wait_for(
        "mw1001 weight 30 in HAProxy",
        Duration::from_secs(10),
        &agent,
        || ha.server_state(BACKEND, "mw1001")["srv_uweight"] == "30",
    );
    let t = share(&ha, 50);
    println!("shares at weights 30/10/10 out of 50: {t:?}");
    let n = |k: &str| t.get(k).copied().unwrap_or(0);
    assert!(n("mw1001") >= 25 && n("mw1001") <= 35, "{t:?}");
    assert!(n("mw1002") >= 5 && n("mw1003") >= 5, "{t:?}");

    // Every command is logged, one JSON object per line.
    let log = agent.log();
    let applied: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "applied")
        .collect();
    assert!(
        applied
            .iter()
            .any(|v| v["command"] == "set server be_http/mw1002 state drain"),
        "{log}"
    );
    assert!(
        applied
            .iter()
            .any(|v| v["command"] == "set server be_http/mw1001 weight 30"),
        "{log}"
    );
}

#[test]
fn status_api_reports_haproxys_view_in_text_and_json() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start(&ctx, &ha);
    until_all_serve(&agent, &ha);
    ctx.run("confctl", &["depool", "--hostname", "mw1003"])
        .expect_code(0);
    wait_for("mw1003 drained", Duration::from_secs(10), &agent, || {
        ha.server_state(BACKEND, "mw1003")["srv_admin_state"] == "12"
    });
    let s = agent.status;
    assert_eq!(get(s, "/pools", false), (200, format!("{BACKEND}\n")));
    let (code, text) = get(s, &format!("/pools/{BACKEND}"), false);
    assert_eq!(code, 200);
    assert_eq!(
        text,
        "mw1001:\tenabled/up/pooled\nmw1002:\tenabled/up/pooled\nmw1003:\tdisabled/up/not pooled\n"
    );
    let (code, json) = get(s, &format!("/pools/{BACKEND}"), true);
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&json).expect("json");
    for n in NODES {
        // What HAProxy itself says.
        let row = ha.server_state(BACKEND, n);
        let weight: u64 = row["srv_uweight"].parse().expect("weight");
        assert_eq!(v[n]["weight"], weight, "{json}");
        assert_eq!(v[n]["up"], row["srv_op_state"] == "2", "{json}");
        assert_eq!(v[n]["pooled"], n != "mw1003", "{json}");
        assert_eq!(v[n]["enabled"], n != "mw1003", "{json}");
    }
    assert_eq!(
        get(s, &format!("/pools/{BACKEND}/mw1001"), false),
        (200, "enabled/up/pooled\n".into()),
        "one server: its status only, as PyBal"
    );
    let (code, one) = get(s, &format!("/pools/{BACKEND}/mw1003"), true);
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&one).expect("json"),
        serde_json::json!({"pooled": false, "weight": 10, "up": true, "enabled": false, "sessions": 0, "kept_by_threshold": false})
    );
    assert_eq!(
        get(s, "/pools/nosuch", false),
        (404, "The desired url /pools/nosuch was not found".into())
    );
    let (code, body) = get(s, &format!("/pools/{BACKEND}/nosuch"), true);
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        serde_json::json!({"error": format!("The desired url /pools/{BACKEND}/nosuch was not found")})
    );
    assert_eq!(get(s, "/elsewhere", false).0, 404);
    assert_eq!(
        get(s, "/alerts", false),
        (200, "OK - All pools are healthy".into())
    );
    let (code, body) = get(s, "/alerts", true);
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        serde_json::json!({"status": "ok", "msg": "All pools are healthy"})
    );
    let (code, metrics) = get(s, "/metrics", false);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("conftool_lb_server_pooled{pool=\"be_http\",server=\"mw1003\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conftool_lb_server_pooled{pool=\"be_http\",server=\"mw1001\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conftool_lb_server_sessions{pool=\"be_http\",server=\"mw1003\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("conftool_lb_reconciles_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn agent_and_haproxy_restarts_converge_and_sigterm_exits_cleanly() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, mut ha) = start_lb();
    let mut agent = AgentProc::start(&ctx, &ha);
    until_all_serve(&agent, &ha);

    // The agent is killed; a depool lands while it is down; restarted, it converges.
    agent.kill();
    ctx.run("confctl", &["depool", "--hostname", "mw1001"])
        .expect_code(0);
    assert!(
        share(&ha, 3).contains_key("mw1001"),
        "nobody told HAProxy yet"
    );
    // Changes keep coming while it is down and while it starts again: mw1003's weight
    // goes 11, 12, ..., 20, one confctl at a time, from another thread.
    let endpoints = ctx.etcd.endpoints_arg();
    let writer = std::thread::spawn(move || {
        for w in 11..=20 {
            let out = std::process::Command::new(crate::util::bin("confctl"))
                .args(["select", "name=mw1003", &format!("set/weight={w}")])
                .env("CONFTOOL_ENDPOINTS", &endpoints)
                .env_remove("CONFTOOL_CONFIG")
                .stdin(Stdio::null())
                .output()
                .expect("confctl");
            assert!(out.status.success(), "{out:?}");
        }
    });
    std::thread::sleep(Duration::from_millis(30));
    agent.spawn();
    writer.join().expect("writer");
    let t = wait_for(
        "restarted agent drains mw1001 and has mw1003's last weight",
        Duration::from_secs(20),
        &agent,
        || {
            !share(&ha, 3).contains_key("mw1001")
                && ha.server_state(BACKEND, "mw1003")["srv_uweight"] == "20"
        },
    );
    println!("agent restarted amid changes → converged {t:?} after the last write");

    // HAProxy restarts with its configuration's states (every server in maintenance): the
    // agent notices at its next recheck and applies the state again.
    ha.restart();
    let t = wait_for(
        "state re-applied after an HAProxy restart",
        Duration::from_secs(20),
        &agent,
        || {
            let t = share(&ha, 6);
            t.get("mw1002").is_some_and(|n| *n > 0) && t.get("mw1003").is_some_and(|n| *n > 0)
        },
    );
    println!("HAProxy restart → pool serving again: {t:?}");
    b.reset();
    share(&ha, 20);
    assert_eq!(
        b.hits("mw1001"),
        0,
        "still depooled after the HAProxy restart"
    );
    assert_eq!(ha.server_state(BACKEND, "mw1001")["srv_admin_state"], "12");

    // SIGTERM: a clean exit, said in the log.
    assert_eq!(agent.terminate(), Some(0), "{}", agent.log());
    assert!(
        agent
            .log()
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"event\":\"stop\"")),
        "{}",
        agent.log()
    );
}

#[test]
fn the_depool_threshold_keeps_servers_in_rotation() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start(&ctx, &ha);
    until_all_serve(&agent, &ha);
    // Two of three depooled, past the default threshold (0.5 of 3: 2 must serve).
    ctx.run(
        "confctl",
        &[
            "select",
            "name=mw100[23]",
            "set/pooled=no",
            "--allow-below-threshold",
            "--yes",
        ],
    )
    .expect_code(0);
    wait_for(
        "one of the two drained",
        Duration::from_secs(10),
        &agent,
        || !share(&ha, 3).contains_key("mw1003"),
    );
    // The rule: among depooled nodes, those serving first, then by name: mw1002 stays.
    b.reset();
    let t = share(&ha, 20);
    assert_eq!(b.hits("mw1003"), 0, "{t:?}");
    assert_eq!(t.get("mw1002"), Some(&10), "{t:?}");
    let log = agent.log();
    let kept: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "kept_by_threshold")
        .collect();
    assert_eq!(kept.len(), 1, "{log}");
    assert_eq!(kept[0]["servers"], serde_json::json!(["mw1002"]), "{log}");
    assert_eq!(
        (kept[0]["required"].as_u64(), kept[0]["pooled"].as_u64()),
        (Some(2), Some(1))
    );
    // Pooling one back ends it: mw1002 drains, as etcd says.
    ctx.run("confctl", &["pool", "--hostname", "mw1003"])
        .expect_code(0);
    wait_for(
        "mw1002 drained once the pool has enough",
        Duration::from_secs(10),
        &agent,
        || {
            let t = share(&ha, 3);
            !t.contains_key("mw1002") && t.contains_key("mw1003")
        },
    );
}

#[test]
fn draining_a_whole_pool_is_refused_and_forced_it_still_serves_and_alerts() {
    let ctx = Ctx::new();
    sync_pool(&ctx);
    let (b, ha) = start_lb();
    let agent = AgentProc::start(&ctx, &ha);
    until_all_serve(&agent, &ha);
    let (code, alerts) = get(agent.status, "/alerts", false);
    assert_eq!((code, alerts.as_str()), (200, "OK - All pools are healthy"));
    // A drain (weight 0) of every node is refused like a depool of every node.
    let before = ctx.state();
    let run = ctx
        .run(
            "confctl",
            &["--yes", "select", "cluster=web", "set/weight=0"],
        )
        .expect_code(2);
    assert!(
        run.stderr
            .contains("eqiad/web/http: 0 of 3 nodes would stay serving (now 3)"),
        "{}",
        run.stderr
    );
    assert_eq!(ctx.state(), before);
    // Forced: the agent keeps the threshold's share (2 of 3) in rotation at weight 1, so
    // requests are still answered, and /alerts is no longer OK.
    ctx.run(
        "confctl",
        &[
            "--yes",
            "select",
            "cluster=web",
            "set/weight=0",
            "--allow-below-threshold",
        ],
    )
    .expect_code(0);
    wait_for(
        "two servers kept at weight 1",
        Duration::from_secs(10),
        &agent,
        || {
            let t = share(&ha, 6);
            t.len() == 2 && !t.contains_key("mw1003")
        },
    );
    b.reset();
    let t = share(&ha, 20);
    assert_eq!(
        t.values().sum::<usize>(),
        20,
        "every request answered: {t:?}"
    );
    assert_eq!(b.hits("mw1003"), 0, "{t:?}");
    let (_, alerts) = get(agent.status, "/alerts", false);
    assert!(
        alerts.starts_with("CRITICAL - ") || alerts.starts_with("WARNING - "),
        "{alerts}"
    );
}

#[test]
fn etcd_down_keeps_the_last_state_and_a_restarted_etcd_is_followed() {
    let mut ctx = Ctx::new();
    sync_pool(&ctx);
    let (_b, ha) = start_lb();
    let agent = AgentProc::start_with(&ctx, &ha, "etcd: {timeout: 1s}\n");
    until_all_serve(&agent, &ha);
    ctx.run("confctl", &["depool", "--hostname", "mw1001"])
        .expect_code(0);
    wait_for("mw1001 drained", Duration::from_secs(10), &agent, || {
        !share(&ha, 3).contains_key("mw1001")
    });

    // etcd goes away: HAProxy keeps what it has, and the log says so.
    ctx.etcd.kill_member(0);
    wait_for(
        "a watch error in the log",
        Duration::from_secs(20),
        &agent,
        || agent.log().contains("\"event\":\"watch_error\""),
    );
    let t = share(&ha, 20);
    assert_eq!(
        t.get("mw1002").copied().unwrap_or(0) + t.get("mw1003").copied().unwrap_or(0),
        20,
        "{t:?}"
    );
    assert!(
        agent.log().contains("keeping the last applied state"),
        "{}",
        agent.log()
    );

    // etcd back (same data): the agent follows changes again.
    ctx.etcd.restart_member(0);
    ctx.etcd
        .wait_member_serving(0, Duration::from_secs(20))
        .expect("etcd back");
    let t0 = Instant::now();
    ctx.run("confctl", &["pool", "--hostname", "mw1001"])
        .expect_code(0);
    ctx.run("confctl", &["depool", "--hostname", "mw1003"])
        .expect_code(0);
    wait_for(
        "changes after the etcd restart applied",
        Duration::from_secs(30),
        &agent,
        || {
            let t = share(&ha, 3);
            t.contains_key("mw1001") && !t.contains_key("mw1003")
        },
    );
    println!(
        "etcd restart → changes applied again: {:?} after the writes",
        t0.elapsed()
    );
    // The metrics say the watch resumed, and how far behind the agent was.
    let (code, metrics) = get(agent.status, "/metrics", false);
    assert_eq!(code, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert!(
        value("conftool_lb_watch_resumed_total{pool=\"be_http\"}") >= 1.0,
        "{metrics}"
    );
    assert!(value("conftool_lb_watch_errors_total") >= 1.0, "{metrics}");
    let lag = value("conftool_lb_watch_lag_seconds");
    println!("watch lag of the last batch: {lag} s");
    assert!(lag > 0.0 && lag < 5.0, "{metrics}");
    assert_eq!(value("conftool_lb_watch_backlog_events"), 0.0, "{metrics}");
}

/// A "server" that accepts connections and never answers: requests in flight, for as long
/// as the test wants. Stops accepting when dropped.
struct Hold {
    addr: SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hold {
    fn start() -> Hold {
        use std::sync::atomic::Ordering;
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((conn, _)) => {
                        held.push(conn);
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hold {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_drained_servers_requests_in_flight_are_ended_after_the_drain_timeout() {
    let ctx = Ctx::new();
    ctx.write(
        "data/services.yaml",
        "web:\n  http:\n    port: 80\n    default_values: {pooled: \"yes\", weight: 10}\n    depool_threshold: 0.0\n",
    );
    ctx.write(
        "data/eqiad/pools.yaml",
        "web:\n  slow: {services: [http]}\n",
    );
    ctx.sync(&ctx.path("data"), &[]).expect_code(0);
    let hold = Hold::start();
    let ha = HaProxy::start(&[BackendSpec {
        name: BACKEND.into(),
        servers: vec![ServerSpec {
            name: "slow".into(),
            addr: hold.addr,
            weight: 1,
            maint: true,
        }],
    }]);
    let agent = AgentProc::start_with(&ctx, &ha, "drain_timeout: 1s\n");
    wait_for("slow is ready", Duration::from_secs(20), &agent, || {
        ha.server_state(BACKEND, "slow")["srv_admin_state"] == "4"
    });
    // A request in flight on `slow` (HAProxy's own server timeout is 5 s).
    let fe = ha.frontend(BACKEND);
    let client = std::thread::spawn(move || {
        let t0 = Instant::now();
        let got = send(fe, 1);
        (got, t0.elapsed())
    });
    wait_for(
        "the request reached slow",
        Duration::from_secs(10),
        &agent,
        || hold.accepted.load(std::sync::atomic::Ordering::Relaxed) > 0,
    );
    let t0 = Instant::now();
    ctx.run("confctl", &["depool", "--hostname", "slow"])
        .expect_code(0);
    let (got, _) = client.join().expect("client");
    let ended = t0.elapsed();
    println!("depool → in-flight request on the drained server ended after {ended:?}: {got:?}");
    assert!(
        ended >= Duration::from_secs(1),
        "not before the drain timeout: {ended:?}"
    );
    assert!(
        ended < Duration::from_millis(4500),
        "before HAProxy's own 5 s timeout: {ended:?}"
    );
    assert!(!got.contains_key("error:http-504"), "{got:?}");
    // The log line comes once HAProxy has answered the command, maybe after the client saw
    // its connection end.
    let cmd = "shutdown sessions server be_http/slow";
    wait_for("the command logged", Duration::from_secs(5), &agent, || {
        agent.log().contains(cmd)
    });
    // Two more rechecks, counted by the agent: nothing more sent. The counter goes up as a
    // recheck starts, so the third one starting means the second has sent what it would.
    let rechecks = || {
        let (_, metrics) = get(agent.status, "/metrics", false);
        metric(&metrics, "conftool_lb_reconciles_total")
    };
    let seen = rechecks();
    wait_for("two more rechecks", Duration::from_secs(10), &agent, || {
        rechecks() >= seen + 3
    });
    let log = agent.log();
    assert_eq!(log.matches(cmd).count(), 1, "once:\n{log}");
}
