//! The roll in front of real traffic: the group's pool behind a real HAProxy driven by the
//! real load-balancer agent (conftool-lb, in process), which the coordinator verifies each
//! depool and repool with (`load_balancers`); each node serves HTTP on a backend of its own
//! that stops with its reboot and starts with its boot. A client sends requests through
//! HAProxy all along. Asserted: every node rebooted once, one at a time, each out of
//! rotation (verified) before it went down and until it was back, and no request failed,
//! with requests sent while each node was down (its boot waits for some). Printed: the
//! requests, failures and the roll's time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conftool_testkit::haproxy::{send, BackendSpec, Backends, HaProxy, ServerSpec, Traffic};
use conftool_testkit::lb_agent::LbAgent;

use crate::roll::{breakdown, node_count, of_node, one_at_a_time, roll, Before};
use crate::sim::{events, ts_ms, Power, Sim, NS, POOL};

const BACKEND: &str = "be_http";

/// Requests sent through HAProxy while a node is down, at least: its boot waits for them,
/// so a node still in rotation while down would fail some.
const WHILE_DOWN: u64 = 20;

/// A node's backend going down or up, when (ms since 1970), and the requests sent by then.
#[derive(Debug, Clone)]
struct Switch {
    node: String,
    up: bool,
    ms: u64,
    requests: u64,
    /// For an up: whether [`WHILE_DOWN`] requests were sent while it was down (then
    /// `requests` is the count before the backend started again).
    waited: bool,
}

/// The nodes' HTTP backends, switched by their reboots and boots.
struct Services {
    backends: Backends,
    traffic: Arc<Traffic>,
    switches: Mutex<Vec<Switch>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Power for Services {
    fn down(&self, node: &str) {
        self.backends.stop(node);
        self.switches.lock().unwrap().push(Switch {
            node: node.to_string(),
            up: false,
            ms: now_ms(),
            requests: self.traffic.requests(),
            waited: false,
        });
    }

    fn up(&self, node: &str) {
        let since = self
            .switches
            .lock()
            .unwrap()
            .iter()
            .rfind(|s| s.node == node && !s.up)
            .map(|s| s.requests)
            .unwrap_or_default();
        let waited = self
            .traffic
            .wait_requests(since, WHILE_DOWN, Duration::from_secs(30));
        let requests = self.traffic.requests();
        self.backends.start_again(node);
        self.switches.lock().unwrap().push(Switch {
            node: node.to_string(),
            up: true,
            ms: now_ms(),
            requests,
            waited,
        });
    }
}

/// Wait for `what` (polling every 50 ms, at most 60 s).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{what}: not within 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_behind_haproxy_takes_each_node_out_of_rotation_and_no_request_fails() {
    let n = node_count();
    let mut sim = Sim::start(n, "").await;
    let names: Vec<&str> = sim.nodes.iter().map(String::as_str).collect();
    let backends = Backends::start(&names);
    let ha = HaProxy::start(&[BackendSpec {
        name: BACKEND.into(),
        servers: names
            .iter()
            .map(|n| ServerSpec {
                name: n.to_string(),
                addr: backends.addr(n),
                weight: 1,
                maint: true,
            })
            .collect(),
    }]);
    let agent = LbAgent::start(
        &tokio::runtime::Handle::current(),
        ha.socket(),
        sim.etcd.endpoints(),
        NS,
        &[(POOL, BACKEND)],
    );
    sim.write_conftool_config(&format!(
        "load_balancers:\n  {POOL}: [{}]\n",
        agent.status_url(BACKEND)
    ));
    let frontend = ha.frontend(BACKEND);
    wait_until("every node in rotation", || {
        let t = send(frontend, 4 * n);
        t.len() == n && !t.keys().any(|k| k.starts_with("error:"))
    });

    let traffic = Arc::new(Traffic::start(frontend, Duration::from_millis(5)));
    let services = Arc::new(Services {
        backends,
        traffic: traffic.clone(),
        switches: Mutex::new(Vec::new()),
    });
    sim.set_power(services.clone());
    let before = Before::take(&sim).await;
    let (lines, elapsed) = roll(&mut sim);
    traffic.stop();
    let (requests, failures) = (traffic.requests(), traffic.failures());
    let failed: usize = failures.values().sum();
    let switches = services.switches.lock().unwrap().clone();
    // Requests sent while each node was down (its first down to its first up).
    let while_down: Vec<(String, u64)> = sim
        .nodes
        .iter()
        .filter_map(|node| {
            let mine = |up: bool| switches.iter().find(|s| &s.node == node && s.up == up);
            Some((node.clone(), mine(true)?.requests - mine(false)?.requests))
        })
        .collect();
    println!(
        "rebootmgr behind HAProxy: rolled {n} nodes in {:.1}s ({:.2}s a node); {requests} \
         requests through HAProxy, {failed} failed {failures:?}; while a node was down: \
         {while_down:?} requests; served by {:?}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / n as f64,
        traffic.tally()
    );

    let spans = one_at_a_time(&sim, &lines);
    breakdown(&lines, &spans);
    assert!(requests > 0, "no request was sent");
    assert_eq!(failed, 0, "requests failed during the roll: {failures:?}");
    for (depooled, repooled, node) in &spans {
        let mine = of_node(&lines, node);
        let (out, back) = (events(&mine, "verified_out"), events(&mine, "verified_in"));
        assert_eq!((out.len(), back.len()), (1, 1), "{node}: {mine:#?}");
        let sw: Vec<&Switch> = switches.iter().filter(|s| &s.node == node).collect();
        assert!(
            sw.len() == 2 && !sw[0].up && sw[1].up,
            "{node} went down once and came up once: {switches:#?}"
        );
        let (down, up) = (sw[0], sw[1]);
        assert!(up.waited, "{WHILE_DOWN} requests while {node} was down");
        // Verified out of rotation before its backend stopped; started again before its
        // repool (all within its span, which overlaps no other's).
        assert!(
            *depooled <= ts_ms(out[0]) && ts_ms(out[0]) <= down.ms,
            "{node}: verified out at {}, down at {}",
            ts_ms(out[0]),
            down.ms
        );
        assert!(
            down.ms <= up.ms && up.ms <= *repooled,
            "{node}: up at {}, repooled at {repooled}",
            up.ms
        );
    }
    // Every node served before and after its reboot, and serves now.
    let served = traffic.tally();
    for node in &sim.nodes {
        assert!(
            served.get(node).is_some_and(|&c| c > 0),
            "{node}: {served:?}"
        );
    }
    wait_until("every node in rotation again", || {
        send(frontend, 4 * n).len() == n
    });
    before.assert_ends_as_it_started(&sim).await;
}
