//! The steps `confctl run` and `confctl rolling` share: the stop switch, the host's and its
//! pools' leased locks, the depool into an operation, verification with the load balancers,
//! running the command with a timeout, and putting the host back.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use clap::Args;
use conftool_core::config::parse_duration;
use conftool_core::{
    Actor, Cluster, Config, HostDepool, Lock, LockName, LockRequest, NodeName, OperationId,
    PoolKey, Selected, Service, Store, Writer,
};

use super::Opts;
use crate::commands::changes::{failure, writer};

/// Options of the safe action.
#[derive(Debug, Clone, Args)]
pub struct StepArgs {
    /// Check with every load balancer of the host's pools (`load_balancers` in the
    /// configuration) that it is out before the command runs, and back in after.
    #[command(flatten)]
    pub verify: super::verify::VerifyArgs,
    /// How long the command may run (then it is killed, and counts as failed).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long to wait for the host's and its pools' locks (held by other runs).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lock_wait: Duration,
    /// How long the locks outlive this run if it dies (they are refreshed while it runs).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub lock_ttl: Duration,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Exit 0.
    Done,
    /// Another exit code, or a signal.
    Failed(String),
    /// Killed after the timeout.
    TimedOut(Duration),
    /// It could not be started.
    NotRun(String),
}

impl fmt::Display for CommandOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandOutcome::Done => f.write_str("the command succeeded"),
            CommandOutcome::Failed(why) => write!(f, "the command failed ({why})"),
            CommandOutcome::TimedOut(t) => {
                write!(f, "the command timed out after {}s (killed)", t.as_secs())
            }
            CommandOutcome::NotRun(why) => write!(f, "the command could not be started ({why})"),
        }
    }
}

