//! Test harness for conftool-rs: throwaway etcd members on loopback.
//!
//! Every test that touches etcd starts its own server (or 3-member cluster) from Debian's
//! `etcd-server` package: loopback only, free ports, a temp data dir, fast election timings.
//! Members are stopped by PID with SIGKILL when dropped, and carry a parent-death signal so a
//! killed test binary leaves nothing behind. Nothing here ever signals a process it did not
//! start. Their data dirs (and the tests' own, from [`temp_dir`]) live in one run directory
//! that is removed even when the run is interrupted, or swept by the next run if it was
//! killed ([`cleanup`]).
//!
//! Misbehaving members, for failover tests: [`EtcdCluster::pause_member`] freezes a member with
//! SIGSTOP until its guard is dropped (a stalled disk, a hung process), and [`BlackHole`] is a
//! listener that accepts connections and never answers (a black-holed host).
//!
//! Load balancers, for pool-state tests: [`haproxy`] starts a real HAProxy (Debian's package)
//! in front of tiny HTTP [`Backends`], driven through its runtime API, and sends [`Traffic`]
//! through it; with the feature `lb`, `lb_agent` runs the real load-balancer agent between
//! etcd and that HAProxy.
//!
//! ```no_run
//! # async fn demo() {
//! let etcd = conftool_testkit::Etcd::start();
//! let before = etcd.dump().await;
//! // ... run something against etcd.endpoint() ...
//! assert_eq!(before, etcd.dump().await);
//! # }
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions};

pub mod cleanup;
pub mod haproxy;
#[cfg(feature = "lb")]
pub mod lb_agent;
mod stall;
pub mod tls;
pub use cleanup::{run_dir, temp_dir, TestDir};
pub use haproxy::{haproxy_binary, send, BackendSpec, Backends, HaProxy, ServerSpec, Traffic};
pub use stall::{BlackHole, Paused};
pub use tls::TlsFiles;

/// The etcd binary: `$CONFTOOL_TEST_ETCD`, else Debian's `/usr/bin/etcd`, else `etcd` on PATH.
pub fn etcd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CONFTOOL_TEST_ETCD") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/bin/etcd");
    if debian.exists() {
        return debian.to_path_buf();
    }
    PathBuf::from("etcd")
}

/// A free TCP port on 127.0.0.1 (bound, then released; the caller retries on a lost race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// One etcd member process that this harness started.
struct Member {
    name: String,
    scheme: &'static str,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }
    /// Where the member's stderr goes (beside its data dir, in the cluster's temp dir).
    fn log_path(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn spawn(&mut self, initial_cluster: &str, extra: &[String]) {
        let mut cmd = Command::new(etcd_binary());
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.client_url())
            .arg("--advertise-client-urls")
            .arg(self.client_url())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(initial_cluster)
            .arg("--initial-cluster-token")
            .arg(format!("conftool-test-{}", std::process::id()))
            .args(["--heartbeat-interval", "10", "--election-timeout", "100"])
            .args(["--logger", "zap", "--log-level", "error"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // A file, not a pipe nobody reads: a chatty member must never block on it.
            .stderr(
                std::fs::File::create(self.log_path())
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        set_parent_death_signal(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", etcd_binary().display()));
        cleanup::register(child.id());
        self.child = Some(child);
    }

    /// SIGKILL the member (only the process this harness started) and reap it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            cleanup::unregister(child.id());
        }
    }

    /// The member's stderr if it has exited, for a useful panic message.
    fn exited_with(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Ok(mut f) = std::fs::File::open(self.log_path()) {
                    let _ = f.read_to_string(&mut err);
                }
                Some(format!("{status}: {err}"))
            }
            _ => None,
        }
    }
}

#[allow(unsafe_code)]
pub(crate) fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A throwaway etcd cluster of one or more members on loopback.
pub struct EtcdCluster {
    members: Vec<Member>,
    tls: Option<TlsFiles>,
    extra: Vec<String>,
    initial_cluster: String,
    _dir: TestDir,
}

/// A single-member throwaway etcd; see [`EtcdCluster`].
pub type Etcd = EtcdCluster;

impl EtcdCluster {
    /// Start one member and wait until it serves requests.
    pub fn start() -> Self {
        Self::start_with(1, &[])
    }

