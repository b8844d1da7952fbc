//! `confctl lock acquire|release|list` and `confctl stop set|clear|status`: the leased locks
//! and the stop switch that runs coordinate through (see `conftool_core::coordination`).

use std::time::Duration;

use clap::{Args, Subcommand};
use conftool_core::config::parse_duration;
use conftool_core::{Actor, Cluster, LockName, LockRequest, StopScope};
use serde_json::json;

use super::Opts;
use crate::commands::changes::writer;
use crate::connection::ConnArgs;
use crate::exit::{BadInput, FAILURE, OK};

/// `confctl lock ...`.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: LockAction,
}

/// The lock subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum LockAction {
    /// Take a slot of lock NAME for --ttl (it is not kept alive: it expires then, or when
    /// released); prints the holder's id.
    Acquire {
        /// The lock (`host:<node>`, `pool:<dc>:<cluster>:<service>`, or any name).
        name: String,
        /// How many may hold it at once.
        #[arg(long, default_value_t = 1)]
        concurrency: u32,
        /// How long it is held.
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        ttl: Duration,
        /// How long to wait for a slot (0: fail at once if busy).
        #[arg(long, default_value = "0s", value_parser = conftool_core::config::parse_duration_or_zero)]
        wait: Duration,
    },
    /// Give a lock up: the caller's own entries (user and host), or the one --id names.
    Release {
        /// The lock.
        name: String,
        /// One entry, anyone's (for a person clearing a stuck run by hand).
        #[arg(long)]
        id: Option<String>,
    },
    /// Every lock with its holders (user@host, pid, command, since, expiry) and waiters.
    List,
}

/// `confctl stop ...`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: StopAction,
}

/// The stop subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum StopAction {
    /// Stop every automated run (`confctl run`, `rolling`, the reboot coordinator, the
    /// maintenance daemon), or those of one cluster: they do not start, and running ones
    /// stop after their current step.
    Set {
        /// Only runs on this cluster's hosts.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Clear the stop switch (or one cluster's).
    Clear {
        /// Only this cluster's.
        #[arg(long)]
        cluster: Option<String>,
    },
    /// The stop switches that are set (exit 0 either way).
    Status,
}

fn lock_name(s: &str) -> anyhow::Result<LockName> {
    s.parse::<LockName>()
        .map_err(|e| BadInput::msg(format!("{e}; nothing written")))
}

fn scope(cluster: &Option<String>) -> anyhow::Result<StopScope> {
    Ok(match cluster {
        Some(c) => StopScope::Cluster(c.parse::<Cluster>()?),
        None => StopScope::All,
    })
}

/// What holds a lock taken by hand: the command line.
fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

