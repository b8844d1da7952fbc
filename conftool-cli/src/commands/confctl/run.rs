//! `confctl run --hostname H [--service S]... [--verify] [--timeout T] -- COMMAND...`: the
//! safe action on a host. It takes the host's lock and a slot of each of its pools' locks
//! (leased: a crashed run's expire), checks the stop switch, opens an operation and depools
//! what is `pooled: yes` into it, verifies with the load balancers, runs the command, and on
//! success puts back exactly what it depooled and verifies that. A failing or timed-out
//! command leaves the host depooled and the operation open, unless --repool-on-failure.
//!
//! Exit codes: 0 done; 1 a runtime failure (etcd, a lock busy, the stop switch, a
//! verification that failed); 2 bad input or a refusal (the threshold), nothing written;
//! 4 the command failed and 5 it timed out (the host stays depooled, the operation open,
//! both named, unless --repool-on-failure).

use clap::Args;
use conftool_core::{Actor, NodeName, Service};

use super::fleet_steps::{self, Steps};
use super::Opts;
use crate::connection::ConnArgs;
use crate::exit::BadInput;

/// The command failed: the host stays depooled.
pub const COMMAND_FAILED: u8 = 4;
/// The command ran out of time (and was killed): the host stays depooled.
pub const COMMAND_TIMED_OUT: u8 = 5;

/// `confctl run`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The host.
    #[arg(long, value_name = "HOST", required = true)]
    pub hostname: String,
    /// Only these services' pools (repeat for several; default: every pool of the host).
    #[arg(long, value_name = "SERVICE")]
    pub service: Vec<String>,
    #[command(flatten)]
    pub steps: fleet_steps::StepArgs,
    /// Put the host back even if the command fails or times out.
    #[arg(long)]
    pub repool_on_failure: bool,
    /// The command, run with the host depooled (as is: `--` before it).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub(super) async fn run(conn: &ConnArgs, opts: &Opts, args: &RunArgs) -> anyhow::Result<u8> {
    let host: NodeName = args.hostname.parse()?;
    let services = args
        .service
        .iter()
        .map(|s| s.parse::<Service>())
        .collect::<Result<Vec<_>, _>>()?;
    if args.command.is_empty() {
        return Err(BadInput::msg("no command given after --; nothing written"));
    }
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let actor = Actor::from_env("confctl", cfg.username.clone());
    let mut steps = Steps::new(&cfg, &store, &actor, opts, &args.steps, "run")?;
    // Before anything: the stop switch, then the host's and its pools' locks.
    let objects = steps.host_objects(&host, &services).await?;
    opts.debug(|| format!("read {host}'s {} objects", objects.len()));
    steps.verify_preflight(&objects).await?;
    steps.check_stop(&objects).await?;
    opts.debug(|| "checked the load balancers' settings and the stop switch".into());
    let locks = steps.lock(&host, &objects, args.steps.lock_wait).await?;
    opts.debug(|| format!("took {} locks", locks.len()));
    let result = locked(&mut steps, opts, args, &host, &services, &objects).await;
    fleet_steps::release(locks).await;
    opts.debug(|| "released the locks".into());
    result
}

/// What `run` does while holding its locks.
async fn locked(
    steps: &mut Steps<'_>,
    opts: &Opts,
    args: &RunArgs,
    host: &NodeName,
    services: &[Service],
    objects: &[conftool_core::Selected],
) -> anyhow::Result<u8> {
    let depooled = match steps.depool(host, services).await? {
        Ok(d) => d,
        Err(refused) => return refused,
    };
    opts.out.line(format!(
        "operation {}{}",
        depooled.operation,
        if depooled.resumed { " (resumed)" } else { "" }
    ));
    opts.debug(|| format!("depooled {} objects", depooled.objects.len()));
    if let Err(e) = steps.verify_out(&depooled.objects).await {
        // Fail closed: the command never runs on a host not known to be out.
        steps.end(&depooled.operation).await?;
        return Err(e.context("the host was put back; the command was not run"));
    }
    if let Err(e) = steps.check_stop(objects).await {
        steps.end(&depooled.operation).await?;
        return Err(e.context("the host was put back; the command was not run"));
    }
    opts.debug(|| "running the command".into());
    let outcome = fleet_steps::run_command(&args.command, args.steps.timeout).await;
    opts.debug(|| format!("the command ended: {outcome}"));
    let code = match &outcome {
        fleet_steps::CommandOutcome::Done => 0,
        fleet_steps::CommandOutcome::Failed(_) => COMMAND_FAILED,
        fleet_steps::CommandOutcome::TimedOut(_) | fleet_steps::CommandOutcome::NotRun(_) => {
            COMMAND_TIMED_OUT
        }
    };
    if code != 0 && !args.repool_on_failure {
        crate::output::warn(
            "confctl",
            format!(
                "{outcome}: {host} stays depooled; operation {id} stays open (put it back \
                 with `confctl operation end {id}`)",
                id = depooled.operation
            ),
        );
        return Ok(code);
    }
    steps.end(&depooled.operation).await?;
    opts.debug(|| format!("ended operation {}", depooled.operation));
    steps.verify_in(&depooled.objects).await?;
    if code != 0 {
        crate::output::warn(
            "confctl",
            format!("{outcome}; {host} was put back as asked"),
        );
    }
    Ok(code)
}