    /// Start `n` members (1 or 3, usually) with extra etcd flags, and wait until the cluster
    /// serves requests. Retries on a lost free-port race.
    pub fn start_with(n: usize, extra: &[&str]) -> Self {
        Self::start_inner(n, extra, None)
    }

    /// Start one member that also serves etcd's v2 API (`--enable-v2=true`, which Debian's
    /// etcd 3.4 has and 3.6 drops), as a Python conftool deployment uses it: its keys are
    /// under `endpoint()/v2/keys/...`, separate from the v3 keyspace.
    pub fn start_v2() -> Self {
        Self::start_with(1, &["--enable-v2=true"])
    }

    /// Start one member serving clients over TLS only, requiring client certificates signed
    /// by `tls.ca` (`--client-cert-auth`).
    pub fn start_tls(tls: &TlsFiles, extra: &[&str]) -> Self {
        Self::start_inner(1, extra, Some(tls.clone()))
    }

    fn start_inner(n: usize, extra: &[&str], tls: Option<TlsFiles>) -> Self {
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(t) = &tls {
            for (flag, path) in [
                ("--cert-file", &t.server_cert),
                ("--key-file", &t.server_key),
                ("--trusted-ca-file", &t.ca),
            ] {
                extra.push(flag.to_string());
                extra.push(path.display().to_string());
            }
            extra.push("--client-cert-auth".to_string());
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let dir = cleanup::temp_dir("etcd-");
            let mut members: Vec<Member> = (0..n)
                .map(|i| Member {
                    name: format!("m{i}"),
                    scheme,
                    client_port: free_port(),
                    peer_port: free_port(),
                    data_dir: dir.path().join(format!("m{i}")),
                    child: None,
                })
                .collect();
            let initial_cluster = members
                .iter()
                .map(|m| format!("{}={}", m.name, m.peer_url()))
                .collect::<Vec<_>>()
                .join(",");
            for m in &mut members {
                m.spawn(&initial_cluster, &extra);
            }
            let mut cluster = EtcdCluster {
                members,
                tls: tls.clone(),
                extra: extra.clone(),
                initial_cluster,
                _dir: dir,
            };
            match cluster.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return cluster,
                Err(e) => last_err = e,
            }
        }
        panic!("etcd did not start: {last_err}");
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let urls = self.endpoints();
        let opts = self.connect_options();
        loop {
            for m in &mut self.members {
                if let Some(why) = m.exited_with() {
                    return Err(format!("member {} exited: {why}", m.name));
                }
            }
            if urls.iter().all(|u| {
                let addr = u.split("://").nth(1).unwrap_or(u);
                TcpStream::connect(addr).is_ok()
            }) && block_on(async {
                let mut c = Client::connect(urls.clone(), opts.clone()).await.ok()?;
                c.get("health-probe", None).await.ok()
            })
            .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("not healthy in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Client URL of the first member.
    pub fn endpoint(&self) -> String {
        self.members[0].client_url()
    }

    /// Client URLs of all members, comma-separated (the `--endpoints` form).
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    /// Client URLs of all members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// Client URL of member `i`.
    pub fn member_endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// PID of member `i`, if it runs.
    pub fn member_pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILL member `i` (a process this harness started).
    pub fn kill_member(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Restart member `i` on its old ports with its old data dir.
    pub fn restart_member(&mut self, i: usize) {
        self.members[i].kill();
        let (ic, extra) = (self.initial_cluster.clone(), self.extra.clone());
        self.members[i].spawn(&ic, &extra);
    }

    /// Client options: TLS with the client certificate, if this cluster serves TLS.
    pub fn connect_options(&self) -> Option<ConnectOptions> {
        let t = self.tls.as_ref()?;
        let read = |p: &PathBuf| std::fs::read(p).expect("read TLS file");
        let tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read(&t.ca)))
            .identity(Identity::from_pem(
                read(&t.client_cert),
                read(&t.client_key),
            ));
        Some(ConnectOptions::new().with_tls(tls))
    }

    /// A client connected to member `i` only (no fail-over to the others).
    pub async fn member_client(&self, i: usize) -> Result<Client, etcd_client::Error> {
        Client::connect([self.member_endpoint(i)], self.connect_options()).await
    }

    /// Whether member `i` runs (was started and has not been killed or exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        let m = &mut self.members[i];
        m.child.is_some() && m.exited_with().is_none()
    }

