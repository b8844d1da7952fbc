//! The driver: for each size, prepare the fleet, run every row `runs` times on fresh etcd
//! servers, summarise, print; then scaling, targets and the JSON file.

use std::path::PathBuf;

use anyhow::Context;

use crate::report::{self, Machine, Report, SizeResult};
use crate::rows;
use crate::suite::{self, Prepared, Tools};

/// What to run.
pub(crate) struct Options {
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub json_out: Option<PathBuf>,
    pub bin_dir: Option<PathBuf>,
}

/// Run the benchmark.
pub(crate) fn main(opts: Options) -> anyhow::Result<()> {
    let tools = Tools::locate(opts.bin_dir.clone())?;
    let exe_dir = tools
        .bench
        .parent()
        .context("this binary has no directory")?
        .to_path_buf();
    let bin_dir = opts.bin_dir.clone().unwrap_or_else(|| exe_dir.clone());
    let profile = bin_dir
        .file_name()
        .map_or_else(|| "unknown".into(), |n| n.to_string_lossy().into_owned());
    let json_out = opts.json_out.clone().unwrap_or_else(|| {
        exe_dir
            .parent()
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("bench/results.json")
    });

    let machine = Machine::probe(profile);
    println!("{}", machine.line());
    if machine.profile != "release" {
        println!("warning: the binaries are not a release build; figures mean little");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let mut sizes = Vec::new();
    for &n in &opts.sizes {
        progress(format!("{n} objects:"));
        let root = tempfile::Builder::new()
            .prefix("conftool-bench-")
            .tempdir()
            .context("creating a temp dir")?;
        let prepared = Prepared::new(n, root.path())?;
        let load_before = report::loadavg();
        let mut runs = Vec::new();
        for i in 1..=opts.runs {
            progress(format!("  run {i}/{}", opts.runs));
            runs.push(
                suite::run_once(&rt, &tools, &prepared)
                    .with_context(|| format!("{n} objects, run {i}"))?,
            );
        }
        let result = SizeResult {
            objects: n,
            runs: runs.len(),
            load_before,
            load_after: report::loadavg(),
            rows: rows::summarise(&runs),
        };
        print!("{}", report::table(&result));
        sizes.push(result);
    }
    let scaling = report::scaling(&sizes);
    print!("{}", report::scaling_table(&scaling));
    let targets = report::targets(&sizes, &scaling);
    print!("{}", report::targets_table(&targets));

    let doc = Report {
        machine,
        sizes,
        scaling,
        targets,
    };
    if let Some(dir) = json_out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&json_out, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("writing {}", json_out.display()))?;
    println!("\nresults written to {}", json_out.display());
    Ok(())
}

fn progress(msg: String) {
    crate::progress(msg);
}