/// Run `argv` (stdio inherited) within `timeout`, in a process group of its own so that a
/// timeout kills what it started too.
pub async fn run_command(argv: &[String], timeout: Duration) -> CommandOutcome {
    let Some((prog, rest)) = argv.split_first() else {
        return CommandOutcome::NotRun("no command".into());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(rest).process_group(0).kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return CommandOutcome::NotRun(format!("{prog}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) if s.success() => CommandOutcome::Done,
        Ok(Ok(s)) => CommandOutcome::Failed(match s.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        }),
        Ok(Err(e)) => CommandOutcome::Failed(format!("cannot wait for it: {e}")),
        Err(_) => {
            if let Some(pid) = child.id() {
                // The whole group: the command and what it started.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            CommandOutcome::TimedOut(timeout)
        }
    }
}

/// One run's context.
pub struct Steps<'a> {
    cfg: &'a Config,
    store: &'a Store,
    actor: &'a Actor,
    opts: &'a Opts,
    args: &'a StepArgs,
    kind: &'a str,
    writer: Writer<'a>,
}

impl<'a> Steps<'a> {
    /// A run of `kind` (the operation's kind): the audit log is opened (checked) now.
    pub fn new(
        cfg: &'a Config,
        store: &'a Store,
        actor: &'a Actor,
        opts: &'a Opts,
        args: &'a StepArgs,
        kind: &'a str,
    ) -> anyhow::Result<Steps<'a>> {
        let writer = writer("confctl", cfg, store, Default::default(), &opts.reason)?;
        Ok(Steps {
            cfg,
            store,
            actor,
            opts,
            args,
            kind,
            writer,
        })
    }

    /// The host's objects (of `services` only, if given); a host in none is bad input.
    pub async fn host_objects(
        &self,
        host: &NodeName,
        services: &[Service],
    ) -> anyhow::Result<Vec<Selected>> {
        let found = self.store.find_nodes(&[vec![host.clone()]], None).await?;
        let objects: Vec<Selected> = found
            .into_iter()
            .flatten()
            .flat_map(|(_, s)| s.objects)
            .filter(|o| services.is_empty() || services.contains(&o.key.pool.service))
            .collect();
        if objects.is_empty() {
            return Err(crate::exit::BadInput::msg(format!(
                "node {host} is not in any pool{}; nothing written",
                if services.is_empty() {
                    String::new()
                } else {
                    format!(" of the services {}", list(services))
                }
            )));
        }
        Ok(objects)
    }

    /// Refuse to go on while a stop switch for these objects' clusters is set.
    pub async fn check_stop(&self, objects: &[Selected]) -> anyhow::Result<()> {
        let clusters: BTreeSet<Cluster> =
            objects.iter().map(|o| o.key.pool.cluster.clone()).collect();
        let clusters: Vec<Cluster> = clusters.into_iter().collect();
        match self.store.stopped(&clusters).await? {
            Some(stop) => Err(conftool_core::Error::Stopped(Box::new(stop)).into()),
            None => Ok(()),
        }
    }

    /// The host's lock (waiting up to --lock-wait) and a slot of each of its pools' (a pool
    /// lets as many runs in as its depool threshold lets nodes out; waiting up to
    /// `pool_wait`), each kept alive while this process runs. Give them back with
    /// [`release`]: dropped, they last until their leases run out.
    pub async fn lock(
        &self,
        host: &NodeName,
        objects: &[Selected],
        pool_wait: Duration,
    ) -> anyhow::Result<Vec<Lock>> {
        let command = format!("confctl {} {host}", self.kind);
        let mut locks = Vec::new();
        let mut host_req =
            LockRequest::new(LockName::host(host), self.args.lock_ttl, command.clone());
        host_req.reason = self.opts.reason.reason.clone();
        locks.push(
            self.store
                .lock(self.actor, &host_req, self.args.lock_wait)
                .await?,
        );
        let pools: BTreeSet<PoolKey> = objects.iter().map(|o| o.key.pool.clone()).collect();
        let members = match self.store.pool_members(&pools).await {
            Ok(m) => m,
            Err(e) => {
                release(locks).await;
                return Err(e.into());
            }
        };
        for (pool, m) in &members {
            let out_allowed = m.nodes().saturating_sub(m.limits.required(m.nodes()));
            let mut req =
                LockRequest::new(LockName::pool(pool), self.args.lock_ttl, command.clone());
            req.concurrency = u32::try_from(out_allowed.max(1)).unwrap_or(u32::MAX);
            req.reason = self.opts.reason.reason.clone();
            match self.store.lock(self.actor, &req, pool_wait).await {
                Ok(l) => locks.push(l),
                Err(e) => {
                    release(locks).await;
                    return Err(e.into());
                }
            }
        }
        for l in &mut locks {
            l.keep_alive();
        }
        Ok(locks)
    }

    /// Depool the host into an operation (opened, or resumed after a crash). A threshold
    /// refusal comes back as the command's final outcome (`Err`), said as the host verbs do.
    pub async fn depool(
        &mut self,
        host: &NodeName,
        services: &[Service],
    ) -> anyhow::Result<Result<HostDepool, anyhow::Result<u8>>> {
        match self
            .writer
            .depool_into_operation(self.kind, host, services)
            .await
        {
            Ok(d) => {
                crate::commands::changes::Landed {
                    applied: d.applied.clone(),
                    error: None,
                }
                .report(&self.opts.out, None)?;
                Ok(Ok(d))
            }
            Err(e) => Ok(Err(failure(e).report(&self.opts.out, None))),
        }
    }

    /// Depool the host's objects of `services` (all if none) into the open operation `op`
    /// (a rolling run's), without printing; what landed.
    pub async fn depool_in(
        &mut self,
        op: &OperationId,
        host: &NodeName,
        services: &[Service],
    ) -> Result<Vec<conftool_core::Applied>, conftool_core::ApplyError> {
        let fail = |error| conftool_core::ApplyError {
            applied: Vec::new(),
            error,
        };
        self.writer.join_operation(op).await.map_err(fail)?;
        let mut applied = Vec::new();
        let scopes: Vec<Option<&Service>> = if services.is_empty() {
            vec![None]
        } else {
            services.iter().map(Some).collect()
        };
        for s in scopes {
            let host = std::slice::from_ref(host);
            match self
                .writer
                .host(conftool_core::HostVerb::Depool, host, s)
                .await
            {
                Ok(done) => applied.extend(done.applied),
                Err(mut e) => {
                    e.applied.splice(0..0, applied);
                    self.writer.leave_operation();
                    return Err(e);
                }
            }
        }
        self.writer.leave_operation();
        Ok(applied)
    }

    /// With --verify, before anything is written: every pool of the objects has a load
    /// balancer configured (bad input otherwise).
    pub async fn verify_preflight(&self, objects: &[Selected]) -> anyhow::Result<()> {
        if !self.args.verify.verify {
            return Ok(());
        }
        super::verify::check(self.store, self.cfg, &targets(objects, false)).await
    }

    /// With --verify: every load balancer of the objects' pools says the host is out.
    pub async fn verify_out(&self, objects: &[Selected]) -> anyhow::Result<()> {
        self.verify(objects, false).await
    }

    /// With --verify: every load balancer of the objects' pools says the host is as it was
    /// before the run (in rotation where it served).
    pub async fn verify_in(&self, objects: &[Selected]) -> anyhow::Result<()> {
        self.verify(objects, true).await
    }

    async fn verify(&self, objects: &[Selected], back_in: bool) -> anyhow::Result<()> {
        if !self.args.verify.verify {
            return Ok(());
        }
        let t = targets(objects, back_in);
        if t.is_empty() {
            return Ok(());
        }
        let opts = conftool_core::VerifyOptions {
            timeout: self.args.verify.verify_timeout,
            wait_sessions: self.args.verify.wait_sessions && !back_in,
            ..conftool_core::VerifyOptions::default()
        };
        let verified = conftool_core::verify(&self.cfg.load_balancers, &t, &opts).await?;
        self.opts.out.info(format!(
            "Verified: {} {} on every load balancer ({:.2}s)",
            objects
                .first()
                .map_or(String::new(), |o| o.key.node.to_string()),
            if back_in {
                "back as it was"
            } else {
                "out of rotation"
            },
            verified.elapsed.as_secs_f64()
        ));
        Ok(())
    }

    /// End the operation: put back exactly what it depooled (where nobody changed it since).
    pub async fn end(&mut self, op: &OperationId) -> anyhow::Result<()> {
        match self.writer.end_operation(op, false).await {
            Ok(ended) => {
                for (key, why) in &ended.left {
                    self.opts.out.info(format!("{key}: left as it is: {why}"));
                }
                crate::commands::changes::Landed {
                    applied: ended.restored,
                    error: None,
                }
                .report(&self.opts.out, None)?;
                Ok(())
            }
            Err(e) => failure(e).report(&self.opts.out, None).map(drop),
        }
    }

    /// The writer (for a rolling run's own operation handling).
    pub fn writer(&mut self) -> &mut Writer<'a> {
        &mut self.writer
    }
}

/// What to ask the load balancers about the objects (inactive ones are not asked): out of
/// rotation, or as they were read (`back_in`: in where they served).
fn targets(objects: &[Selected], back_in: bool) -> Vec<conftool_core::Target> {
    objects
        .iter()
        .filter_map(|o| conftool_core::Target::of(&o.key, &o.state))
        .map(|mut t| {
            if !back_in {
                t.want = conftool_core::Want::Out;
            }
            t
        })
        .collect()
}

/// Give locks back, all at once (a failure to is left to the leases: they run out).
pub async fn release(locks: Vec<Lock>) {
    let mut all = tokio::task::JoinSet::new();
    for l in locks {
        all.spawn(l.release());
    }
    while all.join_next().await.is_some() {}
}

fn list(services: &[Service]) -> String {
    services
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
