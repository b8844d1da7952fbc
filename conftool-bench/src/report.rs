//! The results: the table per size, scaling between sizes, the targets judged
//! met/missed, the machine they ran on, and the same as one JSON document.

use std::fmt::Write as _;

use serde::Serialize;

use crate::rows::{Row, RowId};

/// Where and when the bench ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub nproc: usize,
    pub mem_total_mib: u64,
    pub etcd_version: String,
    pub date_utc: String,
    pub git: String,
    /// The profile the measured binaries were built with (the directory they are in).
    pub profile: String,
}

impl Machine {
    /// Look around.
    pub(crate) fn probe(profile: String) -> Machine {
        let cmd = |prog: &str, args: &[&str]| {
            std::process::Command::new(prog)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| "unknown".into())
        };
        let etcd = conftool_testkit::etcd_binary();
        let etcd_version = cmd(&etcd.display().to_string(), &["--version"])
            .lines()
            .next()
            .unwrap_or("unknown")
            .trim_start_matches("etcd Version: ")
            .to_string();
        let mem_total_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kib| kib / 1024);
        Machine {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            mem_total_mib,
            etcd_version,
            date_utc: cmd("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
            git: cmd("git", &["describe", "--always", "--dirty"]),
            profile,
        }
    }

    /// One line for the top of the output.
    pub(crate) fn line(&self) -> String {
        format!(
            "machine: {} cores, {} MiB RAM, etcd {}, {}, git {}, {} binaries",
            self.nproc,
            self.mem_total_mib,
            self.etcd_version,
            self.date_utc,
            self.git,
            self.profile
        )
    }
}

/// The system load average (1 minute), to show how busy the shared machine was.
pub(crate) fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// One fleet size's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SizeResult {
    pub objects: usize,
    pub runs: usize,
    pub load_before: f64,
    pub load_after: f64,
    pub rows: Vec<Row>,
}

impl SizeResult {
    fn row(&self, id: RowId) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }
}

/// How a row's time grew from one size to the next.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scaling {
    pub row: RowId,
    pub from: usize,
    pub to: usize,
    pub objects_factor: f64,
    pub time_factor: f64,
    /// How the row's baseline (its floor) grew over the same step: etcd itself does not
    /// scale linearly, and this tells the tool's share apart from etcd's.
    pub baseline_time_factor: Option<f64>,
}

/// One of the targets.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    pub target: String,
    pub measured: String,
    /// `None`: the size it needs was not measured.
    pub met: Option<bool>,
}

/// Everything, as written to the JSON file.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub machine: Machine,
    pub sizes: Vec<SizeResult>,
    pub scaling: Vec<Scaling>,
    pub targets: Vec<Target>,
}

fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The table for one size.
pub(crate) fn table(s: &SizeResult) -> String {
    let mut out = format!(
        "\n{} objects, median of {} run{} (load average {:.1} before, {:.1} after)\n",
        s.objects,
        s.runs,
        if s.runs == 1 { "" } else { "s" },
        s.load_before,
        s.load_after
    );
    let _ = writeln!(
        out,
        "| {:<34} | {:>9} | {:>10} | {:>11} | {:>10} | {:>7} | {:<20} |",
        "row", "objects", "wall", "objects/s", "peak RSS", "ratio", "vs"
    );
    let _ = writeln!(
        out,
        "|{:-<36}|{:->11}|{:->12}|{:->13}|{:->12}|{:->9}|{:-<22}|",
        "", "", "", "", "", "", ""
    );
    for r in &s.rows {
        let ratio = r
            .ratio
            .map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            out,
            "| {:<34} | {:>9} | {:>10} | {:>11.0} | {:>10} | {:>7} | {:<20} |",
            r.label,
            r.objects,
            fmt_secs(r.wall_s),
            r.objects_per_s,
            fmt_mib(r.max_rss),
            ratio,
            r.baseline
        );
    }
    for r in &s.rows {
        if let Some(x) = r.ratio2 {
            let _ = writeln!(out, "  {:<34} {x:>6.2}x {}", r.label, r.baseline2);
        }
    }
    if let Some(base) = s.row(RowId::SyncBaseline) {
        for r in RowId::PER_OBJECT.iter().filter_map(|&id| s.row(id)) {
            if let Some(b) = bytes_per_object(r.max_rss, base.max_rss, r.objects) {
                let _ = writeln!(
                    out,
                    "  {:<34} {b:>6.0} bytes per object (peak RSS {} - baseline {}, / {})",
                    r.label,
                    fmt_mib(r.max_rss),
                    fmt_mib(base.max_rss),
                    r.objects
                );
            }
        }
    }
    out
}

/// Memory a row's objects cost each: its peak RSS over the binary's own (the baseline row,
/// measured in the same runs), divided by the objects.
pub(crate) fn bytes_per_object(peak: u64, baseline: u64, objects: usize) -> Option<f64> {
    (objects > 0).then(|| peak.saturating_sub(baseline) as f64 / objects as f64)
}

/// Time growth per row between consecutive sizes.
pub(crate) fn scaling(sizes: &[SizeResult]) -> Vec<Scaling> {
    let mut out = Vec::new();
    for pair in sizes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for ra in a.rows.iter().filter(|r| r.id.scales()) {
            if let Some(rb) = b.row(ra.id) {
                if ra.wall_s > 0.0 && ra.objects > 0 {
                    let base = |s: &SizeResult| -> Option<f64> {
                        let b = ra.id.baseline();
                        (!b.is_empty())
                            .then(|| b.iter().map(|&id| s.row(id).map(|r| r.wall_s)).sum())
                            .flatten()
                    };
                    let baseline_time_factor = match (base(a), base(b)) {
                        (Some(x), Some(y)) if x > 0.0 => Some(y / x),
                        _ => None,
                    };
                    out.push(Scaling {
                        baseline_time_factor,
                        row: ra.id,
                        from: a.objects,
                        to: b.objects,
                        objects_factor: rb.objects as f64 / ra.objects as f64,
                        time_factor: rb.wall_s / ra.wall_s,
                    });
                }
            }
        }
    }
    out
}

