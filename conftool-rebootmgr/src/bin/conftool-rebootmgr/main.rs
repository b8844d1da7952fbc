//! `conftool-rebootmgr`: coordinated reboots on etcd. Parses, dispatches, writes events as
//! JSON lines and chooses the exit code; everything else is the library's.

mod log;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use conftool_core::{Classify as _, NodeName};
use conftool_rebootmgr::keys::StopScope;
use conftool_rebootmgr::outcome::{EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_HELD_BACK};
use conftool_rebootmgr::{Error, GroupName, Node, RebootConfig, RunOptions};

/// Coordinated reboots of a group's nodes, one slot at a time, on etcd.
///
/// Exit codes: 0 nothing to do or done, 1 runtime failure (try again), 2 bad input,
/// 3 held back (try again later), 4 the node needs a person.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The coordinator's configuration.
    #[arg(long, short, env = "REBOOTMGR_CONFIG", default_value = conftool_rebootmgr::config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One run (what the timer starts): report health, finish or clean up an earlier
    /// reboot, and reboot if asked and nothing holds it back.
    Run {
        /// Reboot now (an operator's trigger), constraints and stops still apply.
        #[arg(long)]
        now: bool,
        /// Say what would be done and what holds it back; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The group's slots, reboots in progress, marks, stops and reports, as JSON.
    Status,
    /// Stop reboots: of every node (default), of a group, or of a node.
    Stop {
        #[command(flatten)]
        scope: Scope,
        /// Why (recorded with who set it and when).
        #[arg(long)]
        reason: String,
    },
    /// Clear a stop switch set with `stop`.
    Go {
        #[command(flatten)]
        scope: Scope,
    },
    /// A person's all-clear on a node marked as needing one (default: this node).
    ClearMark {
        /// The node.
        #[arg(long)]
        node: Option<NodeName>,
    },
    /// Ask for a node's reboot through etcd (default: this node).
    Request {
        /// The node.
        #[arg(long)]
        node: Option<NodeName>,
        /// Withdraw the request instead.
        #[arg(long)]
        withdraw: bool,
    },
}

#[derive(Debug, clap::Args)]
#[group(multiple = false)]
struct Scope {
    /// Only this group.
    #[arg(long)]
    group: Option<GroupName>,
    /// Only this node.
    #[arg(long)]
    node: Option<NodeName>,
}

impl Scope {
    fn scope(self) -> StopScope {
        match (self.group, self.node) {
            (Some(g), _) => StopScope::Group(g),
            (None, Some(n)) => StopScope::Node(n),
            (None, None) => StopScope::All,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conftool-rebootmgr: error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

async fn dispatch(cli: Cli) -> i32 {
    let cfg = match RebootConfig::load(&cli.config) {
        Ok(c) => c,
        Err(e) => return fail(&anyhow::Error::new(e)),
    };
    let mut log = log::Log::new(&cfg);
    if let Command::Run { now, dry_run } = cli.command {
        return log.run(cfg, RunOptions { now, dry_run }).await;
    }
    match other(cfg, cli.command).await {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

async fn other(cfg: RebootConfig, command: Command) -> anyhow::Result<()> {
    let node = Node::connect(cfg).await?;
    match command {
        Command::Run { .. } => {}
        Command::Status => {
            let status = node.status().await?;
            say(&serde_json::to_string_pretty(&status)?)?;
        }
        Command::Stop { scope, reason } => {
            let scope = scope.scope();
            node.set_stop(&scope, Some(&reason)).await?;
            say(&format!("stopped: reboots of {scope}"))?;
        }
        Command::Go { scope } => {
            let scope = scope.scope();
            let was = node.set_stop(&scope, None).await?;
            say(&format!(
                "{}: reboots of {scope}",
                if was { "cleared" } else { "was not set" }
            ))?;
        }
        Command::ClearMark { node: n } => {
            let n = n.unwrap_or_else(|| node.name().clone());
            let was = node.clear_mark(&n).await?;
            say(&format!(
                "{n}: {}",
                if was {
                    "mark cleared"
                } else {
                    "was not marked"
                }
            ))?;
        }
        Command::Request { node: n, withdraw } => {
            let n = n.unwrap_or_else(|| node.name().clone());
            node.request(&n, !withdraw)
                .await
                .with_context(|| format!("reboot request of {n}"))?;
            say(&format!(
                "{n}: reboot {}",
                if withdraw {
                    "request withdrawn"
                } else {
                    "requested"
                }
            ))?;
        }
    }
    Ok(())
}

/// A line on stdout; an error if it cannot be written (a closed pipe is not success). What
/// the command changed has been written to etcd by then: the error says only that its
/// report was lost.
fn say(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .context("the report could not be written to stdout (what was asked was done)")
}

/// The exit code of an error, after saying it.
fn fail(e: &anyhow::Error) -> i32 {
    eprintln!("conftool-rebootmgr: error: {e:#}");
    exit_code(e)
}

/// Bad input is 2; everything else a runtime failure.
fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<Error>() {
        Some(e) if e.is_bad_input() => EXIT_BAD_INPUT,
        _ => EXIT_FAILURE,
    }
}

/// Another instance holds the node's local lock.
const BUSY: i32 = EXIT_HELD_BACK;