pub(super) async fn lock(conn: &ConnArgs, opts: &Opts, args: &LockArgs) -> anyhow::Result<u8> {
    match &args.action {
        LockAction::Acquire {
            name,
            concurrency,
            ttl,
            wait,
        } => {
            let name = lock_name(name)?;
            if *concurrency == 0 {
                return Err(BadInput::msg(
                    "--concurrency must be at least 1; nothing written",
                ));
            }
            let (cfg, store) = conn.connect().await?;
            let actor = Actor::from_env("confctl", cfg.username.clone());
            let req = LockRequest {
                concurrency: *concurrency,
                reason: opts.reason.reason.clone(),
                ..LockRequest::new(name.clone(), *ttl, command_line())
            };
            match store.lock(&actor, &req, *wait).await {
                Ok(l) => {
                    opts.out.line(l.holder().id.clone());
                    opts.out.info(format!(
                        "lock {name} held until released or for {}s",
                        ttl.as_secs()
                    ));
                    // Dropping a lock does not release it: taken by hand, it lasts its time
                    // to live (or until `confctl lock release`).
                    drop(l);
                    Ok(OK)
                }
                Err(e @ conftool_core::Error::LockBusy { .. }) => {
                    crate::output::warn("confctl", e.to_string());
                    Ok(FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        LockAction::Release { name, id } => {
            let name = lock_name(name)?;
            let (cfg, store) = conn.connect().await?;
            let actor = Actor::from_env("confctl", cfg.username.clone());
            let state = store.lock_state(&name).await?;
            let ids: Vec<String> = match id {
                Some(id) => vec![id.clone()],
                None => state
                    .entries
                    .iter()
                    .filter(|(h, _)| h.user == actor.user && h.host == actor.host)
                    .map(|(h, _)| h.id.clone())
                    .collect(),
            };
            let mut released = 0;
            for id in &ids {
                if store.release_lock(&name, id).await? {
                    released += 1;
                    opts.out.info(format!("released {name} ({id})"));
                }
            }
            if released == 0 {
                return Err(BadInput::msg(format!(
                    "no entry of lock {name} to release{}; nothing written",
                    match id {
                        Some(id) => format!(" with id {id}"),
                        None => format!(" held by {}@{}", actor.user, actor.host),
                    }
                )));
            }
            Ok(OK)
        }
        LockAction::List => {
            let (_, store) = conn.connect().await?;
            let locks = store.locks().await?;
            if opts.json {
                let doc: Vec<serde_json::Value> = locks
                    .iter()
                    .map(|l| {
                        json!({
                            "name": l.name.to_string(),
                            "holding": l.holding,
                            "entries": l.entries.iter().map(|(h, left)| json!({
                                "holder": h, "expires_in_secs": left,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                opts.out.line(serde_json::Value::from(doc).to_string());
                return Ok(OK);
            }
            if locks.is_empty() {
                opts.out.info("No locks held.");
            }
            for l in &locks {
                for (i, (h, left)) in l.entries.iter().enumerate() {
                    opts.out.line(format!(
                        "{}  {}  {}@{}  pid {}  since {}  expires in {}  {}{}",
                        l.name,
                        if i < l.holding { "held" } else { "waiting" },
                        h.user,
                        h.host,
                        h.pid,
                        h.since,
                        left.map_or("?".to_string(), |s| format!("{s}s")),
                        conftool_core::escape_controls(&h.command),
                        h.reason.as_deref().map_or(String::new(), |r| format!(
                            "  reason: {}",
                            conftool_core::escape_controls(r)
                        ))
                    ));
                }
            }
            Ok(OK)
        }
    }
}

pub(super) async fn stop(conn: &ConnArgs, opts: &Opts, args: &StopArgs) -> anyhow::Result<u8> {
    match &args.action {
        StopAction::Set { cluster } => {
            let scope = scope(cluster)?;
            let Some(reason) = opts.reason.reason.clone() else {
                return Err(BadInput::msg(
                    "confctl stop set needs --reason: say why, for whoever finds it set; \
                     nothing written",
                ));
            };
            let (cfg, store) = conn.connect().await?;
            let mut w = writer("confctl", &cfg, &store, Default::default(), &opts.reason)?;
            w.set_stop(&scope, &reason).await?;
            opts.out.info(format!("stop switch set for {scope}"));
            Ok(OK)
        }
        StopAction::Clear { cluster } => {
            let scope = scope(cluster)?;
            let (cfg, store) = conn.connect().await?;
            let mut w = writer("confctl", &cfg, &store, Default::default(), &opts.reason)?;
            if w.clear_stop(&scope).await? {
                opts.out.info(format!("stop switch cleared for {scope}"));
            } else {
                opts.out.info(format!(
                    "the stop switch for {scope} was not set; nothing written"
                ));
            }
            Ok(OK)
        }
        StopAction::Status => {
            let (_, store) = conn.connect().await?;
            let stops = store.stops().await?;
            if opts.json {
                let doc: Vec<serde_json::Value> = stops
                    .iter()
                    .map(|s| json!({"scope": s.scope.to_string(), "record": s.record}))
                    .collect();
                opts.out.line(serde_json::Value::from(doc).to_string());
                return Ok(OK);
            }
            if stops.is_empty() {
                opts.out.line("No stop switch is set.");
            }
            for s in &stops {
                opts.out.line(s.to_string());
            }
            Ok(OK)
        }
    }
}
