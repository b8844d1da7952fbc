//! One fleet size, one run: the floor on a fresh etcd, then the tools on another fresh etcd,
//! each result checked against what it should have done (outside the clock) so that a fast
//! wrong answer never shows up as a good figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};
use conftool_testkit::EtcdCluster;

use crate::fleet::{Fleet, POOLS_PREFIX, ROOT_PREFIX, SELECTED_PREFIX, SELECTOR};
use crate::floor::{self, FloorReport, Mode};
use crate::process::{self, Measured};
use crate::rows::{RowId, Run, Sample};

/// Where the binaries are and what they are run with.
pub(crate) struct Tools {
    /// This binary (for the floor processes).
    pub bench: PathBuf,
    pub sync: PathBuf,
    pub confctl: PathBuf,
}

impl Tools {
    /// The binaries in `bin_dir` (default: beside this one), which must exist.
    pub(crate) fn locate(bin_dir: Option<PathBuf>) -> anyhow::Result<Tools> {
        let bench = std::env::current_exe().context("cannot find this binary's path")?;
        let bin_dir = match bin_dir {
            Some(d) => d,
            None => bench
                .parent()
                .context("this binary has no directory")?
                .to_path_buf(),
        };
        let tools = Tools {
            bench,
            sync: bin_dir.join("conftool-sync"),
            confctl: bin_dir.join("confctl"),
        };
        for t in [&tools.sync, &tools.confctl] {
            ensure!(
                t.is_file(),
                "{} not found; build the binaries first (scripts/bench.sh runs \
                 `cargo build --release --locked --bins`)",
                t.display()
            );
        }
        Ok(tools)
    }
}

/// One fleet size, prepared: both data directories and what etcd must hold after each.
pub(crate) struct Prepared {
    pub objects: usize,
    pub selected: usize,
    pub initial_dir: PathBuf,
    pub churned_dir: PathBuf,
    pub expected: Vec<(String, String)>,
    pub churned_keys: Vec<String>,
    pub depool: (String, String),
    pub scratch: PathBuf,
}

impl Prepared {
    /// Generate the fleet and its churned twin under `root`.
    pub(crate) fn new(objects: usize, root: &Path) -> anyhow::Result<Prepared> {
        let fleet = Fleet::generate(objects);
        let (churned, churn) = fleet.churn(0.01);
        let initial_dir = root.join("conf");
        let churned_dir = root.join("conf-churned");
        let scratch = root.join("scratch");
        for d in [&initial_dir, &churned_dir, &scratch] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        fleet.write_dir(&initial_dir)?;
        churned.write_dir(&churned_dir)?;
        let depool = fleet
            .depool_target()
            .context("fleet too small to have a node to depool")?;
        crate::progress(format!(
            "  fleet: {} objects ({} selected by {SELECTOR}); 1% churn: {} nodes added, {} removed, {} moved ({} objects created, {} deleted)",
            fleet.objects(), fleet.selected_objects(), churn.nodes_added, churn.nodes_removed,
            churn.nodes_moved, churn.objects_created, churn.objects_deleted
        ));
        Ok(Prepared {
            objects,
            selected: fleet.selected_objects(),
            initial_dir,
            churned_dir,
            expected: fleet.expected_kvs().into_iter().collect(),
            churned_keys: churned.expected_kvs().into_keys().collect(),
            depool,
            scratch,
        })
    }

    fn depool_key(&self) -> String {
        format!(
            "/v1/pools/codfw/appservers/{}/{}",
            self.depool.1, self.depool.0
        )
    }
}

/// `conftool-sync`'s caps on what it reads (by default 3 MiB of data files and 150,000
/// objects, issue 16) raised explicitly to what the data directories `dirs` hold, so that
/// every fleet size is measured rather than refused: their largest total of bytes and
/// `objects` (as many as the largest of them declares).
pub(crate) fn sync_caps(dirs: &[&Path], objects: usize) -> anyhow::Result<Vec<String>> {
    let mut most = 0u64;
    for dir in dirs {
        let mut total = std::fs::metadata(dir.join("services.yaml"))?.len();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            if let Ok(m) = std::fs::metadata(entry?.path().join("pools.yaml")) {
                total += m.len();
            }
        }
        most = most.max(total);
    }
    Ok(vec![
        "--max-input-bytes".into(),
        most.to_string(),
        "--max-objects".into(),
        objects.to_string(),
    ])
}

/// A throwaway etcd big enough for a million objects.
fn fresh_etcd() -> EtcdCluster {
    EtcdCluster::start_with(1, &["--quota-backend-bytes", "8589934592"])
}

