//! The status API server (hyper, HTTP/1, loopback): PyBal-compatible `GET /pools`,
//! `GET /pools/<pool>`, `GET /pools/<pool>/<host>` (see [`crate::status`]) and Prometheus
//! `GET /metrics`. Every answer is read from HAProxy at request time, so it says what
//! HAProxy does, not what the agent meant it to do; at most
//! [`crate::limits::STATUS_HAPROXY_QUERIES`] requests read it at
//! once. How connections are bounded is in `conns`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

use crate::agent::Metrics;
use crate::error::Error;
use crate::haproxy::ServerState;
use crate::limits::{ConnectionCap, StatusLimits, STATUS_HAPROXY_QUERIES};
use crate::names::ServerName;
use crate::runtime::Runtime;
use crate::status::{
    render_alerts, render_not_found, render_pool, render_pools, render_server, Extra, Format,
    PoolHealth,
};

/// What the status server needs.
#[derive(Debug, Clone)]
pub struct StatusServer {
    runtime: Runtime,
    backends: Vec<String>,
    metrics: Arc<Metrics>,
    queries: Arc<Semaphore>,
}

/// Connections the kernel queues for the status server to accept. The default (128) is
/// too few under a flood: the queue fills between two accepts and a client's connection
/// attempt is dropped, to be retried a second later; queued ones cost no descriptor.
const BACKLOG: u32 = 1024;

/// Bind the status address (loopback only, checked by the configuration).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    let listen = |source| Error::Listen { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(listen)?;
    socket.set_reuseaddr(true).map_err(listen)?;
    socket.bind(addr).map_err(listen)?;
    socket.listen(BACKLOG).map_err(listen)
}

impl StatusServer {
    /// A server for these backends (the pools' names), HAProxy at `runtime`.
    pub fn new(runtime: Runtime, backends: Vec<String>, metrics: Arc<Metrics>) -> StatusServer {
        StatusServer {
            runtime,
            backends,
            metrics,
            queries: Arc::new(Semaphore::new(STATUS_HAPROXY_QUERIES)),
        }
    }

    /// Serve connections from `listener` until the future is dropped, within `limits`
    /// and at most `cap.max` connections (see [`crate::limits::connection_cap`]).
    pub async fn serve(self, listener: TcpListener, limits: StatusLimits, cap: ConnectionCap) {
        crate::conns::serve(Arc::new(self), listener, limits, cap.max).await;
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// HAProxy's servers of one backend, a few requests at a time.
    async fn servers(&self, backend: &str) -> Result<Vec<ServerState>, Error> {
        // Never closed: acquiring only fails on a closed semaphore.
        let _permit = self.queries.acquire().await;
        self.runtime.servers(backend).await
    }

    /// Each server's current sessions in one backend, a few requests at a time.
    async fn sessions(&self, backend: &str) -> Result<BTreeMap<ServerName, u64>, Error> {
        let _permit = self.queries.acquire().await;
        self.runtime.sessions(backend).await
    }

    pub(crate) async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let format = Format::from_accept(
            req.headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        );
        if req.method() != hyper::Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, format, "only GET\n".into());
        }
        let url = req.uri().to_string();
        let not_found = || {
            reply(
                StatusCode::NOT_FOUND,
                format,
                render_not_found(&url, format),
            )
        };
        let path: Vec<&str> = req
            .uri()
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        match path.as_slice() {
            ["pools"] => reply(
                StatusCode::OK,
                format,
                render_pools(self.backends.iter().map(String::as_str), format),
            ),
            ["pools", pool, rest @ ..] if rest.len() <= 1 => {
                if !self.backends.iter().any(|b| b == pool) {
                    return not_found();
                }
                let servers = match self.servers(pool).await {
                    Ok(s) => s,
                    Err(e) => {
                        return reply(StatusCode::SERVICE_UNAVAILABLE, format, format!("{e}\n"))
                    }
                };
                // The agent's own fields are JSON's only: PyBal's text stays as it is.
                let (sessions, kept) = match format {
                    Format::Text => (None, Vec::new()),
                    Format::Json => match self.sessions(pool).await {
                        Ok(s) => (Some(s), self.metrics.kept(pool)),
                        Err(e) => {
                            return reply(StatusCode::SERVICE_UNAVAILABLE, format, format!("{e}\n"))
                        }
                    },
                };
                let extra = Extra {
                    sessions: sessions.as_ref(),
                    kept: &kept,
                };
                match rest.first() {
                    None => reply(StatusCode::OK, format, render_pool(&servers, extra, format)),
                    Some(host) => match servers.iter().find(|s| s.name == *host) {
                        Some(s) => reply(StatusCode::OK, format, render_server(s, extra, format)),
                        None => not_found(),
                    },
                }
            }
            ["metrics"] => reply(StatusCode::OK, Format::Text, self.metrics_text().await),
            ["alerts"] => {
                let mut all = Vec::new();
                for b in &self.backends {
                    match self.servers(b).await {
                        Ok(s) => all.push((b, s)),
                        Err(e) => {
                            return reply(StatusCode::SERVICE_UNAVAILABLE, format, format!("{e}\n"))
                        }
                    }
                }
                let kept: Vec<Vec<ServerName>> =
                    all.iter().map(|(b, _)| self.metrics.kept(b)).collect();
                let pools: Vec<PoolHealth<'_>> = all
                    .iter()
                    .zip(&kept)
                    .map(|((b, s), k)| PoolHealth {
                        name: b,
                        threshold: self.metrics.threshold(b),
                        servers: s,
                        kept: k,
                    })
                    .collect();
                reply(StatusCode::OK, format, render_alerts(&pools, format))
            }
            _ => not_found(),
        }
    }

    /// Prometheus text format: the agent's counters, its watches, then what HAProxy says
    /// of each server.
    async fn metrics_text(&self) -> String {
        let mut out = String::new();
        agent_metrics(&mut out, &self.metrics);
        watch_metrics(&mut out, &self.metrics);
        self.server_metrics(&mut out).await;
        out
    }

    /// Each server's state and sessions, read from HAProxy now (a backend it cannot be
    /// asked about is left out).
    async fn server_metrics(&self, out: &mut String) {
        let gauges = [
            (
                "conftool_lb_server_pooled",
                "1 if HAProxy sends the server new requests.",
            ),
            (
                "conftool_lb_server_up",
                "1 if HAProxy considers the server up.",
            ),
            (
                "conftool_lb_server_enabled",
                "1 if the server's admin state is ready.",
            ),
            ("conftool_lb_server_weight", "The server's HAProxy weight."),
        ];
        let mut states = Vec::new();
        let mut sessions = Vec::new();
        for b in &self.backends {
            if let Ok(s) = self.servers(b).await {
                states.extend(s);
            }
            if let Ok(s) = self.sessions(b).await {
                sessions.extend(s.into_iter().map(|(server, n)| (b, server, n)));
            }
        }
        for (i, (name, help)) in gauges.iter().enumerate() {
            family(out, name, "gauge", help);
            for s in &states {
                let v = match i {
                    0 => u64::from(s.pooled()),
                    1 => u64::from(s.up()),
                    2 => u64::from(s.admin() == crate::haproxy::AdminState::Ready),
                    _ => u64::from(s.weight),
                };
                let _ = writeln!(
                    out,
                    "{name}{{pool=\"{}\",server=\"{}\"}} {v}",
                    s.backend, s.name
                );
            }
        }
        let name = "conftool_lb_server_sessions";
        family(
            out,
            name,
            "gauge",
            "Requests HAProxy has on the server now (scur).",
        );
        for (pool, server, n) in &sessions {
            let _ = writeln!(out, "{name}{{pool=\"{pool}\",server=\"{server}\"}} {n}");
        }
    }
}

