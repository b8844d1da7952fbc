//! `conftool-maintd`: the maintenance daemon (see the library, [`conftool_maintd`]). This
//! file parses arguments, turns the daemon's events into log lines (one JSON object per
//! line on stderr), wires up the signals and chooses the exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use conftool_core::config::{CallerSettings, DEFAULT_CONFIG_PATH};
use conftool_core::{Actor, AuditLog, Classify as _, Config, Store};
use conftool_maintd::{Ctx, Daemon, DaemonEvent, Error, MaintConfig};
use conftool_trust::Privilege;
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};

/// Exit code: a runtime failure (etcd, a status page that cannot listen).
const FAILURE: u8 = 1;
/// Exit code: bad input (arguments, a configuration file).
const BAD_INPUT: u8 = 2;
/// Exit code: not the leader (`--once` while another instance leads, or the leadership
/// lost under it): Ganeti's `exitNotmaster`.
const NOT_LEADER: u8 = 11;

/// The maintenance daemon: polls each node's self-diagnose command, keeps repair events in
/// etcd and acts on them within the pools' depool thresholds (evacuate, live repair). One
/// instance leads; others stand by and take over when it dies. Runs until SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(
    name = "conftool-maintd",
    version,
    after_help = "Exit codes: 0 stopped (or --once done), 1 runtime failure, 2 bad input, \
                  11 not the leader (--once while another instance leads; or the leadership \
                  was lost)."
)]
struct Args {
    /// The daemon's configuration file (nodes, diagnose and repair commands, intervals).
    #[arg(long, value_name = "FILE", default_value = "/etc/conftool/maintd.yaml")]
    maint_config: PathBuf,
    /// conftool's configuration file (etcd, audit log, load_balancers) [env: CONFTOOL_CONFIG].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// etcd client URLs, comma-separated (override the file's) [env: CONFTOOL_ENDPOINTS].
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    endpoints: Vec<String>,
    /// Key namespace in front of /v1 (overrides the file's).
    #[arg(long, value_name = "PREFIX")]
    namespace: Option<String>,
    /// One poll and its round, then exit (11 if another instance leads).
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { BAD_INPUT } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            log(json!({"event": "error", "error": format!("cannot start: {e}")}));
            return ExitCode::from(FAILURE);
        }
    };
    let code = match runtime.block_on(run(args)) {
        Ok(()) => 0,
        Err(e) => {
            let code = match e.downcast_ref::<Error>() {
                Some(Error::NotLeader(_) | Error::LostLeadership) => NOT_LEADER,
                Some(e) if e.is_bad_input() => BAD_INPUT,
                _ if e
                    .downcast_ref::<conftool_core::Error>()
                    .is_some_and(|e| e.is_bad_input()) =>
                {
                    BAD_INPUT
                }
                _ => FAILURE,
            };
            eprintln!("conftool-maintd: {e:#}");
            code
        }
    };
    ExitCode::from(code)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = MaintConfig::load(&args.maint_config)?;
    let conftool = conftool_config(&args)?;
    let store = Store::connect(&conftool).await?;
    let actor = Actor::from_env("conftool-maintd", conftool.username.clone());
    let ctx = Ctx {
        by: format!("conftool-maintd@{} pid {}", actor.host, std::process::id()),
        store,
        cfg: cfg.clone(),
        lbs: conftool.load_balancers.clone(),
        actor,
        audit: AuditLog::from_config(conftool.audit_log.as_deref()),
    };
    let status = conftool_maintd::Shared::default();
    let server = match cfg.status_listen {
        Some(addr) => {
            let listener = conftool_maintd::http::bind(addr).await?;
            log(json!({"event": "status_listening", "addr": listener.local_addr()?.to_string()}));
            Some(tokio::spawn(conftool_maintd::http::serve(
                listener,
                status.clone(),
            )))
        }
        None => None,
    };
    let daemon = Daemon::new(ctx, status);
    log(json!({"event": "start", "once": args.once, "pid": std::process::id()}));
    let result = if args.once {
        daemon.once(|e| log(event_json(&e))).await
    } else {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        daemon.run(|e| log(event_json(&e)), shutdown).await
    };
    if let Some(s) = server {
        s.abort();
    }
    log(json!({"event": "stop"}));
    result.map_err(Into::into)
}

/// conftool's configuration: the file, then the flags and their environment variables.
fn conftool_config(args: &Args) -> anyhow::Result<Config> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let endpoints: Vec<String> = if args.endpoints.is_empty() {
        env("CONFTOOL_ENDPOINTS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    } else {
        args.endpoints.clone()
    };
    let caller = CallerSettings {
        config: args
            .config
            .clone()
            .or_else(|| env("CONFTOOL_CONFIG").map(PathBuf::from)),
        endpoints,
        namespace: args.namespace.clone(),
        timeout: None,
    };
    let cfg = Config::resolve(
        &caller,
        Path::new(DEFAULT_CONFIG_PATH),
        &Privilege::current(),
    )?;
    for note in &cfg.notes {
        log(json!({"event": "config_note", "level": "warn", "note": note}));
    }
    Ok(cfg)
}

/// One structured log line: a JSON object with a timestamp, on stderr.
fn log(mut v: Value) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    if let Value::Object(m) = &mut v {
        m.insert("ts".into(), json!((ts * 1000.0).round() / 1000.0));
    }
    // A log that cannot be written (the journal gone) must not stop the daemon half-way
    // through an action, as a panic in eprintln! would: the line is lost, the work goes on.
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

fn event_json(e: &DaemonEvent) -> Value {
    let secs = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    match e {
        DaemonEvent::Standby { leader } => json!({"event": "standby", "leader": leader}),
        DaemonEvent::Leading => json!({"event": "leading"}),
        DaemonEvent::Polled {
            nodes,
            problems,
            malformed,
            took,
        } => json!({
            "event": "polled", "nodes": nodes, "problems": problems, "malformed": malformed,
            "seconds": secs(*took)
        }),
        DaemonEvent::Created { id, node, kind } => {
            json!({"event": "observed", "id": id.as_str(), "node": node.as_str(), "kind": kind})
        }
        DaemonEvent::Forgotten { id, node, why } => {
            json!({"event": "forgotten", "id": id.as_str(), "node": node.as_str(), "why": why})
        }
        DaemonEvent::Held { id, why } => json!({"event": "held", "id": id.as_str(), "why": why}),
        DaemonEvent::Started { id, node, action } => json!({
            "event": "action_started", "id": id.as_str(), "node": node.as_str(), "action": action
        }),
        DaemonEvent::Ended {
            id,
            node,
            action,
            outcome,
            detail,
        } => json!({
            "event": "action_ended", "id": id.as_str(), "node": node.as_str(), "action": action,
            "outcome": outcome, "detail": detail
        }),
        DaemonEvent::Interrupted { id } => {
            json!({"event": "interrupted", "level": "warn", "id": id.as_str()})
        }
        DaemonEvent::RoundStarted { number } => json!({"event": "round_started", "round": number}),
        DaemonEvent::RoundEnded { number, took } => {
            json!({"event": "round_ended", "round": number, "seconds": secs(*took)})
        }
        DaemonEvent::Paused { why } => json!({"event": "paused", "level": "warn", "why": why}),
        DaemonEvent::Resumed => json!({"event": "resumed"}),
        DaemonEvent::Unreadable { key, reason } => json!({
            "event": "unreadable", "level": "warn", "key": conftool_core::escape_controls(key),
            "reason": reason
        }),
        DaemonEvent::Error { error } => json!({"event": "error", "level": "error", "error": error}),
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}
