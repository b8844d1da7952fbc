//! `confctl rolling SELECTOR --batch N|P% [--max-failed K] [--sleep S] -- COMMAND {host}...`:
//! the safe action of `confctl run` host by host, in batches, as one operation. Each host of
//! a batch takes its locks, is depooled into the run's operation (a depool the threshold
//! refuses waits for capacity and tries again, up to --capacity-wait), verified, has the
//! command run (`{host}` replaced), and is put back (and verified) when it succeeds; a host
//! whose command fails stays depooled. The run stops after --max-failed failed hosts, when
//! the stop switch is set (after the current step), or on Ctrl-C (after the current batch);
//! it ends with a summary of what is still depooled and why. Run again with the same
//! selector and command, it resumes its open operation and skips the hosts already done.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use conftool_core::config::parse_duration;
use conftool_core::OperationStep;
use conftool_core::{Actor, NodeName, OperationId, Selector, Service};

use super::fleet_steps::{self, CommandOutcome, Steps};
use super::Opts;
use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};
use crate::output::stderr_text;

/// `confctl rolling`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct RollingArgs {
    /// Which objects (hosts and their services): `dc=eqiad,cluster=appservers`.
    pub selector: String,
    /// Hosts at a time: a number, or a share of the hosts (`25%`).
    #[arg(long, value_name = "N|P%")]
    pub batch: String,
    /// Stop after this many failed hosts.
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub max_failed: usize,
    /// Pause between batches.
    #[arg(long, default_value = "0s", value_parser = conftool_core::config::parse_duration_or_zero)]
    pub sleep: Duration,
    /// How long a host whose depool the threshold refuses waits for capacity to return.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub capacity_wait: Duration,
    #[command(flatten)]
    pub steps: fleet_steps::StepArgs,
    /// The command, `{host}` replaced by each host's name (`-- ssh {host} sudo restart`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `N` or `P%` of `hosts`, at least 1; 0, more than 100% or junk is bad input.
fn batch_size(spec: &str, hosts: usize) -> anyhow::Result<usize> {
    let bad = || {
        BadInput::msg(format!(
            "--batch {spec:?}: give a number of hosts (at least 1) or a share from 1% to 100%; \
             nothing written"
        ))
    };
    match spec.strip_suffix('%') {
        Some(p) => {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            Ok(((hosts as f64 * p / 100.0).ceil() as usize).max(1))
        }
        None => match spec.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(bad()),
        },
    }
}

/// What happened to one host.
#[derive(Debug, Clone)]
enum HostResult {
    Done(Duration),
    Failed(String),
    Skipped(String),
}

