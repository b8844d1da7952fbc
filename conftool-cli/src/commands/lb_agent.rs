//! `conftool-lb-agent`: the load-balancer agent (see [`conftool_lb`]). This module only
//! parses arguments, turns the agent's events into structured log lines (one JSON object per
//! line on stderr) and wires up the signals; the logic is in the library.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use conftool_core::escape_controls;
use conftool_lb::http::{bind, StatusServer};
use conftool_lb::limits::{connection_cap, open_files_limit};
use conftool_lb::runtime::Runtime;
use conftool_lb::{Agent, AgentConfig, AgentEvent};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};

use crate::exit::OK;

/// Apply conftool pool state from etcd to HAProxy through its runtime API, and report
/// HAProxy's view through a PyBal-compatible status API. Runs until SIGTERM or SIGINT.
#[derive(Debug, Parser)]
#[command(name = "conftool-lb-agent", version)]
pub struct LbAgentArgs {
    /// The agent's configuration file (etcd, HAProxy socket, status address, pools).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/conftool/lb-agent.yaml"
    )]
    pub agent_config: PathBuf,

    /// etcd client URLs, comma-separated (override the file's `etcd.endpoints`)
    /// [env: CONFTOOL_ENDPOINTS].
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub endpoints: Vec<String>,

    /// Key namespace in front of /v1 (overrides the file's `etcd.namespace`).
    #[arg(long, value_name = "PREFIX")]
    pub namespace: Option<String>,
}

/// Run the agent until a signal.
pub async fn run(args: LbAgentArgs) -> anyhow::Result<u8> {
    let mut cfg = AgentConfig::load(&args.agent_config)?;
    let env = std::env::var("CONFTOOL_ENDPOINTS")
        .ok()
        .filter(|v| !v.trim().is_empty());
    if !args.endpoints.is_empty() {
        cfg.etcd.endpoints = args.endpoints.clone();
    } else if let Some(v) = env {
        cfg.etcd.endpoints = v.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(ns) = args.namespace {
        cfg.etcd.namespace = ns;
    }
    // The flags' endpoints are judged with the file's TLS and auth settings.
    cfg.etcd.validate(&args.agent_config)?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let agent = Agent::new(cfg.clone());
    let status = match cfg.status_listen {
        Some(addr) => {
            // The connections must fit in the open-files limit next to what the agent
            // needs for etcd and HAProxy: fewer than configured if need be, said here.
            let limits = cfg.status_limits;
            let cap = connection_cap(&limits, open_files_limit(), cfg.pools.len())?;
            if cap.clamped() {
                log(json!({
                    "event": "status_connections_clamped", "level": "warn",
                    "configured": cap.configured, "max_connections": cap.max,
                    "open_files_limit": cap.open_files,
                }));
            }
            let listener = bind(addr).await?;
            let server = StatusServer::new(
                Runtime::new(&cfg.haproxy_socket),
                cfg.pools.iter().map(|p| p.backend.clone()).collect(),
                agent.metrics(),
            );
            log(json!({
                "event": "status_listening", "addr": listener.local_addr()?.to_string(),
                "max_connections": cap.max,
                "header_timeout_ms": limits.header_timeout.as_millis() as u64,
                "idle_timeout_ms": limits.idle_timeout.as_millis() as u64,
            }));
            Some(tokio::spawn(server.serve(listener, limits, cap)))
        }
        None => None,
    };
    log(json!({"event": "start", "pools": cfg.pools.len(), "socket": cfg.haproxy_socket}));
    agent.run(|e| log(event_json(&e)), shutdown).await?;
    if let Some(s) = status {
        s.abort();
    }
    log(json!({"event": "stop"}));
    Ok(OK)
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
    crate::output::stderr_line(&v.to_string());
}

fn event_json(e: &AgentEvent) -> Value {
    match e {
        AgentEvent::Connected { endpoints } => {
            json!({"event": "connected", "endpoints": endpoints})
        }
        AgentEvent::ConnectFailed { error } => {
            json!({"event": "connect_failed", "level": "warn", "error": error, "haproxy": "untouched"})
        }
        AgentEvent::Snapshot {
            backend,
            revision,
            objects,
        } => {
            json!({"event": "snapshot", "backend": backend, "revision": revision, "objects": objects})
        }
        AgentEvent::Changes {
            backend,
            revision,
            objects,
        } => {
            json!({"event": "changes", "backend": backend, "revision": revision, "objects": objects})
        }
        AgentEvent::Applied {
            backend,
            server,
            command,
            revision,
        } => json!({
            "event": "applied", "backend": backend, "server": server, "command": command,
            "revision": revision
        }),
        AgentEvent::HaProxyError { backend, error } => {
            json!({"event": "haproxy_error", "level": "error", "backend": backend, "error": error})
        }
        AgentEvent::WatchError { backend, error } => json!({
            "event": "watch_error", "level": "warn", "backend": backend, "error": error,
            "haproxy": "keeping the last applied state"
        }),
        AgentEvent::KeptByThreshold {
            backend,
            servers,
            required,
            pooled,
        } => json!({
            "event": "kept_by_threshold", "level": "warn", "backend": backend,
            "servers": servers, "required": required, "pooled": pooled
        }),
        AgentEvent::MissingInBackend { backend, servers } => json!({
            "event": "missing_in_backend", "level": "warn", "backend": backend, "servers": servers
        }),
        AgentEvent::UnknownToEtcd { backend, servers } => json!({
            "event": "unknown_to_etcd", "level": "warn", "backend": backend, "servers": servers
        }),
        // Anyone who may write under the pool chose these bytes: escaped for the reader.
        AgentEvent::Unreadable {
            backend,
            key,
            reason,
        } => json!({
            "event": "unreadable", "level": "warn", "backend": backend,
            "key": escape_controls(key), "reason": escape_controls(reason), "skipped": true
        }),
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}
