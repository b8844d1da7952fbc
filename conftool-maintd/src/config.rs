//! The daemon's configuration file (`/etc/conftool/maintd.yaml`). etcd, the audit log and
//! the load balancers that verify a node is out come from conftool's own configuration
//! (`/etc/conftool/config.yaml`), as for every tool.
//!
//! ```yaml
//! nodes: "dc=eqiad,cluster=appservers"      # a selector: the nodes of the objects it selects
//! diagnose: [ssh, "{host}", /usr/lib/conftool/diagnose]    # run for each node; prints JSON
//! poll_interval: 30s
//! diagnose_timeout: 20s
//! repair: [ssh, "{host}", "/usr/lib/conftool/repair/{command}"]   # the diagnosis on stdin
//! repair_commands: [restart-nic, clear-cache]  # the only names {command} may be
//! repair_timeout: 10m
//! verify: true              # ask the pools' load balancers that an evacuated node is out
//! verify_timeout: 60s
//! wait_sessions: false      # evacuate (not evacuate-failover) also waits for its sessions
//! lease_ttl: 15s            # a dead leader is replaced within this
//! status_listen: 127.0.0.1:9106
//! ```
//!
//! `{host}` is replaced by the node's name in every argument (names are letters, digits,
//! `.`, `_`, `-`: nothing a shell would read); `{command}` by a whitelisted repair name.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use conftool_core::config::parse_duration;
use conftool_core::{NodeName, Selector};
use serde::Deserialize;

use crate::error::Error;

/// The largest configuration file read.
const MAX_BYTES: u64 = 1 << 20;

/// The daemon's settings; see the module docs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintConfig {
    /// The nodes observed: those of the objects this selector selects.
    #[serde(deserialize_with = "de_selector")]
    pub nodes: Selector,
    /// The diagnose command, as arguments (`{host}` replaced).
    pub diagnose: Vec<String>,
    /// How often every node is asked.
    #[serde(default = "default_poll", deserialize_with = "de_poll_interval")]
    pub poll_interval: Duration,
    /// How long one diagnose may run (then it is killed: a malformed answer).
    #[serde(
        default = "default_diagnose_timeout",
        deserialize_with = "de_diagnose_timeout"
    )]
    pub diagnose_timeout: Duration,
    /// How many nodes are asked at once.
    #[serde(default = "default_parallel")]
    pub diagnose_parallel: usize,
    /// The repair command, as arguments (`{host}` and `{command}` replaced); the diagnosis
    /// is its stdin. None: live repairs fail (nothing is whitelisted).
    #[serde(default)]
    pub repair: Vec<String>,
    /// The repair names a diagnosis may ask for; any other fails its event.
    #[serde(default)]
    pub repair_commands: Vec<String>,
    /// How long a repair may run (then it is killed: the event fails).
    #[serde(
        default = "default_repair_timeout",
        deserialize_with = "de_repair_timeout"
    )]
    pub repair_timeout: Duration,
    /// Whether an evacuated node must be seen out by every load balancer of its pools
    /// (conftool's `load_balancers`) before its event is ready; failing closed.
    #[serde(default = "yes")]
    pub verify: bool,
    /// How long the load balancers have.
    #[serde(
        default = "default_verify_timeout",
        deserialize_with = "de_verify_timeout"
    )]
    pub verify_timeout: Duration,
    /// Whether `evacuate` also waits until the load balancers report no session left on
    /// the node (`evacuate-failover` never waits: the node is going down).
    #[serde(default)]
    pub wait_sessions: bool,
    /// The leader's lease: another instance takes over within this after it dies.
    #[serde(default = "default_ttl", deserialize_with = "de_lease_ttl")]
    pub lease_ttl: Duration,
    /// Where the status page and metrics listen; none: no status page.
    #[serde(default)]
    pub status_listen: Option<SocketAddr>,
}

fn yes() -> bool {
    true
}
fn default_poll() -> Duration {
    Duration::from_secs(30)
}
fn default_diagnose_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_parallel() -> usize {
    32
}
fn default_repair_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_verify_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_ttl() -> Duration {
    Duration::from_secs(15)
}

// A value's own parse error carries no place: each field's deserializer names its field,
// and `from_yaml` adds the line.
macro_rules! durations {
    ($($field:ident => $de:ident),* $(,)?) => {$(
        fn $de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            let s = String::deserialize(d)?;
            parse_duration(&s)
                .map_err(|e| serde::de::Error::custom(format!("{}: {e}", stringify!($field))))
        }
    )*};
}
durations!(
    poll_interval => de_poll_interval,
    diagnose_timeout => de_diagnose_timeout,
    repair_timeout => de_repair_timeout,
    verify_timeout => de_verify_timeout,
    lease_ttl => de_lease_ttl,
);

fn de_selector<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Selector, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|e| serde::de::Error::custom(format!("nodes: {e}")))
}

/// `reason`, with the line of the top-level key it names when it carries no place.
fn placed(text: &str, reason: String) -> String {
    if reason.contains("line ") {
        return reason;
    }
    let Some((key, _)) = reason.split_once(": ") else {
        return reason;
    };
    let line = text.lines().position(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    });
    match line {
        Some(i) => format!("line {}: {reason}", i + 1),
        None => reason,
    }
}