pub(super) async fn run(conn: &ConnArgs, opts: &Opts, args: &RollingArgs) -> anyhow::Result<u8> {
    let sel: Selector = args.selector.parse()?;
    if args.command.is_empty() {
        return Err(BadInput::msg("no command given after --; nothing written"));
    }
    let (cfg, store) = conn.connect().await?;
    opts.debug_connection(&cfg, &store);
    let actor = Actor::from_env("confctl", cfg.username.clone());
    // The hosts and, for each, the services the selector selects (inactive objects left out).
    let selection = store.select(&sel).await?;
    let mut services: BTreeMap<NodeName, BTreeSet<Service>> = BTreeMap::new();
    let clusters: Vec<conftool_core::Cluster> = selection
        .objects
        .iter()
        .map(|o| o.key.pool.cluster.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for o in selection
        .objects
        .iter()
        .filter(|o| o.state.pooled != conftool_core::Pooled::Inactive)
    {
        services
            .entry(o.key.node.clone())
            .or_default()
            .insert(o.key.pool.service.clone());
    }
    if services.is_empty() {
        return Err(BadInput::msg(format!(
            "selector {} selects no host (that is not inactive); nothing written",
            conftool_core::escape_controls(&sel.to_string())
        )));
    }
    let batch = batch_size(&args.batch, services.len())?;
    // A stop switch set now: not started at all (no operation opened).
    if let Some(stop) = store.stopped(&clusters).await? {
        return Err(conftool_core::Error::Stopped(Box::new(stop)).into());
    }
    // The run's operation: resumed when the same selector and command left one open.
    let mut w = writer("confctl", &cfg, &store, Default::default(), &opts.reason)?;
    let subject = vec![sel.to_string(), args.command.join(" ")];
    let (op, resumed) = w.resume_or_open("rolling", subject).await?;
    let done_before: BTreeSet<String> = w
        .operation_record()
        .map(|r| {
            r.steps
                .iter()
                .filter(|s| s.kind == "done")
                .map(|s| s.host.clone())
                .collect()
        })
        .unwrap_or_default();
    w.leave_operation();
    opts.out.line(format!(
        "operation {op}{}: {} hosts, {batch} at a time",
        if resumed { " (resumed)" } else { "" },
        services.len()
    ));
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
    }
    let hosts: Vec<(NodeName, Vec<Service>)> = services
        .into_iter()
        .filter(|(h, _)| !done_before.contains(h.as_str()))
        .map(|(h, s)| (h, s.into_iter().collect()))
        .collect();
    let progress = Progress::new(opts, hosts.len());
    let mut results: BTreeMap<NodeName, HostResult> = BTreeMap::new();
    let mut failed = 0;
    let mut stop_reason = None;
    for chunk in hosts.chunks(batch) {
        if let Some(why) = stop_reason.as_ref() {
            for (h, _) in chunk {
                results.insert(
                    h.clone(),
                    HostResult::Skipped(format!("not started: {why}")),
                );
            }
            continue;
        }
        let work = chunk
            .iter()
            .map(|(host, svcs)| one_host(&cfg, &store, &actor, opts, args, &op, host, svcs));
        let outcomes = futures::future::join_all(work).await;
        for ((host, _), r) in chunk.iter().zip(outcomes) {
            if matches!(r, HostResult::Failed(_)) {
                failed += 1;
            }
            progress.host(host, &r);
            results.insert(host.clone(), r);
        }
        if failed >= args.max_failed {
            stop_reason = Some(format!(
                "{failed} hosts failed (--max-failed {})",
                args.max_failed
            ));
        } else if interrupted.load(Ordering::SeqCst) {
            stop_reason = Some("interrupted (Ctrl-C)".to_string());
        } else if let Some(stop) = store.stopped(&clusters).await? {
            stop_reason = Some(stop.to_string());
        } else if !args.sleep.is_zero() {
            tokio::time::sleep(args.sleep).await;
        }
    }
    progress.finish();
    summary(opts, &results, stop_reason.as_deref());
    let all_done = results.values().all(|r| matches!(r, HostResult::Done(_)));
    if all_done {
        w.close_operation(&op).await?;
        opts.out
            .line(format!("operation {op} ended: every host done and back"));
        Ok(OK)
    } else {
        opts.out.line(format!(
            "operation {op} stays open: run the same command again to resume, or \
             `confctl operation end {op}` to put back what is still depooled"
        ));
        Ok(FAILURE)
    }
}

/// The safe action on one host of a batch, recorded in the run's operation.
#[allow(clippy::too_many_arguments)]
async fn one_host(
    cfg: &conftool_core::Config,
    store: &conftool_core::Store,
    actor: &Actor,
    opts: &Opts,
    args: &RollingArgs,
    op: &OperationId,
    host: &NodeName,
    services: &[Service],
) -> HostResult {
    let started = Instant::now();
    let mut steps = match Steps::new(cfg, store, actor, opts, &args.steps, "rolling") {
        Ok(s) => s,
        Err(e) => return HostResult::Failed(format!("{e:#}")),
    };
    let result = host_steps(&mut steps, args, op, host, services, started).await;
    let (kind, detail) = match &result {
        HostResult::Done(_) => ("done", "done and back".to_string()),
        HostResult::Failed(why) => ("failed", why.clone()),
        HostResult::Skipped(why) => ("skipped", why.clone()),
    };
    if steps.writer().join_operation(op).await.is_ok() {
        let step = OperationStep {
            host: host.to_string(),
            kind: kind.into(),
            detail,
            exit_code: None,
            outcome: None,
            undo: None,
        };
        let _ = steps.writer().record_steps(vec![step]).await;
        steps.writer().leave_operation();
    }
    result
}

async fn host_steps(
    steps: &mut Steps<'_>,
    args: &RollingArgs,
    op: &OperationId,
    host: &NodeName,
    services: &[Service],
    started: Instant,
) -> HostResult {
    let objects = match steps.host_objects(host, services).await {
        Ok(o) => o,
        Err(e) => return HostResult::Skipped(format!("{e:#}")),
    };
    if let Err(e) = steps.check_stop(&objects).await {
        return HostResult::Skipped(format!("{e:#}"));
    }
    if let Err(e) = steps.verify_preflight(&objects).await {
        return HostResult::Failed(format!("{e:#}"));
    }
    // A pool's slots free as other hosts come back: wait as long as for capacity.
    let locks = match steps.lock(host, &objects, args.capacity_wait).await {
        Ok(l) => l,
        Err(e) => return HostResult::Failed(format!("{e:#}")),
    };
    let result = locked_steps(steps, args, op, host, services, &objects, started).await;
    fleet_steps::release(locks).await;
    result
}

