//! A simulated reboot group: nodes as directories on one machine (a configuration, a boot
//! id file, a trigger file, task directories, a state directory each), their pools in a
//! real etcd, and the real binary run for them. A node's reboot command writes a new boot
//! id and SIGKILLs the run that asked for it (`$REBOOTMGR_PID`): a reboot, as far as the
//! coordinator can tell. A node's "timer" ([`Sim::start_timers`]) runs it again and again
//! in a thread of its own, as the systemd timer would, and keeps every JSON line it wrote.
//!
//! With [`Sim::set_power`], a node's services go down with it: its reboot command first
//! marks it down (file `down`) and waits until the test has taken its services down
//! ([`Power::down`], then `down.ack`); the first run after the boot (by its timer, or
//! [`Sim::run`]) brings them up ([`Power::up`]) before it starts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conftool_core::{Keyspace, ObjectKey, PoolKey};
use conftool_testkit::{Etcd, TestDir};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_conftool-rebootmgr");
pub const NS: &str = "/conftool";
pub const POOL: &str = "dc1/web/http";

/// One JSON line of a run, with the node that wrote it.
pub type Line = Value;

pub struct Sim {
    pub etcd: Etcd,
    pub dir: TestDir,
    pub nodes: Vec<String>,
    /// Every line every node's runs wrote, in the order read.
    pub lines: Arc<Mutex<Vec<Line>>>,
    stop: Arc<AtomicBool>,
    timers: Vec<std::thread::JoinHandle<()>>,
    power: Option<Arc<Powered>>,
    /// The thread that takes a node's services down when its reboot command says so.
    watcher: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The power hooks, and the turn the watcher and a node's boot take at its marker files.
struct Powered {
    power: Arc<dyn Power>,
    turn: Mutex<()>,
}

/// A node's services, as its reboot takes them down and its boot brings them up again (the
/// HTTP backend behind a load balancer, say). Called from the sim's threads.
pub trait Power: Send + Sync {
    /// The node's reboot command runs: stop serving (the command waits for this).
    fn down(&self, node: &str);
    /// The node booted: serve again (its first run waits for this).
    fn up(&self, node: &str);
}

/// The configuration every node gets, apart from its own paths (YAML lines).
pub fn base_config() -> String {
    "slot: {concurrency: 1, ttl: 30s}\nsettle: 200ms\npoll_interval: 100ms\n\
     healthy_timeout: 20s\nreport_max_age: 1m\nreboot_grace: 20s\nverify_timeout: 10s\n"
        .to_string()
}

/// The base lines whose key `extra` does not set again.
fn overridable(base: &str, extra: &str) -> String {
    let key = |l: &str| l.split(':').next().unwrap_or_default().trim().to_string();
    let set: Vec<String> = extra.lines().map(key).collect();
    base.lines()
        .filter(|l| !set.contains(&key(l)))
        .map(|l| format!("{l}\n"))
        .collect()
}

impl Sim {
    /// `n` nodes (`node1`..), all serving in one pool, with `extra` added to each node's
    /// configuration.
    pub async fn start(n: usize, extra: &str) -> Sim {
        let etcd = Etcd::start();
        let dir = conftool_testkit::temp_dir("rebootmgr-");
        let nodes: Vec<String> = (1..=n).map(|i| format!("node{i}")).collect();
        let sim = Sim {
            etcd,
            dir,
            nodes,
            lines: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
            timers: Vec::new(),
            power: None,
            watcher: None,
        };
        sim.write_conftool_config("");
        let mut client = sim.etcd.client().await;
        let ks = Keyspace::new(NS);
        for node in &sim.nodes {
            let key = ks.object_key(&ObjectKey {
                pool: POOL.parse().unwrap(),
                node: node.parse().unwrap(),
            });
            client
                .put(key, r#"{"pooled":"yes","weight":10}"#, None)
                .await
                .unwrap();
            sim.write_config(node, extra);
            std::fs::write(
                sim.node_dir(node).join("boot_id"),
                format!("{node}-boot-0\n"),
            )
            .unwrap();
        }
        sim
    }

    /// (Re)write the nodes' conftool configuration (etcd, namespace, audit log) with `extra`
    /// lines (`load_balancers`, say).
    pub fn write_conftool_config(&self, extra: &str) {
        std::fs::write(
            self.dir.path().join("conftool.yaml"),
            format!(
                "endpoints: [{}]\nnamespace: {NS}\naudit_log: {}\n{extra}",
                self.etcd.endpoint(),
                self.dir.path().join("audit.log").display()
            ),
        )
        .unwrap();
    }

    /// From now on every node's services go down with its reboot and up with its boot
    /// through `power` (see the [module](self)).
    pub fn set_power(&mut self, power: Arc<dyn Power>) {
        assert!(self.power.is_none(), "power is set once");
        for node in &self.nodes {
            std::fs::write(self.node_dir(node).join("powered"), "").unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let dirs: Vec<(String, PathBuf)> = self
            .nodes
            .iter()
            .map(|n| (n.clone(), self.node_dir(n)))
            .collect();
        let powered = Arc::new(Powered {
            power,
            turn: Mutex::new(()),
        });
        let (flag, p) = (stop.clone(), powered.clone());
        let watcher = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                for (node, d) in &dirs {
                    let _turn = p.turn.lock().unwrap();
                    if d.join("down").exists() && !d.join("down.ack").exists() {
                        p.power.down(node);
                        std::fs::write(d.join("down.ack"), "").unwrap();
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        self.power = Some(powered);
        self.watcher = Some((stop, watcher));
    }

    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.path().join(node)
    }

    pub fn config_path(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("config.yaml")
    }

    /// (Re)write a node's configuration with `extra` lines.
    pub fn write_config(&self, node: &str, extra: &str) {
        let d = self.node_dir(node);
        std::fs::create_dir_all(d.join("tasks/pre_boot_tasks")).unwrap();
        std::fs::create_dir_all(d.join("tasks/post_boot_tasks")).unwrap();
        // Powered (set_power): down, and wait (5 s at most) until its services are.
        let down = format!(
            "if [ -e {d}/powered ]; then touch {d}/down; i=0; \
             while [ ! -e {d}/down.ack ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; fi; ",
            d = d.display()
        );
        let reboot = format!(
            "{down}echo {node}-boot-$(date +%s%N) > {} && kill -9 $REBOOTMGR_PID",
            d.join("boot_id").display()
        );
        let text = format!(
            "group: web\nnode: {node}\nconftool_config: {}\nstate_dir: {}\nboot_id_file: {}\n\
             trigger_file: {}\ntasks_dir: {}\nreboot_command: '{reboot}'\n{}{extra}",
            self.dir.path().join("conftool.yaml").display(),
            d.join("state").display(),
            d.join("boot_id").display(),
            d.join("reboot-required").display(),
            d.join("tasks").display(),
            overridable(&base_config(), extra),
        );
        std::fs::write(d.join("config.yaml"), text).unwrap();
    }

    /// Ask for a node's reboot the way Debian's tools do.
    pub fn trigger(&self, node: &str) {
        std::fs::write(
            self.node_dir(node).join("reboot-required"),
            "*** System restart required ***\n",
        )
        .unwrap();
    }

    pub fn triggered(&self, node: &str) -> bool {
        self.node_dir(node).join("reboot-required").exists()
    }

    pub fn boot_id(&self, node: &str) -> String {
        std::fs::read_to_string(self.node_dir(node).join("boot_id"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// An executable task.
    pub fn task(&self, node: &str, phase: &str, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.node_dir(node).join("tasks").join(phase).join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Run the binary for `node` once with `args` (after `--config`): its exit code and
    /// its stdout's JSON lines (also kept in [`Sim::lines`]).
    pub fn run(&self, node: &str, args: &[&str]) -> (i32, Vec<Line>, String) {
        boot(&self.power, node, &self.node_dir(node));
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.config_path(node))
            .args(args)
            .output()
            .unwrap();
        let lines = parse_lines(&String::from_utf8_lossy(&out.stdout));
        self.lines.lock().unwrap().extend(lines.iter().cloned());
        (
            out.status.code().unwrap_or(-1),
            lines,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Start `run` for `node` and hand back the child with its stdout lines read as they
    /// come (to kill it at a chosen step).
    pub fn spawn(&self, node: &str) -> Running {
        boot(&self.power, node, &self.node_dir(node));
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(self.config_path(node))
            .arg("run")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let all = self.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    all.lock().unwrap().push(v.clone());
                    let _ = tx.send(v);
                }
            }
        });
        Running { child, rx }
    }

    /// Every node's timer: run, and again `every` after it ended, until [`Sim::stop_timers`].
    pub fn start_timers(&mut self, nodes: &[String], every: Duration) {
        for node in nodes {
            let (stop, lines) = (self.stop.clone(), self.lines.clone());
            let (cfg, dir) = (self.config_path(node), self.node_dir(node));
            let (power, node) = (self.power.clone(), node.clone());
            self.timers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    boot(&power, &node, &dir);
                    let out = Command::new(BIN)
                        .arg("--config")
                        .arg(&cfg)
                        .arg("run")
                        .stderr(Stdio::null())
                        .output();
                    if let Ok(out) = out {
                        let parsed = parse_lines(&String::from_utf8_lossy(&out.stdout));
                        lines.lock().unwrap().extend(parsed);
                    }
                    std::thread::sleep(every);
                }
            }));
        }
    }