/// Run every row once: the floor on its own etcd, then the tools on a fresh etcd of their
/// own, each step checked before its figure is kept.
pub(crate) fn run_once(
    rt: &tokio::runtime::Runtime,
    tools: &Tools,
    p: &Prepared,
) -> anyhow::Result<Run> {
    let mut run = Run::new();
    floor_rows(rt, tools, p, &mut run)?;

    // The tools, on a fresh etcd of their own (kept up until the last step is done).
    let etcd = fresh_etcd();
    let t = ToolRun::new(rt, tools, p, etcd.endpoint())?;
    t.baseline(&mut run)?;
    t.sync_initial(&mut run)?;
    t.sync_noop(&mut run)?;
    t.select_get(&mut run)?;
    t.select_set(&mut run)?;
    t.depool(&mut run)?;
    t.sync_churn(&mut run)?;
    Ok(run)
}

/// The floor's rows, on its own etcd.
fn floor_rows(
    rt: &tokio::runtime::Runtime,
    tools: &Tools,
    p: &Prepared,
    run: &mut Run,
) -> anyhow::Result<()> {
    let n = p.objects;
    let etcd = fresh_etcd();
    let url = etcd.endpoint();
    let floor = |mode: Mode, extra: &[&str]| -> anyhow::Result<(Measured, FloorReport)> {
        let mut cmd = Command::new(&tools.bench);
        cmd.arg("floor")
            .arg(mode.arg())
            .args(["--endpoint", &url])
            .args(extra);
        let m = process::run(&tools.bench, &cmd, &p.scratch)?;
        let report: FloorReport = serde_json::from_str(m.stdout.trim())
            .with_context(|| format!("floor {mode:?} printed {:?}", m.stdout))?;
        Ok((m, report))
    };
    let sample = |objects: usize, (m, r): &(Measured, FloorReport)| Sample {
        objects,
        wall_s: (m.wall.as_secs_f64() - r.setup_s).max(0.0),
        max_rss: m.max_rss,
    };

    let w = floor(Mode::Write, &["--objects", &n.to_string()])?;
    ensure!(
        w.1.keys == p.expected.len(),
        "floor wrote {} keys",
        w.1.keys
    );
    let got = rt.block_on(dump(&url, ROOT_PREFIX))?;
    ensure!(
        got == p.expected,
        "the floor's keyspace differs from the fleet's"
    );
    run.insert(RowId::FloorWrite, sample(n, &w));

    let r = floor(Mode::Read, &[])?;
    ensure!(r.1.keys == p.expected.len(), "floor read {} keys", r.1.keys);
    run.insert(RowId::FloorRead, sample(n, &r));

    let dir = p.initial_dir.display().to_string();
    let y = floor(Mode::Parse, &["--dir", &dir])?;
    run.insert(RowId::FloorParse, sample(n, &y));

    // The selected tenth read, then set (each sample puts the same values again: a write
    // each time, as the tool's are).
    for (mode, row, did) in [
        (Mode::ReadSelected, RowId::FloorReadSelected, "read"),
        (Mode::SetSelected, RowId::FloorSetSelected, "set"),
    ] {
        let median = median_of(SHORT_SAMPLES, || {
            let m = floor(mode, &[])?;
            ensure!(
                m.1.keys == p.selected,
                "floor {did} {} selected keys",
                m.1.keys
            );
            Ok(sample(p.selected, &m))
        })?;
        run.insert(row, median);
    }

    let one = median_of(SHORT_SAMPLES, || {
        let one = floor(Mode::Single, &["--key", &p.depool_key()])?;
        Ok(sample(1, &one))
    })?;
    run.insert(RowId::FloorSingle, one);

    // The same key again, after a read of its whole pool and under a compare over it.
    let pool = median_of(SHORT_SAMPLES, || {
        let pool = floor(Mode::PoolPut, &["--key", &p.depool_key()])?;
        ensure!(pool.1.keys > 0, "floor read an empty pool");
        Ok(sample(1, &pool))
    })?;
    run.insert(RowId::FloorPoolPut, pool);
    Ok(())
}

/// Samples taken in each run of each short row (the depool, the selections of a tenth of
/// the fleet, and their floors): a process that takes a few milliseconds is measured once
/// per row by a 1-in-3 median over runs otherwise, and one scheduling hiccup on a shared
/// machine is then the row's figure. The median sample of the run is kept.
const SHORT_SAMPLES: usize = 5;

/// The median (by wall time) of `k` samples taken by `one`.
fn median_of(k: usize, mut one: impl FnMut() -> anyhow::Result<Sample>) -> anyhow::Result<Sample> {
    let mut samples = (0..k.max(1))
        .map(|_| one())
        .collect::<anyhow::Result<Vec<_>>>()?;
    samples.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    Ok(samples[samples.len() / 2])
}

/// The tools' rows, one step each, against one etcd (`url`) that each step leaves as the
/// next expects.
struct ToolRun<'a> {
    rt: &'a tokio::runtime::Runtime,
    tools: &'a Tools,
    p: &'a Prepared,
    url: String,
    /// An empty configuration file: defaults, no audit log.
    config: PathBuf,
    /// `conftool-sync`'s caps raised to what both data directories hold.
    caps: Vec<String>,
}

