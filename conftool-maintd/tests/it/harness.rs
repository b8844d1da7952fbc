//! The world a test runs in: etcd with one pool (`eqiad/web/http`, N nodes `mw1..`, a
//! depool threshold), a temp dir holding each node's diagnosis, the daemon's configuration,
//! and a library daemon pointed at it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use conftool_core::{Actor, AuditLog, Config, LoadBalancers, Store};
use conftool_maintd::records::{self, Stored};
use conftool_maintd::{Ctx, Daemon, DaemonEvent, EventRecord, MaintConfig};
use conftool_testkit::{Etcd, TestDir};

/// A test's etcd, nodes and files.
pub struct World {
    pub etcd: Etcd,
    pub dir: TestDir,
    pub nodes: Vec<String>,
    pub rt: tokio::runtime::Runtime,
}

impl World {
    /// `n` nodes, all pooled (weight 10) and saying `ok`, in a pool whose depool
    /// threshold is `threshold`.
    pub fn new(n: usize, threshold: f64) -> World {
        let etcd = Etcd::start();
        let dir = conftool_testkit::temp_dir("maintd-");
        let nodes: Vec<String> = (1..=n).map(|i| format!("mw{i}")).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let w = World {
            etcd,
            dir,
            nodes,
            rt,
        };
        w.rt.block_on(async {
            let mut c = w.etcd.client().await;
            c.put(
                "/v1/services/web/http",
                format!(
                    r#"{{"port":80,"default_values":{{"pooled":"yes","weight":10}},"depool_threshold":{threshold}}}"#
                ),
                None,
            )
            .await
            .expect("put service");
            for n in &w.nodes {
                c.put(format!("/v1/pools/eqiad/web/http/{n}"), r#"{"pooled":"yes","weight":10}"#, None)
                    .await
                    .expect("put node");
            }
        });
        for n in &w.nodes {
            w.say(n, r#"{"status":"ok"}"#);
        }
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// What `node`'s diagnose command prints from now on.
    pub fn say(&self, node: &str, text: &str) {
        let tmp = self.path(&format!("{node}.json.tmp"));
        std::fs::write(&tmp, text).expect("write diagnosis");
        // Renamed into place: a poll never reads half a file.
        std::fs::rename(&tmp, self.path(&format!("{node}.json"))).expect("rename");
    }

    /// The exit code `node`'s repair command exits with from now on.
    pub fn repair_exits(&self, node: &str, code: i32) {
        std::fs::write(self.path(&format!("{node}.exit")), code.to_string()).expect("write");
    }

    /// While held, `node`'s repair command waits (after reading its stdin) until released.
    pub fn hold_repair(&self, node: &str, held: bool) {
        let p = self.path(&format!("{node}.hold"));
        if held {
            std::fs::write(p, "").expect("hold");
        } else {
            std::fs::remove_file(p).expect("release");
        }
    }

    /// Every stdin the repair command got on `node`, one line each.
    pub fn repair_inputs(&self, node: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(&format!("{node}.stdin")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The daemon's configuration file's text, with `extra` lines.
    pub fn config_text(&self, extra: &str) -> String {
        let d = self.dir.path().display();
        format!(
            "nodes: cluster=web\n\
             diagnose: [sh, -c, 'cat {d}/{{host}}.json']\n\
             repair: [sh, -c, 'cat >> {d}/{{host}}.stdin; echo >> {d}/{{host}}.stdin; while [ -e {d}/{{host}}.hold ]; do sleep 0.05; done; exit $(cat {d}/{{host}}.exit 2>/dev/null || echo 0)', '{{command}}']\n\
             repair_commands: [fix-nic]\n\
             verify: false\n\
             poll_interval: 200ms\n\
             lease_ttl: 3s\n\
             {extra}"
        )
    }

    pub fn config(&self, extra: &str) -> MaintConfig {
        MaintConfig::from_yaml("maintd.yaml".as_ref(), &self.config_text(extra)).expect("config")
    }

    pub fn conftool(&self) -> Config {
        Config {
            endpoints: self.etcd.endpoints(),
            ..Config::default()
        }
    }

    pub fn store(&self) -> Store {
        self.rt
            .block_on(Store::connect(&self.conftool()))
            .expect("connect")
    }

    /// A library daemon (its own etcd connection), as `name` in histories.
    pub fn daemon(&self, extra: &str, name: &str) -> Daemon {
        let ctx = Ctx {
            store: self.store(),
            cfg: self.config(extra),
            lbs: LoadBalancers::default(),
            actor: Actor::from_env("conftool-maintd", None),
            audit: AuditLog::default(),
            by: name.to_string(),
        };
        Daemon::new(ctx, Default::default())
    }

    /// One poll and its round, run to the end; what the daemon said.
    pub fn once(&self, d: &Daemon) -> Vec<DaemonEvent> {
        let mut said = Vec::new();
        self.rt
            .block_on(d.once(|e| said.push(e)))
            .unwrap_or_else(|e| panic!("once: {e}; said {said:?}"));
        said
    }

    /// Every event.
    pub fn events(&self) -> Vec<EventRecord> {
        self.stored().into_iter().map(|s| s.record).collect()
    }

    pub fn stored(&self) -> Vec<Stored> {
        let store = self.store();
        let (events, bad) = self.rt.block_on(records::list(&store)).expect("list");
        assert!(bad.is_empty(), "{bad:?}");
        events
    }

    /// The events of `node`.
    pub fn events_of(&self, node: &str) -> Vec<EventRecord> {
        self.events()
            .into_iter()
            .filter(|e| e.node.as_str() == node)
            .collect()
    }

    /// Each node's `pooled`.
    pub fn pooled(&self) -> BTreeMap<String, String> {
        self.rt.block_on(async {
            let dump = self.etcd.dump().await;
            dump.iter()
                .filter_map(|(k, v)| {
                    let node = k.strip_prefix("/v1/pools/eqiad/web/http/")?;
                    let v: serde_json::Value = serde_json::from_str(v).ok()?;
                    Some((node.to_string(), v["pooled"].as_str()?.to_string()))
                })
                .collect()
        })
    }

    pub fn dump(&self) -> BTreeMap<String, String> {
        self.rt.block_on(self.etcd.dump())
    }

    /// The keyspace but the locks (a one-shot run takes and releases the leader's lock).
    pub fn dump_but_locks(&self) -> BTreeMap<String, String> {
        let mut d = self.dump();
        d.retain(|k, _| !k.starts_with("/v1/locks/"));
        d
    }
}

/// Wait for `what` to hold (polling every 20 ms, at most `limit`).
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}
