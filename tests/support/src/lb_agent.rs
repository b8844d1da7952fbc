//! The real load-balancer agent (conftool-lb, in process: the library `conftool-lb-agent`
//! is a thin binary around) between a test's etcd and its [`crate::HaProxy`], with its
//! status API, which `--verify` and the coordinators ask whether a node is out of rotation.
//! Behind the feature `lb` (conftool-lb is not what every test of the workspace builds).
//!
//! ```no_run
//! # fn demo(rt: &tokio::runtime::Handle, etcd: &conftool_testkit::Etcd, ha: &conftool_testkit::HaProxy) {
//! use conftool_testkit::lb_agent::LbAgent;
//! let agent = LbAgent::start(rt, ha.socket(), etcd.endpoints(), "", &[("eqiad/web/http", "be_http")]);
//! let url = agent.status_url("be_http"); // http://127.0.0.1:PORT/pools/be_http
//! # }
//! ```

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use conftool_lb::http::{bind, StatusServer};
use conftool_lb::runtime::Runtime;
use conftool_lb::{connection_cap, Agent, AgentConfig};
use tokio::task::JoinHandle;

/// A running agent and its status API; both stopped (their tasks aborted) when dropped.
pub struct LbAgent {
    /// Where the status API listens (127.0.0.1, a free port).
    pub status: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl LbAgent {
    /// Start the agent on `rt` for `pools` (`("dc/cluster/service", "haproxy backend")`),
    /// following etcd at `endpoints` under `namespace` (empty: none), driving the HAProxy
    /// whose runtime API is `socket`; rechecks HAProxy every 300 ms.
    pub fn start(
        rt: &tokio::runtime::Handle,
        socket: &Path,
        endpoints: Vec<String>,
        namespace: &str,
        pools: &[(&str, &str)],
    ) -> LbAgent {
        let status: SocketAddr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let mut text = format!(
            "haproxy_socket: {}\nstatus_listen: {status}\nrecheck_interval: 300ms\npools:\n",
            socket.display()
        );
        for (pool, backend) in pools {
            let parts: Vec<&str> = pool.split('/').collect();
            let [dc, cluster, service] = parts[..] else {
                panic!("pool {pool:?} is not dc/cluster/service");
            };
            text.push_str(&format!(
                "  - {{dc: {dc}, cluster: {cluster}, service: {service}, backend: {backend}}}\n"
            ));
        }
        let mut cfg = AgentConfig::from_yaml("agent.yaml".as_ref(), &text).expect("agent config");
        cfg.etcd.endpoints = endpoints;
        cfg.etcd.namespace = namespace.to_string();
        let agent = Agent::new(cfg.clone());
        let backends = pools.iter().map(|(_, b)| b.to_string()).collect();
        let server =
            StatusServer::new(Runtime::new(&cfg.haproxy_socket), backends, agent.metrics());
        let cap = connection_cap(&cfg.status_limits, None, pools.len()).expect("cap");
        let serving = rt.spawn(async move {
            let listener = bind(status).await.expect("bind the agent's status API");
            server.serve(listener, cfg.status_limits, cap).await;
        });
        let running = rt.spawn(async move {
            if let Err(e) = agent.run(|_| {}, std::future::pending()).await {
                eprintln!("the conftool-lb agent stopped: {e}");
            }
        });
        let agent = LbAgent {
            status,
            tasks: vec![serving, running],
        };
        // Listening before anyone is given its URL (a blocking wait: callable from within
        // the runtime too, whose workers run the tasks).
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&status, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the agent's status API is not listening on {status}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// The status URL of `backend`'s pool, as `load_balancers` lists it.
    pub fn status_url(&self, backend: &str) -> String {
        format!("http://{}/pools/{backend}", self.status)
    }
}

impl Drop for LbAgent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