    pub fn stop_timers(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.timers.drain(..) {
            let _ = t.join();
        }
    }

    /// Wait until `pred` holds on the lines so far (polling), or panic after `limit`.
    pub fn wait_lines(&self, what: &str, limit: Duration, pred: impl Fn(&[Line]) -> bool) {
        let start = Instant::now();
        loop {
            if pred(&self.lines.lock().unwrap()) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; lines:\n{}",
                self.lines
                    .lock()
                    .unwrap()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pool's objects: node => (pooled, weight).
    pub async fn pool(&self) -> BTreeMap<String, String> {
        let ks = Keyspace::new(NS);
        let pool: PoolKey = POOL.parse().unwrap();
        let prefix = ks.pool_prefix(&pool);
        self.etcd
            .dump()
            .await
            .into_iter()
            .filter_map(|(k, v)| {
                let node = k.strip_prefix(&prefix)?.trim_start_matches('/').to_string();
                let s: Value = serde_json::from_str(&v).ok()?;
                Some((node, s["pooled"].as_str()?.to_string()))
            })
            .collect()
    }

    /// Keys under a prefix of the namespace (`v1/rebootmgr/...`, `locks/...`).
    pub async fn keys_under(&self, prefix: &str) -> BTreeMap<String, String> {
        let full = format!("{NS}/{prefix}");
        self.etcd
            .dump()
            .await
            .into_iter()
            .filter(|(k, _)| k.starts_with(&full))
            .collect()
    }

    /// Open operations: id => record.
    pub async fn open_operations(&self) -> Vec<Value> {
        self.etcd
            .dump()
            .await
            .into_iter()
            .filter(|(k, _)| k.contains("/operations/"))
            .filter_map(|(_, v)| serde_json::from_str::<Value>(&v).ok())
            .filter(|r| r["state"] == "open")
            .collect()
    }

    /// No node is depooled unless an open operation holds it (and says why).
    pub async fn assert_no_unexplained_depool(&self) {
        let ops = self.open_operations().await;
        for (node, pooled) in self.pool().await {
            if pooled == "yes" {
                continue;
            }
            assert!(
                ops.iter().any(|o| o["subject"].to_string().contains(&node)
                    && o["objects"].to_string().contains(&node)),
                "{node} is depooled without an open operation: {ops:?}"
            );
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop_timers();
        if let Some((stop, watcher)) = self.watcher.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = watcher.join();
        }
    }
}

/// Before a node's run: if its services went down with a reboot, this is the boot, and
/// they come up again.
fn boot(powered: &Option<Arc<Powered>>, node: &str, dir: &std::path::Path) {
    let Some(p) = powered else { return };
    {
        let _turn = p.turn.lock().unwrap();
        if !dir.join("down.ack").exists() {
            return;
        }
        std::fs::remove_file(dir.join("down")).unwrap();
        std::fs::remove_file(dir.join("down.ack")).unwrap();
    }
    p.power.up(node);
}

/// A run in progress.
pub struct Running {
    pub child: Child,
    rx: std::sync::mpsc::Receiver<Value>,
}

impl Running {
    /// Read lines until one is `event`, or panic after `limit`.
    pub fn until(&self, event: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(v) if v["event"] == event => return v,
                Ok(_) => {}
                Err(e) => panic!("no {event} event within {limit:?}: {e}"),
            }
        }
    }

    /// SIGKILL the run (by its PID: a child this test started) and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait(mut self) -> i32 {
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

pub fn parse_lines(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The lines of one event, in order.
pub fn events<'a>(lines: &'a [Line], event: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// A line's time, in ms since 1970 (from its RFC 3339 `ts`).
pub fn ts_ms(line: &Line) -> u64 {
    conftool_rebootmgr::records::Stamp::parse(line["ts"].as_str().unwrap_or_default())
        .map(|s| s.unix_ms())
        .unwrap_or_default()
}
