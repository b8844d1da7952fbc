//! A real HAProxy on loopback, and tiny HTTP backends behind it, for pool-state tests.
//!
//! [`Backends`] are HTTP/1.1 servers on free 127.0.0.1 ports that answer every request with
//! `200` and their own name as the body, counting what they serve; a `GET /hold` waits for
//! [`Backends::release`] first (a request in flight, for tests that wait for sessions). [`HaProxy`] starts Debian's
//! `haproxy` (foreground, `-db`, one thread, unprivileged ports) with a generated config: one
//! frontend per backend, `balance roundrobin`, servers without health checks (so a server's
//! state changes only through the runtime API on [`HaProxy::socket`]), some of them starting
//! in maintenance (`disabled`), and `retries 0` (a server that refuses connections makes a
//! `503` at once, instead of after three 1-second retries). [`send`] pushes requests through
//! a frontend and tallies who answered.
//!
//! As with etcd members: the process is started by this harness, stopped by PID (SIGKILL) on
//! drop, carries a parent-death signal, and its files live in a [`crate::temp_dir`].
//!
//! Debian 12's haproxy 2.6, as seen from here:
//! - `set server <be>/<srv> state ready|drain|maint` and `set server <be>/<srv> weight <n>`
//!   answer an empty line on success (an error is text, e.g. `No such server.`).
//! - `show servers state` is a version line (`1`), a `# be_id be_name srv_id srv_name
//!   srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight ...` header, then a row
//!   per server ([`HaProxy::servers_state`] parses it by the header). `srv_admin_state` is a
//!   bit set: 1 = forced maintenance (runtime `state maint`), 4 = maintenance from the config,
//!   8 = drain. A server that is `disabled` in the config shows `5`; after `state ready` it
//!   shows `4` and takes traffic (the config bit stays); `srv_op_state` 2 = running, 0 =
//!   stopped. `srv_uweight` is the current weight, `srv_iweight` the config's.
//!
//! ```no_run
//! use conftool_testkit::haproxy::{send, Backends, BackendSpec, HaProxy, ServerSpec};
//! let b = Backends::start(&["mw1001", "mw1002"]);
//! let ha = HaProxy::start(&[BackendSpec {
//!     name: "be".into(),
//!     servers: ["mw1001", "mw1002"]
//!         .iter()
//!         .map(|n| ServerSpec { name: n.to_string(), addr: b.addr(n), weight: 10, maint: false })
//!         .collect(),
//! }]);
//! ha.command("set server be/mw1002 state maint");
//! assert_eq!(send(ha.frontend("be"), 10).get("mw1001"), Some(&10));
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cleanup::{self, TestDir};
use crate::{free_port, set_parent_death_signal};

