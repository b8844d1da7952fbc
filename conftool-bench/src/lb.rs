//! `conftool-bench lb`: the load-balancer agent at fleet scale (issue 10), measured, never
//! asserted. One etcd, one real HAProxy with `--pools` backends of `--servers` servers each
//! (addresses that are never connected to: no traffic, only state), one
//! `conftool-lb-agent` following every pool.
//!
//! - **Latency**: one object at a time is toggled between `pooled: yes` and `no`, by an
//!   etcd-client put (and, fewer samples, by a `confctl` process); the clock stops when
//!   HAProxy's own `show servers state` shows the server drained or ready again (polled in
//!   a tight loop over the runtime socket, which competes with the agent for the 2 cores:
//!   the figures are an upper bound). Next to it, etcd's floor: the same put until a plain
//!   etcd-client watch has the event.
//! - **Throughput**: `--changes` toggles streamed (8 puts in flight), until HAProxy shows
//!   the final state of every server; the agent's CPU time over that stretch (from
//!   `/proc/<pid>/stat`) and its peak RSS (`VmHWM`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use conftool_lb::runtime::Runtime;
use conftool_lb::AdminState;
use conftool_testkit::haproxy::{BackendSpec, HaProxy, ServerSpec};
use conftool_testkit::EtcdCluster;
use etcd_client::{Client, WatchOptions};
use futures::stream::{self, StreamExt};

use crate::suite::Tools;

/// How long one change may take before the run is called broken.
const PATIENCE: Duration = Duration::from_secs(30);

/// Options of `conftool-bench lb`.
pub(crate) struct Options {
    pub pools: usize,
    pub servers: usize,
    pub samples: usize,
    pub confctl_samples: usize,
    pub changes: usize,
}

fn backend(p: usize) -> String {
    format!("be_s{p:02}")
}
fn node(s: usize) -> String {
    format!("n{s:04}")
}
fn key(p: usize, s: usize) -> String {
    format!("/v1/pools/eqiad/lb/s{p:02}/{}", node(s))
}
fn value(pooled: bool) -> &'static str {
    if pooled {
        r#"{"pooled":"yes","weight":1}"#
    } else {
        r#"{"pooled":"no","weight":1}"#
    }
}

pub(crate) fn main(tools: &Tools, opts: &Options) -> anyhow::Result<()> {
    let agent_bin = tools.confctl.with_file_name("conftool-lb-agent");
    ensure!(
        agent_bin.is_file(),
        "{} is missing: build conftool-cli",
        agent_bin.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let etcd = EtcdCluster::start_with(1, &[]);
    let ha = HaProxy::start(
        &(0..opts.pools)
            .map(|p| BackendSpec {
                name: backend(p),
                servers: (0..opts.servers)
                    .map(|s| ServerSpec {
                        name: node(s),
                        addr: "127.0.0.1:9".parse().expect("address"),
                        weight: 1,
                        maint: true,
                    })
                    .collect(),
            })
            .collect::<Vec<_>>(),
    );
    let scratch = tempfile::Builder::new()
        .prefix("conftool-bench-lb-")
        .tempdir()?;
    rt.block_on(run(
        &etcd,
        &ha,
        tools,
        &agent_bin,
        scratch.path().to_path_buf(),
        opts,
    ))
}

async fn run(
    etcd: &EtcdCluster,
    ha: &HaProxy,
    tools: &Tools,
    agent_bin: &std::path::Path,
    dir: PathBuf,
    opts: &Options,
) -> anyhow::Result<()> {
    let url = etcd.endpoint();
    let client = Client::connect([url.as_str()], None).await?;
    let mut kv = client.kv_client();
    for p in 0..opts.pools {
        kv.put(
            format!("/v1/services/lb/s{p:02}"),
            r#"{"port":80,"default_values":{"pooled":"yes","weight":1},"depool_threshold":0.0}"#,
            None,
        )
        .await?;
        for s in 0..opts.servers {
            kv.put(key(p, s), value(true), None).await?;
        }
    }
    let mut cfg = format!("haproxy_socket: {}\npools:\n", ha.socket().display());
    for p in 0..opts.pools {
        cfg += &format!(
            "  - {{dc: eqiad, cluster: lb, service: s{p:02}, backend: {}}}\n",
            backend(p)
        );
    }
    std::fs::write(dir.join("agent.yaml"), cfg)?;
    let mut agent = std::process::Command::new(agent_bin)
        .arg("--agent-config")
        .arg(dir.join("agent.yaml"))
        .env("CONFTOOL_ENDPOINTS", &url)
        .env_remove("CONFTOOL_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log"))?)
        .spawn()
        .context("start conftool-lb-agent")?;
    let pid = agent.id();
    let result = measure(&client, ha, tools, pid, opts, &url).await;
    let _ = agent.kill();
    let _ = agent.wait();
    result
}

