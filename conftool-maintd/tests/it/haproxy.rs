//! The daemon in front of real traffic: a real HAProxy with real backends, driven by the
//! real load-balancer agent (conftool-lb, in process), the daemon verifying with the agent
//! that an evacuated node is out. Measured: the time from a node reporting `evacuate` to it
//! being out of HAProxy's rotation; asserted: ten nodes all asking to be evacuated never
//! have more out of rotation than the threshold allows, and no request fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conftool_core::{Actor, AuditLog, LbUrl, LoadBalancers, PoolKey};
use conftool_lb::http::StatusServer;
use conftool_lb::runtime::Runtime;
use conftool_lb::{connection_cap, Agent, AgentConfig};
use conftool_maintd::{records, Ctx, Daemon, EventState, OperatorAction};
use conftool_testkit::haproxy::{
    command_at, parse_servers_state, send, BackendSpec, Backends, HaProxy, ServerSpec,
};

use crate::harness::{wait_until, World};

const BACKEND: &str = "be_http";
const LIMIT: Duration = Duration::from_secs(120);

/// HAProxy's servers out of rotation now (maintenance or drain, as the agent sets them).
fn out_of_rotation(socket: &std::path::Path) -> Vec<String> {
    let out = command_at(socket, &format!("show servers state {BACKEND}"));
    parse_servers_state(&out)
        .into_iter()
        .filter(|s| {
            s.get("srv_admin_state")
                .and_then(|a| a.parse::<u32>().ok())
                .is_some_and(|a| a & (0x01 | 0x02 | 0x08 | 0x10 | 0x20 | 0x40) != 0)
        })
        .filter_map(|s| s.get("srv_name").cloned())
        .collect()
}

/// The agent (and its status API, which the daemon verifies with) for the pool.
fn start_agent(w: &World, ha: &HaProxy) -> SocketAddr {
    let status: SocketAddr = format!("127.0.0.1:{}", conftool_testkit::free_port())
        .parse()
        .expect("addr");
    let text = format!(
        "haproxy_socket: {}\nstatus_listen: {status}\nrecheck_interval: 300ms\npools:\n  - {{dc: eqiad, cluster: web, service: http, backend: {BACKEND}}}\n",
        ha.socket().display()
    );
    let mut cfg = AgentConfig::from_yaml("agent.yaml".as_ref(), &text).expect("agent config");
    cfg.etcd.endpoints = w.etcd.endpoints();
    let agent = Agent::new(cfg.clone());
    let server = StatusServer::new(
        Runtime::new(&cfg.haproxy_socket),
        vec![BACKEND.into()],
        agent.metrics(),
    );
    let cap = connection_cap(&cfg.status_limits, None, 1).expect("cap");
    w.rt.spawn(async move {
        let listener = conftool_lb::http::bind(status).await.expect("bind");
        server.serve(listener, cfg.status_limits, cap).await;
    });
    w.rt.spawn(agent.run(|_| {}, std::future::pending()));
    status
}

#[test]
fn evacuations_take_nodes_out_of_real_traffic_within_the_threshold_and_no_request_fails() {
    // 10 nodes at 0.7: 7 must serve, 3 may be out.
    let w = World::new(10, 0.7);
    let names: Vec<&str> = w.nodes.iter().map(String::as_str).collect();
    let b = Backends::start(&names);
    let ha = HaProxy::start(&[BackendSpec {
        name: BACKEND.into(),
        servers: names
            .iter()
            .map(|n| ServerSpec {
                name: n.to_string(),
                addr: b.addr(n),
                weight: 1,
                maint: true,
            })
            .collect(),
    }]);
    let status = start_agent(&w, &ha);
    let frontend = ha.frontend(BACKEND);
    wait_until("all ten in rotation", LIMIT, || {
        let t = send(frontend, 100);
        t.len() == 10 && !t.keys().any(|k| k.starts_with("error:"))
    });
    let url: LbUrl = format!("http://{status}/pools/{BACKEND}")
        .parse()
        .expect("url");
    let pool: PoolKey = PoolKey {
        dc: "eqiad".parse().expect("dc"),
        cluster: "web".parse().expect("cluster"),
        service: "http".parse().expect("service"),
    };
    let mut cfg = w.config("verify_timeout: 30s\n");
    cfg.verify = true;
    let d = Daemon::new(
        Ctx {
            store: w.store(),
            cfg,
            lbs: LoadBalancers::new(BTreeMap::from([(pool, vec![url])])),
            actor: Actor::from_env("conftool-maintd", None),
            audit: AuditLog::default(),
            by: "maintd-a".into(),
        },
        Default::default(),
    );
    // A sampler asks HAProxy how many servers are out of rotation, and sends traffic.
    let stop = Arc::new(AtomicBool::new(false));
    let (most, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sampler = {
        let (stop, most, failed) = (stop.clone(), most.clone(), failed.clone());
        let socket = ha.socket().to_path_buf();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                most.fetch_max(out_of_rotation(&socket).len(), Ordering::SeqCst);
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
    let (quit, quitting) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let d = d.clone();
        w.rt.spawn(async move {
            d.run(|_| {}, async {
                let _ = quitting.await;
            })
            .await
        })
    };

    // One node: from its report to out of HAProxy's rotation.
    let t0 = Instant::now();
    w.say("mw1", r#"{"status":"evacuate","details":"disk"}"#);
    wait_until("mw1 out of rotation", LIMIT, || {
        out_of_rotation(ha.socket()).contains(&"mw1".to_string())
    });
    let to_out = t0.elapsed();
    wait_until("mw1's event ready", LIMIT, || {
        w.events_of("mw1")
            .first()
            .is_some_and(|e| e.state == EventState::Ready)
    });
    let to_ready = t0.elapsed();
    let e = &w.events_of("mw1")[0];
    let what = &e.history.last().expect("history").what;
    assert!(
        what.contains("verified out of rotation by 1 load balancer checks"),
        "{what}"
    );
    b.reset();
    send(frontend, 50);
    assert_eq!(b.hits("mw1"), 0, "an evacuated node gets no traffic");

    // Then all of them; each ready node is repaired and acknowledged.
    for n in &w.nodes {
        w.say(n, r#"{"status":"evacuate","details":"firmware"}"#);
    }
    let store = w.store();
    let actor = Actor::from_env("confctl", None);
    let mut repaired = std::collections::BTreeSet::new();
    let took = wait_until("every node evacuated, repaired and back", LIMIT, || {
        for e in w.events() {
            if e.state == EventState::Ready && !e.acked() {
                w.say(e.node.as_str(), r#"{"status":"ok"}"#);
                w.rt.block_on(async {
                    let mut wr = store.writer(&actor, &AuditLog::default()).expect("writer");
                    records::operator(&mut wr, &e.id, OperatorAction::Ack, "alice@cumin", None)
                        .await
                })
                .expect("ack");
                repaired.insert(e.node.to_string());
            }
        }
        repaired.len() == 10 && w.events().is_empty() && out_of_rotation(ha.socket()).is_empty()
    });
    let _ = quit.send(());
    w.rt.block_on(running)
        .expect("join")
        .expect("the daemon stopped cleanly");
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler");
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&most),
        "HAProxy had {most} out of rotation at once"
    );
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests failed");
    println!(
        "maintd with HAProxy: evacuate reported -> out of rotation {to_out:?} (verified, event ready: \
         {to_ready:?}; poll interval 200ms); 10 nodes evacuated, repaired and back in {took:?}, \
         {most} out of rotation at most"
    );
}
