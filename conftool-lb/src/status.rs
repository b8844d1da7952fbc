//! The status API's answers, PyBal-compatible, rendered from HAProxy's own view (not from
//! etcd): pure, so the formats are unit-tested here. The HTTP server is in [`crate::http`].
//!
//! Pools are named by their HAProxy backend. For each server:
//! - `enabled`: HAProxy's administrative state is `ready` (not drain, not maintenance);
//! - `up`: HAProxy's operational state is running;
//! - `pooled`: it gets new requests (enabled, up and a weight above 0).
//!
//! Text: one line per server, `mw1001:\tenabled/up/pooled` (`disabled`, `down`,
//! `not pooled` otherwise), as PyBal's instrumentation API prints them. JSON (when the
//! request accepts `application/json`): `{"mw1001": {"pooled": true, "weight": 10, "up":
//! true, "enabled": true}}`.

use serde_json::{json, Map, Value};

use crate::haproxy::{AdminState, ServerState};

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
    format!(
        "{}:\t{}/{}/{}",
        s.name,
        if s.admin() == AdminState::Ready {
            "enabled"
        } else {
            "disabled"
        },
        if s.up() { "up" } else { "down" },
        if s.pooled() { "pooled" } else { "not pooled" },
    )
}

fn object(s: &ServerState) -> Value {
    json!({
        "pooled": s.pooled(),
        "weight": s.weight,
        "up": s.up(),
        "enabled": s.admin() == AdminState::Ready,
    })
}

/// `GET /pools`: the pool names.
pub fn render_pools<'a>(pools: impl IntoIterator<Item = &'a str>, f: Format) -> String {
    let pools: Vec<&str> = pools.into_iter().collect();
    match f {
        Format::Text => pools.iter().map(|p| format!("{p}\n")).collect(),
        Format::Json => Value::from(pools).to_string(),
    }
}

/// `GET /pools/<pool>`: every server of the pool.
pub fn render_pool(servers: &[ServerState], f: Format) -> String {
    match f {
        Format::Text => servers.iter().map(|s| line(s) + "\n").collect(),
        Format::Json => {
            let m: Map<String, Value> = servers
                .iter()
                .map(|s| (s.name.clone(), object(s)))
                .collect();
            Value::Object(m).to_string()
        }
    }
}

/// `GET /pools/<pool>/<host>`: one server.
pub fn render_server(s: &ServerState, f: Format) -> String {
    match f {
        Format::Text => line(s) + "\n",
        Format::Json => object(s).to_string(),
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
            render_pool(&servers, Format::Text),
            "mw1001:\tenabled/up/pooled\nmw1002:\tdisabled/up/not pooled\nmw1003:\tdisabled/down/not pooled\n"
        );
        assert_eq!(
            render_server(&s("mw1", 2, 0, 0), Format::Text),
            "mw1:\tenabled/up/not pooled\n"
        );
        assert_eq!(render_pools(["a", "b"], Format::Text), "a\nb\n");
    }

    #[test]
    fn json_is_pybals() {
        let v: Value = serde_json::from_str(&render_pool(&[s("mw1001", 2, 0, 10)], Format::Json))
            .expect("json");
        assert_eq!(
            v,
            json!({"mw1001": {"pooled": true, "weight": 10, "up": true, "enabled": true}})
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
}