/// The agent's own counters: reconciliations, commands, errors, the status API's
/// connections, the descriptor kept for HAProxy.
fn agent_metrics(out: &mut String, m: &Metrics) {
    let counters = [
        (
            "conftool_lb_reconciles_total",
            "counter",
            "Reconciliations run, per pool.",
            &m.reconciles,
        ),
        (
            "conftool_lb_commands_total",
            "counter",
            "Runtime API commands HAProxy accepted.",
            &m.commands,
        ),
        (
            "conftool_lb_haproxy_errors_total",
            "counter",
            "HAProxy errors.",
            &m.haproxy_errors,
        ),
        (
            "conftool_lb_watch_errors_total",
            "counter",
            "etcd watch errors.",
            &m.watch_errors,
        ),
        (
            "conftool_lb_status_accept_errors_total",
            "counter",
            "Status API accepts that failed (each followed by a pause).",
            &m.status_accept_errors,
        ),
        (
            "conftool_lb_status_evicted_total",
            "counter",
            "Status API connections closed to make room for a new one.",
            &m.status_evicted,
        ),
        (
            "conftool_lb_status_timeouts_total",
            "counter",
            "Status API connections closed by the header or idle timeout.",
            &m.status_timeouts,
        ),
        (
            "conftool_lb_status_connections",
            "gauge",
            "Status API connections open.",
            &m.status_connections,
        ),
        (
            "conftool_lb_status_max_connections",
            "gauge",
            "Status API connections allowed.",
            &m.status_max_connections,
        ),
        (
            "conftool_lb_haproxy_reserve_used_total",
            "counter",
            "Times the descriptor kept for HAProxy's socket was used (out of descriptors).",
            &m.haproxy_reserve_used,
        ),
    ];
    for (name, kind, help, v) in counters {
        scalar(out, name, kind, help, v.load(Ordering::Relaxed));
    }
}

/// Where the watches are: the revision reached, the last batch's lag and what is queued,
/// and each pool's watch resumptions and re-lists.
fn watch_metrics(out: &mut String, m: &Metrics) {
    scalar(
        out,
        "conftool_lb_etcd_revision",
        "gauge",
        "The etcd revision of the last event handled.",
        m.revision.load(Ordering::Relaxed),
    );
    scalar(
        out,
        "conftool_lb_watch_lag_seconds",
        "gauge",
        "Last batch: from the watch handing over its oldest event to HAProxy brought in line.",
        format!("{:.6}", m.watch_lag_us.load(Ordering::Relaxed) as f64 / 1e6),
    );
    scalar(
        out,
        "conftool_lb_watch_backlog_events",
        "gauge",
        "Watch events received, not yet taken in.",
        m.watch_backlog.load(Ordering::Relaxed),
    );
    let restarts = m
        .watch_restarts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let name = "conftool_lb_watch_resumed_total";
    family(out, name, "counter", "Watch resumptions after a failure.");
    for (pool, (resumed, _)) in &restarts {
        let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {resumed}");
    }
    let name = "conftool_lb_watch_relists_total";
    family(
        out,
        name,
        "counter",
        "Watch re-lists after etcd compaction.",
    );
    for (pool, (_, relists)) in &restarts {
        let _ = writeln!(out, "{name}{{pool=\"{pool}\"}} {relists}");
    }
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A metric without labels: its family's lines and its value.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn reply(status: StatusCode, format: Format, body: String) -> Response<Full<Bytes>> {
    let (ctype, body) = match format {
        Format::Json if status != StatusCode::OK && status != StatusCode::NOT_FOUND => (
            "application/json",
            serde_json::json!({ "error": body.trim_end() }).to_string(),
        ),
        Format::Json => ("application/json", body),
        Format::Text => ("text/plain; charset=utf-8", body),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