/// The haproxy binary: `$CONFTOOL_TEST_HAPROXY`, else Debian's `/usr/sbin/haproxy`. Panics,
/// saying how to get it, if `haproxy -v` does not run.
pub fn haproxy_binary() -> PathBuf {
    let bin = std::env::var_os("CONFTOOL_TEST_HAPROXY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"));
    let ok = Command::new(&bin)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{} -v` does not run: install Debian's haproxy (scripts/deps.sh does) or set \
         CONFTOOL_TEST_HAPROXY to a haproxy binary",
        bin.display()
    );
    bin
}

// ---------------------------------------------------------------------------------------------
// Backends

struct Backend {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    gate: Arc<Gate>,
    /// The accept loop and its stop flag, while the backend listens.
    running: Mutex<Option<(Arc<AtomicBool>, JoinHandle<()>)>>,
}

/// Tiny HTTP/1.1 servers on 127.0.0.1, each answering `200` with its own name as the body
/// (and `Connection: close`), counting the requests it served. Stopped when dropped.
pub struct Backends {
    servers: BTreeMap<String, Backend>,
}

impl Backends {
    /// Start one server per name, each on its own free loopback port.
    pub fn start(names: &[&str]) -> Backends {
        let servers = names
            .iter()
            .map(|name| {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback backend");
                let addr = listener.local_addr().expect("backend address");
                let hits = Arc::new(AtomicU64::new(0));
                let gate = Arc::new(Gate::default());
                let running = serve(listener, name, &hits, &gate);
                let b = Backend {
                    addr,
                    hits,
                    gate,
                    running: Mutex::new(Some(running)),
                };
                (name.to_string(), b)
            })
            .collect();
        Backends { servers }
    }

    fn get(&self, name: &str) -> &Backend {
        self.servers
            .get(name)
            .unwrap_or_else(|| panic!("no backend {name:?} (have {:?})", self.names()))
    }

    /// The backends' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.servers.keys().map(String::as_str).collect()
    }

    /// Where backend `name` listens.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.get(name).addr
    }

    /// How many requests backend `name` has answered (since start or [`Backends::reset`]).
    pub fn hits(&self, name: &str) -> u64 {
        self.get(name).hits.load(Ordering::SeqCst)
    }

    /// Every backend's hits, by name.
    pub fn all_hits(&self) -> BTreeMap<String, u64> {
        self.servers
            .iter()
            .map(|(n, b)| (n.clone(), b.hits.load(Ordering::SeqCst)))
            .collect()
    }

    /// Zero every backend's hit counter.
    pub fn reset(&self) {
        for b in self.servers.values() {
            b.hits.store(0, Ordering::SeqCst);
        }
    }

    /// How many `GET /hold` requests backend `name` is holding (waiting for
    /// [`Backends::release`]).
    pub fn held(&self, name: &str) -> u64 {
        self.get(name).gate.lock().0
    }

    /// Let backend `name`'s held requests be answered, and every later `/hold` at once.
    pub fn release(&self, name: &str) {
        let g = &self.get(name).gate;
        g.lock().1 = true;
        g.cv.notify_all();
    }

    /// Stop backend `name` listening (connections to it are refused from now on).
    pub fn stop(&self, name: &str) {
        let b = self.get(name);
        let running = b.running.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((stop, handle)) = running {
            stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept; the loop sees the flag and drops the listener.
            let _ = TcpStream::connect_timeout(&b.addr, Duration::from_secs(1));
            let _ = handle.join();
        }
    }

    /// Start a stopped backend again on its old port (no-op if it runs).
    pub fn start_again(&self, name: &str) {
        let b = self.get(name);
        let mut running = b.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some() {
            return;
        }
        // std sets SO_REUSEADDR on Unix, so the old port is free again at once; retry a little
        // in case the kernel is slow to release it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(b.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() > deadline => {
                    panic!("backend {name} cannot listen on {} again: {e}", b.addr)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        *running = Some(serve(listener, name, &b.hits, &b.gate));
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for n in names {
            self.stop(&n);
        }
    }
}

/// Run the accept loop of one backend in a thread; each connection is answered in its own.
fn serve(
    listener: TcpListener,
    name: &str,
    hits: &Arc<AtomicU64>,
    gate: &Arc<Gate>,
) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (name, hits, flag) = (name.to_string(), Arc::clone(hits), Arc::clone(&stop));
    let gate = Arc::clone(gate);
    let handle = std::thread::Builder::new()
        .name(format!("backend-{name}"))
        .spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        let (name, hits, gate) =
                            (name.clone(), Arc::clone(&hits), Arc::clone(&gate));
                        let _ = std::thread::Builder::new()
                            .name(format!("backend-{name}-conn"))
                            .spawn(move || answer(stream, &name, &hits, &gate));
                    }
                    // EMFILE and the like: do not spin.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
        .expect("spawn a backend thread");
    (stop, handle)
}

/// Where `GET /hold` requests wait: how many wait, and whether the gate is open.
#[derive(Default)]
struct Gate {
    state: Mutex<(u64, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until the gate opens (at most 30 s: a forgotten release must not hang a test).
    fn pass(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut st = self.lock();
        st.0 += 1;
        while !st.1 && Instant::now() < deadline {
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(100))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        st.0 -= 1;
    }
}

/// Read one request's head and answer it: 200, body = `name`, then close (a `GET /hold`
/// after its backend's gate opens).
fn answer(mut stream: TcpStream, name: &str, hits: &AtomicU64, gate: &Gate) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return, // closed (or a wake-up connect) before a whole request
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
        if req.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if req.len() > 64 * 1024 {
            return;
        }
    }
    if req.starts_with(b"GET /hold ") {
        gate.pass();
    }
    // Counted before the answer leaves, so a client that has its response sees the count.
    hits.fetch_add(1, Ordering::SeqCst);
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{name}",
        name.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // Let the peer read everything before the socket goes (no RST over unread data).
    let _ = stream.read(&mut buf);
}

// ---------------------------------------------------------------------------------------------
// HAProxy

/// One haproxy backend: a frontend of its own, `balance roundrobin`, these servers.
#[derive(Clone, Debug)]
pub struct BackendSpec {
    /// The backend's name (also what [`HaProxy::frontend`] takes).
    pub name: String,
    /// Its servers, in config order.
    pub servers: Vec<ServerSpec>,
}

/// One server line: `server <name> <addr> weight <weight> [disabled]`, no health check.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The server's name (`set server <backend>/<name> ...`).
    pub name: String,
    /// Where it listens (e.g. [`Backends::addr`]).
    pub addr: SocketAddr,
    /// Its initial weight (0..=256).
    pub weight: u32,
    /// Starts in maintenance (`disabled`) rather than ready.
    pub maint: bool,
}

/// A real haproxy process on loopback; see the module docs. Stopped by PID when dropped.
pub struct HaProxy {
    child: Option<Child>,
    frontends: BTreeMap<String, SocketAddr>,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    dir: TestDir,
}

impl HaProxy {
    /// Write the config (a free port per frontend), start haproxy and wait until its runtime
    /// API answers `show info`. Retries with new ports on a lost free-port race.
    pub fn start(spec: &[BackendSpec]) -> HaProxy {
        let bin = haproxy_binary();
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let dir = cleanup::temp_dir("haproxy-");
            let socket = dir.path().join("admin.sock");
            // sun_path is 108 bytes.
            assert!(
                socket.as_os_str().len() < 100,
                "haproxy socket path too long for a unix socket: {} (set TMPDIR shorter)",
                socket.display()
            );
            let frontends: BTreeMap<String, SocketAddr> = spec
                .iter()
                .map(|b| {
                    let port = free_port();
                    (b.name.clone(), SocketAddr::from(([127, 0, 0, 1], port)))
                })
                .collect();
            let config = dir.path().join("haproxy.cfg");
            std::fs::write(&config, render_config(spec, &frontends, &socket))
                .expect("write haproxy.cfg");
            let mut ha = HaProxy {
                child: None,
                frontends,
                config,
                socket,
                log: dir.path().join("haproxy.log"),
                dir,
            };
            ha.spawn(&bin);
            match ha.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return ha,
                Err(e) => last_err = e,
            }
            ha.kill();
        }
        panic!("haproxy did not start: {last_err}");
    }

    fn spawn(&mut self, bin: &Path) {
        let log = std::fs::File::create(&self.log).expect("create haproxy.log");
        let log2 = log.try_clone().expect("clone haproxy.log handle");
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(&self.config)
            .arg("-db")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        set_parent_death_signal(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        cleanup::register(child.id());
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            cleanup::unregister(child.id());
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "haproxy exited ({status}); {}:\n{}",
                        self.log.display(),
                        self.log_text()
                    ));
                }
            }
            if let Ok(out) = self.try_command("show info", Duration::from_secs(1)) {
                let frontends_up = self
                    .frontends
                    .values()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
                if out.contains("Name: HAProxy") && frontends_up {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "haproxy's runtime API ({}) did not answer `show info` within {limit:?}; \
                     see {}:\n{}",
                    self.socket.display(),
                    self.log.display(),
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The frontend (127.0.0.1:port) whose default backend is `backend`.
    pub fn frontend(&self, backend: &str) -> SocketAddr {
        *self
            .frontends
            .get(backend)
            .unwrap_or_else(|| panic!("no haproxy backend {backend:?}"))
    }

    /// The runtime API's unix socket (`level admin`).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The generated config file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// haproxy's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// haproxy's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send one runtime-API command (`cmd\n`) and return everything haproxy answers (read
    /// until it closes). Panics if the socket cannot be used.
    pub fn command(&self, cmd: &str) -> String {
        self.try_command(cmd, Duration::from_secs(5))
            .unwrap_or_else(|e| {
                panic!(
                    "haproxy runtime API {}: `{cmd}`: {e}; see {}",
                    self.socket.display(),
                    self.log.display()
                )
            })
    }

    fn try_command(&self, cmd: &str, timeout: Duration) -> std::io::Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(format!("{cmd}\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// `show servers state` parsed: one map per server, keyed by the header's column names
    /// (`be_name`, `srv_name`, `srv_op_state`, `srv_admin_state`, `srv_uweight`, ...).
    pub fn servers_state(&self) -> Vec<BTreeMap<String, String>> {
        parse_servers_state(&self.command("show servers state"))
    }

    /// One server's row of `show servers state` (see [`HaProxy::servers_state`]); panics,
    /// showing the whole output, if haproxy has no such server.
    pub fn server_state(&self, backend: &str, server: &str) -> BTreeMap<String, String> {
        let out = self.command("show servers state");
        parse_servers_state(&out)
            .into_iter()
            .find(|r| {
                r.get("be_name").map(String::as_str) == Some(backend)
                    && r.get("srv_name").map(String::as_str) == Some(server)
            })
            .unwrap_or_else(|| panic!("no {backend}/{server} in `show servers state`:\n{out}"))
    }

    /// Stop haproxy (by PID) and start it again with the same config and ports: every
    /// server's state and weight are the config's again.
    pub fn restart(&mut self) {
        self.kill();
        let bin = haproxy_binary();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.spawn(&bin);
            match self.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("haproxy did not restart: {e}"),
                // The old listeners may take a moment to go; try again.
                Err(_) => {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        self.kill();
    }
}

fn render_config(
    spec: &[BackendSpec],
    frontends: &BTreeMap<String, SocketAddr>,
    socket: &Path,
) -> String {
    use std::fmt::Write as _;
    let mut c = String::new();
    let _ = write!(
        c,
        "global\n\
         \x20   nbthread 1\n\
         \x20   stats socket {} mode 600 level admin expose-fd listeners\n\
         \n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 5s\n\
         \x20   timeout server 5s\n\
         \x20   # A refused connection is a 503 at once (the default 3 retries wait 1s each).\n\
         \x20   retries 0\n",
        socket.display()
    );
    for b in spec {
        let _ = write!(
            c,
            "\nfrontend fe_{name}\n\
             \x20   bind {addr}\n\
             \x20   default_backend {name}\n\
             \nbackend {name}\n\
             \x20   balance roundrobin\n",
            name = b.name,
            addr = frontends[&b.name],
        );
        for s in &b.servers {
            let _ = writeln!(
                c,
                "    server {} {} weight {}{}",
                s.name,
                s.addr,
                s.weight,
                if s.maint { " disabled" } else { "" }
            );
        }
    }
    c
}

/// Parse `show servers state` output: a version line (`1`), a `# col col ...` header, then
/// one space-separated row per server.
pub fn parse_servers_state(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut cols: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if let Some(h) = line.strip_prefix('#') {
            cols = h.split_whitespace().map(str::to_string).collect();
        } else if !cols.is_empty() && !line.is_empty() {
            rows.push(
                cols.iter()
                    .cloned()
                    .zip(line.split_whitespace().map(str::to_string))
                    .collect(),
            );
        }
    }
    rows
}