impl MaintConfig {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<MaintConfig, Error> {
        use std::io::Read;
        let read = |source| Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_BYTES)
            .read_to_string(&mut text)
            .map_err(read)?;
        MaintConfig::from_yaml(path, &text)
    }

    /// Parse and check the text of a configuration file (`path` names it in errors).
    pub fn from_yaml(path: &Path, text: &str) -> Result<MaintConfig, Error> {
        let bad = |reason: String| Error::BadConfig {
            path: path.to_path_buf(),
            reason,
        };
        // As a `Value` first: a duplicate key is an error, not a silent overwrite. Then from
        // the text again, so that a wrong field's error carries its line.
        yaml_serde::from_str::<yaml_serde::Value>(text).map_err(|e| bad(e.to_string()))?;
        let cfg: MaintConfig =
            yaml_serde::from_str(text).map_err(|e| bad(placed(text, e.to_string())))?;
        cfg.check().map_err(bad)?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        if self.diagnose.is_empty() {
            return Err("diagnose: the command is empty".into());
        }
        if !self.diagnose.iter().any(|a| a.contains("{host}")) {
            return Err(
                "diagnose: no argument says {host}: every node would run the same command".into(),
            );
        }
        if !self.repair.is_empty() {
            if !self.repair.iter().any(|a| a.contains("{host}")) {
                return Err("repair: no argument says {host}".into());
            }
            if !self.repair.iter().any(|a| a.contains("{command}")) {
                return Err("repair: no argument says {command}".into());
            }
        }
        if let Some(bad) = self.repair_commands.iter().find(|c| !is_command_name(c)) {
            return Err(format!(
                "repair_commands: \"{}\" is not a command name (letters, digits, '.', '_', '-'; \
                 at most 64; not starting with '.' or '-')",
                conftool_core::escape_controls(bad)
            ));
        }
        if !self.repair_commands.is_empty() && self.repair.is_empty() {
            return Err("repair_commands are whitelisted, but there is no repair command".into());
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err("lease_ttl: at least 2s (etcd leases are whole seconds)".into());
        }
        if self.diagnose_parallel == 0 {
            return Err("diagnose_parallel: must be at least 1".into());
        }
        Ok(())
    }

    /// The diagnose command for `node`.
    pub fn diagnose_for(&self, node: &NodeName) -> Vec<String> {
        self.diagnose
            .iter()
            .map(|a| a.replace("{host}", node.as_str()))
            .collect()
    }

    /// The repair command for `node` and `command`, if `command` is whitelisted.
    pub fn repair_for(&self, node: &NodeName, command: &str) -> Option<Vec<String>> {
        if self.repair.is_empty() || !self.repair_commands.iter().any(|c| c == command) {
            return None;
        }
        Some(
            self.repair
                .iter()
                .map(|a| {
                    a.replace("{host}", node.as_str())
                        .replace("{command}", command)
                })
                .collect(),
        )
    }
}

/// Whether `s` may be a repair command's name.
fn is_command_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MaintConfig, String> {
        MaintConfig::from_yaml(Path::new("maintd.yaml"), text).map_err(|e| e.to_string())
    }

    const MIN: &str = "nodes: cluster=web\ndiagnose: [ssh, '{host}', /usr/lib/conftool/diagnose]\n";

    #[test]
    fn a_minimal_file_gets_the_defaults_and_fills_in_commands() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(30));
        assert!(c.verify && !c.wait_sessions);
        assert_eq!(c.lease_ttl, Duration::from_secs(15));
        let n: NodeName = "mw1".parse().unwrap();
        assert_eq!(
            c.diagnose_for(&n),
            ["ssh", "mw1", "/usr/lib/conftool/diagnose"]
        );
        assert_eq!(c.repair_for(&n, "x"), None, "nothing whitelisted");
        let c = parse(&format!(
            "{MIN}repair: [ssh, '{{host}}', '/r/{{command}}']\nrepair_commands: [fix-nic]\n"
        ))
        .unwrap();
        assert_eq!(
            c.repair_for(&n, "fix-nic").unwrap(),
            ["ssh", "mw1", "/r/fix-nic"]
        );
        assert_eq!(c.repair_for(&n, "rm"), None);
    }

    #[test]
    fn mistakes_are_named_with_their_place() {
        let cases: &[(&str, &str)] = &[
            ("nodes: cluster=web\n", "missing field `diagnose`"),
            (
                &format!("{MIN}pol_interval: 3s\n"),
                "unknown field `pol_interval`",
            ),
            (
                &format!("{MIN}poll_interval: soon\n"),
                "line 3: poll_interval: invalid duration \"soon\"",
            ),
            (
                &format!("{MIN}poll_interval: 0s\n"),
                "line 3: poll_interval: invalid duration \"0s\": must be positive",
            ),
            (
                "nodes: 'cluster=('\ndiagnose: ['{host}']\n",
                "line 1: nodes: ",
            ),
            (
                "nodes: cluster=web\ndiagnose: [/bin/diagnose]\n",
                "no argument says {host}",
            ),
            (
                &format!("{MIN}repair: [x, '{{host}}']\n"),
                "repair: no argument says {command}",
            ),
            (
                &format!("{MIN}repair_commands: [fix]\n"),
                "there is no repair command",
            ),
            (
                &format!("{MIN}repair: ['{{host}}', '{{command}}']\nrepair_commands: ['../x']\n"),
                "repair_commands: \"../x\" is not a command name",
            ),
            (&format!("{MIN}lease_ttl: 1s\n"), "lease_ttl: at least 2s"),
            (&format!("{MIN}verify: true\nverify: false\n"), "duplicate"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert!(
                e.starts_with("maintenance daemon configuration maintd.yaml: "),
                "{e}"
            );
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // YAML errors carry their line.
        let e = parse(&format!("{MIN}verify: [\n")).unwrap_err();
        assert!(e.contains("line"), "{e}");
    }
}
