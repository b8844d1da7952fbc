//! `conftool-bench`: how fast conftool-sync and confctl are, next to the floor of what etcd
//! and the YAML parser allow on the same machine in the same run (issue 4).
//!
//! # Layout
//! - [`fleet`]: a synthetic fleet of exactly N objects, its data directory and its keys;
//! - [`floor`]: the baseline operations, straight through etcd-client (run as child processes);
//! - [`process`]: running one measured process through a small launcher (wall time, peak RSS);
//! - [`suite`]: one size, one run: floor on a fresh etcd, tools on another, results checked;
//! - [`rows`]: what is measured, what each row is compared with, medians over runs;
//! - [`report`]: tables, scaling, the targets, machine facts, JSON;
//! - [`mod@bench`]: the driver over sizes and runs;
//! - [`stall`]: what a member that accepts connections and never answers costs the tools;
//! - [`mod@watch`]: how long a write takes to reach `Store::watch`, next to etcd's own floor;
//! - [`lb`]: the load-balancer agent with a real HAProxy: write → HAProxy latency, CPU, memory.
//! - [`thresholds`]: what the atomic depool threshold costs: the range compare, one depool,
//!   writers at once, a rack as one operation.

mod bench;
mod fleet;
mod floor;
mod lb;
mod process;
mod report;
mod rows;
mod stall;
mod suite;
mod thresholds;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Benchmark conftool-sync and confctl against a raw etcd-client floor, on throwaway etcd
/// servers, and print a table (also written as JSON).
#[derive(Debug, Parser)]
#[command(
    name = "conftool-bench",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
  scripts/bench.sh                         # 10,000 and 100,000 objects, 3 runs each\n  \
  scripts/bench.sh --sizes 1000 --runs 1   # a quick smoke run\n  \
  scripts/bench.sh --sizes 1m --runs 1     # a million objects (takes minutes)"
)]
struct Cli {
    /// Fleet sizes in objects, comma-separated; `k` and `m` suffixes allowed (100k, 1m).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "10000,100000")]
    sizes: Vec<usize>,

    /// Runs per size (each on fresh etcd servers); the table shows medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Where to write the results as JSON (default: `<target dir>/bench/results.json`).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,