    /// The index of the current leader, as the running members see it: the member whose
    /// maintenance status says its own member id is the leader's. Polls until one is found or
    /// `limit` passes (`None`: no leader, e.g. no quorum).
    pub fn leader(&mut self, limit: Duration) -> Option<usize> {
        let deadline = Instant::now() + limit;
        loop {
            for i in 0..self.members.len() {
                if !self.is_running(i) {
                    continue;
                }
                let is_leader = block_on(async {
                    let ask = async {
                        let mut c = self.member_client(i).await.ok()?;
                        let st = c.status().await.ok()?;
                        Some(st.header()?.member_id() == st.leader() && st.leader() != 0)
                    };
                    tokio::time::timeout(Duration::from_millis(500), ask)
                        .await
                        .ok()
                        .flatten()
                });
                if is_leader == Some(true) {
                    return Some(i);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until member `i` alone answers a linearizable read (so it has rejoined a cluster
    /// with quorum and caught up), polling for at most `limit`.
    pub fn wait_member_serving(&mut self, i: usize, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(why) = self.members[i].exited_with() {
                return Err(format!("member {} exited: {why}", self.members[i].name));
            }
            let ok = block_on(async {
                let probe = async {
                    let mut c = self.member_client(i).await.ok()?;
                    c.get("health-probe", None).await.ok()
                };
                tokio::time::timeout(Duration::from_millis(500), probe)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "member {} does not serve linearizable reads after {limit:?}",
                    self.members[i].name
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The whole keyspace read through member `i` only, with each key's mod revision:
    /// key -> (value, mod revision). `None` if no answer within `limit`.
    pub async fn dump_via(
        &self,
        i: usize,
        limit: Duration,
    ) -> Option<BTreeMap<String, (String, i64)>> {
        let read = async {
            let mut c = self.member_client(i).await.ok()?;
            let resp = c
                .get(vec![0u8], Some(GetOptions::new().with_from_key()))
                .await
                .ok()?;
            Some(
                resp.kvs()
                    .iter()
                    .map(|kv| {
                        (
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            (
                                String::from_utf8_lossy(kv.value()).into_owned(),
                                kv.mod_revision(),
                            ),
                        )
                    })
                    .collect(),
            )
        };
        tokio::time::timeout(limit, read).await.ok().flatten()
    }

    /// A connected client (all members as endpoints).
    pub async fn client(&self) -> Client {
        Client::connect(self.endpoints(), self.connect_options())
            .await
            .expect("connect to test etcd")
    }

    /// A client authenticated as an etcd user.
    pub async fn client_as(&self, user: &str, password: &str) -> Client {
        let opts = self
            .connect_options()
            .unwrap_or_default()
            .with_user(user, password);
        Client::connect(self.endpoints(), Some(opts))
            .await
            .expect("connect to test etcd as user")
    }

    /// The whole keyspace as key -> value (both as lossy UTF-8), for before/after comparisons.
    pub async fn dump(&self) -> BTreeMap<String, String> {
        dump_with(&mut self.client().await).await
    }

    /// etcd's current revision (bumped by every write).
    pub async fn revision(&self) -> i64 {
        let mut c = self.client().await;
        let resp = c.get("revision-probe", None).await.expect("get");
        resp.header().map(|h| h.revision()).unwrap_or_default()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

/// The whole keyspace as seen by `client` (e.g. one authenticated as root).
pub async fn dump_with(client: &mut Client) -> BTreeMap<String, String> {
    // Big fleets are more than the client's default 4 MiB per response.
    let resp = client
        .kv_client()
        .max_decoding_message_size(512 << 20)
        .get(vec![0u8], Some(GetOptions::new().with_from_key()))
        .await
        .expect("range read of the whole keyspace");
    resp.kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect()
}

/// Run a future to completion on a private runtime in its own thread, so that the sync helpers
/// work both from plain tests and from inside a tokio test.
fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("probe thread")
    })
}