/// The scaling table.
pub(crate) fn scaling_table(sc: &[Scaling]) -> String {
    if sc.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("\nscaling (time factor for the objects factor; its floor's factor)\n");
    for s in sc {
        let floor = s
            .baseline_time_factor
            .map_or_else(String::new, |f| format!(" (floor x{f:.1})"));
        let _ = writeln!(
            out,
            "  {:<34} {:>8} -> {:<8} objects x{:<5.1} time x{:.1}{floor}",
            s.row.label(),
            s.from,
            s.to,
            s.objects_factor,
            s.time_factor
        );
    }
    out
}

/// The targets, judged on the sizes measured.
pub(crate) fn targets(sizes: &[SizeResult], sc: &[Scaling]) -> Vec<Target> {
    let at = |n: usize, id: RowId| {
        sizes
            .iter()
            .find(|s| s.objects == n)
            .and_then(|s| s.row(id))
    };
    let mut t = Vec::new();
    let mut push = |target: &str, measured: Option<(String, bool)>| {
        t.push(Target {
            target: target.to_string(),
            measured: measured.as_ref().map_or_else(
                || "not measured (needs --sizes 100000)".into(),
                |m| m.0.clone(),
            ),
            met: measured.map(|m| m.1),
        });
    };
    push(
        "initial sync of 100,000 within 2x floor write time",
        at(100_000, RowId::SyncInitial).and_then(|r| {
            let x = r.ratio?;
            Some((
                format!("{} = {x:.2}x floor write", fmt_secs(r.wall_s)),
                x <= 2.0,
            ))
        }),
    );
    push(
        "no-op re-sync of 100,000 under 1 s and under 2x (floor read + YAML parse)",
        at(100_000, RowId::SyncNoop).and_then(|r| {
            let x = r.ratio?;
            Some((
                format!("{} = {x:.2}x floor read + parse", fmt_secs(r.wall_s)),
                r.wall_s < 1.0 && x < 2.0,
            ))
        }),
    );
    push(
        "a 10,000-object set under 1 s",
        at(100_000, RowId::SelectSet).map(|r| {
            (
                format!("{} objects in {}", r.objects, fmt_secs(r.wall_s)),
                r.wall_s < 1.0,
            )
        }),
    );
    push(
        "a single-object depool process under 50 ms",
        at(100_000, RowId::Depool).map(|r| (fmt_secs(r.wall_s), r.wall_s < 0.05)),
    );
    push(
        "peak memory < 300 MB at 100,000",
        sizes.iter().find(|s| s.objects == 100_000).and_then(|s| {
            let worst = s
                .rows
                .iter()
                .filter(|r| r.id.is_tool())
                .max_by_key(|r| r.max_rss)?;
            Some((
                format!("{} ({})", fmt_mib(worst.max_rss), worst.label),
                worst.max_rss < 300_000_000,
            ))
        }),
    );
    push(
        "conftool-sync peak memory <= 100 MB at 100,000 (issue 18)",
        sizes.iter().find(|s| s.objects == 100_000).and_then(|s| {
            let worst = RowId::PER_OBJECT
                .iter()
                .filter_map(|&id| s.row(id))
                .max_by_key(|r| r.max_rss)?;
            Some((
                format!("{} ({})", fmt_mib(worst.max_rss), worst.label),
                worst.max_rss <= 100_000_000,
            ))
        }),
    );
    let million = sizes.iter().find(|s| s.objects == 1_000_000);
    let per_object = million.and_then(|s| {
        let base = s.row(RowId::SyncBaseline)?;
        RowId::PER_OBJECT
            .iter()
            .filter_map(|&id| s.row(id))
            .filter_map(|r| Some((bytes_per_object(r.max_rss, base.max_rss, r.objects)?, r)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    });
    t.push(Target {
        target: "conftool-sync <= 400 bytes per object at 1,000,000 (issue 18, stretch)".into(),
        measured: per_object.map_or_else(
            || "not measured (needs --sizes 1m)".into(),
            |(b, r)| format!("{b:.0} bytes per object ({})", r.label),
        ),
        met: per_object.map(|(b, _)| b <= 400.0),
    });
    let tenfold: Vec<&Scaling> = sc
        .iter()
        .filter(|s| s.row.is_tool() && (s.objects_factor - 10.0).abs() < 0.5)
        .collect();
    let worst = tenfold
        .iter()
        .max_by(|a, b| a.time_factor.total_cmp(&b.time_factor));
    t.push(Target {
        target: "10x objects <= 12x time".into(),
        measured: worst.map_or_else(
            || "not measured (needs two sizes 10x apart)".into(),
            |w| {
                format!(
                    "worst x{:.1} ({}, {} -> {})",
                    w.time_factor,
                    w.row.label(),
                    w.from,
                    w.to
                )
            },
        ),
        met: worst.map(|w| w.time_factor <= 12.0),
    });
    t
}

/// The targets as lines.
pub(crate) fn targets_table(t: &[Target]) -> String {
    let mut out = String::from("\ntargets\n");
    for x in t {
        let verdict = match x.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        let _ = writeln!(out, "  {verdict} {:<72} {}", x.target, x.measured);
    }
    out
}
