//! The agent's configuration file.
//!
//! ```yaml
//! etcd:                           # as /etc/conftool/config.yaml (same fields); default: local etcd
//!   endpoints: [https://etcd1.example:2379]
//!   namespace: /conftool
//! haproxy_socket: /run/haproxy/admin.sock   # the runtime API (stats socket ... level admin)
//! status_listen: 127.0.0.1:9090             # optional; loopback only
//! recheck_interval: 5s                      # re-read HAProxy's state this often (restarts, drift)
//! drain_timeout: 60s                        # then end what is still in flight on a depooled server
//! status_limits: {max_connections: 256, header_timeout: 5s, idle_timeout: 10s}  # the defaults
//! pools:
//!   - {dc: eqiad, cluster: appservers, service: apache, backend: appservers_apache}
//! ```
//!
//! The `etcd` section is conftool-core's [`Config`], read with the same rules as the other
//! tools' configuration file; the binary's `--endpoints`/`--namespace` flags go on top of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conftool_core::config::parse_duration;
use conftool_core::{Cluster, Config, Datacenter, PoolKey, Selector, Service};
use serde::Deserialize;

use crate::error::Error;
use crate::limits::StatusLimits;

/// The largest agent configuration file read.
const MAX_BYTES: u64 = 1 << 20;

/// One pool the agent serves, and the HAProxy backend that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Datacenter.
    pub dc: Datacenter,
    /// Cluster.
    pub cluster: Cluster,
    /// Service.
    pub service: Service,
    /// HAProxy backend whose servers are named after the pool's nodes.
    pub backend: String,
}

impl PoolSpec {
    /// The pool.
    pub fn pool(&self) -> PoolKey {
        PoolKey {
            dc: self.dc.clone(),
            cluster: self.cluster.clone(),
            service: self.service.clone(),
        }
    }

    /// A selector matching exactly this pool's objects.
    pub fn selector(&self) -> Result<Selector, conftool_core::ModelError> {
        // Names are validated (letters, digits, `.`, `_`, `-`), so escaping the dots is all
        // it takes to match them literally.
        let lit = |s: &str| s.replace('.', r"\.");
        format!(
            "dc={},cluster={},service={}",
            lit(self.dc.as_str()),
            lit(self.cluster.as_str()),
            lit(self.service.as_str())
        )
        .parse()
    }
}

/// The agent's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// How to reach etcd (conftool's own configuration format).
    #[serde(default)]
    pub etcd: Config,
    /// HAProxy's runtime API socket (admin level).
    pub haproxy_socket: PathBuf,
    /// Where the status API listens (loopback only); none: no status API.
    #[serde(default)]
    pub status_listen: Option<SocketAddr>,
    /// How often HAProxy's state is read again and re-planned even without etcd changes:
    /// this is how a restarted HAProxy (which comes back with its configuration's states)
    /// or a hand-made change gets corrected.
    #[serde(default = "default_recheck", deserialize_with = "de_duration")]
    pub recheck_interval: Duration,
    /// How long a depooled (draining) server's in-flight requests get before they are
    /// ended (`shutdown sessions server`); checked at each recheck, so it is late by up to
    /// `recheck_interval`.
    #[serde(default = "default_drain", deserialize_with = "de_duration")]
    pub drain_timeout: Duration,
    /// The status API's bounds (connections, timeouts): see [`StatusLimits`].
    #[serde(default)]
    pub status_limits: StatusLimits,
    /// The pools served.
    pub pools: Vec<PoolSpec>,
}

fn default_recheck() -> Duration {
    Duration::from_secs(5)
}

fn default_drain() -> Duration {
    Duration::from_secs(60)
}

pub(crate) fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

impl AgentConfig {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig, Error> {
        use std::io::Read;
        let read = |source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::new();
        // One byte more than the cap tells a file at the cap from a larger one, which is
        // refused rather than read cut short (a cut can land where the YAML still parses).
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_BYTES {
            return Err(Error::BadConfig {
                path: path.to_path_buf(),
                reason: format!("larger than {MAX_BYTES} bytes"),
            });
        }
        AgentConfig::from_yaml(path, &text)
    }

    /// Parse and validate the text of a configuration file (`path` names it in errors).
    pub fn from_yaml(path: &Path, text: &str) -> Result<AgentConfig, Error> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_path_buf(),
            reason,
        };
        // Through a `Value` first: a duplicate key is an error, not a silent overwrite.
        let value: yaml_serde::Value =
            yaml_serde::from_str(text).map_err(|e| bad(e.to_string()))?;
        let cfg: AgentConfig = yaml_serde::from_value(value).map_err(|e| bad(e.to_string()))?;
        cfg.etcd.validate(path)?;
        if cfg.pools.is_empty() {
            return Err(bad("no pools: the agent would have nothing to do".into()));
        }
        if let Some(addr) = cfg.status_listen {
            if !addr.ip().is_loopback() {
                return Err(bad(format!(
                    "status_listen {addr} is not a loopback address"
                )));
            }
        }
        if cfg.recheck_interval < Duration::from_millis(100) {
            return Err(bad("recheck_interval must be at least 100ms".into()));
        }
        cfg.status_limits.check().map_err(|e| bad(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        let mut backends = std::collections::BTreeSet::new();
        for p in &cfg.pools {
            if p.backend.is_empty() || p.backend.chars().any(|c| c.is_whitespace() || c == '/') {
                return Err(bad(format!(
                    "pool {}: bad backend name {:?}",
                    p.pool(),
                    p.backend
                )));
            }
            if !seen.insert(p.pool()) {
                return Err(bad(format!("pool {} is listed twice", p.pool())));
            }
            if !backends.insert(p.backend.as_str()) {
                return Err(bad(format!(
                    "backend {} serves two pools (each pool needs its own backend)",
                    p.backend
                )));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