/// A host's steps while it holds its locks.
async fn locked_steps(
    steps: &mut Steps<'_>,
    args: &RollingArgs,
    op: &OperationId,
    host: &NodeName,
    services: &[Service],
    objects: &[conftool_core::Selected],
    started: Instant,
) -> HostResult {
    // A refused depool waits for capacity (other hosts coming back) and tries again.
    let waiting = Instant::now();
    loop {
        match steps.depool_in(op, host, services).await {
            Ok(_) => break,
            Err(e) if conftool_core::is_threshold_refusal(&e.error) => {
                if waiting.elapsed() >= args.capacity_wait {
                    return HostResult::Failed(format!(
                        "no capacity within {}s: {}",
                        args.capacity_wait.as_secs(),
                        e.error
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return HostResult::Failed(format!("depool: {}", e.error)),
        }
    }
    let only = BTreeSet::from([host.clone()]);
    if let Err(e) = steps.verify_out(objects).await {
        let _ = steps.writer().restore_hosts(op, &only).await;
        return HostResult::Failed(format!("not verified out (put back, not run): {e:#}"));
    }
    if let Err(e) = steps.check_stop(objects).await {
        let _ = steps.writer().restore_hosts(op, &only).await;
        return HostResult::Skipped(format!("put back, not run: {e:#}"));
    }
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.replace("{host}", host.as_str()))
        .collect();
    match fleet_steps::run_command(&argv, args.steps.timeout).await {
        CommandOutcome::Done => {}
        other => return HostResult::Failed(format!("{other}; it stays depooled")),
    }
    if let Err(e) = steps.writer().restore_hosts(op, &only).await {
        return HostResult::Failed(format!("putting it back: {}", e.error));
    }
    if let Err(e) = steps.verify_in(objects).await {
        return HostResult::Failed(format!("put back, but not verified in: {e:#}"));
    }
    HostResult::Done(started.elapsed())
}

/// Progress: a bar on a terminal (stderr), one line per host otherwise (stdout).
struct Progress<'a> {
    opts: &'a Opts,
    total: usize,
    done: std::cell::Cell<(usize, usize)>,
    tty: bool,
}

impl<'a> Progress<'a> {
    fn new(opts: &'a Opts, total: usize) -> Progress<'a> {
        use std::io::IsTerminal;
        Progress {
            opts,
            total,
            done: std::cell::Cell::new((0, 0)),
            tty: std::io::stderr().is_terminal() && !opts.json,
        }
    }

    fn host(&self, host: &NodeName, r: &HostResult) {
        let (mut n, mut failed) = self.done.get();
        n += 1;
        if matches!(r, HostResult::Failed(_)) {
            failed += 1;
        }
        self.done.set((n, failed));
        if self.tty {
            let width = 30;
            let filled = width * n / self.total.max(1);
            stderr_text(&format!(
                "\r[{}{}] {n}/{} hosts, {failed} failed ",
                "#".repeat(filled),
                ".".repeat(width - filled),
                self.total
            ));
        } else {
            self.opts.out.line(match r {
                HostResult::Done(t) => format!("{host}: done ({:.1}s)", t.as_secs_f64()),
                HostResult::Failed(why) => format!("{host}: FAILED: {why}"),
                HostResult::Skipped(why) => format!("{host}: skipped: {why}"),
            });
        }
    }

    fn finish(&self) {
        if self.tty {
            stderr_text("\n");
        }
    }
}

/// What is still depooled, and why.
fn summary(opts: &Opts, results: &BTreeMap<NodeName, HostResult>, stopped: Option<&str>) {
    let done = results
        .values()
        .filter(|r| matches!(r, HostResult::Done(_)))
        .count();
    opts.out.line(format!(
        "summary: {done} of {} hosts done{}",
        results.len(),
        stopped.map_or(String::new(), |s| format!("; stopped: {s}"))
    ));
    for (h, r) in results {
        match r {
            HostResult::Failed(why) => opts.out.line(format!("  {h}: still depooled: {why}")),
            HostResult::Skipped(why) => opts.out.line(format!("  {h}: {why}")),
            HostResult::Done(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_a_count_or_a_share_of_the_hosts() {
        assert_eq!(batch_size("3", 20).unwrap(), 3);
        assert_eq!(batch_size("25%", 20).unwrap(), 5);
        assert_eq!(batch_size("10%", 3).unwrap(), 1);
        assert_eq!(batch_size("100%", 7).unwrap(), 7);
        for bad in ["0", "0%", "150%", "-1", "x", "5.5", ""] {
            let e = batch_size(bad, 20).unwrap_err().to_string();
            assert!(e.contains("--batch"), "{bad}: {e}");
        }
    }
}
