//! The status API's answers, PyBal-compatible, rendered from HAProxy's own view (not from
//! etcd): pure, so the formats are unit-tested here. The HTTP server is in [`crate::http`].
//!
//! Pools are named by their HAProxy backend. For each server:
//! - `enabled`: HAProxy's administrative state is `ready` (not drain, not maintenance);
//! - `up`: HAProxy's operational state is running;
//! - `pooled`: it gets new requests (enabled, up and a weight above 0).
//!
//! Text: one line per server, `mw1001:\tenabled/up/pooled` (`disabled`, `down`,
//! `not pooled` otherwise), as PyBal's instrumentation API prints them; for one server
//! (`/pools/<pool>/<host>`) only its `enabled/up/pooled`, as PyBal does. JSON (when the
//! request accepts `application/json`): `{"mw1001": {"pooled": true, "weight": 10, "up":
//! true, "enabled": true, "sessions": 0, "kept_by_threshold": false}}`: PyBal's fields, and
//! two of the agent's, which a verification reads (`confctl depool --verify`): `sessions`,
//! the requests HAProxy has on the server now (`scur`), and `kept_by_threshold`, true for a
//! server etcd has depooled that the agent keeps in rotation so as not to go below the
//! pool's depool threshold (waiting will not take it out). An unknown URL: 404 with PyBal's
//! `The desired url <url> was not found` (JSON: `{"error": ...}`).
//!
//! `/alerts`, as PyBal computes it, from HAProxy's view, and counted as confctl counts:
//! `critical` when a pool has servers that are pooled (ready, weight above 0) but down, or
//! when fewer of its servers take traffic (ready, up, weight above 0) than its limits
//! require (the depool threshold's share of the servers not in maintenance, or
//! `min_pooled`): a pool drained to nothing is critical, not healthy; else `warning` when
//! the agent keeps servers in rotation that etcd has depooled (the threshold holds them), or
//! when a pool is too small to allow depooling (its servers not in maintenance, `n`, are fewer than
//! `n × depool_threshold + 1`); else `ok`. Text `OK - All pools are healthy`, JSON
//! `{"status": "ok", "msg": "All pools are healthy"}`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use conftool_core::PoolLimits;

use crate::haproxy::{AdminState, ServerState};
use crate::names::ServerName;

/// The answer's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PyBal's text lines.
    Text,
    /// JSON.
    Json,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.split(',')
                    .any(|m| m.trim().starts_with("application/json")) =>
            {
                Format::Json
            }
            _ => Format::Text,
        }
    }
}

fn line(s: &ServerState) -> String {
    format!("{}:\t{}", s.name, text_status(s))
}

/// PyBal's `textStatus`: `enabled/up/pooled`.
fn text_status(s: &ServerState) -> String {
    format!(
        "{}/{}/{}",
        if s.admin() == AdminState::Ready {
            "enabled"
        } else {
            "disabled"
        },
        if s.up() { "up" } else { "down" },
        if s.pooled() { "pooled" } else { "not pooled" },
    )
}

/// What the agent adds to HAProxy's state of a pool's servers, for the JSON answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    /// Each server's current sessions (HAProxy's `scur`).
    pub sessions: Option<&'a BTreeMap<ServerName, u64>>,
    /// The servers etcd has depooled that the depool threshold keeps in rotation.
    pub kept: &'a [ServerName],
}

fn object(s: &ServerState, extra: Extra<'_>) -> Value {
    let mut v = json!({
        "pooled": s.pooled(),
        "weight": s.weight,
        "up": s.up(),
        "enabled": s.admin() == AdminState::Ready,
        "kept_by_threshold": extra.kept.contains(&s.name),
    });
    if let Some(n) = extra.sessions.and_then(|m| m.get(&s.name)) {
        v["sessions"] = json!(n);
    }
    v
}

/// `GET /pools`: the pool names.
pub fn render_pools<'a>(pools: impl IntoIterator<Item = &'a str>, f: Format) -> String {
    let pools: Vec<&str> = pools.into_iter().collect();
    match f {
        Format::Text => pools.iter().map(|p| format!("{p}\n")).collect(),
        Format::Json => Value::from(pools).to_string(),
    }
}

/// `GET /pools/<pool>`: every server of the pool (`extra` in JSON only).
pub fn render_pool(servers: &[ServerState], extra: Extra<'_>, f: Format) -> String {
    match f {
        Format::Text => servers.iter().map(|s| line(s) + "\n").collect(),
        Format::Json => {
            let m: Map<String, Value> = servers
                .iter()
                .map(|s| (s.name.to_string(), object(s, extra)))
                .collect();
            Value::Object(m).to_string()
        }
    }
}