/// Whether HAProxy shows every server of `want` in the state wanted (true: ready).
async fn converged(
    rt: &Runtime,
    opts: &Options,
    want: &BTreeMap<(usize, usize), bool>,
) -> anyhow::Result<bool> {
    for p in 0..opts.pools {
        let servers = rt.servers(&backend(p)).await?;
        for s in &servers {
            let idx: usize = s.name.as_str()[1..].parse()?;
            let ready = s.admin() == AdminState::Ready;
            if want.get(&(p, idx)).is_some_and(|w| *w != ready) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

async fn wait_server(rt: &Runtime, p: usize, s: usize, ready: bool) -> anyhow::Result<Instant> {
    let t0 = Instant::now();
    loop {
        let servers = rt.servers(&backend(p)).await?;
        if servers
            .iter()
            .any(|x| x.name.as_str() == node(s) && (x.admin() == AdminState::Ready) == ready)
        {
            return Ok(Instant::now());
        }
        if t0.elapsed() > PATIENCE {
            bail!(
                "{}/{} not {} within {PATIENCE:?}",
                backend(p),
                node(s),
                if ready { "ready" } else { "drained" }
            );
        }
    }
}

async fn measure(
    client: &Client,
    ha: &HaProxy,
    tools: &Tools,
    pid: u32,
    opts: &Options,
    url: &str,
) -> anyhow::Result<()> {
    let rt = Runtime::new(ha.socket());
    let mut want: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    for p in 0..opts.pools {
        for s in 0..opts.servers {
            want.insert((p, s), true);
        }
    }
    let t0 = Instant::now();
    while !converged(&rt, opts, &want).await? {
        ensure!(
            t0.elapsed() < PATIENCE,
            "the agent did not bring HAProxy in line"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{} servers in {} pools: agent start to every server ready in HAProxy: {:.0} ms",
        opts.pools * opts.servers,
        opts.pools,
        t0.elapsed().as_secs_f64() * 1000.0
    );

    // Floor: put → etcd-client watch.
    let mut kv = client.kv_client();
    let mut watch = client
        .watch_client()
        .watch("/v1/pools/", Some(WatchOptions::new().with_prefix()))
        .await?;
    let mut floor = Vec::new();
    let mut agent_put = Vec::new();
    let mut agent_confctl = Vec::new();
    for i in 0..opts.samples {
        let (p, s) = (i % opts.pools, (i * 7) % opts.servers);
        let ready = !want[&(p, s)];
        want.insert((p, s), ready);
        let t = Instant::now();
        kv.put(key(p, s), value(ready), None).await?;
        // The floor's event (the watch sees every put, in order).
        loop {
            let m = tokio::time::timeout(PATIENCE, watch.message()).await??;
            if m.is_some_and(|m| !m.events().is_empty()) {
                break;
            }
        }
        floor.push(t.elapsed());
        let at = wait_server(&rt, p, s, ready).await?;
        agent_put.push(at - t);
    }
    for i in 0..opts.confctl_samples {
        let (p, s) = ((i * 3) % opts.pools, (i * 11 + 5) % opts.servers);
        let ready = !want[&(p, s)];
        want.insert((p, s), ready);
        let action = if ready {
            "set/pooled=yes"
        } else {
            "set/pooled=no"
        };
        let t = Instant::now();
        let st = tokio::process::Command::new(&tools.confctl)
            .args([
                "select",
                &format!("dc=eqiad,cluster=lb,service=s{p:02},name={}", node(s)),
                action,
            ])
            .env("CONFTOOL_ENDPOINTS", url)
            .env_remove("CONFTOOL_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .stdin(std::process::Stdio::null())
            .spawn()?;
        let at = wait_server(&rt, p, s, ready).await?;
        agent_confctl.push(at - t);
        let out = st.wait_with_output().await?;
        ensure!(out.status.success(), "confctl failed");
    }
    drop(watch);

    // Throughput.
    let cpu0 = cpu_ticks(pid)?;
    let t = Instant::now();
    let mut writes = Vec::new();
    for i in 0..opts.changes {
        let (p, s) = ((i * 13) % opts.pools, (i * 31 + i / 97) % opts.servers);
        let ready = !want[&(p, s)];
        want.insert((p, s), ready);
        writes.push((key(p, s), value(ready)));
    }
    let results: Vec<_> = stream::iter(writes)
        .map(|(k, v)| {
            let mut kv = client.kv_client();
            async move { kv.put(k, v, None).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    ensure!(results.iter().all(Result::is_ok), "a put failed");
    let written = t.elapsed();
    while !converged(&rt, opts, &want).await? {
        ensure!(
            t.elapsed() < PATIENCE * 4,
            "HAProxy did not converge after the stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = t.elapsed();
    let cpu = cpu_ticks(pid)? - cpu0;
    let hz = clock_ticks()?;
    let (hwm, rss) = memory(pid)?;

    let row = |name: &str, v: &mut Vec<Duration>| {
        v.sort();
        println!(
            "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            v.len(),
            pct(v, 50).as_secs_f64() * 1000.0,
            pct(v, 99).as_secs_f64() * 1000.0,
            v.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
        );
    };
    println!("\n| from → until | samples | p50 | p99 | max |\n|---|---|---|---|---|");
    row(
        "floor: etcd-client put → etcd-client watch event",
        &mut floor,
    );
    row(
        "etcd-client put → HAProxy shows the server's new state",
        &mut agent_put,
    );
    row(
        "confctl process start → HAProxy shows it",
        &mut agent_confctl,
    );
    println!(
        "\n{} changes streamed (8 puts in flight): written in {:.2} s, HAProxy showing every \
         final state after {:.2} s; agent CPU {:.2} s ({:.0}% of one core over that time); \
         agent peak RSS {:.1} MiB, RSS after {:.1} MiB",
        opts.changes,
        written.as_secs_f64(),
        done.as_secs_f64(),
        cpu as f64 / hz,
        cpu as f64 / hz / done.as_secs_f64() * 100.0,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    Ok(())
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = f.get(11).context("no utime")?.parse()?;
    let stime: u64 = f.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

#[allow(unsafe_code)]
fn clock_ticks() -> anyhow::Result<f64> {
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ensure!(hz > 0, "sysconf(_SC_CLK_TCK) failed");
    Ok(hz as f64)
}

/// (VmHWM, VmRSS) in KiB.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |k: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(k))
            .with_context(|| format!("no {k}"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("no value")?
            .parse()?)
    };
    Ok((get("VmHWM:")?, get("VmRSS:")?))
}
