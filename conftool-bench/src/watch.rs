//! `conftool-bench watch`: how long a change takes to reach a watcher, measured (never
//! asserted) next to etcd's own floor, in the same run on the same etcd.
//!
//! Two watchers follow the same pool from the start: a plain etcd-client watch (the floor)
//! and [`Store::watch`]. Each notes the instant an event arrives. Then, one sample at a
//! time and interleaved so that drift on a shared machine hits every row alike:
//! - floor: an etcd-client put, until the etcd-client watch has its event;
//! - an etcd-client put, until `Store::watch` has it (the watch's own cost over the floor);
//! - `Store::commit` of one guarded put, until `Store::watch` has it (the library's write
//!   and watch together);
//! - fewer samples of `confctl select 'dc=eqiad,cluster=appservers,name=NODE'
//!   set/pooled=..:weight=..` spawned as a process, until `Store::watch` has its event
//!   (what a person's depool costs until a load balancer watching could act), and until the
//!   process has exited.
//!
//! Each write changes the value, so every sample is a real event. The clock starts just
//! before the write is sent and stops when the watcher's task receives the event, decoded.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use conftool_core::watch::WatchEvent;
use conftool_core::{Config, Guard, Selector, Store, Write};
use conftool_testkit::EtcdCluster;
use etcd_client::{Client, WatchOptions};
use tokio::sync::mpsc;

use crate::report::{loadavg, Machine};
use crate::suite::Tools;

/// The pool watched.
const POOL: &str = "/v1/pools/eqiad/appservers/apache/";
const SELECTOR: &str = "dc=eqiad,cluster=appservers";
/// Objects in the pool besides the ones written.
const BYSTANDERS: usize = 1000;
/// The longest an event may take before the run is called broken.
const PATIENCE: Duration = Duration::from_secs(10);

/// Options of `conftool-bench watch`.
pub(crate) struct Options {
    pub samples: usize,
    pub confctl_samples: usize,
    pub members: usize,
}

/// When each revision arrived at a watcher.
type Arrivals = mpsc::UnboundedReceiver<(Instant, i64)>;

pub(crate) fn main(tools: &Tools, opts: &Options) -> anyhow::Result<()> {
    let profile = tools
        .confctl
        .parent()
        .and_then(|d| d.file_name())
        .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned());
    let machine = Machine::probe(profile);
    println!("{}", machine.line());
    if machine.profile != "release" {
        println!("warning: the binaries are not a release build; figures mean little");
    }
    // The runtime shape of the tools (conftool-cli's exit::run).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let etcd = EtcdCluster::start_with(opts.members, &[]);
    let scratch = tempfile::Builder::new()
        .prefix("conftool-bench-watch-")
        .tempdir()?;
    let config = scratch.path().join("conftool.yaml");
    std::fs::write(&config, "# empty: defaults, no audit log\n")?;
    let load_before = loadavg();
    let rows = rt.block_on(measure(&etcd, tools, &config, opts))?;
    println!(
        "watch latency: a write until its event arrives, {} etcd member{} on loopback, \
         {} samples ({} for confctl), load average {load_before:.1} before, {:.1} after",
        opts.members,
        if opts.members == 1 { "" } else { "s" },
        opts.samples,
        opts.confctl_samples,
        loadavg()
    );
    print!("{}", table(&rows));
    Ok(())
}

/// One row: what was written, what received it, the latencies.
struct Row {
    from: &'static str,
    to: &'static str,
    samples: Vec<Duration>,
}