/// A tool's figures: wall time as measured (a tool has no setup to leave out).
fn tool_sample(objects: usize, m: &Measured) -> Sample {
    Sample {
        objects,
        wall_s: m.wall.as_secs_f64(),
        max_rss: m.max_rss,
    }
}

impl<'a> ToolRun<'a> {
    fn new(
        rt: &'a tokio::runtime::Runtime,
        tools: &'a Tools,
        p: &'a Prepared,
        url: String,
    ) -> anyhow::Result<ToolRun<'a>> {
        let config = p.scratch.join("conftool.yaml");
        std::fs::write(&config, "# empty: defaults, no audit log\n")?;
        let n = p.objects;
        // The churned fleet adds 1% of its nodes before it removes as many.
        let caps = sync_caps(&[&p.initial_dir, &p.churned_dir], n + n / 50 + 100)?;
        Ok(ToolRun {
            rt,
            tools,
            p,
            url,
            config,
            caps,
        })
    }

    /// Run one tool with `args`, the empty configuration and this etcd, measured.
    fn tool(&self, bin: &Path, args: &[&str]) -> anyhow::Result<Measured> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .args(["--endpoints", &self.url])
            .env_remove("CONFTOOL_ENDPOINTS")
            .env_remove("CONFTOOL_CONFIG")
            .env("NO_COLOR", "1");
        process::run(&self.tools.bench, &cmd, &self.p.scratch)
    }

    /// `conftool-sync`'s arguments for `dir`, then `extra`, then the caps.
    fn sync_args<'s>(&'s self, dir: &'s str, extra: &[&'s str]) -> Vec<&'s str> {
        let caps: Vec<&str> = self.caps.iter().map(String::as_str).collect();
        [&["--directory", dir, "--quiet"][..], extra, &caps].concat()
    }

    /// The binary alone (code, libraries, allocator, runtime not started): what the rows'
    /// bytes per object are counted over.
    fn baseline(&self, run: &mut Run) -> anyhow::Result<()> {
        let m = process::run(
            &self.tools.bench,
            &{
                let mut c = Command::new(&self.tools.sync);
                c.arg("--version");
                c
            },
            &self.p.scratch,
        )?;
        run.insert(RowId::SyncBaseline, tool_sample(0, &m));
        Ok(())
    }

    /// The first sync of the fleet into the empty etcd: it must write what the floor wrote.
    fn sync_initial(&self, run: &mut Run) -> anyhow::Result<()> {
        let initial = self.p.initial_dir.display().to_string();
        let m = self.tool(&self.tools.sync, &self.sync_args(&initial, &[]))?;
        check_sync_result(
            &self.rt.block_on(dump(&self.url, ROOT_PREFIX))?,
            &self.p.expected,
        )?;
        run.insert(RowId::SyncInitial, tool_sample(self.p.objects, &m));
        Ok(())
    }

    /// The same sync again: it must not write (etcd's revision stays).
    fn sync_noop(&self, run: &mut Run) -> anyhow::Result<()> {
        let initial = self.p.initial_dir.display().to_string();
        let before = self.rt.block_on(revision(&self.url))?;
        let m = self.tool(&self.tools.sync, &self.sync_args(&initial, &[]))?;
        let after = self.rt.block_on(revision(&self.url))?;
        ensure!(
            before == after,
            "the no-op sync moved etcd from revision {before} to {after}"
        );
        run.insert(RowId::SyncNoop, tool_sample(self.p.objects, &m));
        Ok(())
    }

    /// `confctl select ... get`: one line per selected object.
    fn select_get(&self, run: &mut Run) -> anyhow::Result<()> {
        let p = self.p;
        let get = median_of(SHORT_SAMPLES, || {
            let m = self.tool(&self.tools.confctl, &["select", SELECTOR, "get"])?;
            let lines = m.stdout.lines().count();
            ensure!(
                lines == p.selected,
                "select get printed {lines} objects, expected {}",
                p.selected
            );
            Ok(tool_sample(p.selected, &m))
        })?;
        run.insert(RowId::SelectGet, get);
        Ok(())
    }

    /// `confctl select ... set/pooled=no`: every selected object depooled.
    /// ([`SHORT_SAMPLES`] times, set back to `pooled=yes` in between, outside the clock.)
    fn select_set(&self, run: &mut Run) -> anyhow::Result<()> {
        let p = self.p;
        // A whole cluster depooled: past the depool threshold, on purpose.
        let set = |pooled: &str| {
            self.tool(
                &self.tools.confctl,
                &[
                    "select",
                    "--allow-below-threshold",
                    SELECTOR,
                    &format!("set/pooled={pooled}"),
                    "--yes",
                    "--quiet",
                ],
            )
        };
        let changed = |m: &Measured, from: &str, to: &str| -> anyhow::Result<()> {
            let line = format!("pooled changed {from} => {to}");
            let lines = m.stdout.lines().filter(|l| l.contains(&line)).count();
            ensure!(
                lines == p.selected,
                "select set/pooled={to} changed {lines} objects, expected {}",
                p.selected
            );
            Ok(())
        };
        let mut first = true;
        let sample = median_of(SHORT_SAMPLES, || {
            if !std::mem::take(&mut first) {
                changed(&set("yes")?, "no", "yes")?;
            }
            let m = set("no")?;
            changed(&m, "yes", "no")?;
            Ok(tool_sample(p.selected, &m))
        })?;
        let sel = self.rt.block_on(dump(&self.url, SELECTED_PREFIX))?;
        ensure!(
            sel.len() == p.selected && sel.iter().all(|(_, v)| v.contains(r#""pooled":"no""#)),
            "after select set, not every selected object is pooled=no"
        );
        run.insert(RowId::SelectSet, sample);
        Ok(())
    }

    /// `confctl depool` of one node's service ([`SHORT_SAMPLES`] times, pooled again
    /// in between, outside the clock; depooled at the end, as one depool leaves it).
    fn depool(&self, run: &mut Run) -> anyhow::Result<()> {
        let (node, service) = &self.p.depool;
        let mut first = true;
        let depool = median_of(SHORT_SAMPLES, || {
            if !std::mem::take(&mut first) {
                let m = self.tool(
                    &self.tools.confctl,
                    &["pool", "--hostname", node, "--service", service],
                )?;
                ensure!(
                    m.stdout.contains("pooled changed no => yes"),
                    "pool printed {:?}",
                    m.stdout
                );
            }
            let m = self.tool(
                &self.tools.confctl,
                &["depool", "--hostname", node, "--service", service],
            )?;
            ensure!(
                m.stdout.lines().count() == 1 && m.stdout.contains("pooled changed yes => no"),
                "depool printed {:?}",
                m.stdout
            );
            Ok(tool_sample(1, &m))
        })?;
        run.insert(RowId::Depool, depool);
        Ok(())
    }

    /// The sync of the fleet with 1% churn: etcd must then hold the churned fleet's keys.
    fn sync_churn(&self, run: &mut Run) -> anyhow::Result<()> {
        let p = self.p;
        let churned = p.churned_dir.display().to_string();
        let args = self.sync_args(
            &churned,
            &["--allow-delete-pooled", "--max-delete-share", "0.05"],
        );
        let m = self.tool(&self.tools.sync, &args)?;
        let keys: Vec<String> = self
            .rt
            .block_on(dump(&self.url, POOLS_PREFIX))?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let want: Vec<&String> = p
            .churned_keys
            .iter()
            .filter(|k| k.starts_with(POOLS_PREFIX))
            .collect();
        ensure!(
            keys.iter().eq(want.iter().copied()),
            "after the 1% re-sync etcd holds {} objects, expected {}",
            keys.len(),
            want.len()
        );
        run.insert(RowId::SyncChurn, tool_sample(p.objects, &m));
        Ok(())
    }
}

/// The sync must have written the same keys with the same JSON values as the floor (field
/// order aside), plus its sync record (one small key the floor does not write).
pub(crate) fn check_sync_result(
    got: &[(String, String)],
    want: &[(String, String)],
) -> anyhow::Result<()> {
    const RECORD: &str = "/v1/meta/sync";
    ensure!(
        got.iter().any(|(k, _)| k == RECORD),
        "the initial sync wrote no {RECORD}"
    );
    let got: Vec<(String, String)> = got.iter().filter(|(k, _)| k != RECORD).cloned().collect();
    ensure!(
        got.len() == want.len(),
        "after the initial sync etcd holds {} keys, expected {}",
        got.len(),
        want.len()
    );
    for ((gk, gv), (wk, wv)) in got.iter().zip(want) {
        ensure!(gk == wk, "after the initial sync: key {gk}, expected {wk}");
        if gv != wv {
            let g: serde_json::Value = serde_json::from_str(gv)?;
            let w: serde_json::Value = serde_json::from_str(wv)?;
            ensure!(g == w, "after the initial sync: {gk} = {gv}, expected {wv}");
        }
    }
    Ok(())
}

async fn dump(url: &str, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    let kv = tokio::time::timeout(Duration::from_secs(30), floor::connect(url)).await??;
    Ok(floor::read_prefix(&kv, prefix).await?.1)
}

async fn revision(url: &str) -> anyhow::Result<i64> {
    let mut kv = floor::connect(url).await?;
    let resp = kv.get("revision-probe", None).await?;
    Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
}
