//! HAProxy's side, as plain data: the output of `show servers state`, read by its header's
//! column names (columns differ between HAProxy versions), and the runtime API commands the
//! agent sends.
//!
//! ```text
//! 1
//! # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight ...
//! 3 be_apache 1 mw1001 127.0.0.1 2 0 10 10 ...
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::names::{BackendName, ServerName};

/// `srv_admin_state` bits (HAProxy's `SRV_ADMF_MAINT` mask): forced, inherited, resolver
/// and hostname-resolution maintenance. Not `CMAINT` (0x04): it only remembers that the
/// configuration said `disabled`, and stays set after `set server ... state ready` while
/// the server takes traffic (seen on HAProxy 2.6: `disabled` gives 5, ready then 4).
const MAINT_BITS: u32 = 0x01 | 0x02 | 0x20 | 0x40;
/// Forced and inherited drain.
const DRAIN_BITS: u32 = 0x08 | 0x10;
/// `srv_op_state` of a running server (`SRV_ST_RUNNING`).
const OP_RUNNING: u32 = 2;

/// The administrative state the agent sets, as HAProxy's `set server ... state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminState {
    /// Takes new traffic.
    Ready,
    /// Takes no new connections; existing ones finish.
    Drain,
    /// Out entirely.
    Maint,
}

impl AdminState {
    /// The word in HAProxy's command.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

impl fmt::Display for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One server as HAProxy reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// Backend name.
    pub backend: BackendName,
    /// Server name (the node name, by the agent's convention).
    pub name: ServerName,
    /// Address.
    pub addr: String,
    /// `srv_op_state` (0 stopped, 1 starting, 2 running, 3 stopping).
    pub op_state: u32,
    /// `srv_admin_state` bit field.
    pub admin_bits: u32,
    /// User weight (`srv_uweight`, what `set server ... weight` sets).
    pub weight: u16,
}

impl ServerState {
    /// The administrative state, read from the bit field: maintenance wins over drain.
    pub fn admin(&self) -> AdminState {
        if self.admin_bits & MAINT_BITS != 0 {
            AdminState::Maint
        } else if self.admin_bits & DRAIN_BITS != 0 {
            AdminState::Drain
        } else {
            AdminState::Ready
        }
    }

    /// Whether HAProxy considers it operationally up (running).
    pub fn up(&self) -> bool {
        self.op_state == OP_RUNNING
    }

    /// Whether it gets new requests: ready, up, and a weight above zero.
    pub fn pooled(&self) -> bool {
        self.admin() == AdminState::Ready && self.up() && self.weight > 0
    }
}

/// Parse the answer to `show servers state [<backend>]`.
pub fn parse_servers_state(text: &str) -> Result<Vec<ServerState>, Error> {
    let bad = |reason: String| Error::HaProxy {
        command: "show servers state".into(),
        reason,
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let version = lines.next().ok_or_else(|| bad("empty answer".into()))?;
    if version.trim().parse::<u32>().is_err() {
        // An error message ("Can't find backend.") comes instead of the version line.
        return Err(bad(version.trim().to_string()));
    }
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .ok_or_else(|| bad("no `# be_id be_name ...` header line".into()))?;
    let cols: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| bad(format!("no column {name} in the header")))
    };
    let (be, srv, addr, op, admin, weight) = (
        col("be_name")?,
        col("srv_name")?,
        col("srv_addr")?,
        col("srv_op_state")?,
        col("srv_admin_state")?,
        col("srv_uweight")?,
    );
    let mut out = Vec::new();
    for line in lines {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let field = |i: usize| {
            f.get(i)
                .copied()
                .ok_or_else(|| bad(format!("short line: {line}")))
        };
        let num = |i: usize| {
            field(i).and_then(|s| {
                s.parse::<u32>()
                    .map_err(|_| bad(format!("not a number in column {i}: {line}")))
            })
        };
        out.push(ServerState {
            backend: field(be)?.into(),
            name: field(srv)?.into(),
            addr: field(addr)?.to_string(),
            op_state: num(op)?,
            admin_bits: num(admin)?,
            weight: u16::try_from(num(weight)?)
                .map_err(|_| bad(format!("weight out of range: {line}")))?,
        });
    }
    Ok(out)
}

/// Parse the answer to `show stat <backend> 4 -1` (the backend's servers, as CSV under a
/// `# pxname,svname,qcur,qmax,scur,...` header): each server's current sessions (`scur`),
/// read by column name. `show servers state` has no session count.
pub fn parse_stat_sessions(text: &str) -> Result<BTreeMap<ServerName, u64>, Error> {
    let bad = |reason: String| Error::HaProxy {
        command: "show stat".into(),
        reason,
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().ok_or_else(|| bad("empty answer".into()))?;
    let Some(header) = first.strip_prefix('#') else {
        // An error message ("No such proxy.") comes instead of the header.
        return Err(bad(first.trim().to_string()));
    };
    let cols: Vec<&str> = header.trim().split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| bad(format!("no column {name} in the header")))
    };
    let (name, scur) = (col("svname")?, col("scur")?);
    let mut out = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(server), Some(n)) = (f.get(name), f.get(scur)) else {
            return Err(bad(format!("short line: {line}")));
        };
        let n = n
            .parse::<u64>()
            .map_err(|_| bad(format!("scur is not a number: {line}")))?;
        out.insert(ServerName::from(*server), n);
    }
    Ok(out)
}

/// One runtime API command.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    /// `set server <backend>/<server> state <ready|drain|maint>`.
    State {
        /// Backend.
        backend: BackendName,
        /// Server.
        server: ServerName,
        /// The state.
        state: AdminState,
    },
    /// `set server <backend>/<server> weight <w>`.
    Weight {
        /// Backend.
        backend: BackendName,
        /// Server.
        server: ServerName,
        /// HAProxy weight (0..=256).
        weight: u16,
    },
    /// `shutdown sessions server <backend>/<server>`: end what is still in flight on a
    /// drained server once its drain timeout has passed.
    ShutdownSessions {
        /// Backend.
        backend: BackendName,
        /// Server.
        server: ServerName,
    },
}

impl Command {
    /// The server the command is about.
    pub fn server(&self) -> &ServerName {
        match self {
            Command::State { server, .. }
            | Command::Weight { server, .. }
            | Command::ShutdownSessions { server, .. } => server,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::State {
                backend,
                server,
                state,
            } => write!(f, "set server {backend}/{server} state {state}"),
            Command::Weight {
                backend,
                server,
                weight,
            } => write!(f, "set server {backend}/{server} weight {weight}"),
            Command::ShutdownSessions { backend, server } => {
                write!(f, "shutdown sessions server {backend}/{server}")
            }
        }
    }
}

#[cfg(test)]
#[path = "haproxy_tests.rs"]
mod tests;