async fn measure(
    etcd: &EtcdCluster,
    tools: &Tools,
    config: &std::path::Path,
    opts: &Options,
) -> anyhow::Result<Vec<Row>> {
    let url = etcd.endpoint();
    let mut kv = Client::connect([url.as_str()], None).await?.kv_client();
    kv.put(
        "/v1/services/appservers/apache",
        r#"{"port":80,"default_values":{"pooled":"yes","weight":1}}"#,
        None,
    )
    .await?;
    let key = |name: &str| format!("{POOL}{name}");
    let yes = r#"{"pooled":"yes","weight":1}"#;
    for i in 0..BYSTANDERS {
        kv.put(key(&format!("mw{i:05}")), yes, None).await?;
    }
    let (floor_key, raw_key, lib_key, tool_node) = ("floor", "raw", "lib", "confctl");
    for name in [floor_key, raw_key, lib_key, tool_node] {
        kv.put(key(name), yes, None).await?;
    }

    // The watchers, from now on.
    let store = Store::connect(&Config {
        endpoints: etcd.endpoints(),
        ..Config::default()
    })
    .await?;
    let sel: Selector = SELECTOR.parse()?;
    let mut lib = store_watcher(store.watch(&sel).await?);
    let mut raw = raw_watcher(&url).await?;

    let value = |i: usize| format!(r#"{{"pooled":"{}","weight":{}}}"#, pooled(i), i % 1000 + 2);
    let mut lib_rev = store.read_prefix(&key(lib_key)).await?.kvs[0].mod_revision;
    let mut rows = [
        ("floor: etcd-client put", "etcd-client watch"),
        ("etcd-client put", "Store::watch"),
        ("Store::commit (1 guarded put)", "Store::watch"),
        ("confctl select ... set (process)", "Store::watch"),
        ("confctl select ... set (process)", "its exit"),
    ]
    .map(|(from, to)| Row {
        from,
        to,
        samples: Vec::new(),
    });
    // A few unmeasured rounds first: connections warm, code paged in.
    let warm_up = 20;
    for i in 0..opts.samples + warm_up {
        let measured = i >= warm_up;
        let t = Instant::now();
        let rev = revision(kv.put(key(floor_key), value(i), None).await?.header())?;
        let at = arrival(&mut raw, rev).await?;
        if measured {
            rows[0].samples.push(at - t);
        }
        let t = Instant::now();
        let rev = revision(kv.put(key(raw_key), value(i), None).await?.header())?;
        let at = arrival(&mut lib, rev).await?;
        if measured {
            rows[1].samples.push(at - t);
        }
        let t = Instant::now();
        let write = Write::Put {
            key: key(lib_key),
            value: value(i),
            guard: Guard::Unchanged(lib_rev),
        };
        let report = store.raw().commit(&[write]).await?;
        lib_rev = report.applied.first().context("the guarded put lost")?.1;
        let at = arrival(&mut lib, lib_rev).await?;
        if measured {
            rows[2].samples.push(at - t);
        }
    }
    let mut last = lib_rev;
    for i in 0..opts.confctl_samples {
        let action = format!("set/pooled={}:weight={}", pooled(i), i % 1000 + 2);
        let mut cmd = tokio::process::Command::new(&tools.confctl);
        cmd.arg("select")
            .arg(format!("{SELECTOR},name={tool_node}"))
            .arg(&action)
            .args(["--yes", "--quiet", "--config"])
            .arg(config)
            .args(["--endpoints", &url])
            .env_remove("CONFTOOL_ENDPOINTS")
            .env_remove("CONFTOOL_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let t = Instant::now();
        let mut child = cmd.spawn().context("cannot start confctl")?;
        let exited = async {
            let status = child.wait().await?;
            anyhow::Ok((Instant::now(), status))
        };
        let (event, exit) = tokio::join!(arrival_after(&mut lib, last), exited);
        let (at, rev) = event?;
        let (done, status) = exit?;
        ensure!(status.success(), "confctl {action} failed: {status}");
        let now = store.read_prefix(&key(tool_node)).await?;
        ensure!(
            now.kvs.first().map(|kv| kv.mod_revision) == Some(rev),
            "the event at revision {rev} was not confctl's write"
        );
        last = rev;
        rows[3].samples.push(at - t);
        rows[4].samples.push(done - t);
    }
    Ok(rows.into_iter().collect())
}

fn pooled(i: usize) -> &'static str {
    if i % 2 == 0 {
        "no"
    } else {
        "yes"
    }
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> anyhow::Result<i64> {
    Ok(header.context("a response without a header")?.revision())
}

/// `Store::watch`'s events, as (arrival, revision).
fn store_watcher(mut watch: conftool_core::Watch) -> Arrivals {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = watch.next().await {
            let at = Instant::now();
            match item {
                Ok(WatchEvent::Changes { revision, .. }) => {
                    if tx.send((at, revision)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => eprintln!("Store::watch: {e}"),
            }
        }
    });
    rx
}

/// A plain etcd-client watch of the pool, as (arrival, revision).
async fn raw_watcher(url: &str) -> anyhow::Result<Arrivals> {
    let client = Client::connect([url], None).await?;
    let mut stream = client
        .watch_client()
        .watch(POOL, Some(WatchOptions::new().with_prefix()))
        .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(resp)) = stream.message().await {
            let at = Instant::now();
            let mut last = 0;
            for ev in resp.events() {
                let rev = ev.kv().map_or(0, |kv| kv.mod_revision());
                if rev != last && tx.send((at, rev)).is_err() {
                    return;
                }
                last = rev;
            }
        }
    });
    Ok(rx)
}

/// When revision `rev` arrived (earlier ones are skipped).
async fn arrival(rx: &mut Arrivals, rev: i64) -> anyhow::Result<Instant> {
    let (at, got) = arrival_after(rx, rev - 1).await?;
    if got != rev {
        bail!("revision {rev} never arrived (next: {got})");
    }
    Ok(at)
}

/// The first revision after `after` to arrive, and when.
async fn arrival_after(rx: &mut Arrivals, after: i64) -> anyhow::Result<(Instant, i64)> {
    loop {
        let next = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .with_context(|| format!("nothing after revision {after} within {PATIENCE:?}"))?;
        let Some((at, rev)) = next else {
            bail!("the watcher ended");
        };
        if rev > after {
            return Ok((at, rev));
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn table(rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<34} | {:<17} | {:>7} | {:>9} | {:>9} | {:>9} |",
        "write", "received by", "samples", "p50", "p99", "max"
    );
    let _ = writeln!(
        out,
        "|{}|{}|{}|{}|{}|{}|",
        "-".repeat(36),
        "-".repeat(19),
        "-".repeat(9),
        "-".repeat(11),
        "-".repeat(11),
        "-".repeat(11)
    );
    for r in rows {
        let mut s = r.samples.clone();
        s.sort();
        let _ = writeln!(
            out,
            "| {:<34} | {:<17} | {:>7} | {:>9} | {:>9} | {:>9} |",
            r.from,
            r.to,
            s.len(),
            ms(percentile(&s, 50)),
            ms(percentile(&s, 99)),
            ms(s.last().copied().unwrap_or_default())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let s: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&s, 50), ms(50));
        assert_eq!(percentile(&s, 99), ms(99));
        assert_eq!(percentile(&s, 100), ms(100));
        assert_eq!(percentile(&[ms(7)], 99), ms(7));
        assert_eq!(percentile(&[ms(1), ms(2), ms(3)], 50), ms(2));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
