//! `conftool-bench stall`: what a member that accepts connections and never answers costs the
//! tools, measured (never asserted) on a throwaway 3-member cluster.
//!
//! Each scenario runs the release binaries `--runs` times and reports the median and the
//! slowest wall time next to the healthy baseline:
//! - `confctl depool --hostname H` (then `pool`, unmeasured, to undo it): healthy; a black
//!   hole listed first; the first member frozen with SIGSTOP.
//! - `conftool-sync` of the fleet into an empty keyspace: healthy; the first member frozen
//!   before the start; the member in use frozen part-way through the writes.
//!
//! The frozen member is a follower, so that the figures are the tools' cost; freezing the
//! leader adds etcd's election on top (`--election-timeout`, 1 s by default). Every result is
//! checked outside the clock: a run that fails or leaves the wrong keyspace is an error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use conftool_testkit::{BlackHole, EtcdCluster};
use etcd_client::{DeleteOptions, GetOptions};

use crate::fleet::{Fleet, ROOT_PREFIX};
use crate::suite::{check_sync_result, Tools};

/// Options of `conftool-bench stall`.
pub(crate) struct Options {
    pub objects: usize,
    pub runs: usize,
    /// `--timeout` for the tools (`None`: their default, 5 s).
    pub timeout: Option<String>,
}

/// Wall times of one scenario.
struct Row {
    what: String,
    walls: Vec<Duration>,
}

impl Row {
    fn median(&self) -> Duration {
        let mut w = self.walls.clone();
        w.sort();
        w.get(w.len() / 2).copied().unwrap_or_default()
    }

    fn max(&self) -> Duration {
        self.walls.iter().copied().max().unwrap_or_default()
    }
}