    /// Where conftool-sync and confctl are [default: next to this binary].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    #[command(subcommand)]
    internal: Option<Internal>,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// One floor operation (run by the bench itself as a measured child process).
    #[command(hide = true)]
    Floor(floor::FloorArgs),
    /// Write the benchmark's fleet data directory (to profile the tools by hand).
    WriteFleet {
        /// Objects in the fleet.
        #[arg(long, value_parser = parse_size)]
        objects: usize,
        /// Write the fleet with 1% of its nodes changed instead.
        #[arg(long)]
        churned: bool,
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
    /// Measure what a stalled etcd member (SIGSTOPped, or a black hole) costs `confctl
    /// depool` and `conftool-sync`, on a 3-member cluster (`scripts/bench.sh stall`).
    Stall {
        /// Objects in the fleet synced.
        #[arg(long, value_parser = parse_size, default_value = "10000")]
        objects: usize,
        /// Runs per scenario; the table shows the median and the slowest.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        runs: u32,
        /// `--timeout` for the tools [default: theirs, 5s].
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
        /// Where conftool-sync and confctl are [default: next to this binary].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// Measure how long a write takes to reach a watcher: `Store::watch` next to a plain
    /// etcd-client watch, same run, same etcd (`scripts/bench.sh watch`).
    Watch {
        /// Samples per in-process row (etcd-client and library writes).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        samples: u32,
        /// Samples of the confctl row (a process each).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        confctl_samples: u32,
        /// etcd members (1 or 3); writes and watches go to the first.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=7))]
        members: u32,
        /// Where confctl is [default: next to this binary].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// The load-balancer agent at fleet scale with a real HAProxy: time from a write to
    /// HAProxy's state changing (next to etcd's put-to-watch floor), the agent's CPU and
    /// memory while changes stream through (`scripts/bench.sh lb`).
    Lb {
        /// Pools (HAProxy backends).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=99))]
        pools: u32,
        /// Servers per pool.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=9999))]
        servers: u32,
        /// Latency samples written with etcd-client.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        samples: u32,
        /// Latency samples written by a confctl process each.
        #[arg(long, default_value_t = 20)]
        confctl_samples: u32,
        /// Changes streamed for the CPU and memory figures.
        #[arg(long, default_value_t = 10000)]
        changes: u32,
        /// Where confctl and conftool-lb-agent are [default: next to this binary].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
    },
    /// What the atomic depool threshold costs: the range compare next to etcd's floor, one
    /// depool through the library, writers at once, a 40-host rack as one operation
    /// (`scripts/bench.sh thresholds`).
    Thresholds {
        /// Samples per row.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
        samples: u32,
        /// Nodes in the pool.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..))]
        pool: u32,
        /// Writers started at once.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        writers: u32,
    },
    /// Run a command and report its wall time and peak RSS (the bench's launcher).
    #[command(hide = true)]
    Measure(process::MeasureArgs),
}

fn parse_size(s: &str) -> Result<usize, String> {
    let lower = s.trim().to_ascii_lowercase().replace('_', "");
    let (num, mult) = match lower.strip_suffix('k') {
        Some(n) => (n, 1_000),
        None => match lower.strip_suffix('m') {
            Some(n) => (n, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    match num.parse::<usize>() {
        Ok(n) if n * mult >= 100 => Ok(n * mult),
        Ok(_) => Err(format!("{s:?}: at least 100 objects")),
        Err(_) => Err(format!("{s:?} is not a size (e.g. 10000, 100k, 1m)")),
    }
}

fn write_fleet(objects: usize, churned: bool, dir: &std::path::Path) -> anyhow::Result<()> {
    let mut fleet = fleet::Fleet::generate(objects);
    if churned {
        fleet = fleet.churn(0.01).0;
    }
    std::fs::create_dir_all(dir)?;
    fleet.write_dir(dir)
}

/// Progress goes to stderr, results to stdout.
fn progress(msg: impl AsRef<str>) {
    eprintln!("{}", msg.as_ref());
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.internal {
        Some(Internal::Floor(args)) => floor::main(args),
        Some(Internal::Measure(args)) => process::measure_main(args),
        Some(Internal::WriteFleet {
            objects,
            churned,
            dir,
        }) => write_fleet(*objects, *churned, dir),
        Some(Internal::Stall {
            objects,
            runs,
            timeout,
            bin_dir,
        }) => suite::Tools::locate(bin_dir.clone()).and_then(|tools| {
            stall::main(
                &tools,
                &stall::Options {
                    objects: *objects,
                    runs: *runs as usize,
                    timeout: timeout.clone(),
                },
            )
        }),
        Some(Internal::Watch {
            samples,
            confctl_samples,
            members,
            bin_dir,
        }) => suite::Tools::locate(bin_dir.clone()).and_then(|tools| {
            watch::main(
                &tools,
                &watch::Options {
                    samples: *samples as usize,
                    confctl_samples: *confctl_samples as usize,
                    members: *members as usize,
                },
            )
        }),
        Some(Internal::Lb {
            pools,
            servers,
            samples,
            confctl_samples,
            changes,
            bin_dir,
        }) => suite::Tools::locate(bin_dir.clone()).and_then(|tools| {
            lb::main(
                &tools,
                &lb::Options {
                    pools: *pools as usize,
                    servers: *servers as usize,
                    samples: *samples as usize,
                    confctl_samples: *confctl_samples as usize,
                    changes: *changes as usize,
                },
            )
        }),
        Some(Internal::Thresholds {
            samples,
            pool,
            writers,
        }) => thresholds::main(&thresholds::Options {
            samples: *samples as usize,
            pool: *pool as usize,
            writers: *writers as usize,
        }),
        None => bench::main(bench::Options {
            sizes: cli.sizes,
            runs: cli.runs as usize,
            json_out: cli.json_out,
            bin_dir: cli.bin_dir,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conftool-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("100k"), Ok(100_000));
        assert_eq!(parse_size("1M"), Ok(1_000_000));
        assert_eq!(parse_size("1_000"), Ok(1000));
        assert!(parse_size("10").is_err());
        assert!(parse_size("x").is_err());
    }
}