/// One runtime-API command on the socket at `path` (for a thread that samples HAProxy while
/// the test drives it): what haproxy answered, or an empty string if the socket failed.
pub fn command_at(path: &Path, cmd: &str) -> String {
    let run = || -> std::io::Result<String> {
        let mut s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(format!("{cmd}\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    run().unwrap_or_default()
}

/// `n` sequential HTTP GETs through `frontend`, a new connection each, tallied by response
/// body (the backend's name). Failures are tallied as `error:connect`, `error:io`,
/// `error:http-<status>` (e.g. `error:http-503` when no server is up) or `error:malformed`.
pub fn send(frontend: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for _ in 0..n {
        *tally.entry(get_once(frontend)).or_insert(0) += 1;
    }
    tally
}

fn get_once(frontend: SocketAddr) -> String {
    get(frontend, "/")
}

/// One HTTP GET of `path` through `frontend` on a new connection: the body (the name of the
/// backend that answered), or `error:...` as [`send`] tallies failures.
pub fn get(frontend: SocketAddr, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&frontend, Duration::from_secs(2)) else {
        return "error:connect".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {frontend}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return "error:io".into();
    }
    let mut resp = Vec::new();
    if s.read_to_end(&mut resp).is_err() && resp.is_empty() {
        return "error:io".into();
    }
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return "error:malformed".into();
    };
    match head.split_whitespace().nth(1) {
        Some("200") => body.to_string(),
        Some(code) => format!("error:http-{code}"),
        None => "error:malformed".into(),
    }
}

/// HAProxy's servers of `backend` out of rotation now (maintenance or drain, as
/// conftool-lb-agent sets them), by the runtime API at `socket` (a sampler thread's view).
pub fn out_of_rotation(socket: &Path, backend: &str) -> Vec<String> {
    let out = command_at(socket, &format!("show servers state {backend}"));
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

// ---------------------------------------------------------------------------------------------
// Traffic

/// A client sending requests through a frontend one after the other (`pause` between two),
/// each on a new connection ([`get`]), in a thread of its own until [`Traffic::stop`] (or
/// drop): what "no request failed during ..." is counted with.
pub struct Traffic {
    tally: Arc<Mutex<BTreeMap<String, usize>>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Traffic {
    /// Start sending `GET /` through `frontend`.
    pub fn start(frontend: SocketAddr, pause: Duration) -> Traffic {
        let tally = Arc::new(Mutex::new(BTreeMap::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s, f) = (Arc::clone(&tally), Arc::clone(&sent), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("traffic".into())
            .spawn(move || {
                while !f.load(Ordering::SeqCst) {
                    let answer = get(frontend, "/");
                    *t.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(answer)
                        .or_insert(0) += 1;
                    // Counted once tallied: whoever sees `sent` move sees its answer too.
                    s.fetch_add(1, Ordering::SeqCst);
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                }
            })
            .expect("spawn the traffic thread");
        Traffic {
            tally,
            sent,
            stop,
            handle: Mutex::new(Some(handle)),
        }
    }

    /// Requests answered (or failed) so far.
    pub fn requests(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Every answer so far: the backend's name, or `error:...` (see [`send`]), and how often.
    pub fn tally(&self) -> BTreeMap<String, usize> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests that failed so far, by kind (`error:http-503`, `error:connect`, ...).
    pub fn failures(&self) -> BTreeMap<String, usize> {
        let mut t = self.tally();
        t.retain(|k, _| k.starts_with("error:"));
        t
    }

    /// How many requests failed so far.
    pub fn failed(&self) -> usize {
        self.failures().values().sum()
    }

    /// Wait until `n` more requests than `since` were sent (at most `limit`): whether they were.
    pub fn wait_requests(&self, since: u64, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.requests() < since + n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Stop sending (after the request in flight).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop();
    }
}