pub(crate) fn main(tools: &Tools, opts: &Options) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let root = tempfile::Builder::new()
        .prefix("conftool-stall-")
        .tempdir()?;
    let conf = root.path().join("conf");
    let config = root.path().join("conftool.yaml");
    std::fs::write(&config, "# empty: defaults, no audit log\n")?;
    let fleet = Fleet::generate(opts.objects);
    std::fs::create_dir_all(&conf)?;
    fleet.write_dir(&conf)?;
    let expected: Vec<(String, String)> = fleet.expected_kvs().into_iter().collect();
    let (node, _) = fleet.depool_target().context("fleet too small")?;

    // etcd's own defaults for elections, so that a loaded machine does not call extra ones.
    let mut etcd = EtcdCluster::start_with(
        3,
        &["--heartbeat-interval", "100", "--election-timeout", "1000"],
    );
    let leader = etcd.leader(Duration::from_secs(10)).context("no leader")?;
    // The member to freeze, listed first: a follower; a live follower reads the keyspace.
    let frozen = (leader + 1) % 3;
    let reader = (leader + 2) % 3;
    let order = [frozen, reader, leader];
    let all = order
        .iter()
        .map(|&i| etcd.member_endpoint(i))
        .collect::<Vec<_>>()
        .join(",");
    let hole = BlackHole::start();
    let hole_first = format!("{},{all}", hole.url());
    let reader_url = etcd.member_endpoint(reader);

    let tool = |bin: &Path, endpoints: &str, args: &[&str]| -> anyhow::Result<Duration> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .args(["--endpoints", endpoints])
            .args(opts.timeout.iter().flat_map(|t| ["--timeout", t.as_str()]))
            .env_remove("CONFTOOL_ENDPOINTS")
            .env("CONFTOOL_CONFIG", &config)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let t = Instant::now();
        let out = cmd.output()?;
        let took = t.elapsed();
        ensure!(
            out.status.success(),
            "{} {args:?}: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(took)
    };
    let conf_s = conf.display().to_string();
    let caps = crate::suite::sync_caps(&[&conf], opts.objects)?;
    let sync_args: Vec<&str> = ["--directory", conf_s.as_str(), "--quiet"]
        .into_iter()
        .chain(caps.iter().map(String::as_str))
        .collect();
    let clear = || rt.block_on(clear(&reader_url));
    let check =
        || -> anyhow::Result<()> { check_sync_result(&rt.block_on(dump(&reader_url))?, &expected) };

    // The fleet, for the depool runs.
    tool(&tools.sync, &all, &sync_args)?;
    check()?;
    let mut rows = Vec::new();
    let depool = ["depool", "--hostname", node.as_str()];
    let pool = ["pool", "--hostname", node.as_str()];
    let depools = |what: &str, endpoints: &str| -> anyhow::Result<Row> {
        let mut row = Row {
            what: what.to_string(),
            walls: Vec::new(),
        };
        for _ in 0..opts.runs {
            row.walls.push(tool(&tools.confctl, endpoints, &depool)?);
            tool(&tools.confctl, &reader_url, &pool)?;
        }
        crate::progress(format!("  {what}: median {:?}", row.median()));
        Ok(row)
    };
    rows.push(depools("depool, healthy", &all)?);
    rows.push(depools("depool, black hole listed first", &hole_first)?);
    {
        let _paused = etcd.pause_member(frozen);
        rows.push(depools("depool, first member frozen", &all)?);
    }

    let syncs = |what: &str, freeze: Freeze| -> anyhow::Result<Row> {
        let mut row = Row {
            what: what.to_string(),
            walls: Vec::new(),
        };
        for _ in 0..opts.runs {
            clear()?;
            let took = match freeze {
                Freeze::Never => tool(&tools.sync, &all, &sync_args)?,
                Freeze::Before => {
                    let _paused = etcd.pause_member(frozen);
                    tool(&tools.sync, &all, &sync_args)?
                }
                Freeze::PartWay => {
                    let base = rt.block_on(revision(&reader_url))?;
                    let mut cmd = Command::new(&tools.sync);
                    cmd.args(&sync_args)
                        .args(["--endpoints", &all])
                        .args(opts.timeout.iter().flat_map(|t| ["--timeout", t.as_str()]))
                        .env_remove("CONFTOOL_ENDPOINTS")
                        .env("CONFTOOL_CONFIG", &config)
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    let t = Instant::now();
                    let mut child = cmd.spawn()?;
                    rt.block_on(wait_for_writes(&reader_url, base + 4))?;
                    let paused = etcd.pause_member(frozen);
                    let status = child.wait()?;
                    let took = t.elapsed();
                    drop(paused);
                    ensure!(status.success(), "the sync failed");
                    took
                }
            };
            check()?;
            row.walls.push(took);
        }
        crate::progress(format!("  {what}: median {:?}", row.median()));
        Ok(row)
    };
    let n = opts.objects;
    rows.push(syncs(&format!("sync {n}, healthy"), Freeze::Never)?);
    rows.push(syncs(
        &format!("sync {n}, first member frozen"),
        Freeze::Before,
    )?);
    rows.push(syncs(
        &format!("sync {n}, its member frozen part-way"),
        Freeze::PartWay,
    )?);
    etcd.wait_member_serving(frozen, Duration::from_secs(30))
        .map_err(anyhow::Error::msg)?;

    let timeout = opts.timeout.as_deref().unwrap_or("5s (default)");
    println!(
        "stalled members, 3-member etcd on loopback, --timeout {timeout}, {} runs each:",
        opts.runs
    );
    println!("{:<44} {:>10} {:>10}", "scenario", "median", "max");
    for r in &rows {
        println!(
            "{:<44} {:>9.3}s {:>9.3}s",
            r.what,
            r.median().as_secs_f64(),
            r.max().as_secs_f64()
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Freeze {
    Never,
    Before,
    PartWay,
}

async fn client(url: &str) -> anyhow::Result<etcd_client::KvClient> {
    let c = etcd_client::Client::connect([url], None).await?;
    Ok(c.kv_client().max_decoding_message_size(512 << 20))
}

async fn clear(url: &str) -> anyhow::Result<()> {
    let mut kv = client(url).await?;
    kv.delete(ROOT_PREFIX, Some(DeleteOptions::new().with_prefix()))
        .await?;
    Ok(())
}

async fn dump(url: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut kv = client(url).await?;
    let resp = kv
        .get(ROOT_PREFIX, Some(GetOptions::new().with_prefix()))
        .await?;
    Ok(resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect())
}

async fn revision(url: &str) -> anyhow::Result<i64> {
    let mut kv = client(url).await?;
    let resp = kv.get("revision-probe", None).await?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
}

/// Wait until etcd's revision reaches `rev` (a few transactions of the sync have landed).
async fn wait_for_writes(url: &str, rev: i64) -> anyhow::Result<()> {
    let mut kv = client(url).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let resp = kv.get("revision-probe", None).await?;
        if resp.header().map_or(0, |h| h.revision()) >= rev {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    anyhow::bail!("the sync wrote nothing within a minute")
}