/// `GET /pools/<pool>/<host>`: one server (`extra` in JSON only).
pub fn render_server(s: &ServerState, extra: Extra<'_>, f: Format) -> String {
    match f {
        Format::Text => text_status(s) + "\n",
        Format::Json => object(s, extra).to_string(),
    }
}

/// A 404, as PyBal words it.
pub fn render_not_found(url: &str, f: Format) -> String {
    let msg = format!("The desired url {url} was not found");
    match f {
        Format::Text => msg,
        Format::Json => json!({ "error": msg }).to_string(),
    }
}

/// One pool as `/alerts` judges it: its name, depool threshold and servers.
#[derive(Debug, Clone)]
pub struct PoolHealth<'a> {
    /// The pool (backend) name.
    pub name: &'a str,
    /// Its service's limits (depool threshold, `min_pooled`).
    pub threshold: PoolLimits,
    /// HAProxy's servers of the pool.
    pub servers: &'a [ServerState],
    /// Servers etcd has depooled (or drained) that the threshold keeps in rotation.
    pub kept: &'a [ServerName],
}

/// `GET /alerts`.
pub fn render_alerts(pools: &[PoolHealth<'_>], f: Format) -> String {
    let mut status = "ok";
    let mut msg = String::new();
    let mut critical = Vec::new();
    for p in pools {
        let down: Vec<&str> = p
            .servers
            .iter()
            .filter(|s| s.admin() == AdminState::Ready && s.weight > 0 && !s.up())
            .map(|s| s.name.as_str())
            .collect();
        let nodes = p
            .servers
            .iter()
            .filter(|s| s.admin() != AdminState::Maint)
            .count();
        let serving = p.servers.iter().filter(|s| s.pooled()).count();
        let required = p.threshold.required(nodes);
        let total = nodes as f64;
        if !down.is_empty() {
            critical.push(format!(
                "{}: Servers {} are marked down but pooled",
                p.name,
                down.join(", ")
            ));
        } else if serving < required {
            critical.push(format!(
                "{}: {serving} of {nodes} servers take traffic, fewer than its {} requires \
                 ({required})",
                p.name, p.threshold
            ));
        } else if !p.kept.is_empty() {
            status = "warning";
            msg += &format!(
                "Pool {} keeps {} in rotation, depooled in etcd, to stay at its {}. ",
                p.name,
                p.kept.join(", "),
                p.threshold
            );
        } else if total < total * p.threshold.threshold.get() + 1.0 {
            status = "warning";
            msg += &format!("Pool {} is too small to allow depooling. ", p.name);
        }
    }
    if !critical.is_empty() {
        status = "critical";
        msg = critical.join("; ");
    }
    if status == "ok" {
        msg = "All pools are healthy".into();
    }
    match f {
        Format::Text => format!("{} - {msg}", status.to_uppercase()),
        Format::Json => json!({ "status": status, "msg": msg }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, op: u32, admin: u32, w: u16) -> ServerState {
        ServerState {
            backend: "be".into(),
            name: name.into(),
            addr: "127.0.0.1".into(),
            op_state: op,
            admin_bits: admin,
            weight: w,
        }
    }

    #[test]
    fn text_is_pybals() {
        let servers = [
            s("mw1001", 2, 0, 10),
            s("mw1002", 2, 8, 10),
            s("mw1003", 0, 1, 10),
        ];
        assert_eq!(
            render_pool(&servers, Extra::default(), Format::Text),
            "mw1001:\tenabled/up/pooled\nmw1002:\tdisabled/up/not pooled\nmw1003:\tdisabled/down/not pooled\n"
        );
        assert_eq!(
            render_server(&s("mw1", 2, 0, 0), Extra::default(), Format::Text),
            "enabled/up/not pooled\n"
        );
        assert_eq!(
            render_not_found("/x", Format::Text),
            "The desired url /x was not found"
        );
        assert_eq!(
            render_not_found("/x", Format::Json),
            r#"{"error":"The desired url /x was not found"}"#
        );
        assert_eq!(render_pools(["a", "b"], Format::Text), "a\nb\n");
    }

    #[test]
    fn json_is_pybals_with_the_agents_fields() {
        let v: Value = serde_json::from_str(&render_pool(
            &[s("mw1001", 2, 0, 10)],
            Extra::default(),
            Format::Json,
        ))
        .expect("json");
        assert_eq!(
            v,
            json!({"mw1001": {"pooled": true, "weight": 10, "up": true, "enabled": true, "kept_by_threshold": false}})
        );
        let sessions = BTreeMap::from([("mw1001".into(), 3), ("mw1002".into(), 0)]);
        let kept = ["mw1001".into()];
        let extra = Extra {
            sessions: Some(&sessions),
            kept: &kept,
        };
        let one = |name| {
            serde_json::from_str::<Value>(&render_server(&s(name, 2, 0, 10), extra, Format::Json))
                .expect("json")
        };
        assert_eq!(
            one("mw1001"),
            json!({"pooled": true, "weight": 10, "up": true, "enabled": true, "sessions": 3, "kept_by_threshold": true})
        );
        assert_eq!(one("mw1002")["sessions"], 0);
        assert_eq!(one("mw1002")["kept_by_threshold"], false);
        // Text stays PyBal's whatever the agent knows.
        assert_eq!(
            render_server(&s("mw1001", 2, 0, 10), extra, Format::Text),
            "enabled/up/pooled\n"
        );
        assert_eq!(render_pools(["a"], Format::Json), r#"["a"]"#);
    }

    #[test]
    fn accept_header_chooses() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::from_accept(Some("text/html, application/json;q=0.9")),
            Format::Json
        );
    }

    #[test]
    fn alerts_are_pybals() {
        let t = |x: f64| PoolLimits {
            threshold: conftool_core::DepoolThreshold::new(x).expect("share"),
            min_pooled: 0,
        };
        let healthy = [
            s("a", 2, 0, 1),
            s("b", 2, 8, 1),
            s("c", 2, 0, 1),
            s("d", 0, 1, 1),
        ];
        let pool = |name, threshold, servers| PoolHealth {
            name,
            threshold,
            servers,
            kept: &[],
        };
        assert_eq!(
            render_alerts(&[pool("be", t(0.5), &healthy)], Format::Text),
            "OK - All pools are healthy"
        );
        // At the edge, 2 servers at 0.5 (2 is not below 2 × 0.5 + 1): not too small, as in PyBal.
        let two = [s("a", 2, 0, 1), s("b", 2, 0, 1)];
        assert_eq!(
            render_alerts(&[pool("be", t(0.5), &two)], Format::Text),
            "OK - All pools are healthy"
        );
        // 3 servers not in maintenance, all serving, threshold 0.75: 3 < 3.25, too small.
        let all_serve = [s("a", 2, 0, 1), s("b", 2, 0, 1), s("c", 2, 0, 1)];
        assert_eq!(
            render_alerts(&[pool("be", t(0.75), &all_serve)], Format::Json),
            r#"{"status":"warning","msg":"Pool be is too small to allow depooling. "}"#
        );
        // Fewer taking traffic than the limits require: b drains, so 2 of 3 at 0.75 (3).
        assert_eq!(
            render_alerts(&[pool("be", t(0.75), &healthy)], Format::Text),
            "CRITICAL - be: 2 of 3 servers take traffic, fewer than its depool threshold 0.75 \
             requires (3)"
        );
        // Every server drained (weight 0): critical, not healthy; min_pooled counts too.
        let drained = [s("a", 2, 0, 0), s("b", 2, 0, 0)];
        assert!(render_alerts(&[pool("be", t(0.5), &drained)], Format::Text)
            .starts_with("CRITICAL - be: 0 of 2 servers take traffic"));
        let floor = PoolLimits {
            min_pooled: 3,
            ..t(0.0)
        };
        assert_eq!(
            render_alerts(&[pool("be", floor, &all_serve)], Format::Text),
            "OK - All pools are healthy"
        );
        let kept = ["a".into()];
        let held = PoolHealth {
            kept: &kept,
            ..pool("be", t(0.5), &all_serve)
        };
        assert_eq!(
            render_alerts(&[held], Format::Text),
            "WARNING - Pool be keeps a in rotation, depooled in etcd, to stay at its depool \
             threshold 0.5. "
        );
        let four = PoolLimits {
            min_pooled: 4,
            ..t(0.0)
        };
        assert!(render_alerts(&[pool("be", four, &all_serve)], Format::Text)
            .contains("fewer than its depool threshold 0 and min_pooled 4 requires (4)"));
        // Ready with a weight but down: critical, which wins over warnings.
        let down = [s("a", 0, 0, 1), s("b", 0, 0, 0), s("c", 0, 8, 1)];
        assert_eq!(
            render_alerts(
                &[pool("x", t(0.75), &all_serve), pool("y", t(0.0), &down)],
                Format::Text
            ),
            "CRITICAL - y: Servers a are marked down but pooled"
        );
    }
}
